"""InterFaceGAN on synthetic scores (known normal), projection formulas, absolute-distance edits, a tiny model."""

import numpy as np
import pytest
import torch

from probe.directions import DirectionError, DirectionSet, InterFaceGAN, edit_codes, fit_from_model, project


def _unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 12))
    n_true = _unit(rng.standard_normal(12))
    s = x @ n_true + 0.1 * rng.standard_normal(2000)
    return x, s, n_true


def test_recovers_known_normal_and_reports_accuracy(synthetic):
    x, s, n_true = synthetic
    est = InterFaceGAN("score", ratio=0.1, split=0.7, seed=3).fit(x, s)
    ds = est.directions_
    assert ds.names == ["score"] and ds.vectors.shape == (1, 12) and ds.method == "interfacegan"
    v = ds.vectors[0]
    assert abs(np.linalg.norm(v) - 1) < 1e-5
    assert v @ n_true > 0.95  # points toward higher scores
    info = ds.info[0]
    assert info["acc_val"] > 0.95 and est.accuracy_["score"] == info["acc_val"]
    assert info["n_train"] == 2 * int(200 * 0.7) and info["n_val"] == 2 * (200 - int(200 * 0.7))
    flipped = InterFaceGAN("score", ratio=0.1, seed=3).fit(x, -s).directions_.vectors[0]
    assert flipped @ n_true < -0.95


def test_several_measures_and_dict_scores(synthetic):
    x, s, n_true = synthetic
    other = x[:, 0]
    ds = InterFaceGAN(["a", "b"], ratio=0.1).fit(x, {"a": s, "b": other}).directions_
    assert ds.names == ["a", "b"]
    assert ds.vectors[1] @ np.eye(12)[0] > 0.95
    per = InterFaceGAN(["a", "b"], ratio={"a": 0.1, "b": 0.3}).fit(x, {"a": s, "b": other}).directions_
    assert [i["n_train"] + i["n_val"] for i in per.info] == [400, 1200] and per.info[1]["ratio"] == 0.3
    with pytest.raises(DirectionError, match="lack measures"):
        InterFaceGAN(["a", "c"]).fit(x, {"a": s})


def test_bad_inputs_name_the_fix(synthetic):
    x, s, _ = synthetic
    with pytest.raises(DirectionError, match="sample more latents or raise ratio"):
        InterFaceGAN("s", ratio=0.001).fit(x[:100], s[:100])
    with pytest.raises(DirectionError, match="one score per latent"):
        InterFaceGAN("s").fit(x, s[:10])
    with pytest.raises(DirectionError, match="space 'ws' needs"):
        InterFaceGAN("s", space="ws").fit(x, s)


def test_nan_scores_are_dropped(synthetic):
    x, s, n_true = synthetic
    s2 = s.copy()
    s2[::3] = np.nan
    v = InterFaceGAN("s", ratio=0.1).fit(x, s2).directions_.vectors[0]
    assert v @ n_true > 0.9


def test_project_one_two_many_conditions():
    rng = np.random.default_rng(1)
    n, c1, c2, c3 = (_unit(rng.standard_normal(20)) for _ in range(4))
    assert np.allclose(project(n), n)
    p1 = project(n, [c1])
    assert abs(p1 @ c1) < 1e-9 and abs(np.linalg.norm(p1) - 1) < 1e-9
    assert np.allclose(p1, _unit(n - (n @ c1) * c1))
    p2 = project(n, [c1, c2])
    assert abs(p2 @ c1) < 1e-6 and abs(p2 @ c2) < 1e-6 and p2 @ n > 0
    C = np.stack([c1, c2], 1)
    ls = _unit(n - C @ np.linalg.lstsq(C, n, rcond=None)[0])
    assert np.allclose(p2, ls, atol=1e-6)  # paper's closed form == least squares for 2
    p3 = project(n, [c1, c2, c3])
    assert max(abs(p3 @ c) for c in (c1, c2, c3)) < 1e-9
    with pytest.raises(DirectionError, match="zero length"):
        project(c1, [c1])
    with pytest.raises(DirectionError, match="dimension"):
        project(n, [np.ones(3)])


def test_conditional_set_and_roundtrip(synthetic, tmp_path):
    x, s, _ = synthetic
    est = InterFaceGAN(["a", "b"], ratio=0.1).fit(x, {"a": s + x[:, 0], "b": x[:, 0]})
    ds = est.with_conditionals([("a", ["b"])])
    assert ds.names == ["a", "b", "a|b"]
    assert abs(ds.vector("a|b") @ ds.vector("b")) < 1e-5
    assert ds.info[2]["conditions"] == ["b"] and ds.info[2]["measure"] == "a"
    back = DirectionSet.load(ds.save(tmp_path / "ifg.npz"))
    assert back.names == ds.names and np.allclose(back.vectors, ds.vectors) and back.info == ds.info
    with pytest.raises(DirectionError, match="no boundary named"):
        est.conditional("a", ["zzz"])


def test_edit_codes_absolute_distances():
    rng = np.random.default_rng(2)
    codes = rng.standard_normal((5, 8))
    n = _unit(rng.standard_normal(8))
    d = np.linspace(-3, 3, 7)
    out = edit_codes(codes, n, d)  # [N, A, D]
    assert out.shape == (5, 7, 8)
    assert np.allclose(out @ n, np.broadcast_to(d, (5, 7)), atol=1e-5)
    ortho = codes - (codes @ n)[:, None] * n
    assert np.allclose(out - (out @ n)[..., None] * n, ortho[:, None], atol=1e-5)
    ws = rng.standard_normal((2, 3, 8))  # W+: offsets added to every layer
    o = edit_codes(ws, n, d)
    assert o.shape == (2, 7, 3, 8)
    assert np.allclose(o - ws[:, None], d[None, :, None, None] * n, atol=1e-5)
    with pytest.raises(DirectionError, match="do not fit"):
        edit_codes(codes, np.ones(3), d)


def test_ws_per_layer_and_flat():
    rng = np.random.default_rng(3)
    ws = rng.standard_normal((1500, 3, 6))
    s = ws[:, 1, 2]  # only layer 1 carries the attribute
    est = InterFaceGAN("s", ratio=0.1, space="ws", per_layer=True).fit(ws, s)
    ds = est.directions_
    assert ds.names == ["s@0", "s@1", "s@2"] and ds.layers == [(0, 1), (1, 2), (2, 3)]
    acc = [i["acc_val"] for i in ds.info]
    assert acc[1] > 0.95 and acc[0] < 0.75 and acc[2] < 0.75
    flat = InterFaceGAN("s", ratio=0.1, space="ws").fit(ws, s).directions_
    assert flat.vectors.shape == (1, 18) and np.argmax(np.abs(flat.vectors[0])) == 1 * 6 + 2


def test_fit_from_model_tiny_dcgan_brightness(tiny_dcgan):
    est = fit_from_model(tiny_dcgan, ["brightness"], n=400, seed=0, ratio=0.2, batch_size=200)
    ds = est.directions_
    assert est.latents_.shape == (400, 16) and est.scores_["brightness"].shape == (400,)
    assert ds.model == "tiny-dcgan" and ds.weights_hash == tiny_dcgan.weights_hash
    assert ds.info[0]["acc_val"] > 0.8
    from probe.measures import MeasureSet

    z = tiny_dcgan.sample(64, 9)
    v = torch.from_numpy(ds.vectors[0])
    means = [MeasureSet(["brightness"])(tiny_dcgan.synthesize(z + a * v))["brightness"].mean() for a in (-2, 0, 2)]
    assert means[0] < means[1] < means[2]
