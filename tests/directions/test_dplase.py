"""DP-LaSE on tiny models: orthonormal result, more variation than random, density preserved, channel masks;
isodensity walks keep log p while linear walks of the same length drift."""
import numpy as np
import pytest
import torch

from probe.density import GaussianDensity, logp_normal
from probe.directions import DirectionError, DirectionSet, DPLaSE, RandomDirections, density_preserve
from probe.walks import Target, apply


@pytest.fixture(scope="module")
def trained(tiny_dcgan):
    return DPLaSE(n_directions=4, site="b2", steps=60, lr=0.02, seed=0, progress=False).fit(tiny_dcgan)


def test_result_is_orthonormal_with_masks(trained, tiny_dcgan, tmp_path):
    ds = trained.directions_
    assert ds.method == "dplase" and ds.space == "z" and ds.site == "b2" and ds.vectors.shape == (4, 16)
    assert np.allclose(ds.vectors @ ds.vectors.T, np.eye(4), atol=1e-5)
    c = tiny_dcgan.channels("b2")
    assert ds.channel_masks.shape == (4, c) and np.all(ds.channel_masks.sum(1) == round(0.25 * c))
    sc = trained.channel_scores_
    kept = (sc * ds.channel_masks).sum(1) / sc.sum(1)
    assert np.all(kept > 0.25)                      # the kept quarter of channels carries more than a quarter
    assert np.all(sc[ds.channel_masks == 1].reshape(4, -1).min(1) >= np.where(ds.channel_masks == 0, sc, 0).max(1))
    assert len(trained.history_) == 60 and trained.seconds_ > 0
    back = DirectionSet.load(ds.save(tmp_path / "dp.npz"))
    assert np.array_equal(back.channel_masks, ds.channel_masks) and back.site == "b2"


def _linear_model(sv):
    """z [8] -> a linear site with known singular values -> img; DP-LaSE should find the top right vectors."""
    from torch import nn
    from probe.models.dcgan import TorchGenerator
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(48, 8, generator=g))
    v, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    lin = nn.Linear(8, 48, bias=False)
    lin.weight.data = u @ torch.diag(torch.tensor(sv)) @ v.T
    net = nn.Sequential(lin, nn.Unflatten(1, (3, 4, 4)), nn.Tanh())
    return TorchGenerator(net, 8, name="linear-probe", sites={"lin": "0"}, conv_input=False), v.numpy()


def test_training_finds_the_top_singular_subspace():
    model, v = _linear_model([6.0, 4.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2])
    est = DPLaSE(2, site="lin", steps=300, lr=0.05, step_size=1.0, density=False, seed=0, progress=False).fit(model)
    d = est.directions_.vectors.astype(np.float64)
    inside = np.linalg.norm(d @ v[:, :2], axis=1)      # share of each direction inside span(top-2 right vectors)
    assert np.all(inside > 0.95), inside
    start = DPLaSE(2, site="lin", steps=0, density=False, seed=0, progress=False).fit(model).directions_.vectors
    assert np.all(np.linalg.norm(start.astype(np.float64) @ v[:, :2], axis=1) < 0.9)  # it had to move there
    h = est.history_
    assert np.mean([x["var"] for x in h[-20:]]) > 2 * np.mean([x["var"] for x in h[:20]])


def test_density_switch(tiny_dcgan, tiny_stylegan):
    on = DPLaSE(3, site="b1", steps=5, seed=1, progress=False).fit(tiny_dcgan).directions_.provenance
    off = DPLaSE(3, site="b1", steps=5, seed=1, density=False, progress=False).fit(tiny_dcgan).directions_.provenance
    assert on["dlogp_abs_mean_train_walk"] < 1e-3 < 1.0 < off["dlogp_abs_mean_train_walk"]
    w = DPLaSE(3, space="w", steps=5, seed=1, progress=False).fit(tiny_stylegan).directions_
    assert w.space == "w" and w.provenance["dlogp_abs_mean_train_walk"] < 1e-3
    with pytest.raises(DirectionError, match="n_directions=40"):
        DPLaSE(40, steps=1, progress=False).fit(tiny_dcgan)
    with pytest.raises(Exception, match="site 'nope' does not exist"):
        DPLaSE(2, site="nope", steps=1, progress=False).fit(tiny_dcgan)


def test_density_preserve_keeps_logp():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(50, 10, generator=g, dtype=torch.float64)
    x1 = x0 + 3 * torch.randn(50, 10, generator=g, dtype=torch.float64)
    assert (logp_normal(density_preserve(x0, x1)) - logp_normal(x0)).abs().max() < 1e-9
    dens = GaussianDensity().fit(torch.randn(500, 10, generator=g) * 2 + 1)
    y = density_preserve(x0, x1, dens)
    assert (dens.logp(y) - dens.logp(x0)).abs().max() < 1e-6


@pytest.mark.parametrize("space", ["z", "w"])
def test_isodensity_walks_keep_logp_linear_walks_drift(space, tiny_dcgan, tiny_stylegan):
    model = tiny_dcgan if space == "z" else tiny_stylegan
    z = model.sample(64, 3)
    lat = model.to_space(z, "z", space)
    dens = None if space == "z" else GaussianDensity().fit(model.to_space(model.sample(4096, 4), "z", "w"))
    v = RandomDirections(1, seed=5, space=space).fit(model).directions_.vectors[0]
    alphas = np.linspace(-3, 3, 7)
    lp = (lambda x: logp_normal(x)) if dens is None else dens.logp
    base = lp(lat).repeat_interleave(len(alphas))
    drift = {}
    for walk in ("isodensity", "linear"):
        out = apply(lat, space, Target("direction", "random/random0", walk, vector=v), alphas, dens)
        drift[walk] = (lp(out) - base).abs()
    assert drift["isodensity"].max() < 1e-3
    assert drift["linear"].mean() > 1.0
