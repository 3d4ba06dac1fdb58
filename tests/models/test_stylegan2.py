"""Our StyleGAN2-ADA generator against NVlabs' own outputs (tests/data/nvlabs/sg2_32_*), plus the parts the
fixture does not exercise (orig / resnet architectures, conv_clamp, fp16 blocks, noise modes, class embedding)."""

import copy
import math
from pathlib import Path

import pytest
import torch

from probe.models.nvlabs import reference_diffs
from probe.models.nvlabs_ops import conv2d_resample, setup_filter, upfirdn2d, upsample2d
from probe.models.stylegan import StyleGANGenerator
from probe.models.stylegan2 import Generator, MappingNetwork
from tests.helpers import nvlabs_reference

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"


@pytest.fixture(scope="session")
def sg2():
    return nvlabs_reference("sg2_32")


def _build(info, state, **synthesis_changes):
    kw = copy.deepcopy(info["init_kwargs"])
    kw["synthesis_kwargs"].update(synthesis_changes)
    g = Generator(**kw).eval()
    g.load_state_dict({k: v for k, v in state.items() if k in g.state_dict()}, strict=False)
    return g


@pytest.fixture(scope="session")
def G(sg2):
    info, state, _ = sg2
    g = Generator(**info["init_kwargs"]).eval()
    g.load_state_dict(state, strict=True)
    return g


def test_state_dict_names_and_shapes_are_nvlabs(sg2):
    info, _, _ = sg2
    g = Generator(**info["init_kwargs"])
    assert {k: list(v.shape) for k, v in g.state_dict().items()} == info["state_dict"]
    assert list(g.state_dict()) == list(info["state_dict"])  # same order as NVlabs too
    assert (g.z_dim, g.w_dim, g.c_dim, g.num_ws, g.img_resolution) == (64, 64, 0, 8, 32)
    blocks = [g.synthesis.b4, g.synthesis.b8, g.synthesis.b16, g.synthesis.b32]
    assert [(b.num_conv, b.num_torgb, b.resolution, b.in_channels, b.out_channels) for b in blocks] == [
        (1, 1, 4, 0, 64),
        (2, 1, 8, 64, 64),
        (2, 1, 16, 64, 64),
        (2, 1, 32, 64, 64),
    ]


@pytest.mark.parametrize("psi,tag", [(1, "psi1"), (0.7, "psi07")])
def test_mapping_matches_nvlabs(G, sg2, psi, tag):
    ref = sg2[2]
    with torch.no_grad():
        ws = G.mapping(ref["z"], ref["c"], truncation_psi=psi)
    assert ws.shape == (4, 8, 64)
    assert (ws - ref[f"ws_{tag}"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("tag", ["psi1", "psi07"])
def test_synthesis_matches_nvlabs(G, sg2, tag, fused):
    ref = sg2[2]
    with torch.no_grad():
        img = G.synthesis(ref[f"ws_{tag}"], noise_mode="const", fused_modconv=fused)
    assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
    assert (img - ref[f"img_{tag}"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("stem", ["sg2_32", pytest.param("sg3_t_32", marks=pytest.mark.slow)])
def test_reference_diffs(stem):
    d = reference_diffs(DATA, stem)
    assert sorted(d) == ["img_psi07", "img_psi1", "ws_psi07", "ws_psi1"]
    assert max(d["ws_psi1"], d["ws_psi07"]) <= 1e-5 and max(d["img_psi1"], d["img_psi07"]) <= 1e-4


def test_generator_forward_matches_nvlabs_end_to_end(G, sg2):
    ref = sg2[2]
    with torch.no_grad():
        img = G(ref["z"], ref["c"], truncation_psi=0.7, noise_mode="const")
    assert (img - ref["img_psi07"]).abs().max().item() <= 1e-4


def test_truncation_cutoff_truncates_only_the_first_ws(G, sg2):
    ref = sg2[2]
    with torch.no_grad():
        ws = G.mapping(ref["z"], ref["c"], truncation_psi=0.7, truncation_cutoff=3)
    assert (ws[:, :3] - ref["ws_psi07"][:, :3]).abs().max().item() <= 1e-5
    assert (ws[:, 3:] - ref["ws_psi1"][:, 3:]).abs().max().item() <= 1e-5


def test_w_avg_tracks_the_batch_mean_in_training_only(sg2):
    info, state, ref = sg2
    m = MappingNetwork(z_dim=64, c_dim=0, w_dim=64, num_ws=8, num_layers=2)
    m.load_state_dict({k[len("mapping.") :]: v for k, v in state.items() if k.startswith("mapping.")})
    before = m.w_avg.clone()
    with torch.no_grad():
        m.eval()(ref["z"])
        assert torch.equal(m.w_avg, before)
        w = m.train()(ref["z"])[:, 0]
    assert torch.allclose(m.w_avg, w.mean(0).lerp(before, 0.995), atol=1e-7)
    assert not torch.equal(m.w_avg, before)


def test_noise_modes(G, sg2):
    ws = sg2[2]["ws_psi1"]
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        none = G.synthesis(ws, noise_mode="none")
        torch.manual_seed(5)
        r1 = G.synthesis(ws, noise_mode="random")
        torch.manual_seed(5)
        r2 = G.synthesis(ws, noise_mode="random")
    assert torch.equal(r1, r2)
    assert (const - none).abs().max().item() > 1e-3 and (const - r1).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match=r"noise_mode must be one of \['const', 'random', 'none'\], got 'fixed'"):
        G.synthesis(ws, noise_mode="fixed")


def test_fp16_blocks_are_computed_in_float32(sg2):
    info, state, ref = sg2
    g = _build(info, state, num_fp16_res=2)
    assert [b.use_fp16 for b in (g.synthesis.b4, g.synthesis.b8, g.synthesis.b16, g.synthesis.b32)] == [
        False,
        False,
        True,
        True,
    ]
    with torch.no_grad():
        img = g.synthesis(ref["ws_psi1"], noise_mode="const")
    assert img.dtype == torch.float32
    assert (img - ref["img_psi1"]).abs().max().item() <= 1e-4


def test_conv_clamp_bounds_every_layer_output(sg2):
    info, state, ref = sg2
    g = _build(info, state, conv_clamp=0.01, architecture="orig")
    with torch.no_grad():
        img = g.synthesis(ref["ws_psi1"], noise_mode="const")
    assert img.abs().max().item() == pytest.approx(0.01, abs=1e-9)  # the toRGB output is clamped too


def test_orig_equals_skip_when_early_torgb_outputs_are_zero(sg2):
    info, state, ref = sg2
    zeroed = dict(state)
    for r in (4, 8, 16):
        for n in ("weight", "bias"):
            zeroed[f"synthesis.b{r}.torgb.{n}"] = torch.zeros_like(state[f"synthesis.b{r}.torgb.{n}"])
    skip = _build(info, zeroed)
    orig = _build(info, state, architecture="orig")
    assert sorted(set(skip.state_dict()) - set(orig.state_dict())) == [
        f"synthesis.b{r}.torgb.{n}" for r in (16, 4, 8) for n in ("affine.bias", "affine.weight", "bias", "weight")
    ]
    assert orig.num_ws == skip.num_ws == 8
    with torch.no_grad():
        a = skip.synthesis(ref["ws_psi1"], noise_mode="const")
        b = orig.synthesis(ref["ws_psi1"], noise_mode="const")
    assert torch.equal(a, b)


def test_resnet_architecture(sg2):
    info, state, ref = sg2
    g = _build(info, state, architecture="resnet")
    extra = sorted(set(g.state_dict()) - set(state))
    assert extra == [f"synthesis.b{r}.skip.{n}" for r in (16, 32, 8) for n in ("resample_filter", "weight")]
    assert "synthesis.b8.torgb.weight" not in g.state_dict()
    torch.manual_seed(0)
    for r in (8, 16, 32):
        getattr(g.synthesis, f"b{r}").skip.weight.data.normal_()
    x = torch.randn(2, 64, 4, 4)
    skip = g.synthesis.b8.skip
    with torch.no_grad():
        got = skip(x, gain=math.sqrt(0.5))
        # a 1x1 conv commutes with FIR upsampling: conv after upsample2d gives the same result
        want = torch.einsum(
            "oi,nihw->nohw", skip.weight[:, :, 0, 0] * skip.weight_gain, upsample2d(x, skip.resample_filter)
        ) * math.sqrt(0.5)
        assert (got - want).abs().max().item() <= 1e-5
        a = g.synthesis(ref["ws_psi1"], noise_mode="const")
        g.synthesis.b16.skip.weight.data.mul_(2)
        b = g.synthesis(ref["ws_psi1"], noise_mode="const")
    assert a.shape == (4, 3, 32, 32) and torch.isfinite(a).all()
    assert (a - b).abs().max().item() > 1e-3


def test_class_embedding_and_lr_multiplier():
    torch.manual_seed(1)
    m = MappingNetwork(z_dim=8, c_dim=3, w_dim=6, num_ws=2, num_layers=2, lr_multiplier=0.5)
    assert {k: list(v.shape) for k, v in m.state_dict().items()} == {
        "embed.weight": [6, 3],
        "embed.bias": [6],
        "fc0.weight": [6, 14],
        "fc0.bias": [6],
        "fc1.weight": [6, 6],
        "fc1.bias": [6],
        "w_avg": [6],
    }
    for p in m.parameters():
        p.data.normal_()
    z, c = torch.randn(5, 8), torch.eye(3)[[0, 1, 2, 0, 1]]

    def rms(v):
        return v / (v.square().mean(1, keepdim=True) + 1e-8).sqrt()

    e = c @ (m.embed.weight / math.sqrt(3)).T + m.embed.bias
    h = torch.cat([rms(z), rms(e)], 1)
    for fc in (m.fc0, m.fc1):
        h = torch.nn.functional.leaky_relu(
            h @ (fc.weight * 0.5 / math.sqrt(fc.in_features)).T + fc.bias * 0.5, 0.2
        ) * math.sqrt(2)
    with torch.no_grad():
        ws = m(z, c)
    assert ws.shape == (5, 2, 6)
    assert (ws[:, 1] - h).abs().max().item() <= 1e-5 and torch.equal(ws[:, 0], ws[:, 1])
    with pytest.raises(ValueError, match=r"c must have shape \[N, 3\]"):
        m(z, None)


def test_fir_ops():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.sum().item() == pytest.approx(1.0)
    assert torch.allclose(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    ones = torch.ones(1, 2, 6, 6)
    up = upsample2d(ones, f)
    assert up.shape == (1, 2, 12, 12)
    assert torch.allclose(up[:, :, 2:-2, 2:-2], torch.ones(1, 2, 8, 8), atol=1e-6)  # gain up**2 keeps DC
    x = torch.randn(1, 1, 5, 5)
    assert torch.equal(upfirdn2d(x, None), x)
    assert torch.equal(upfirdn2d(x, None, padding=[-1, -1, -2, 0]), x[:, :, 2:, 1:-1])
    assert torch.equal(upfirdn2d(x, None, up=2)[:, :, ::2, ::2], x)
    w = torch.randn(3, 1, 3, 3)
    assert torch.allclose(conv2d_resample(x, w, padding=1), torch.nn.functional.conv2d(x, w, padding=1))


def test_adapter_wraps_our_generator(G, sg2):
    ref = sg2[2]
    g = StyleGANGenerator(G, name="sg2-32")
    assert g.spaces == ("z", "w", "ws") and (g.z_dim, g.w_dim, g.num_ws, g.resolution) == (64, 64, 8, 32)
    assert g.sites == ("b4", "b8", "b16", "b32")
    with torch.no_grad():
        img = g.synthesize(ref["ws_psi1"], "ws")
    assert (img - ref["img_psi1"].clamp(-1, 1)).abs().max().item() <= 1e-4
