"""NVlabs network pickles: the restricted reader, `--model net.pkl` loading, and hostile pickles.

The pickles are written here the way NVlabs persistence writes them: each network is a call to
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with meta = {type, version, module_src, module_name,
class_name, state = the module's __dict__}; tensors go through torch's own reduce (`_rebuild_parameter`,
`_rebuild_tensor_v2`, `torch.storage._load_from_bytes`); kwargs are `dnnlib.util.EasyDict`. The two NVlabs modules
exist in sys.modules only while pickling, so reading cannot fall back on them.
"""

import copy
import hashlib
import os
import pickle
import pickletools
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from probe.errors import ProbeError
from probe.models import load_model
from probe.models.nvlabs import load_nvlabs
from probe.models.nvlabs_pkl import ALLOWED_TEXT, read_network_pkl
from probe.models.stylegan2 import Generator
from tests.helpers import cli, nvlabs_reference

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"
NVLABS_MODULES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
SRC = "class Generator(torch.nn.Module):\n    pass\n"


@contextmanager
def nvlabs_modules():
    """Temporary `torch_utils.persistence` and `dnnlib.util` so that pickle can name their globals (and an
    unrestricted pickle.loads can run them, for the controls)."""
    assert not any(m in sys.modules for m in NVLABS_MODULES)

    def _reconstruct_persistent_obj(meta):
        return meta

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__, _reconstruct_persistent_obj.__qualname__ = (
        "torch_utils.persistence",
        "_reconstruct_persistent_obj",
    )
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    pers, util = types.ModuleType("torch_utils.persistence"), types.ModuleType("dnnlib.util")
    pers._reconstruct_persistent_obj, util.EasyDict = _reconstruct_persistent_obj, EasyDict
    tu, dn = types.ModuleType("torch_utils"), types.ModuleType("dnnlib")
    tu.persistence, dn.util = pers, util
    sys.modules.update({"torch_utils": tu, "torch_utils.persistence": pers, "dnnlib": dn, "dnnlib.util": util})
    try:
        yield types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)
    finally:
        for m in NVLABS_MODULES:
            sys.modules.pop(m, None)


class Persistent:
    """Pickles as NVlabs persistence does: (_reconstruct_persistent_obj, (meta,)), no separate state."""

    def __init__(self, fn, meta):
        self.fn, self.meta = fn, meta

    def __reduce__(self):
        return (self.fn, (self.meta,))


def record(
    module: nn.Module, nv, init_kwargs: dict, src: str = SRC, module_name: str = "training.networks"
) -> Persistent:
    state = dict(module.__dict__)
    state["_modules"] = OrderedDict((k, record(m, nv, {}, src, module_name)) for k, m in module._modules.items())
    state["_init_args"], state["_init_kwargs"] = (), nv.EasyDict(init_kwargs)
    return Persistent(
        nv.reconstruct,
        dict(
            type="class",
            version=6,
            module_src=src,
            module_name=module_name,
            class_name=type(module).__name__,
            state=state,
        ),
    )


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.arange(6.0).reshape(2, 3))
        self.img_resolution = np.int64(32)  # numpy scalar and array attributes, as NVlabs state holds
        self.cutoffs = np.array([[1.5, 2.0]], dtype=np.float32)


class AugmentPipe(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("p", torch.tensor(0.25))


def _kwargs(nv, info):
    return {k: nv.EasyDict(v) if isinstance(v, dict) else v for k, v in copy.deepcopy(info["init_kwargs"]).items()}


def write_pkl(
    path: Path,
    nets: dict,
    info: dict,
    protocol: int = 4,
    src: str = SRC,
    extra: dict | None = None,
    module_name: str = "training.networks",
):
    with nvlabs_modules() as nv:
        data = {k: record(g, nv, _kwargs(nv, info), src, module_name) for k, g in nets.items()}
        data["D"] = record(Discriminator(), nv, {"c_dim": 0, "img_resolution": 32})
        data["augment_pipe"] = record(AugmentPipe(), nv, {"xflip": 1})
        data["training_set_kwargs"] = nv.EasyDict(
            class_name="training.dataset.ImageFolderDataset", path="ffhq.zip", resolution=32, xflip=True, max_size=None
        )
        data.update(extra or {})
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    assert not any(m in sys.modules for m in NVLABS_MODULES)
    return path


@pytest.fixture(scope="session")
def sg2():
    info, state, ref = nvlabs_reference("sg2_32")
    g_ema = Generator(**info["init_kwargs"]).eval()
    g_ema.load_state_dict(state)
    g = copy.deepcopy(g_ema)
    with torch.no_grad():
        for n, p in g.named_parameters():
            if n.endswith("affine.bias"):
                p.add_(0.25)
    return info, state, ref, g_ema, g


@pytest.fixture(scope="session")
def pkl(sg2, tmp_path_factory):
    info, _, _, g_ema, g = sg2
    return write_pkl(tmp_path_factory.mktemp("nv") / "net.pkl", {"G": g, "G_ema": g_ema}, info)


def _globals(data: bytes) -> set:
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


@pytest.mark.parametrize("protocol,numpy1", [(2, False), (2, True), (3, False), (4, False)])
def test_reader_rebuilds_networks_as_data(sg2, tmp_path, protocol, numpy1):
    info, state, _, g_ema, g = sg2
    p = write_pkl(tmp_path / "net.pkl", {"G": g, "G_ema": g_ema}, info, protocol=protocol)
    if numpy1:  # files written with numpy 1.x name numpy.core.multiarray
        p.write_bytes(p.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
        assert {"numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct"} <= _globals(p.read_bytes())
    elif protocol == 2:
        assert _globals(p.read_bytes()) == {
            "torch_utils.persistence._reconstruct_persistent_obj",
            "torch._utils._rebuild_parameter",
            "torch._utils._rebuild_tensor_v2",
            "torch.storage._load_from_bytes",
            "collections.OrderedDict",
            "dnnlib.util.EasyDict",
            "numpy.dtype",
            "numpy._core.multiarray.scalar",
            "numpy._core.multiarray._reconstruct",
            "numpy.ndarray",
            "__builtin__.set",
            "_codecs.encode",
        }
    pk = read_network_pkl(p)
    assert pk.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert sorted(pk.networks) == ["D", "G", "G_ema", "augment_pipe"]
    assert pk.extras == {
        "training_set_kwargs": {
            "class_name": "training.dataset.ImageFolderDataset",
            "path": "ffhq.zip",
            "resolution": 32,
            "xflip": True,
            "max_size": None,
        }
    }
    net = pk.networks["G_ema"]
    assert (net.class_name, net.module_name, net.version) == ("Generator", "training.networks", 6)
    assert net.module_src_sha256 == hashlib.sha256(SRC.encode()).hexdigest()
    assert net.init_kwargs == info["init_kwargs"] and type(net.init_kwargs["synthesis_kwargs"]) is dict
    assert list(net.state_dict) == list(state)
    assert all(torch.equal(net.state_dict[k], state[k]) for k in state)
    assert not torch.equal(
        pk.networks["G"].state_dict["synthesis.b8.conv0.affine.bias"], state["synthesis.b8.conv0.affine.bias"]
    )
    d = pk.networks["D"]
    assert d.class_name == "Discriminator" and d.init_kwargs == {"c_dim": 0, "img_resolution": 32}
    assert torch.equal(d.state_dict["weight"], torch.arange(6.0).reshape(2, 3))
    assert pk.networks["augment_pipe"].state_dict["p"].item() == 0.25


def test_load_model_renders_the_nvlabs_reference(pkl, sg2):
    ref = sg2[2]
    gen = load_model(str(pkl))
    assert (gen.z_dim, gen.w_dim, gen.num_ws, gen.resolution, gen.sites) == (64, 64, 8, 32, ("b4", "b8", "b16", "b32"))
    with torch.no_grad():
        ws = gen.to_space(ref["z"], "z", "ws")
        assert (ws - ref["ws_psi1"]).abs().max().item() <= 1e-5
        assert (gen.synthesize(ref["z"], "z") - ref["img_psi1"].clamp(-1, 1)).abs().max().item() <= 1e-4
        img = gen.module.synthesis(gen.module.mapping(ref["z"], ref["c"], truncation_psi=0.7), noise_mode="const")
    assert (img - ref["img_psi07"]).abs().max().item() <= 1e-4
    assert gen.info == {
        "pickle": "net.pkl",
        "pickle_sha256": hashlib.sha256(pkl.read_bytes()).hexdigest(),
        "pickle_key": "G_ema",
        "nvlabs_class": "training.networks.Generator",
        "architecture": "stylegan2",
        "init_kwargs": sg2[0]["init_kwargs"],
    }


def test_key_suffix_picks_G(pkl, sg2):
    ref, g = sg2[2], sg2[4]
    gen = load_model(f"{pkl}:G")
    assert gen.info["pickle_key"] == "G" and gen.name == "net:G"
    with torch.no_grad():
        want = g.synthesis(ref["ws_psi1"], noise_mode="const")
        got = gen.module.synthesis(ref["ws_psi1"], noise_mode="const")
    assert torch.equal(got, want)
    assert (got - ref["img_psi1"]).abs().max().item() > 1e-2  # G differs from G_ema


def test_absent_key_and_non_generator_are_one_line(pkl):
    with pytest.raises(ProbeError) as e:
        load_nvlabs(pkl, "G_avg")
    assert str(e.value) == (
        "net.pkl:G_avg: the pickle has no network 'G_avg'; networks present: "
        "['D', 'G', 'G_ema', 'augment_pipe'] (write net.pkl:<key>)"
    )
    with pytest.raises(ProbeError) as e:
        load_model(f"{pkl}:D")
    assert (
        str(e.value)
        == "net.pkl:D is a Discriminator, not a Generator; name the generator entry (G_ema, or G for the raw weights)"
    )


def test_stylegan3_pickle_dispatches_to_our_stylegan3(tmp_path):
    from probe.models import stylegan3

    info, state, ref = nvlabs_reference("sg3_t_32")
    g = stylegan3.Generator(**info["init_kwargs"]).eval()
    g.load_state_dict(state)
    p = write_pkl(tmp_path / "sg3.pkl", {"G_ema": g}, info, module_name="training.networks_stylegan3")
    gen = load_model(str(p))
    assert gen.info["architecture"] == "stylegan3" and type(gen.module) is stylegan3.Generator
    assert gen.info["nvlabs_class"] == "training.networks_stylegan3.Generator"
    assert gen.num_ws == 16 and gen.resolution == 32
    with torch.no_grad():  # (two of the four reference samples keep this test fast)
        assert (gen.to_space(ref["z"], "z", "ws") - ref["ws_psi1"]).abs().max().item() <= 1e-5
        img = gen.module.synthesis(gen.module.mapping(ref["z"][:2], ref["c"][:2], truncation_psi=0.7))
    assert (img - ref["img_psi07"][:2]).abs().max().item() <= 1e-4


def test_build_refusals_are_one_line(sg2):
    from probe.models.nvlabs import build_network
    from probe.models.nvlabs_pkl import NetworkData

    info, state = sg2[0], sg2[1]

    def net(synthesis=None, **top):
        kw = copy.deepcopy(info["init_kwargs"])
        kw.update(top)
        kw["synthesis_kwargs"].update(synthesis or {})
        return NetworkData("Generator", "training.networks", 6, "", [], kw, dict(state))

    def msg(n, **kw):
        with pytest.raises(ProbeError) as e:
            build_network(n, "net.pkl:G_ema", **kw)
        return str(e.value)

    assert msg(net(img_resolution=[32, 64])) == (
        "net.pkl:G_ema: img_resolution [32, 64] is not one integer; probe needs square images of a single resolution"
    )
    assert msg(net({"bogus": 1})) == (
        "net.pkl:G_ema: cannot build a stylegan2 generator from its init_kwargs "
        "(SynthesisLayer.__init__() got an unexpected keyword argument 'bogus')"
    )
    assert msg(net({"channel_max": 32})) == (
        "net.pkl:G_ema: parameter synthesis.b4.const has shape [64, 4, 4], the init_kwargs give [32, 4, 4]"
    )
    short = net()
    del short.state_dict["mapping.w_avg"]
    short.state_dict["mapping.extra"] = torch.zeros(1)
    assert msg(short) == (
        "net.pkl:G_ema: parameters do not match a stylegan2 generator with these init_kwargs "
        "(missing ['mapping.w_avg'], unexpected ['mapping.extra'])"
    )
    legacy = net(
        dict(resample_filter=[1, 3, 3, 1], use_noise=True, activation="lrelu"),
        mapping_kwargs={
            "num_layers": 2,
            "embed_features": None,
            "layer_features": None,
            "activation": "lrelu",
            "lr_multiplier": 0.01,
            "w_avg_beta": 0.995,
        },
    )
    assert build_network(legacy).num_ws == 8  # the full kwargs of TF-converted pickles are accepted


def test_cli_describe(pkl, capsys):
    code, out, err = cli(["models", "--describe", pkl], capsys)
    assert code == 0, err
    rows = dict(line.strip().split(": ", 1) for line in out.splitlines())
    assert rows["num_ws"] == "8" and rows["resolution"] == "32" and rows["spaces"] == "['z', 'w', 'ws']"
    assert rows["pickle_sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert rows["architecture"] == "stylegan2" and rows["nvlabs_class"] == "training.networks.Generator"


# ---- hostile pickles ------------------------------------------------------------------------------------------


def test_embedded_module_src_is_never_executed(sg2, tmp_path):
    info, _, ref, g_ema, _ = sg2
    marker = tmp_path / "MARKER_SRC"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n" + SRC
    p = write_pkl(tmp_path / "src.pkl", {"G_ema": g_ema}, info, src=src)
    gen = load_nvlabs(p)
    assert not marker.exists()
    assert read_network_pkl(p).networks["G_ema"].module_src_sha256 == hashlib.sha256(src.encode()).hexdigest()
    with torch.no_grad():
        assert (gen.module.synthesis(ref["ws_psi1"], noise_mode="const") - ref["img_psi1"]).abs().max() <= 1e-4
    exec(compile(src.split("class")[0], "src", "exec"), {})  # control: the source is live when executed
    assert marker.exists()


class OsSystem:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _refused(name, glob):
    return f"{name}: refused global {glob!r} (NVlabs network pickles need only {ALLOWED_TEXT}); nothing was executed"


def test_os_system_payload_is_refused(sg2, tmp_path, capsys):
    info, _, _, g_ema, _ = sg2
    marker = tmp_path / "MARKER"
    p = write_pkl(tmp_path / "evil.pkl", {"G_ema": g_ema}, info, extra={"evil": OsSystem(f"touch {marker}")})
    with pytest.raises(ProbeError) as e:
        load_model(str(p))
    assert str(e.value) == _refused("evil.pkl", "posix.system")
    assert str(e.value) == (
        "evil.pkl: refused global 'posix.system' (NVlabs network pickles need only tensors "
        "(torch._utils._rebuild_tensor_v2/_rebuild_parameter, torch.storage._load_from_bytes), "
        "numpy scalars/arrays, OrderedDict, set, dnnlib.util.EasyDict and "
        "torch_utils.persistence._reconstruct_persistent_obj); nothing was executed"
    )
    code, out, err = cli(["models", "--describe", p], capsys)
    assert code == 2 and err == f"error: {_refused('evil.pkl', 'posix.system')}\n"
    assert not marker.exists()
    with nvlabs_modules():
        pickle.loads(p.read_bytes())  # control: the payload is live when unpickled
    assert marker.exists()


@pytest.mark.parametrize("fn,glob", [(eval, "builtins.eval"), (exec, "builtins.exec")])
def test_eval_and_exec_are_refused(tmp_path, fn, glob):
    marker = tmp_path / "M"
    p = tmp_path / "e.pkl"
    p.write_bytes(pickle.dumps({"G_ema": Call(fn, f"open({str(marker)!r}, 'w')")}))
    with pytest.raises(ProbeError) as e:
        read_network_pkl(p)
    assert str(e.value) == _refused("e.pkl", glob)
    assert not marker.exists()


def test_tensorflow_pickle_names_the_conversion(tmp_path):
    p = tmp_path / "tf.pkl"
    p.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(ProbeError) as e:
        read_network_pkl(p)
    assert str(e.value) == (
        "tf.pkl: refused global 'dnnlib.tflib.network.Network': a TensorFlow-era StyleGAN "
        "pickle; convert it once to a PyTorch pickle with NVlabs' legacy.py (stylegan2-ada-pytorch) "
        "where you trust that code; nothing was executed"
    )


def test_payload_hidden_in_a_storage_stream_is_refused(tmp_path):
    marker = tmp_path / "M"
    inner = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    inner += pickle.dumps(OsSystem(f"touch {marker}"), protocol=2)
    with nvlabs_modules() as nv:
        from torch.storage import _load_from_bytes

        data = {
            "G_ema": Persistent(
                nv.reconstruct,
                dict(
                    type="class",
                    version=6,
                    module_src="",
                    module_name="m",
                    class_name="Generator",
                    state={"_parameters": {"w": Call(_load_from_bytes, inner)}},
                ),
            )
        }
        (tmp_path / "s.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ProbeError) as e:
        read_network_pkl(tmp_path / "s.pkl")
    assert str(e.value) == _refused("s.pkl", "posix.system")
    assert not marker.exists()


def test_tensor_past_its_storage_is_one_line(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = torch.zeros(3).storage()  # pickles as torch.storage._load_from_bytes(legacy stream)
    bad = Call(torch._utils._rebuild_tensor_v2, storage, 0, (100,), (1,), False, OrderedDict())
    with nvlabs_modules() as nv:
        data = {
            "G_ema": Persistent(
                nv.reconstruct,
                dict(
                    type="class",
                    version=6,
                    module_src="",
                    module_name="m",
                    class_name="Generator",
                    state={"_parameters": {"w": bad}},
                ),
            )
        }
        (tmp_path / "t.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ProbeError) as e:
        read_network_pkl(tmp_path / "t.pkl")
    assert (
        str(e.value) == "t.pkl: not a well-formed NVlabs network pickle: tensor of size [100] reaches past its "
        "storage (3 values)"
    )


def test_cyclic_state_is_one_line(tmp_path):
    with nvlabs_modules() as nv:
        state = {"_parameters": {}}
        state["_modules"] = {
            "self": Persistent(
                nv.reconstruct,
                dict(type="class", version=6, module_src="", module_name="m", class_name="Block", state=state),
            )
        }
        data = {
            "G_ema": Persistent(
                nv.reconstruct,
                dict(type="class", version=6, module_src="", module_name="m", class_name="Generator", state=state),
            )
        }
        (tmp_path / "c.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ProbeError) as e:
        read_network_pkl(tmp_path / "c.pkl")
    assert str(e.value) == "c.pkl: not a well-formed NVlabs network pickle: its data is cyclic or nested too deeply"


def test_not_nvlabs_wrong_type_and_truncated_are_one_line(pkl, tmp_path):
    cases = {
        "ints.pkl": pickle.dumps({"a": 1, "b": 2}),
        "list.pkl": pickle.dumps([1, 2]),
        "cut.pkl": pkl.read_bytes()[: pkl.stat().st_size // 2],
        "empty.pkl": b"",
        "text.pkl": b"<html>not a pickle</html>",
        "zip.pkl": (DATA / "sg2_32_ref.npz").read_bytes(),
    }
    want = {
        "ints.pkl": "ints.pkl: not an NVlabs network pickle (no persistent networks at the top level; keys: "
        "['a', 'b']); expected a dict with G, G_ema, D, ...",
        "list.pkl": "list.pkl: not an NVlabs network pickle (the top level is of type list, expected a dict with G, G_ema, D, ...)",
        "cut.pkl": "cut.pkl: the pickle is truncated (the file ends before its data does); download or copy it again",
        "empty.pkl": "empty.pkl: the pickle is truncated (the file ends before its data does); download or copy it again",
        "text.pkl": "text.pkl: not a readable NVlabs network pickle (UnpicklingError: invalid load key, '<'.)",
        "zip.pkl": "zip.pkl: a zip archive (torch.save / numpy .npz format), not an NVlabs network pickle; "
        "load a torch archive as .pt",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProbeError) as e:
            load_model(str(tmp_path / name))
        assert str(e.value) == want[name]
