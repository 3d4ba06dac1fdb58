"""Named embedded models and loading of user models.

A model is named as:
- a zoo name: `faces` (DigiFace-1M DCGAN 64x64), `tiny-dcgan`, `tiny-stylegan` (seeded, untrained test models);
- `path/to/file.py:factory`: a Python file whose `factory()` returns a torch module (z -> img, or the NVlabs
  mapping/synthesis interface) or a ready `Generator`;
- a TorchScript archive `model.pt` (z -> img).
Plain state-dict checkpoints hold no architecture: name a factory that builds the network and loads them.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..userfile import call_factory
from .base import GENERIC, Generator, ModelDefaults, ModelError
from .dcgan import TorchGenerator
from .faces import load_faces
from .stylegan import StyleGANGenerator


def _tiny_dcgan() -> Generator:
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
        torch.manual_seed(0)
        net = _tiny_dcgan_net()
    return TorchGenerator(net, 16, name="tiny-dcgan", sites={"b1": "2", "b2": "5", "b3": "8"}, conv_input=True)


def _tiny_dcgan_net() -> nn.Module:
    return nn.Sequential(
        nn.ConvTranspose2d(16, 64, 4, 1, 0),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 4, 2, 1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 3, 4, 2, 1),
        nn.Tanh(),
    )


def _tiny_stylegan() -> Generator:
    from .stylegan_lite import StyleGANLite

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = StyleGANLite(z_dim=16, w_dim=16, resolution=32, channels={4: 32, 8: 32, 16: 16, 32: 8}, mapping_layers=2)
    return StyleGANGenerator(net, name="tiny-stylegan")


def _weights(name: str) -> Path:
    from importlib.resources import files

    return Path(str(files("probe.models") / "weights" / name))


def _sprites(file: str = "sprites.pt", name: str = "sprites") -> Generator:
    """A generator trained by `probe train gan` on the sprites dataset (EMA weights, weights_only=True)."""
    path = _weights(file)
    if not path.is_file():
        raise ModelError(
            f"zoo model {name!r}: weights {path} are missing; reinstall latent-probe or train them "
            f"with `probe train gan` (see the README section on sprites)"
        )
    return _from_trained(torch.load(str(path), map_location="cpu", weights_only=True), name)


def _is_trained(ck) -> bool:
    return isinstance(ck, dict) and {"arch", "config"} <= set(ck) and ("state_dict" in ck or "G_ema" in ck)


def _from_trained(ck: dict, name: str) -> Generator:
    """A generator.pt / checkpoint.pt of `probe train gan` (its EMA weights) as a Generator."""
    from .nets import DCGAN_SITES, build_generator

    try:
        net = build_generator(ck["arch"], ck["config"], fused=False)
        net.load_state_dict(ck["state_dict"] if "state_dict" in ck else ck["G_ema"])
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise ModelError(
            f"model {name!r}: not a loadable `probe train gan` generator "
            f"({str(e).splitlines()[0][:200]}); retrain it or name a file.py:factory"
        ) from None
    if ck["arch"] == "stylegan":
        return StyleGANGenerator(net, name=name)
    return TorchGenerator(net, int(ck["config"]["z_dim"]), name=name, sites=DCGAN_SITES, conv_input=False)


@dataclass(frozen=True)
class ZooEntry:
    """A named model: its loader, a one-line description, and the defaults commands use on it."""

    load: Callable[[], Generator]
    description: str
    defaults: ModelDefaults = GENERIC


# Tuned values: faces drag radii and sites tuned on pairs of seed 0 and checked on held-out pairs of seed 1
# (docs/readme/50-editing.md); sprites: site b16 beat b8 and b32 in the sprite-centre protocol, ws rows 0-2 (the 4x4
# block) carry position (docs/readme/82-sprites-groundtruth.md). Radii are px at 512, as in the papers.
# The drag values were measured with the toolkit's variant of each method (lr 0.02; DragGAN: 1 px skip/stop,
# border padding; FreeDrag: averaged r = 1 template on resized features, see probe.edit.drag.FreeDrag), so they
# name that variant; the generic defaults are the official implementations'.
_DRAGGAN_VARIANT = {"lr": 0.02, "d_stop": 1.0, "skip": 1.0, "padding": "border", "motion": "paper", "units": "mean"}
_FREEDRAG_VARIANT = {
    "lr": 0.02,
    "r": 1,
    "d": 24,
    "template": "mean",
    "sampling": "resized",
    "substop": "before",
    "arrival": "frozen",
    "loss_points": "active",
    "search": "clip",
    "extra_steps": None,
    "mask_mean": "image",
    "units": "mean",
}
# faces drags keep the face: DragGAN optimises z plus a b3 feature offset (an extended latent), both methods add a
# locality term (weight 1 on mean |img - img0| farther than 8 px from the handle -> target segments); landmarks
# still move closer, with far less change outside (benchmarks/bench_drag.py quality, docs/readme/50-editing.md).
FACES_DEFAULTS = ModelDefaults(
    measures=("faces",),
    drag={
        "draggan": {"site": "b2", "r1": 48, "r2": 24, **_DRAGGAN_VARIANT, "extend": "b3", "local": 1.0},
        "freedrag": {"site": "b4", **_FREEDRAG_VARIANT, "local": 1.0},
    },
    align_faces=True,
    offset_site="b2",
    drag_eval="landmarks",
)
SPRITES_DEFAULTS = ModelDefaults(
    measures=("sprites",),
    drag={
        "draggan": {"site": "b16", "layers": 3, **_DRAGGAN_VARIANT},
        "freedrag": {"site": "b16", "layers": 3, **_FREEDRAG_VARIANT},
    },
    drag_eval="centres",
    centre=("sprite_x", "sprite_y"),
    # a training step of 2 RMS stds of w (2 x 0.1079): beats random directions on
    # the sprites ground truth in 3 of 3 seeds where the generic 3.0 (~28 stds)
    # loses (scripts/dplase_sweep.py --configs reduced, docs/readme/82-*)
    dplase={"step_size": 0.2158},
)

ZOO: dict[str, ZooEntry] = {
    "faces": ZooEntry(
        load_faces, "DCGAN 64x64 trained on DigiFace-1M (gan-face-generate 1.1.1, MIT); z in R^100", FACES_DEFAULTS
    ),
    "tiny-dcgan": ZooEntry(_tiny_dcgan, "untrained seeded DCGAN 32x32, z in R^16 (tests and examples)"),
    "tiny-stylegan": ZooEntry(_tiny_stylegan, "untrained seeded StyleGAN-lite 32x32, z,w in R^16, num_ws 12 (tests)"),
    "sprites": ZooEntry(
        _sprites,
        "StyleGAN-lite 64x64 trained on procedural sprites (probe train gan); z,w in R^64, num_ws 15",
        SPRITES_DEFAULTS,
    ),
}


def list_models() -> list[dict]:
    """One row per zoo model: name, description."""
    return [{"name": k, "description": e.description} for k, e in ZOO.items()]


def wrap(obj, name: str) -> Generator:
    """Adapt a torch module (z -> img, or NVlabs mapping/synthesis) or pass a Generator through."""
    if isinstance(obj, Generator):
        return obj
    if not isinstance(obj, nn.Module):
        raise ModelError(f"model {name!r}: expected a torch.nn.Module or a probe Generator, got {type(obj).__name__}")
    if hasattr(obj, "mapping") and hasattr(obj, "synthesis"):
        return StyleGANGenerator(obj, name=name)
    z_dim = getattr(obj, "z_dim", None) or getattr(obj, "nz", None)
    if z_dim is None:
        raise ModelError(
            f"model {name!r}: a z -> img module must have an int attribute `z_dim` "
            f"(set module.z_dim = <latent size> in your factory)"
        )
    return TorchGenerator(obj, int(z_dim), name=name)


def _from_file(spec: str) -> Generator:
    return wrap(call_factory(spec, "model", ModelError), Path(spec.rpartition(":")[0]).stem)


def _from_checkpoint(path: Path) -> Generator:
    if path.suffix == ".pkl":  # NVlabs network pickle, read as data (no code from the file runs)
        from .nvlabs import load_nvlabs

        return load_nvlabs(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path.name}: not a torch checkpoint archive (corrupted or truncated?)")
    if _is_torchscript(path):
        try:
            mod = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # noqa: BLE001
            reason = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "") or "no reason given"
            raise ModelError(
                f"{path.name}: TorchScript archive failed to load ({type(e).__name__}: "
                f"{reason[:200]}); re-export it with torch.jit.script(module).save(path)"
            ) from None
        if not (hasattr(mod, "z_dim") or hasattr(mod, "nz") or hasattr(mod, "mapping")):
            raise ModelError(
                f"{path.name}: TorchScript module has no `z_dim` attribute (torch.jit.trace drops it); "
                f"export with torch.jit.script on a module that sets self.z_dim"
            )
        return wrap(mod, path.stem)
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"{path.name}: refused or unreadable checkpoint ({type(e).__name__}); only weights-only "
            f"archives are read: {str(e).splitlines()[0][:200]}"
        ) from None
    if _is_trained(ck):
        return _from_trained(ck, path.stem if path.stem not in ("generator", "checkpoint") else path.parent.name)
    raise ModelError(
        f"{path.name} holds only weights (a state dict), not an architecture; name a factory "
        f"instead: path/to/file.py:factory that builds the network and loads {path.name}"
    )


MODEL_OPTIONS = ("truncation_psi", "noise_mode", "class_idx", "c")


def model_options(d: dict | None) -> dict:
    """The rendering options (truncation_psi, noise_mode, class_idx, c) present in a spec dump / manifest spec."""
    return {k: d[k] for k in MODEL_OPTIONS if d and d.get(k) is not None}


def load_model(
    name: str, *, truncation_psi: float = 1.0, noise_mode: str = "const", class_idx: int | None = None, c=None
) -> Generator:
    """Load a model by zoo name, `file.py:factory`, TorchScript path, an NVlabs network pickle (`net.pkl`,
    `net.pkl:G`), or a `probe train gan` generator.pt / checkpoint.pt (its EMA generator).

    truncation_psi (1 = none), noise_mode (const | random | none) and the class of a conditional network
    (class_idx, or a raw c of length c_dim) fix how it renders. Loading is cached, but every call returns its own
    Generator (`Generator.fresh`): hooks, options, requires_grad flags and devices set by one caller never reach
    another; the frozen weights are shared (one copy in memory). Train or modify weights on `model.clone()`.
    """
    key = (name, truncation_psi, noise_mode, class_idx, None if c is None else tuple(c))
    try:
        hash(key)
    except TypeError:
        raise ModelError(f"c: expected a list of numbers, got {c!r}") from None
    return _with_options(*key).fresh()


@lru_cache(maxsize=16)
def _with_options(name, truncation_psi, noise_mode, class_idx, c) -> Generator:
    """The cached prototype of a model with options; never handed out (load_model returns fresh copies)."""
    return _load(name).with_options(truncation_psi=truncation_psi, noise_mode=noise_mode, class_idx=class_idx, c=c)


@lru_cache(maxsize=8)
def _load(name: str) -> Generator:
    if name in ZOO:
        g = ZOO[name].load()
        g.defaults = ZOO[name].defaults
        return g
    if ".py:" in name:
        return _from_file(name)
    pkl, key = _split(name)
    if key and Path(pkl).suffix == ".pkl":  # net.pkl:KEY picks one network of an NVlabs pickle
        if not Path(pkl).is_file():
            raise ModelError(f"model checkpoint {pkl!r} does not exist")
        from .nvlabs import load_nvlabs

        return load_nvlabs(pkl, key[1:])
    p = Path(name)
    if p.suffix in (".pt", ".pth", ".pkl", ".ckpt", ".tar"):
        if not p.is_file():
            raise ModelError(f"model checkpoint {name!r} does not exist")
        return _from_checkpoint(p)
    raise ModelError(
        f"unknown model {name!r}; use a zoo name {list(ZOO)}, path/to/file.py:factory, "
        f"a TorchScript .pt file, or a generator.pt written by `probe train gan`"
    )


load_model.cache_clear = lambda: (_with_options.cache_clear(), _load.cache_clear())  # type: ignore[attr-defined]


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pkl", ".ckpt", ".tar")


def _split(name: str) -> tuple[str, str]:
    """name -> (file part, ":suffix" kept after it): "a.py:f" -> ("a.py", ":f"), "net.pkl:G" -> ("net.pkl", ":G")."""
    head, sep, tail = name.rpartition(":")
    if sep and (head.endswith(".py") or Path(head).suffix in CHECKPOINT_SUFFIXES):
        return head, sep + tail
    return name, ""


def _is_torchscript(path: Path) -> bool:
    """A torch zip archive with code in it (what load_model hands to torch.jit.load)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


def model_file(name: str) -> Path | None:
    """The file a model name loads from (the .py of file.py:factory, a checkpoint), None for zoo names."""
    if name in ZOO:
        return None
    path, _ = _split(name)
    p = Path(path)
    return p if ".py:" in name or p.suffix in CHECKPOINT_SUFFIXES else None


def model_kind(name: str) -> str:
    """How load_model would load `name`, without loading it: "zoo", "python" (file.py:factory, runs code),
    "torchscript" (runs code), "pickle" (restricted reader, data only), "weights" (weights-only torch.load)."""
    if name in ZOO:
        return "zoo"
    if ".py:" in name:
        return "python"
    p = model_file(name)
    if p is None:
        return "unknown"
    if p.suffix == ".pkl":
        return "pickle"
    return "torchscript" if p.is_file() and _is_torchscript(p) else "weights"


def resolve_model(name: str, base: str | Path) -> str:
    """`name` with a relative file path made absolute against `base` (zoo names unchanged)."""
    p = model_file(name)
    if p is None or p.is_absolute():
        return name
    return str(Path(os.path.normpath(Path(base).absolute() / p))) + _split(name)[1]


def model_file_sha256(name: str) -> str | None:
    """sha256 of the file a model loads from (None for zoo names or a missing file)."""
    p = model_file(name)
    if p is None or not p.is_file():
        return None
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
