"""Density statistics against scipy."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from probe.density import GaussianDensity, chi2_percentile, latent_stats, logp_normal, norm, z_stats
from probe.errors import ProbeError


@pytest.fixture(scope="module")
def z():
    return torch.randn(50, 7, generator=torch.Generator().manual_seed(3))


def test_logp_normal_matches_scipy(z):
    ref = stats.multivariate_normal(mean=np.zeros(7), cov=np.eye(7)).logpdf(z.numpy().astype(np.float64))
    np.testing.assert_allclose(logp_normal(z).numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logp_normal(z).numpy(), stats.norm.logpdf(z.double().numpy()).sum(1), rtol=1e-12)


def test_logp_normal_flattens_ws():
    ws = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(logp_normal(ws).numpy(), stats.norm.logpdf(ws.double().numpy()).sum((1, 2)), rtol=1e-12)


def test_norm_and_chi2(z):
    np.testing.assert_allclose(norm(z).numpy(), np.linalg.norm(z.double().numpy(), axis=1), rtol=1e-12)
    pct = chi2_percentile(z).numpy()
    np.testing.assert_allclose(pct, stats.chi2.cdf((z.double() ** 2).sum(1).numpy(), df=7), rtol=1e-10, atol=1e-12)
    assert ((pct > 0) & (pct < 1)).all()


def test_chi2_percentile_is_monotonic_in_norm_and_calibrated():
    d = 100
    r = torch.linspace(1, 20, 40)
    z = torch.zeros(40, d)
    z[:, 0] = r
    pct = chi2_percentile(z).numpy()
    assert (np.diff(pct) >= 0).all() and pct[0] < 1e-6 and pct[-1] > 0.99
    big = torch.randn(4000, d, generator=torch.Generator().manual_seed(1))
    u = chi2_percentile(big).numpy()  # under the prior the percentile is uniform
    assert abs(u.mean() - 0.5) < 0.03 and abs((u < 0.1).mean() - 0.1) < 0.03


def test_z_stats_keys(z):
    s = z_stats(z)
    assert set(s) == {"logp", "norm", "chi2_pct"} and all(v.shape == (50,) for v in s.values())


def test_gaussian_density_matches_scipy():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(5, 5, generator=g)
    x = torch.randn(400, 5, generator=g) @ a + torch.arange(5.0)  # correlated, shifted
    dens = GaussianDensity(shrinkage=0.0).fit(x)
    xd = x.double().numpy()
    mvn = stats.multivariate_normal(mean=xd.mean(0), cov=np.cov(xd.T))
    q = torch.randn(20, 5, generator=g) @ a
    np.testing.assert_allclose(dens.logp(q).numpy(), mvn.logpdf(q.double().numpy()), rtol=1e-9)
    d2 = ((q.double().numpy() - xd.mean(0)) @ np.linalg.inv(np.cov(xd.T)) * (q.double().numpy() - xd.mean(0))).sum(1)
    np.testing.assert_allclose(dens.mahalanobis(q).numpy() ** 2, d2, rtol=1e-8)


def test_gaussian_density_ws_sums_layers():
    g = torch.Generator().manual_seed(6)
    w = torch.randn(200, 4, generator=g)
    dens = GaussianDensity().fit(w)
    ws = torch.randn(3, 6, 4, generator=g)
    np.testing.assert_allclose(dens.logp(ws).numpy(), sum(dens.logp(ws[:, i]).numpy() for i in range(6)), rtol=1e-12)
    pooled = GaussianDensity().fit(w.reshape(50, 4, 4))  # ws [N, L, D]: the layers are pooled
    np.testing.assert_allclose(pooled.mean_.numpy(), w.double().mean(0).numpy(), rtol=1e-12)


def test_round_trip_through_json():
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(7))
    dens = GaussianDensity().fit(x)
    back = GaussianDensity.from_dict(json.loads(json.dumps(dens.to_dict())))
    q = torch.randn(10, 3, generator=torch.Generator().manual_seed(8))
    np.testing.assert_array_equal(back.logp(q).numpy(), dens.logp(q).numpy())
    assert back.shrinkage == dens.shrinkage


def test_errors():
    with pytest.raises(ProbeError, match="at least 2 samples"):
        GaussianDensity().fit(torch.zeros(1, 3))
    with pytest.raises(ProbeError, match="NaN"):
        GaussianDensity().fit(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))
    dens = GaussianDensity().fit(torch.randn(10, 3, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ProbeError, match="dimension 3"):
        dens.logp(torch.zeros(2, 4))
    with pytest.raises(ProbeError, match="GaussianDensity"):
        latent_stats(torch.zeros(2, 3), "w")


def test_latent_stats(z):
    s = latent_stats(z, "z")
    np.testing.assert_allclose(s["logp"], logp_normal(z).numpy())
    dens = GaussianDensity().fit(z)
    s = latent_stats(z, "w", dens)
    np.testing.assert_allclose(s["logp"], dens.logp(z).numpy())
    np.testing.assert_allclose(s["norm"], norm(z).numpy())
