"""The StyleGAN adapter on NVlabs-shaped networks: sites that edit, output checks, rendering options."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from probe.models import ModelError, StyleGANGenerator, load_model, wrap

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"


def sg2_net(c_dim: int = 0, res: int = 32, seed: int = 0) -> nn.Module:
    """A seeded random-init StyleGAN2 (our NVlabs-compatible module); noise strengths raised from NVlabs' 0."""
    from probe.models.stylegan import seeded_init_
    from probe.models.stylegan2 import Generator

    net = seeded_init_(
        Generator(
            z_dim=16,
            c_dim=c_dim,
            w_dim=16,
            img_resolution=res,
            img_channels=3,
            mapping_kwargs={"num_layers": 2},
            synthesis_kwargs={"channel_base": 256, "channel_max": 32},
        ),
        seed,
    )
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.endswith("noise_strength"):
                p.fill_(0.5)
    return net


def sg3_net() -> nn.Module:
    """The NVlabs StyleGAN3-T fixture network (32 px, num_ws 16) in our implementation."""
    from probe.models.stylegan3 import Generator

    info = json.loads((DATA / "sg3_t_32_info.json").read_text())
    net = Generator(**info["init_kwargs"])
    with np.load(DATA / "sg3_t_32_state.npz", allow_pickle=False) as st:
        net.load_state_dict({k: torch.from_numpy(st[k]) for k in st.files})
    return net


@pytest.fixture(scope="module")
def sg2():
    return StyleGANGenerator(sg2_net(), name="sg2")


@pytest.fixture(scope="module")
def sg3():
    return StyleGANGenerator(sg3_net(), name="sg3")


@pytest.fixture(scope="module")
def nets_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("nets") / "nets.py"
    p.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_adapter import sg2_net

        def cond():
            return sg2_net(c_dim=10)

        def plain():
            return sg2_net()
    """)
    )
    return p


# ---- sites ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["tiny-stylegan", "sg2", "sg3"])
def test_every_site_edit_changes_the_image(which, sg2, sg3):
    g = {"tiny-stylegan": load_model("tiny-stylegan"), "sg2": sg2, "sg3": sg3}[which]
    ws = g.to_space(g.sample(1, 3), "z", "ws")
    with torch.no_grad():
        base = g.synthesize(ws, "ws")
    sites = g.sites if which != "sg3" else g.sites[:2] + g.sites[-2:]  # (StyleGAN3 layers are slow on CPU)
    for site in sites:

        def shift(x):
            x = x.clone()
            x[:, 0] += 5
            return x

        with torch.no_grad(), g.edit(site, shift):
            img = g.synthesize(ws, "ws")
        assert (img - base).abs().max().item() > 1e-3, site


def test_block_site_reads_the_features_its_torgb_reads(sg2):
    g = sg2
    blk = g.module.synthesis.b32
    assert g.site_modules["b32"] is blk.conv1 and g.site_modules["b4"] is g.module.synthesis.b4.conv1
    out = {}
    h = blk.register_forward_hook(lambda _m, _i, o: out.__setitem__("x", o[0]))
    try:
        feats = g.features(g.sample(2, 0), "z", ["b32"])["b32"]
    finally:
        h.remove()
    assert torch.equal(feats, out["x"])  # same tensor as the block's feature output


def test_ws_blocks_tile_the_ws_rows(sg2, sg3):
    assert load_model("tiny-stylegan").ws_blocks() == [("b4", 0, 3), ("b8", 3, 6), ("b16", 6, 9), ("b32", 9, 12)]
    assert sg2.num_ws == 8 and sg2.ws_blocks() == [("b4", 0, 1), ("b8", 1, 3), ("b16", 3, 5), ("b32", 5, 8)]
    blocks = sg3.ws_blocks()
    assert blocks[0] == ("input", 0, 1) and blocks[1][1:] == (1, 2) and blocks[-1][1:] == (15, 16)
    assert [b for b, _, _ in blocks] == list(sg3.sites) and len(blocks) == 16
    aff = {a["name"]: a for a in sg2.style_affines()}
    assert aff["b8.torgb.affine"]["ws"] == 3 and aff["b16.conv0.affine"]["ws"] == 3
    assert aff["b32.torgb.affine"]["ws"] == 7 and aff["b32.torgb.affine"]["torgb"]


# ---- output checks --------------------------------------------------------------------------------
class _Unit(nn.Module):  # z -> img in [0, 1]
    z_dim = 8

    def __init__(self, h: int = 16, w: int = 16):
        super().__init__()
        self.fc, self.act = nn.Linear(8, 3 * h * w), nn.LeakyReLU(0.2)
        self.h, self.w = h, w

    def forward(self, z):
        return torch.sigmoid(self.act(self.fc(z))).reshape(-1, 3, self.h, self.w)


class _Signed(_Unit):
    def forward(self, z):
        return super().forward(z) * 2 - 1


def test_images_in_0_1_are_refused_on_the_first_render():
    torch.manual_seed(0)
    g = wrap(_Unit(), "unit")
    calls = []

    def fn(x):
        calls.append(len(x))
        return x

    with pytest.raises(ModelError) as e, g.edit(g.sites[0], fn):
        g.synthesize(g.sample(2, 0))
    assert str(e.value) == (
        "model 'unit' outputs images in [0, 1]; probe expects [-1, 1]: return img * 2 - 1 from your factory"
    )
    assert calls == []  # the check's own render passes the edit hook by
    ok = wrap(_Signed(), "signed")
    assert ok.synthesize(ok.sample(2, 0)).shape == (2, 3, 16, 16)


def test_real_stylegan_outputs_pass_the_range_check(sg2, sg3):
    for g in (load_model("tiny-stylegan"), sg2, sg3):
        g.check_range()
        assert g._range_checked


def test_non_square_models_are_refused_at_load():
    with pytest.raises(ModelError) as e:
        wrap(_Signed(h=48, w=32), "wide")
    assert str(e.value) == (
        "model 'wide' renders 48 x 32 (H x W) images; probe needs square images: crop or pad "
        "them to square in your factory"
    )

    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = sg2_net()
            self.mapping, self.z_dim, self.w_dim, self.num_ws = self.net.mapping, 16, 16, self.net.num_ws
            self.synthesis = _Crop(self.net.synthesis)

    with pytest.raises(ModelError) as e:
        StyleGANGenerator(Wide(), name="wide2")
    assert str(e.value).startswith("model 'wide2' renders 32 x 24 (H x W) images; probe needs square images")


class _Crop(nn.Module):
    def __init__(self, synthesis):
        super().__init__()
        self.inner = synthesis

    def forward(self, ws, noise_mode="const"):
        return self.inner(ws, noise_mode=noise_mode)[..., :24]


# ---- options --------------------------------------------------------------------------------------
def test_conditional_model_needs_a_class(nets_file):
    name = f"{nets_file}:cond"
    with pytest.raises(ModelError) as e:
        load_model(name)
    assert str(e.value) == (
        "model 'nets' is conditional (c_dim=10); pick a class with class_idx = N (spec) or --class N"
    )
    with pytest.raises(ModelError) as e:
        load_model(name, class_idx=10)
    assert str(e.value) == "class_idx: 10 out of range for model 'nets' with c_dim=10; use 0..9"
    with pytest.raises(ModelError, match=r"^c: model 'nets' takes c of length 10 with finite numbers; got 3 values$"):
        load_model(name, c=[1, 0, 0])
    with pytest.raises(ModelError, match=r"^class_idx and c both given"):
        load_model(name, class_idx=1, c=[0.0] * 10)
    with pytest.raises(ModelError) as e:
        load_model(f"{nets_file}:plain", class_idx=1)
    assert str(e.value) == "model 'nets' is not conditional (c_dim=0); remove class_idx / --class"


def test_class_and_c_render_like_the_network(nets_file):
    g = load_model(f"{nets_file}:cond", class_idx=3)
    z = g.sample(3, 5)
    onehot = torch.zeros(3, 10)
    onehot[:, 3] = 1
    with torch.no_grad():
        ws = g.module.mapping(z, onehot)
        want = g.module.synthesis(ws, noise_mode="const")
        assert torch.equal(g.to_space(z, "z", "ws"), ws)
        assert torch.allclose(g.synthesize(z), want.clamp(-1, 1))
        c = np.linspace(0, 1, 10).tolist()
        gc = load_model(f"{nets_file}:cond", c=c)
        assert torch.equal(gc.to_space(z, "z", "w"), g.module.mapping(z, torch.tensor([c] * 3).float())[:, 0])
        other = load_model(f"{nets_file}:cond", class_idx=4).to_space(z, "z", "w")
    assert not torch.allclose(other, ws[:, 0])
    assert g.describe()["class_idx"] == 3 and g.describe()["c_dim"] == 10 and gc.describe()["c"] == c


def test_options_are_cached_per_setting_and_read_only(nets_file):
    name = f"{nets_file}:plain"
    a, b = load_model(name), load_model(name)
    t = load_model(name, truncation_psi=0.7)
    assert a is not b and t is not a and a.truncation_psi == 1.0 and t.truncation_psi == 0.7
    shared = {p.data_ptr() for p in a.module.parameters()}  # one copy of the weights in memory for every setting
    assert {p.data_ptr() for p in b.module.parameters()} == shared == {p.data_ptr() for p in t.module.parameters()}
    with pytest.raises(AttributeError):
        t.truncation_psi = 1.0
    z = a.sample(2, 1)
    with torch.no_grad():
        assert torch.equal(t.to_space(z, "z", "w"), a.module.mapping(z, None, truncation_psi=0.7)[:, 0])
    assert not torch.equal(t.to_space(z, "z", "w"), a.to_space(z, "z", "w"))
    with pytest.raises(ModelError) as e:
        load_model(name, truncation_psi=2.5)
    assert str(e.value) == "truncation_psi: 2.5 is out of range; use a number in [0, 2] (1 = no truncation)"
    with pytest.raises(ModelError) as e:
        load_model(name, noise_mode="fixed")
    assert str(e.value) == "noise_mode: 'fixed' unknown; use one of ['const', 'random', 'none']"
    with pytest.raises(ModelError) as e:
        load_model("tiny-dcgan", truncation_psi=0.5)
    assert str(e.value) == (
        "truncation_psi: model 'tiny-dcgan' is a plain z -> img network without a mapping "
        "network, noise inputs or classes; remove truncation_psi"
    )


def test_noise_modes(nets_file):
    const = load_model(f"{nets_file}:plain")
    rnd = load_model(f"{nets_file}:plain", noise_mode="random")
    none = load_model(f"{nets_file}:plain", noise_mode="none")
    z = const.sample(2, 0)
    state = torch.get_rng_state()
    with torch.no_grad():
        c1, c2 = const.synthesize(z), const.synthesize(z)
        r1, r2 = rnd.synthesize(z), rnd.synthesize(z)
        n1 = none.synthesize(z)
        r3 = rnd.synthesize(const.sample(2, 1))
    assert torch.equal(torch.get_rng_state(), state)  # seeded noise leaves the global RNG alone
    assert torch.equal(c1, c2) and torch.equal(r1, r2)  # random noise is reproducible per batch
    assert (r1 - c1).abs().max() > 1e-2 and (n1 - c1).abs().max() > 1e-2 and (n1 - r1).abs().max() > 1e-2
    assert not torch.equal(r3, r1)
    assert rnd.describe()["noise_mode"] == "random"
