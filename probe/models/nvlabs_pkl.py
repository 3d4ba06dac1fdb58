"""Restricted reader for NVlabs network pickles (StyleGAN2-ADA / StyleGAN3 `network-snapshot-*.pkl`, `ffhq.pkl`).

NVlabs persistence pickles each network as `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where
`meta` holds the class name, the module source (`module_src`) and the module's `__dict__` (`state`). Here no global
named by the pickle is ever called: each allowed name maps to a constructor of this module that rebuilds plain data
(tensors from their storage bytes, numpy scalars and arrays, dicts) and records `meta` as data. `module_src` is only
hashed. Any other global (`posix.system`, `builtins.eval`, a network class, ...) stops reading with one line.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import ModelError

ALLOWED_TEXT = (
    "tensors (torch._utils._rebuild_tensor_v2/_rebuild_parameter, torch.storage._load_from_bytes), "
    "numpy scalars/arrays, OrderedDict, set, dnnlib.util.EasyDict and "
    "torch_utils.persistence._reconstruct_persistent_obj"
)
_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}
_NP_DTYPE = re.compile(r"^(b1|[iu][1248]|f[248]|c(8|16))$")


class NVlabsPickleError(ModelError):
    """An NVlabs network pickle that cannot be read safely; the message names the file and the reason."""


@dataclass
class NetworkData:
    """One persistent network of the pickle, as data.

    state_dict: flat NVlabs names -> tensors ({"synthesis.b4.conv1.weight": [C_out, C_in, 3, 3], ...}), rebuilt
    from the nested `_parameters` / `_buffers` / `_modules` (non-persistent buffers left out)."""

    class_name: str
    module_name: str
    version: int | None
    module_src_sha256: str
    init_args: list
    init_kwargs: dict
    state_dict: dict[str, torch.Tensor]


@dataclass
class NetworkPickle:
    """A read pickle: networks by top-level key (`G`, `G_ema`, `D`, ...), other top-level entries as plain data
    (`training_set_kwargs`), and the file's sha256."""

    path: str
    sha256: str
    networks: dict[str, NetworkData] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class _Malformed(Exception):
    pass


class _Placeholder:
    """Base of every object this reader builds for a pickle global; pickle BUILD on it is refused."""

    def __setstate__(self, state):
        raise _Malformed(f"unexpected object state for {type(self).__name__.strip('_')}")


class _EasyDict(dict):
    pass


class _Persistent(_Placeholder):
    def __init__(self, meta: dict):
        self.meta = meta


class _Storage(_Placeholder):
    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor  # flat [numel]


class _TensorRef(_Placeholder):
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def resolve(self) -> torch.Tensor:
        flat = self.storage.tensor
        if len(self.size) != len(self.stride):
            raise _Malformed("tensor whose size and stride differ in length")
        if any(s < 0 for s in self.size) or any(s < 0 for s in self.stride) or self.offset < 0:
            raise _Malformed("tensor with negative size, stride or offset")
        if all(s > 0 for s in self.size):
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if last >= flat.numel():
                raise _Malformed(f"tensor of size {list(self.size)} reaches past its storage ({flat.numel()} values)")
        return torch.as_strided(flat, self.size, self.stride, self.offset)


class _DType(_Placeholder):
    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str) or not _NP_DTYPE.match(name):
            raise _Malformed(f"numpy dtype {name!r} is not a plain numeric type")
        self.name, self.byteorder = name, "="

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise _Malformed("unexpected numpy dtype state")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        dt = np.dtype(self.name)
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" else dt


class _NDArrayType:
    pass


class _NDArray(_Placeholder):
    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (
            isinstance(state, tuple)
            and len(state) == 5
            and isinstance(state[2], _DType)
            and isinstance(state[4], (bytes, bytearray))
        ):
            raise _Malformed("numpy array state is not (version, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, raw = state
        dt = dtype.resolve()
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(raw):
            raise _Malformed(f"numpy array of shape {list(shape)} does not match its {len(raw)} bytes")
        self.array = np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order="F" if fortran else "C").copy()


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise _Malformed("persistence record is not a class record (meta['type'] != 'class')")
    for k in ("module_src", "module_name", "class_name"):
        if not isinstance(meta.get(k), str):
            raise _Malformed(f"persistence record lacks a string {k!r}")
    if not isinstance(meta.get("state"), dict):
        raise _Malformed(f"persistence record of {meta['class_name']!r} has no state dict")
    return _Persistent(meta)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise _Malformed("tensor built from something other than a storage")
    try:
        return _TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))
    except (TypeError, ValueError):
        raise _Malformed("tensor with a non-integer offset, size or stride") from None


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _TensorRef):
        raise _Malformed("parameter built from something other than a tensor")
    return data


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, _DType) or not isinstance(data, (bytes, bytearray)):
        raise _Malformed("numpy scalar is not (plain dtype, bytes)")
    dt = dtype.resolve()
    if len(data) != dt.itemsize:
        raise _Malformed("numpy scalar of the wrong byte size")
    return np.frombuffer(bytes(data), dtype=dt)[0].item()


def _np_reconstruct(cls, shape, code):
    if cls is not _NDArrayType:
        raise _Malformed("numpy array of a type other than ndarray")
    return _NDArray()


def _codecs_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Malformed("bytes encoded other than latin1")
    return text.encode("latin1")


def _load_from_bytes(data):
    if not isinstance(data, (bytes, bytearray)):
        raise _Malformed("storage payload is not bytes")
    return _Storage(_read_legacy_storage(bytes(data)))


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): _DType,
    ("numpy", "ndarray"): _NDArrayType,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        fn = _ALLOWED.get((module, name))
        if fn is None:
            raise _Refused(f"{module}.{name}")
        return fn

    def persistent_load(self, pid):
        raise _Malformed("persistent ids belong in torch storages, not at the top level")


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _StorageKey(_Placeholder):
    def __init__(self, key: str, view):
        self.key, self.view = key, view


class _LegacyUnpickler(pickle.Unpickler):
    """The nested legacy torch.save stream of one storage: only `torch.<Type>Storage` globals."""

    def __init__(self, f):
        super().__init__(f)
        self.records: dict[str, tuple[torch.dtype, int]] = {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) == 6
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
        ):
            raise _Malformed("storage record is not ('storage', type, key, location, numel, view)")
        self.records[pid[2]] = (pid[1].dtype, pid[4])
        return _StorageKey(pid[2], pid[5])


def _plain_load(f):
    u = _LegacyUnpickler(f)
    u.persistent_load = _no_persistent
    return u.load()


def _no_persistent(pid):
    raise _Malformed("unexpected persistent id in a storage header")


def _read_legacy_storage(data: bytes) -> torch.Tensor:
    f = io.BytesIO(data)
    if _plain_load(f) != _MAGIC or _plain_load(f) != _LEGACY_PROTOCOL:
        raise _Malformed("storage payload is not a legacy torch.save stream")
    if not isinstance(_plain_load(f), dict):
        raise _Malformed("storage payload lacks its system-info header")
    u = _LegacyUnpickler(f)
    ref = u.load()
    keys = _plain_load(f)
    if not isinstance(ref, _StorageKey) or not isinstance(keys, list) or set(keys) != set(u.records):
        raise _Malformed("storage payload does not hold exactly one storage")
    flats = {}
    for key in keys:
        dtype, numel = u.records[key]
        head = f.read(8)
        if len(head) != 8 or int.from_bytes(head, "little") != numel:
            raise _Malformed("storage payload size header does not match its record")
        nbytes = numel * torch.empty(0, dtype=dtype).element_size()
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise _Malformed("storage payload ends before its data does")
        flats[key] = torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.empty(0, dtype=dtype)
    flat = flats[ref.key]
    if ref.view is not None:
        try:
            _, offset, size = ref.view
            flat = flat[int(offset) : int(offset) + int(size)]
        except (TypeError, ValueError):
            raise _Malformed("unreadable storage view record") from None
    return flat


def _resolve(obj, path: str = ""):
    """Placeholders -> tensors / arrays, EasyDict -> dict (networks stay _Persistent)."""
    if isinstance(obj, _TensorRef):
        return obj.resolve()
    if isinstance(obj, _NDArray):
        if obj.array is None:
            raise _Malformed("numpy array without data")
        return obj.array
    if isinstance(obj, (_Persistent, str, bytes, int, float, bool, complex, type(None), set, frozenset)):
        return obj
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v) for v in obj)
    raise _Malformed(f"unexpected {type(obj).__name__.strip('_')} object in the data")


def _flatten(net: _Persistent, prefix: str, out: dict) -> None:
    state = net.meta["state"]
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for k, v in (state.get(group) or {}).items():
            if v is None or (group == "_buffers" and k in skip):
                continue
            t = _resolve(v)
            if not isinstance(t, torch.Tensor):
                raise _Malformed(f"{prefix}{k} is not a tensor")
            out[prefix + k] = t
    for k, m in (state.get("_modules") or {}).items():
        if m is None:
            continue
        if not isinstance(m, _Persistent):
            raise _Malformed(f"submodule {prefix}{k} is not an NVlabs persistent network")
        _flatten(m, f"{prefix}{k}.", out)


def _network(net: _Persistent) -> NetworkData:
    meta, state = net.meta, net.meta["state"]
    kwargs = _resolve(state.get("_init_kwargs", state.get("init_kwargs", {})))
    args = _resolve(state.get("_init_args", state.get("init_args", ())))
    if not isinstance(kwargs, dict) or not isinstance(args, (list, tuple)):
        raise _Malformed(f"{meta['class_name']}: init_kwargs is not a dict")
    sd: dict[str, torch.Tensor] = {}
    _flatten(net, "", sd)
    version = meta.get("version")
    return NetworkData(
        class_name=meta["class_name"],
        module_name=meta["module_name"],
        version=version if isinstance(version, int) else None,
        module_src_sha256=hashlib.sha256(meta["module_src"].encode("utf-8", "surrogatepass")).hexdigest(),
        init_args=list(args),
        init_kwargs=kwargs,
        state_dict=sd,
    )


class _HashingReader:
    def __init__(self, f):
        self.f, self.h = f, hashlib.sha256()

    def read(self, n=-1):
        b = self.f.read(n)
        self.h.update(b)
        return b

    def readline(self):
        b = self.f.readline()
        self.h.update(b)
        return b

    def readinto(self, buf):
        n = self.f.readinto(buf)
        self.h.update(memoryview(buf)[:n])
        return n

    def finish(self) -> str:
        while chunk := self.f.read(1 << 20):
            self.h.update(chunk)
        return self.h.hexdigest()


def read_network_pkl(path: str | Path) -> NetworkPickle:
    """Read an NVlabs network pickle without running any of its code.

    Returns the networks by key (`G`, `G_ema`, `D`, `augment_pipe`: NetworkData) and the other top-level
    entries as plain data; raises NVlabsPickleError (one line) for refused globals, truncated files, pickles that
    are not NVlabs network pickles and malformed records."""
    p = Path(path)
    name = p.name
    if p.is_file() and zipfile.is_zipfile(p):
        raise NVlabsPickleError(
            f"{name}: a zip archive (torch.save / numpy .npz format), not an NVlabs network "
            f"pickle; load a torch archive as .pt"
        )
    try:
        with open(p, "rb") as fh:
            reader = _HashingReader(fh)
            top = _Unpickler(reader).load()
            sha = reader.finish()
    except OSError as e:
        raise NVlabsPickleError(f"{name}: cannot read the file ({e.strerror or type(e).__name__})") from None
    except _Refused as e:
        if e.name.startswith("dnnlib.tflib."):
            raise NVlabsPickleError(
                f"{name}: refused global {e.name!r}: a TensorFlow-era StyleGAN pickle; convert it "
                f"once to a PyTorch pickle with NVlabs' legacy.py (stylegan2-ada-pytorch) where "
                f"you trust that code; nothing was executed"
            ) from None
        raise NVlabsPickleError(
            f"{name}: refused global {e.name!r} (NVlabs network pickles need only {ALLOWED_TEXT}); nothing was executed"
        ) from None
    except _Malformed as e:
        raise NVlabsPickleError(f"{name}: not a well-formed NVlabs network pickle: {e}") from None
    except EOFError:
        raise NVlabsPickleError(
            f"{name}: the pickle is truncated (the file ends before its data does); download or copy it again"
        ) from None
    except Exception as e:  # noqa: BLE001 (any decoding failure of untrusted bytes is one line)
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        if "truncated" in msg or "ran out of input" in msg.lower():
            raise NVlabsPickleError(
                f"{name}: the pickle is truncated (the file ends before its data does); download or copy it again"
            ) from None
        raise NVlabsPickleError(f"{name}: not a readable NVlabs network pickle ({type(e).__name__}: {msg})") from None
    if not isinstance(top, dict):
        raise NVlabsPickleError(
            f"{name}: not an NVlabs network pickle (the top level is of type {type(top).__name__.strip('_')}, "
            f"expected a dict with G, G_ema, D, ...)"
        )
    out = NetworkPickle(path=str(p), sha256=sha)
    try:
        for k, v in top.items():
            if isinstance(v, _Persistent):
                out.networks[str(k)] = _network(v)
            else:
                out.extras[str(k)] = _resolve(v)
    except _Malformed as e:
        raise NVlabsPickleError(f"{name}: not a well-formed NVlabs network pickle: {e}") from None
    except RecursionError:
        raise NVlabsPickleError(
            f"{name}: not a well-formed NVlabs network pickle: its data is cyclic or nested too deeply"
        ) from None
    except Exception as e:  # noqa: BLE001 (records of untrusted files: any failure is one line)
        raise NVlabsPickleError(
            f"{name}: not a well-formed NVlabs network pickle ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''})"
        ) from None
    if not out.networks:
        raise NVlabsPickleError(
            f"{name}: not an NVlabs network pickle (no persistent networks at the top level; "
            f"keys: {sorted(map(str, top))[:8]}); expected a dict with G, G_ema, D, ..."
        )
    return out


__all__ = ["NVlabsPickleError", "NetworkData", "NetworkPickle", "read_network_pkl", "ALLOWED_TEXT"]
