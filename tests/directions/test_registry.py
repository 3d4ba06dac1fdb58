"""The method registry, the estimator protocol every method follows, and the shared fit pipeline."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from probe.directions import DirectionError, DirectionSet, fit_methods
from probe.directions.estimator import DirectionEstimator
from probe.directions.ganspace import svd_lowrank
from probe.directions.registry import METHODS, ORDER, FitContext, get, label, ordered

# small, fast settings per method on the tiny models (the registry's defaults fill the rest)
FAST = {
    "interfacegan": {"ratio": 0.25},
    "dplase": {"steps": 2, "batch_size": 2},
    "ganspace": {},
    "sefa": {},
    "random": {},
}


def _ctx(model, seed=0):
    return FitContext(model, k=3, n_fit=64, seed=seed, measures=("brightness",))


def test_registry_order_labels_and_unknown_names():
    assert ORDER == ("interfacegan", "dplase", "ganspace", "sefa", "random") and list(METHODS) == list(ORDER)
    assert [label(m) for m in ORDER] == ["InterFaceGAN", "DP-LaSE", "GANSpace", "SeFa", "random"]
    assert label("mine") == "mine"
    assert ordered(["random", "mine", "sefa", "interfacegan", "random"]) == ["interfacegan", "sefa", "random", "mine"]
    with pytest.raises(DirectionError, match=r"^method 'pca' unknown; use one of \['interfacegan', 'dplase'"):
        get("pca")
    for m in METHODS.values():
        assert issubclass(m.cls, DirectionEstimator) and m.cls.method == m.name


@pytest.mark.parametrize("name", ORDER)
def test_clone_and_params_round_trip(name, tiny_stylegan):
    m = get(name)
    est = m.make(_ctx(tiny_stylegan), FAST[name])
    params = est.get_params()
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est and twin.get_params() == params
    assert type(est)(**params).get_params() == params
    key = next(iter(params))
    assert est.set_params(**{key: params[key]}) is est
    with pytest.raises(DirectionError, match=rf"^{type(est).__name__} has no parameter 'bogus'; use one of "):
        est.set_params(bogus=1)


@pytest.mark.parametrize("name", ORDER)
def test_fit_is_seeded_and_leaves_global_rng_alone(name, tiny_stylegan):
    m = get(name)
    torch.manual_seed(1234)
    np.random.seed(99)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    a = m.make(_ctx(tiny_stylegan), FAST[name]).fit(tiny_stylegan)
    assert torch.equal(torch.get_rng_state(), torch_state), f"{name}.fit changed torch's global RNG state"
    assert np.array_equal(np.random.get_state()[1], np_state), f"{name}.fit changed NumPy's global RNG state"
    b = clone(a).fit(tiny_stylegan)
    assert isinstance(a.directions_, DirectionSet) and a.directions_.method == name
    assert np.array_equal(a.directions_.vectors, b.directions_.vectors)
    assert a.directions_.names == b.directions_.names


def test_seeds_change_the_seeded_methods(tiny_stylegan):
    for name in ("ganspace", "random", "dplase"):
        a = get(name).make(_ctx(tiny_stylegan, 0), FAST[name]).fit(tiny_stylegan).directions_.vectors
        b = get(name).make(_ctx(tiny_stylegan, 1), FAST[name]).fit(tiny_stylegan).directions_.vectors
        assert not np.allclose(a, b), name


def test_local_randomized_svd_is_torch_svd_lowrank_bit_for_bit():
    x = torch.randn(300, 2100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for a in (x, x.T.contiguous()):
        torch.manual_seed(7)
        ref = torch.svd_lowrank(a, q=16, niter=4)
        state = torch.get_rng_state()
        got = svd_lowrank(a, 16, 4, torch.Generator().manual_seed(7))
        assert torch.equal(state, torch.get_rng_state())
        assert all(torch.equal(r, g) for r, g in zip(ref, got))


def test_ganspace_activation_pca_is_seeded_without_global_rng(tiny_dcgan):
    from probe.directions import GANSpace

    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = GANSpace(3, n_samples=40, space="z", site="b2", n_stdev=50, seed=3).fit(tiny_dcgan)  # wide site: SVD path
    assert torch.equal(torch.get_rng_state(), state)
    b = GANSpace(3, n_samples=40, space="z", site="b2", n_stdev=50, seed=3).fit(tiny_dcgan)
    assert np.array_equal(a.directions_.vectors, b.directions_.vectors)


def test_interfacegan_fit_model_equals_fit_on_sampled_scores(tiny_dcgan):
    from probe.directions import InterFaceGAN, sample_and_score

    est = InterFaceGAN(
        ["brightness", "contrast"], ratio=0.25, n_samples=80, seed=2, conditions=[("brightness", ["contrast"])]
    ).fit(tiny_dcgan)
    lat, sc = sample_and_score(tiny_dcgan, ["brightness", "contrast"], 80, seed=2)
    ref = InterFaceGAN(["brightness", "contrast"], ratio=0.25, seed=2).fit(lat, sc, model=tiny_dcgan)
    ds = est.directions_
    assert ds.names == ["brightness", "contrast", "brightness|contrast"]
    assert np.array_equal(ds.vectors[:2], ref.directions_.vectors)
    assert np.array_equal(ds.vectors[2], ref.with_conditionals([("brightness", ["contrast"])]).vectors[2])
    assert ds.provenance["n_samples"] == 80 and ds.provenance["sample_seed"] == 2
    assert est.latents_.shape == (80, 16) and set(est.scores_) == {"brightness", "contrast"}
    # the SVM's hyperplane n.x + offset = 0: the offset separates the training sides like the SVM's decision
    off = ds.info[0]["offset"]
    assert np.isfinite(off) and "offset" not in ds.info[2]


def test_fit_methods_writes_every_method_once_and_resumes(tiny_stylegan, tmp_path):
    logs = []
    paths = fit_methods(
        tiny_stylegan,
        tmp_path / "d",
        measures=["brightness"],
        k=2,
        n_fit=64,
        seed=0,
        options={"interfacegan": {"ratio": 0.25}, "dplase": {"steps": 2}},
        progress=False,
        log=logs.append,
    )
    assert list(paths) == list(ORDER) and all(p.is_file() for p in paths.values())
    sets = {m: DirectionSet.load(p) for m, p in paths.items()}
    assert len(sets["interfacegan"]) == 1 and all(len(sets[m]) == 2 for m in ORDER[1:])
    assert {s.space for s in sets.values()} == {"w"}  # the model has w: every method fits there
    assert any("boundary brightness" in x for x in logs)
    again = []
    fit_methods(
        tiny_stylegan,
        tmp_path / "d",
        measures=["brightness"],
        k=2,
        n_fit=64,
        log=again.append,
        options={"interfacegan": {"ratio": 0.25}, "dplase": {"steps": 2}},
        progress=False,
    )
    assert len(again) == 5 and all("exists" in x for x in again)
    # the same seed through the registry's defaults gives the same vectors as the estimator by hand
    from probe.directions import RandomDirections

    assert np.array_equal(
        sets["random"].vectors, RandomDirections(2, seed=0, space="w").fit(tiny_stylegan).directions_.vectors
    )


def test_fit_methods_refuses_bad_requests_before_fitting(tiny_stylegan, tmp_path):
    with pytest.raises(DirectionError, match=r"^method 'pca' unknown"):
        fit_methods(tiny_stylegan, tmp_path / "a", methods=["random", "pca"])
    with pytest.raises(DirectionError, match=r"^options for \['sefa'\], which are not among the methods fitted"):
        fit_methods(tiny_stylegan, tmp_path / "a", methods=["random"], options={"sefa": {}})
    with pytest.raises(
        DirectionError,
        match=r"^options for random: \['steps'\] are not parameters of "
        r"RandomDirections",
    ):
        fit_methods(tiny_stylegan, tmp_path / "a", methods=["random"], options={"random": {"steps": 3}})
    with pytest.raises(DirectionError, match=r"^interfacegan: name the measures"):
        fit_methods(tiny_stylegan, tmp_path / "a", methods=["interfacegan"])
    assert not (tmp_path / "a").exists()
