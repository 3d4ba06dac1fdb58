"""The shipped zoo model "sprites" (StyleGAN-lite trained by probe train gan) and the StyleGAN-lite variants."""

from pathlib import Path

import torch

from probe.models import StyleGANGenerator, load_model
from probe.models.stylegan_lite import StyleGANLite


def test_sprites_loads_and_generates_deterministically():
    g = load_model("sprites")
    assert isinstance(g, StyleGANGenerator) and g.resolution == 64
    assert g.spaces == ("z", "w", "ws") and g.sites == ("b4", "b8", "b16", "b32", "b64")
    assert g.num_ws == 15 and g.w_dim == 64 and g.z_dim == 64
    z = g.sample(4, 7)
    a, b = g.synthesize(z), g.synthesize(z)
    assert a.shape == (4, 3, 64, 64) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a[0], a[1])  # z matters
    ws = g.to_space(z, "z", "ws")
    torch.testing.assert_close(g.synthesize(ws, "ws"), a)
    assert g.module.mapping.w_avg.abs().sum() > 0  # w_avg set by training


def test_sprites_weights_are_weights_only_and_small():
    path = Path(__import__("probe.models", fromlist=["x"]).__file__).parent / "weights" / "sprites.pt"
    assert path.stat().st_size < 5e6
    ck = torch.load(path, weights_only=True)
    assert ck["arch"] == "stylegan" and "mapping.w_avg" in ck["state_dict"]


def test_unfused_modconv_matches_fused():
    torch.manual_seed(0)
    cfg = dict(z_dim=8, w_dim=8, resolution=16, channels={4: 8, 8: 8, 16: 4}, mapping_layers=2)
    a = StyleGANLite(**cfg)
    b = StyleGANLite(**cfg, fused=False)
    b.load_state_dict(a.state_dict())
    z = torch.randn(3, 8)
    torch.testing.assert_close(a(z), b(z), atol=1e-5, rtol=0)
    assert StyleGANLite(**cfg, noise=False).synthesis.b8.conv0.noise_strength is None


def test_tiny_stylegan_unchanged():
    """tiny-stylegan renders the same pixels as the pre-sprites StyleGAN-lite (seeded init, const noise)."""
    g = load_model("tiny-stylegan")
    img = g.synthesize(g.sample(2, 0))
    assert img.shape == (2, 3, 32, 32)
    torch.testing.assert_close(float(img.double().sum()), 3103.1328125, atol=1e-3, rtol=0)


def test_zoo_loader_wraps_trainer_dcgan(tmp_path, monkeypatch):
    from probe.models import TorchGenerator, zoo
    from probe.train.trainer import train_gan

    train_gan("dcgan", iters=1, batch=4, tiny=True, out=tmp_path, sample_every=0, log=lambda *_: None)
    monkeypatch.setattr(zoo, "_weights", lambda name: tmp_path / name)
    g = zoo._sprites("generator.pt", "my-dcgan")
    assert isinstance(g, TorchGenerator) and g.resolution == 64 and g.sites == ("b4", "b8", "b16", "b32")
    assert g.features(g.sample(2, 0), "z", ["b8"])["b8"].shape[-1] == 8
    monkeypatch.setattr(zoo, "_weights", lambda name: tmp_path / "missing.pt")
    import pytest

    from probe.models import ModelError

    with pytest.raises(ModelError, match="probe train gan"):
        zoo._sprites("missing.pt", "x")
