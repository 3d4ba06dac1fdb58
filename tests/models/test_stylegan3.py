"""Our StyleGAN3 against a random-init config-T network written by NVlabs' own code (tests/data/nvlabs/sg3_t_32_*)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from probe.models import ModelError, StyleGANGenerator
from probe.models.stylegan3 import Generator

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"
T_LAYERS = [
    "L0_36_64",
    "L1_36_64",
    "L2_36_64",
    "L3_36_64",
    "L4_36_64",
    "L5_52_64",
    "L6_52_64",
    "L7_52_64",
    "L8_52_64",
    "L9_52_64",
    "L10_52_64",
    "L11_52_64",
    "L12_52_64",
    "L13_32_64",
    "L14_32_3",
]
R_KWARGS = dict(
    z_dim=32,
    c_dim=0,
    w_dim=32,
    img_resolution=32,
    img_channels=3,
    channel_base=1024,
    channel_max=32,
    mapping_kwargs={"num_layers": 2},
    conv_kernel=1,
    use_radial_filters=True,
    magnitude_ema_beta=0.999,
)


@pytest.fixture(scope="module")
def info():
    return json.loads((DATA / "sg3_t_32_info.json").read_text())


@pytest.fixture(scope="module")
def state():
    with np.load(DATA / "sg3_t_32_state.npz") as f:
        return {k: torch.from_numpy(f[k]) for k in f.files}


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "sg3_t_32_ref.npz") as f:
        return {k: torch.from_numpy(f[k]) for k in f.files}


@pytest.fixture(scope="module")
def g_t(info, state):
    g = Generator(**info["init_kwargs"]).eval()
    g.load_state_dict(state, strict=True)
    return g


def _randomize(g: Generator, seed: int) -> Generator:
    """Seeded noise on every parameter (a fresh network's mapping weights are zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    return g.eval()


@pytest.fixture(scope="module")
def g_r():
    return _randomize(Generator(**R_KWARGS), 3)


def test_state_dict_names_and_shapes_equal_nvlabs(info):
    g = Generator(**info["init_kwargs"])
    assert {k: list(v.shape) for k, v in g.state_dict().items()} == info["state_dict"]
    assert (g.z_dim, g.w_dim, g.num_ws, g.c_dim, g.img_resolution) == (64, 64, 16, 0, 32)
    assert g.synthesis.layer_names == T_LAYERS


def test_designed_filters_equal_the_stored_ones(info, state):
    own = Generator(**info["init_kwargs"]).state_dict()  # the fixture's FIR filters are NVlabs' own, unperturbed
    keys = [k for k in state if k.endswith(("up_filter", "down_filter"))]
    assert len(keys) == 28
    for k in keys:
        assert torch.equal(own[k], state[k]), k


@pytest.mark.parametrize("psi", ["psi1", "psi07"])
def test_mapping_matches_nvlabs(g_t, ref, psi):
    with torch.no_grad():
        ws = g_t.mapping(ref["z"], ref["c"], truncation_psi={"psi1": 1, "psi07": 0.7}[psi])
    assert ws.shape == (4, 16, 64)
    assert (ws - ref[f"ws_{psi}"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("psi", ["psi1", "psi07"])
def test_synthesis_matches_nvlabs(g_t, ref, psi):
    with torch.no_grad():
        img = g_t.synthesis(ref[f"ws_{psi}"], noise_mode="const")
    assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
    assert (img - ref[f"img_{psi}"]).abs().max().item() <= 1e-4


def test_generator_forward_is_mapping_then_synthesis_and_deterministic(g_t, ref):
    with torch.no_grad():
        a = g_t(ref["z"], ref["c"], truncation_psi=0.7)
        b = g_t(ref["z"], ref["c"], truncation_psi=0.7)
    assert torch.equal(a, b)
    assert (a - ref["img_psi07"]).abs().max().item() <= 1e-4


def test_truncation_cutoff_leaves_later_rows_untruncated(g_t, ref):
    with torch.no_grad():
        ws = g_t.mapping(ref["z"], ref["c"], truncation_psi=0.7, truncation_cutoff=8)
    assert torch.allclose(ws[:, :8], ref["ws_psi07"][:, :8], rtol=0, atol=1e-5)
    assert torch.allclose(ws[:, 8:], ref["ws_psi1"][:, 8:], rtol=0, atol=1e-5)


def test_magnitude_ema_divides_each_layer_input(g_t, ref):
    layer = g_t.synthesis.L3_36_64
    old = layer.magnitude_ema.clone()
    try:
        with torch.no_grad():
            x = torch.randn(2, 64, 36, 36, generator=torch.Generator().manual_seed(1))
            w = ref["ws_psi1"][:2, 4]
            a = layer(x, w)
            layer.magnitude_ema.mul_(4.0)
            b = layer(2 * x, w)
    finally:
        layer.magnitude_ema.copy_(old)
    assert (a - b).abs().max().item() <= 1e-5


def test_config_r_loads_its_own_state_and_renders(g_r):
    again = Generator(**R_KWARGS)
    again.load_state_dict(g_r.state_dict(), strict=True)
    radial = [
        n
        for n in again.synthesis.layer_names
        if getattr(again.synthesis, n).down_filter is not None and getattr(again.synthesis, n).down_filter.ndim == 2
    ]
    assert radial == [n.replace("_64", "_32") for n in T_LAYERS[:12]]  # L12, L13 critical, L14 ToRGB
    assert again.synthesis.L0_36_32.weight.shape == (32, 32, 1, 1)  # conv_kernel 1
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = again(z, None, truncation_psi=0.5)
        img2 = again(z, None, truncation_psi=0.5)
        own = g_r(z, None, truncation_psi=0.5)
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all() and img.std() > 1e-3
    assert torch.equal(img, img2) and torch.equal(img, own)


def test_conditional_mapping_needs_c():
    g = _randomize(
        Generator(z_dim=8, c_dim=3, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=8), 4
    )
    assert list(g.mapping.embed.weight.shape) == [8, 3] and list(g.mapping.fc0.weight.shape) == [8, 16]
    z = torch.zeros(2, 8)
    with pytest.raises(ModelError) as e:
        g.mapping(z, None)
    assert str(e.value) == "c has shape None; this conditional StyleGAN3 expects [2, 3]"
    c = torch.eye(3)[:2]
    with torch.no_grad():
        assert not torch.equal(g.mapping(z, c)[0], g.mapping(z, c)[1])


def test_bad_inputs_name_the_field(g_t):
    with pytest.raises(ModelError) as e:
        g_t.synthesis(torch.zeros(2, 14, 64))
    assert str(e.value) == "ws has shape [2, 14, 64]; StyleGAN3 expects [N, 16, 64]"
    with pytest.raises(ModelError) as e:
        g_t.mapping(torch.zeros(2, 32), None)
    assert str(e.value) == "z has shape [2, 32]; StyleGAN3 expects [N, 64]"
    with pytest.raises(ModelError) as e:
        Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs={"layers": 2})
    assert str(e.value) == (
        "unknown StyleGAN3 mapping_kwargs ['layers']; known: "
        "['num_layers', 'lr_multiplier', 'w_avg_beta', 'freeze_layers', 'freeze_embed']"
    )
    with pytest.raises(ModelError, match=r"^unknown StyleGAN3 init kwargs \['conv_kernal'\]; known: z_dim, "):
        Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, conv_kernal=1)


def test_adapter_wraps_it(g_t, ref):
    g = StyleGANGenerator(g_t, name="sg3-t")
    assert g.spaces == ("z", "w", "ws")
    assert (g.z_dim, g.w_dim, g.num_ws, g.resolution) == (64, 64, 16, 32)
    assert g.sites == tuple(["input"] + T_LAYERS)
    with torch.no_grad():
        img = g.synthesize(ref["ws_psi1"], "ws")
    assert (img - ref["img_psi1"]).abs().max().item() <= 1e-4


def test_nvlabs_loader_dispatches_here(info, state, ref):
    from probe.models import stylegan3
    from probe.models.nvlabs import architecture, build_network
    from probe.models.nvlabs_pkl import NetworkData

    net = NetworkData(
        class_name="Generator",
        module_name="training.networks_stylegan3",
        version=None,
        module_src_sha256="",
        init_args=[],
        init_kwargs=info["init_kwargs"],
        state_dict=state,
    )
    assert architecture(net) == "stylegan3"
    g = build_network(net, "sg3_t_32")
    assert type(g) is stylegan3.Generator
    with torch.no_grad():
        img = g.synthesis(g.mapping(ref["z"], ref["c"], truncation_psi=0.7))
    assert (img - ref["img_psi07"]).abs().max().item() <= 1e-4
    net.init_kwargs = {**info["init_kwargs"], "conv_kernel": 1}
    with pytest.raises(ModelError) as e:
        build_network(net, "sg3_t_32")
    assert str(e.value) == (
        "sg3_t_32: parameter synthesis.L0_36_64.weight has shape [64, 64, 3, 3], the init_kwargs give [64, 64, 1, 1]"
    )


def _upfirdn2d_direct(x, f, up, down, padding, flip_filter, gain):
    """The textbook formulation: insert up - 1 zeros, pad (negative crops), dense 2-D conv, keep every down-th."""
    (upx, upy), (downx, downy) = [(v, v) if isinstance(v, int) else v for v in (up, down)]
    px0, px1, py0, py1 = [padding] * 4 if isinstance(padding, int) else padding
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * upy, w * upx, dtype=x.dtype)
    z[:, :, ::upy, ::upx] = x
    z = torch.nn.functional.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0) : z.shape[2] - max(-py1, 0), max(-px0, 0) : z.shape[3] - max(-px1, 0)]
    f2 = (torch.outer(f, f) if f.ndim == 1 else f) * gain
    f2 = f2 if flip_filter else f2.flip([0, 1])
    return torch.nn.functional.conv2d(z, f2[None, None].repeat(c, 1, 1, 1), groups=c)[:, :, ::downy, ::downx]


CASES = [  # up, down, padding [x0, x1, y0, y1], taps, 2-D filter
    (1, 1, 0, 1, False),
    (1, 1, [3, 2, 1, 4], 4, True),
    (2, 1, [9, 8, 9, 8], 12, False),
    (4, 1, [-6, -9, -6, -9], 24, False),
    (2, 1, [-11, -12, -11, -12], 12, False),
    (1, 2, 0, 12, False),
    (1, 2, [2, 1, 1, 2], 12, True),
    ((2, 1), (1, 2), [-2, -1, 5, -3], 7, False),
    (2, 2, [4, 3, 4, 3], 4, True),
    (3, 1, [12, 0, 0, 12], 5, False),
    (1, 3, [1, 1, 1, 1], 2, False),
    (2, 1, [2, 1, 2, 1], 4, True),
]


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("gain", [1, 4])
@pytest.mark.parametrize("up,down,padding,taps,two_d", CASES)
def test_separable_strided_upfirdn2d_equals_the_direct_formulation(up, down, padding, taps, two_d, flip, gain):
    from probe.models.nvlabs_ops import upfirdn2d

    g = torch.Generator().manual_seed(taps * 7 + int(two_d))
    x = torch.randn(2, 3, 25, 27, generator=g, dtype=torch.float64)
    f = torch.randn(*([taps, taps] if two_d else [taps]), generator=g, dtype=torch.float64)
    want = _upfirdn2d_direct(x, f, up, down, padding, flip, gain)
    got = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-6 * max(1.0, want.abs().max().item())
    got32 = upfirdn2d(x.float(), f.float(), up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    assert got32.dtype == torch.float32 and (got32.double() - want).abs().max().item() <= 1e-4


def test_filtered_lrelu_over_channel_groups_equals_one_pass(g_t, monkeypatch):
    from probe.models import stylegan3

    layer = g_t.synthesis.L4_36_64  # up 2, 12 + 12 taps; L5 is the up-4 layer
    x = torch.randn(3, 64, 38, 38, generator=torch.Generator().manual_seed(5)) * 150
    b = torch.randn(64, generator=torch.Generator().manual_seed(6))

    def run():
        return stylegan3.filtered_lrelu(
            x,
            layer.up_filter,
            layer.down_filter,
            b,
            up=layer.up_factor,
            down=layer.down_factor,
            padding=layer.padding,
            gain=math.sqrt(2),
            slope=0.2,
            clamp=256,
        )

    whole = run()
    monkeypatch.setattr(stylegan3, "_CHUNK_BYTES", 1)  # one channel per group
    grouped = run()
    assert grouped.shape == whole.shape and not torch.equal(grouped, torch.zeros_like(grouped))
    assert (whole - grouped).abs().max().item() <= 1e-6 * whole.abs().max().item()
    fu, fd = layer.up_filter.double(), layer.down_filter.double()
    y = _upfirdn2d_direct(x.double() + b.double().view(1, -1, 1, 1), fu, 2, 1, list(layer.padding), False, 4)
    y = torch.nn.functional.leaky_relu(y, 0.2) * math.sqrt(2)
    assert y.abs().max().item() > 300  # the clamp is exercised
    want = _upfirdn2d_direct(y.clamp(-256, 256), fd, 1, 2, 0, False, 1)
    assert whole.shape == (3, 64, 36, 36)
    assert (whole.double() - want).abs().max().item() <= 1e-4


def test_demodulation_equals_the_norm_of_the_modulated_weight():
    from probe.models.nvlabs_ops import modulated_conv2d

    g = torch.Generator().manual_seed(8)
    x, weight, styles = (
        torch.randn(2, 5, 9, 9, generator=g),
        torch.randn(4, 5, 3, 3, generator=g),
        torch.randn(2, 5, generator=g),
    )
    w = weight[None] * styles[:, None, :, None, None]
    w = w / w.square().sum(dim=[2, 3, 4], keepdim=True).add(1e-8).sqrt()
    want = torch.cat([torch.nn.functional.conv2d(x[i : i + 1], w[i], padding=1) for i in range(2)])
    for fused in (True, False):
        got = modulated_conv2d(x, weight, styles, padding=1, fused_modconv=fused)
        assert (got - want).abs().max().item() <= 1e-5
