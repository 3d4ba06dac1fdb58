"""Load an NVlabs network pickle (`ffhq.pkl`, `network-snapshot-*.pkl`) into our own StyleGAN2 / StyleGAN3 code.

The pickle is read as data (`nvlabs_pkl.read_network_pkl`: no code from the file runs); the architecture is chosen
from the stored `init_kwargs` and parameter names: StyleGAN3 keeps its synthesis settings at the top level
(`channel_base`, ...) and has `synthesis.input.*` tensors, StyleGAN2-ADA nests them in `synthesis_kwargs`.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .base import Generator, ModelError
from .nvlabs_pkl import NetworkData, read_network_pkl
from .stylegan import StyleGANGenerator

DEFAULT_KEY = "G_ema"


def architecture(net: NetworkData) -> str:
    """'stylegan3' or 'stylegan2' from the network's init_kwargs and state-dict names (ModelError otherwise)."""
    kw, keys = net.init_kwargs, net.state_dict.keys()
    if "channel_base" in kw or any(k.startswith("synthesis.input.") for k in keys):
        return "stylegan3"
    if "synthesis_kwargs" in kw or "synthesis.b4.const" in keys:
        return "stylegan2"
    raise ModelError(
        f"network {net.class_name!r} is neither a StyleGAN2-ADA nor a StyleGAN3 generator "
        f"(init_kwargs keys {sorted(kw)[:8]}); use the G_ema or G entry of a generator pickle"
    )


def build_network(net: NetworkData, where: str = "network") -> nn.Module:
    """Our generator module built from NVlabs init_kwargs, with the pickle's tensors loaded strictly."""
    if net.class_name != "Generator":
        raise ModelError(
            f"{where} is a {net.class_name}, not a Generator; name the generator entry "
            f"(G_ema, or G for the raw weights)"
        )
    res = net.init_kwargs.get("img_resolution")
    if not isinstance(res, int) or isinstance(res, bool):
        raise ModelError(
            f"{where}: img_resolution {res!r} is not one integer; probe needs square images of a single resolution"
        )
    arch = architecture(net)
    if arch == "stylegan3":
        from . import stylegan3 as impl
    else:
        from . import stylegan2 as impl
    try:
        module = impl.Generator(**net.init_kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise ModelError(
            f"{where}: cannot build a {arch} generator from its init_kwargs ({str(e).splitlines()[0][:200]})"
        ) from None
    own = module.state_dict()
    missing = [k for k in own if k not in net.state_dict]
    unexpected = [k for k in net.state_dict if k not in own]
    if missing or unexpected:
        raise ModelError(
            f"{where}: parameters do not match a {arch} generator with these init_kwargs "
            f"(missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    bad = [k for k, t in own.items() if tuple(t.shape) != tuple(net.state_dict[k].shape)]
    if bad:
        k = bad[0]
        raise ModelError(
            f"{where}: parameter {k} has shape {list(net.state_dict[k].shape)}, the init_kwargs "
            f"give {list(own[k].shape)}"
        )
    module.load_state_dict(net.state_dict, strict=True)
    return module.eval().requires_grad_(False)


def build_from_state(
    state_dict: dict, init_kwargs: dict, class_path: str = "training.networks_stylegan2.Generator", where="network"
) -> nn.Module:
    """Our generator module from NVlabs tensors kept outside a pickle (a state_dict and the init_kwargs, as
    tests/data/nvlabs stores them), checked and loaded strictly like a pickle's network."""
    module_name, _, class_name = class_path.rpartition(".")
    return build_network(NetworkData(class_name, module_name, None, "", [], init_kwargs, state_dict), where)


def load_nvlabs(path: str | Path, key: str = DEFAULT_KEY, *, name: str | None = None, **options) -> Generator:
    """A probe Generator from an NVlabs network pickle entry (G_ema by default; `options` such as truncation_psi
    and noise_mode go to StyleGANGenerator). `generator.info` records the pickle's sha256, key, class,
    architecture and init_kwargs."""
    p = Path(path)
    pk = read_network_pkl(p)
    if key not in pk.networks:
        raise ModelError(
            f"{p.name}:{key}: the pickle has no network {key!r}; networks present: "
            f"{sorted(pk.networks)} (write {p.name}:<key>)"
        )
    net = pk.networks[key]
    module = build_network(net, f"{p.name}:{key}")
    arch = architecture(net)
    gen = StyleGANGenerator(module, name=name or (p.stem if key == DEFAULT_KEY else f"{p.stem}:{key}"), **options)
    gen.info = {
        "pickle": p.name,
        "pickle_sha256": pk.sha256,
        "pickle_key": key,
        "nvlabs_class": f"{net.module_name}.{net.class_name}",
        "architecture": arch,
        "init_kwargs": net.init_kwargs,
    }
    return gen


def reference_diffs(directory: str | Path, stem: str) -> dict[str, float]:
    """Max |ours - NVlabs| for a reference network stored as tensors (`<stem>_info.json` with init_kwargs,
    `<stem>_state.npz`, `<stem>_ref.npz` with z, c, ws_psi1/ws_psi07, img_psi1/img_psi07 at noise_mode const),
    as in tests/data/nvlabs: {"ws_psi1": ..., "ws_psi07": ..., "img_psi1": ..., "img_psi07": ...}."""
    import json

    import numpy as np
    import torch

    d = Path(directory)
    info = json.loads((d / f"{stem}_info.json").read_text())
    with np.load(d / f"{stem}_state.npz", allow_pickle=False) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    with np.load(d / f"{stem}_ref.npz", allow_pickle=False) as z:
        ref = {k: torch.from_numpy(z[k]) for k in z.files}
    g = build_from_state(state, info["init_kwargs"], info["class"], stem)
    out = {}
    with torch.no_grad():
        for psi, tag in ((1, "psi1"), (0.7, "psi07")):
            out[f"ws_{tag}"] = float((g.mapping(ref["z"], ref["c"], truncation_psi=psi) - ref[f"ws_{tag}"]).abs().max())
            img = g.synthesis(ref[f"ws_{tag}"], noise_mode="const")
            out[f"img_{tag}"] = float((img - ref[f"img_{tag}"]).abs().max())
    return out


__all__ = ["load_nvlabs", "build_network", "build_from_state", "architecture", "reference_diffs", "DEFAULT_KEY"]
