"""SeFa vs a direct eigendecomposition, GANSpace PCA, random orthonormal baseline; save/load round trips."""

import numpy as np
import pytest
import torch

from probe.directions import DirectionError, DirectionSet, GANSpace, RandomDirections, SeFa, factorize


def _match_up_to_sign(a, b, atol=1e-6):
    return all(min(np.abs(x - y).max(), np.abs(x + y).max()) < atol for x, y in zip(a, b))


def test_sefa_dcgan_matches_direct_eigendecomposition(tiny_dcgan):
    est = SeFa(n_components=6).fit(tiny_dcgan)
    ds = est.directions_
    w = tiny_dcgan.module[0].weight.detach().double().numpy().reshape(16, -1)  # ConvTranspose2d [z_dim, out*k*k]
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    vals, vecs = np.linalg.eig(w @ w.T)  # the original uses eig, unsorted
    order = np.argsort(-vals.real)
    assert np.allclose(est.eigenvalues_, vals.real[order][:6], rtol=1e-8)
    assert _match_up_to_sign(ds.vectors, vecs.real[:, order].T[:6])
    assert ds.space == "z" and ds.vectors.shape == (6, 16) and np.all(np.diff(est.eigenvalues_) <= 0)
    assert np.allclose(ds.vectors @ ds.vectors.T, np.eye(6), atol=1e-5)
    # closed form of max ||A n||^2 over unit n: no random unit vector beats the first direction
    r = np.random.default_rng(0).standard_normal((200, 16))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    a = w.T
    assert (np.linalg.norm(r @ a.T, axis=1) ** 2).max() <= np.linalg.norm(a @ ds.vectors[0]) ** 2 + 1e-6


def test_sefa_stylegan_layers_use_style_affines(tiny_stylegan):
    est = SeFa(n_components=4, layers=(0, 3), affines="all-affines").fit(tiny_stylegan)  # b4's ToRGB too
    ds = est.directions_
    b4 = tiny_stylegan.module.synthesis.b4
    w = np.concatenate([m.affine.weight.detach().double().numpy().T for m in (b4.conv0, b4.conv1, b4.torgb)], 1)
    vecs, vals = factorize(w)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    ev, evec = np.linalg.eigh(w @ w.T)
    assert np.allclose(est.eigenvalues_, ev[::-1][:4])
    assert _match_up_to_sign(ds.vectors, evec[:, ::-1].T[:4])
    assert ds.space == "ws" and ds.layers == [(0, 3)] * 4 and ds.vectors.shape == (4, 16)
    all_layers = SeFa(n_components=3).fit(tiny_stylegan).directions_
    assert all_layers.space == "w" and all_layers.layers == [None] * 3
    with pytest.raises(DirectionError, match="out of range"):
        SeFa(layers=(5, 40)).fit(tiny_stylegan)
    with pytest.raises(DirectionError, match="only apply to style models"):
        SeFa(layers=(0, 1)).fit(tiny_dcgan_model())


def tiny_dcgan_model():
    from probe.models import load_model

    return load_model("tiny-dcgan")


def test_ganspace_w_is_pca_of_w_samples(tiny_stylegan):
    est = GANSpace(n_components=4, n_samples=2000, n_stdev=1000, seed=0).fit(tiny_stylegan)
    ds = est.directions_
    w = tiny_stylegan.to_space(tiny_stylegan.sample(2000, 0), "z", "w").double().numpy()
    _, s, vt = np.linalg.svd(w - w.mean(0), full_matrices=False)
    assert _match_up_to_sign(ds.vectors, vt[:4], atol=1e-4)
    assert np.allclose(est.explained_variance_ratio_, (s**2 / (s**2).sum())[:4], atol=1e-6)
    assert ds.space == "w" and np.all(np.diff(est.explained_variance_ratio_) <= 0)
    w2 = tiny_stylegan.to_space(tiny_stylegan.sample(1000, 1), "z", "w").double().numpy()
    assert np.allclose(ds.scales, ((w2 - w.mean(0)) @ ds.vectors.T.astype(np.float64)).std(0), rtol=1e-4)
    assert np.all(np.diff(ds.scales[:3]) < 0)  # later components vary less in w


def test_ganspace_z_regresses_site_pcs_back_to_z(tiny_dcgan):
    est = GANSpace(n_components=3, n_samples=1500, n_stdev=500, site="b1", seed=0).fit(tiny_dcgan)
    ds = est.directions_
    assert ds.space == "z" and ds.provenance["site"] == "b1"
    assert np.allclose(np.linalg.norm(ds.vectors, axis=1), 1, atol=1e-5)
    z = tiny_dcgan.sample(600, 7)
    f = tiny_dcgan.features(z, "z", ["b1"])["b1"].flatten(1).double().numpy()
    f0 = tiny_dcgan.features(z + 2 * torch.from_numpy(ds.vectors[0]), "z", ["b1"])["b1"].flatten(1).double().numpy()
    vt = torch.linalg.svd(torch.from_numpy(f - f.mean(0)), full_matrices=False)[2].numpy()
    # walking z along direction 0 moves the activations mostly along the first activation PC
    move = (f0 - f).mean(0)
    assert abs(move @ vt[0]) / np.linalg.norm(move) > 0.5


def test_random_orthonormal_seeded(tiny_dcgan, tiny_stylegan, tmp_path):
    a = RandomDirections(K=5, seed=1).fit(tiny_dcgan).directions_
    b = RandomDirections(K=5, seed=1).fit(tiny_dcgan).directions_
    c = RandomDirections(K=5, seed=2).fit(tiny_dcgan).directions_
    assert np.allclose(a.vectors @ a.vectors.T, np.eye(5), atol=1e-5)
    assert np.array_equal(a.vectors, b.vectors) and not np.allclose(a.vectors, c.vectors)
    assert RandomDirections(K=3, space="w").fit(tiny_stylegan).directions_.vectors.shape == (3, 16)
    with pytest.raises(DirectionError, match="between 1 and the latent dimension 16"):
        RandomDirections(K=17).fit(tiny_dcgan)
    back = DirectionSet.load(a.save(tmp_path / "r.npz"))
    assert back.names == a.names and np.array_equal(back.vectors, a.vectors) and back.method == "random"
