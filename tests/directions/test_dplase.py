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
    assert np.all(kept > 0.25)  # the kept quarter of channels carries more than a quarter
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
    inside = np.linalg.norm(d @ v[:, :2], axis=1)  # share of each direction inside span(top-2 right vectors)
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


# ---- options: defaults are today's fit; each option does what it says ---------------------------------------
from probe.directions.dplase import (  # noqa: E402
    channel_group_table,
    channel_groups,
    cluster_channels,
    decorrelation_terms,
    draw_steps,
    keep_mass,
    self_expression,
    site_features,
)

DEFAULTS = dict(
    decorrelation="flat-cos2",
    step_distribution="signed-uniform",
    directions_per_latent="all",
    final_qr=True,
    variation_weight=1.0,
    variation_scale="feature-energy",
    subspace="top-fraction",
    mask_fraction=0.25,
    lambda_corr=1.0,
    zeta=100.0,
    density=True,
    batch_size=16,
)


def _sg(model, **kw):
    return DPLaSE(4, space="w", site="b8", steps=8, lr=0.02, seed=3, progress=False, **kw).fit(model)


@pytest.fixture(scope="module")
def sg_default(tiny_stylegan):
    return _sg(tiny_stylegan)


def test_defaults_reproduce_the_fit_before_the_options(sg_default, tiny_stylegan):
    ds = sg_default.directions_
    # values of this fit made by the DP-LaSE code before the options existed (same seed, same settings)
    before = np.array(
        [
            [0.4865186, 0.0144867, -0.3560105],
            [0.3129369, -0.1670559, 0.6216089],
            [0.3917958, -0.3114021, -0.0307162],
            [0.0869162, 0.2817056, 0.2844605],
        ]
    )
    assert np.allclose(ds.vectors[:, :3], before, atol=2e-6, rtol=0)
    assert np.flatnonzero(ds.channel_masks[0]).tolist() == [0, 1, 13, 14, 15, 20, 21, 24]
    assert sg_default.history_[-1]["loss"] == pytest.approx(0.3540745973587036, rel=1e-5)
    explicit = _sg(tiny_stylegan, **DEFAULTS)
    assert np.array_equal(explicit.directions_.vectors, ds.vectors)
    assert np.array_equal(explicit.directions_.channel_masks, ds.channel_masks)
    assert explicit.history_ == sg_default.history_
    assert sg_default.channel_groups_ is None and sg_default.direction_groups_ is None
    assert all("channel_group" not in i for i in ds.info)
    assert ds.provenance["subspace"] == "top-fraction" and ds.provenance["decorrelation"] == "flat-cos2"


def test_step_distributions():
    s = 10.0
    su = draw_steps(20000, s, "signed-uniform", torch.Generator().manual_seed(0))
    u = draw_steps(20000, s, "uniform", torch.Generator().manual_seed(0))
    assert su.abs().min() >= 0.25 * s and su.abs().max() <= s and (su < 0).any() and (su > 0).any()
    assert u.abs().max() <= s and u.min() < -0.99 * s and u.max() > 0.99 * s
    assert (u.abs() < 0.25 * s).float().mean().item() == pytest.approx(0.25, abs=0.02)  # near 0, never in su


def test_decorrelation_kinds_on_known_changes():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # two channels of 2 positions each
    d1 = torch.cat([a, b])  # channel 0 moves a, channel 1 moves b
    d2 = torch.cat([a, -b])  # same per channel up to sign: cos^2 = 1 each
    delta = torch.stack([d1, d2])[None]  # [1, 2, 4]
    assert decorrelation_terms(delta, 2, "flat-cos2")[0, 0, 1].item() == pytest.approx(0.0, abs=1e-12)
    assert decorrelation_terms(delta, 2, "channel-cos2")[0, 0, 1].item() == pytest.approx(1.0)
    assert decorrelation_terms(delta, 2, "flat-dot2")[0, 0, 1].item() == pytest.approx(0.0, abs=1e-12)
    scaled = torch.stack([d1, 3 * d1])[None]
    assert decorrelation_terms(scaled, 2, "flat-cos2")[0, 0, 1].item() == pytest.approx(1.0)
    assert decorrelation_terms(scaled, 2, "flat-dot2")[0, 0, 1].item() == pytest.approx(36.0)  # (3 * |d1|^2)^2


def test_loss_options_change_the_fit_as_stated(sg_default, tiny_stylegan):
    base = sg_default.directions_.vectors
    fits = {
        k: _sg(tiny_stylegan, **{k: v})
        for k, v in (
            ("step_distribution", "uniform"),
            ("decorrelation", "channel-cos2"),
            ("directions_per_latent", "one"),
            ("variation_weight", 0.1),
        )
    }
    for k, est in fits.items():
        assert not np.allclose(est.directions_.vectors, base, atol=1e-4), k
    one = fits["directions_per_latent"]
    assert {h["walks"] for h in one.history_} == {2 * 16} and {h["walks"] for h in sg_default.history_} == {4 * 16}
    single = DPLaSE(1, space="w", site="b8", steps=3, seed=0, directions_per_latent="one", progress=False)
    assert all(h["corr"] == 0.0 for h in single.fit(tiny_stylegan).history_)  # a pair of the same direction
    nw = _sg(tiny_stylegan, variation_weight=0.0)
    assert all(h["loss"] == pytest.approx(h["corr"] + 100.0 * h["reg"], rel=1e-5) for h in nw.history_)


def test_no_final_qr_keeps_unit_rows_whose_qr_is_the_default(sg_default, tiny_stylegan):
    raw = _sg(tiny_stylegan, final_qr=False).directions_.vectors.astype(np.float64)
    assert np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-6)
    assert np.abs(raw @ raw.T - np.eye(4)).max() > 1e-4  # not re-orthonormalised
    q, r = np.linalg.qr(raw.T)
    assert np.allclose((q * np.sign(np.diag(r))).T, sg_default.directions_.vectors, atol=1e-5)


def test_variation_scale_none_is_the_raw_feature_change(tiny_dcgan):
    kw = dict(site="b2", steps=1, seed=2, progress=False)
    scaled = DPLaSE(3, **kw).fit(tiny_dcgan).history_[0]["var"]
    raw = DPLaSE(3, variation_scale="none", **kw).fit(tiny_dcgan).history_[0]["var"]
    g = torch.Generator().manual_seed(2)
    torch.randn(16, 3, generator=g)  # the initial directions
    with torch.no_grad():
        f0 = site_features(tiny_dcgan, torch.randn(16, 16, generator=g), "z", "b2").flatten(1)
    assert raw / scaled == pytest.approx(f0.square().sum(1).mean().item(), rel=1e-5)


# ---- channel subspaces by self-expression ------------------------------------------------------------------
def test_self_expression_is_the_constrained_ridge_solution():
    X = np.random.default_rng(1).standard_normal((30, 6))
    lam = 0.3
    C = self_expression(X, lam)
    Xn = X / np.linalg.norm(X, axis=0)
    for i in range(6):
        rest = [j for j in range(6) if j != i]
        A = Xn[:, rest]
        c = np.linalg.solve(A.T @ A + lam * np.eye(5), A.T @ Xn[:, i])
        assert np.allclose(C[rest, i], c, atol=1e-10) and C[i, i] == 0.0
    dead = np.c_[X, np.zeros(30)]
    Cd = self_expression(dead, lam)
    assert np.all(Cd[6] == 0) and np.all(Cd[:, 6] == 0) and np.allclose(Cd[:6, :6], C)


def test_keep_mass_keeps_the_largest_entries_per_column():
    A = np.array([[5.0, 1.0], [3.0, 1.0], [2.0, 8.0]])
    assert keep_mass(A, 0.5).tolist() == [[5.0, 0.0], [0.0, 0.0], [0.0, 8.0]]
    assert keep_mass(A, 0.6).tolist() == [[5.0, 0.0], [3.0, 0.0], [0.0, 8.0]]
    assert keep_mass(A, 1.0).tolist() == A.tolist()


def test_planted_channel_blocks_are_recovered_exactly():
    rng = np.random.default_rng(0)
    member = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1])  # two blocks of scaled copies, interleaved
    signals = rng.standard_normal((2, 400))
    scales = rng.uniform(0.5, 2.0, 12) * rng.choice([-1, 1], 12)
    X = (signals[member] * scales[:, None]).T + 0.02 * rng.standard_normal((400, 12))  # [N, C]
    for thr in (0.2, 1.0):
        assert channel_groups(X, 2, affinity_threshold=thr, seed=0).tolist() == member.tolist()
    three = channel_groups(np.c_[X, rng.standard_normal((400, 3)) @ rng.standard_normal((3, 4))], 3)
    assert three.tolist() == member.tolist() + [2, 2, 2, 2]
    assert cluster_channels(np.ones((5, 5)), 1).tolist() == [0] * 5
    with pytest.raises(DirectionError, match="n_groups=6 must be between 1 and the number of channels 5"):
        cluster_channels(np.ones((5, 5)), 6)


@pytest.fixture(scope="module")
def grouped(tiny_stylegan):
    return _sg(tiny_stylegan, subspace="self-expression", n_groups=3)


def test_self_expression_fit_partitions_the_channels(grouped, sg_default, tiny_stylegan, tmp_path):
    est, ds = grouped, grouped.directions_
    c = tiny_stylegan.channels("b8")
    assert np.array_equal(ds.vectors, sg_default.directions_.vectors)  # phase 1 is the same training
    assert est.channel_groups_.shape == (c,) and sorted(set(est.channel_groups_.tolist())) == [0, 1, 2]
    assert est.direction_groups_.shape == (4,) and est.group_scores_.shape == (4, 3)
    gs = est.group_scores_
    assert np.array_equal(est.direction_groups_, (gs / gs.mean(0)).argmax(1))  # relative: vs the mean direction
    for j in range(4):
        g = est.direction_groups_[j]
        assert np.array_equal(ds.channel_masks[j], (est.channel_groups_ == g).astype(np.float32))
        assert ds.info[j]["channel_group"] == g and ds.info[j]["group_size"] == int((est.channel_groups_ == g).sum())
        assert est.group_scores_[j, g] == pytest.approx(est.channel_scores_[j, est.channel_groups_ == g].mean())
    assert np.allclose(est.affinity_, est.affinity_.T) and np.all(np.diag(est.affinity_) == 0)
    back = DirectionSet.load(ds.save(tmp_path / "grouped.npz"))
    assert back.provenance["channel_groups"] == est.channel_groups_.tolist()
    assert [i["channel_group"] for i in back.info] == est.direction_groups_.tolist()
    assert np.array_equal(back.channel_masks, ds.channel_masks)
    tab = channel_group_table(back)
    assert tab.columns.tolist() == ["direction", "channel_group", "n_channels", "channels"]
    assert tab["channel_group"].tolist() == est.direction_groups_.tolist()
    assert tab.loc[0, "channels"] == ",".join(map(str, np.flatnonzero(est.channel_groups_ == est.direction_groups_[0])))
    assert channel_group_table(sg_default.directions_)["channel_group"].tolist() == [-1] * 4
    absolute = _sg(tiny_stylegan, subspace="self-expression", n_groups=3, group_assignment="absolute")
    assert np.array_equal(absolute.channel_groups_, est.channel_groups_)
    assert np.array_equal(absolute.direction_groups_, gs.argmax(1))


def test_subspace_refine_trains_each_direction_on_its_group(grouped, tiny_stylegan):
    ref = _sg(tiny_stylegan, subspace="self-expression", n_groups=3, subspace_refine=True, refine_steps=4)
    assert len(ref.history_) == 12 and [h.get("phase") for h in ref.history_[8:]] == ["refine"] * 4
    assert ref.history_[:8] == grouped.history_
    assert np.array_equal(ref.channel_groups_, grouped.channel_groups_)
    assert np.array_equal(ref.direction_groups_, grouped.direction_groups_)
    assert not np.allclose(ref.directions_.vectors, grouped.directions_.vectors, atol=1e-4)
    assert ref.directions_.provenance["subspace_refine"] is True
    zero = _sg(tiny_stylegan, subspace="self-expression", n_groups=3, subspace_refine=True, refine_steps=0)
    assert np.array_equal(zero.directions_.vectors, grouped.directions_.vectors)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(decorrelation="cos"), "DPLaSE: decorrelation='cos' must be one of flat-cos2, channel-cos2, flat-dot2"),
        (dict(step_distribution="normal"), "DPLaSE: step_distribution='normal' must be one of signed-uniform, uniform"),
        (dict(directions_per_latent="two"), "DPLaSE: directions_per_latent='two' must be one of all, one"),
        (dict(subspace="pca"), "DPLaSE: subspace='pca' must be one of top-fraction, self-expression"),
        (
            dict(subspace="self-expression", n_groups=33),
            "DPLaSE: n_groups=33 must be an integer between 1 and the 32 channels of site 'b8'",
        ),
        (dict(subspace="self-expression", affinity_threshold=0.0), "DPLaSE: affinity_threshold=0.0 must lie in"),
        (dict(subspace_refine=True), "DPLaSE: subspace_refine=True needs subspace='self-expression'"),
        (dict(group_assignment="max"), "DPLaSE: group_assignment='max' must be one of relative, absolute"),
        (dict(step_size=0), "DPLaSE: step_size=0 must be > 0"),
    ],
)
def test_bad_options_get_one_line(kw, msg, tiny_stylegan):
    with pytest.raises(DirectionError) as e:
        DPLaSE(2, space="w", site="b8", steps=1, progress=False, **kw).fit(tiny_stylegan)
    assert str(e.value).startswith(msg) and "\n" not in str(e.value)


# ---- the sweep script, on tiny models ----------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_quick(tmp_path, tiny_stylegan):
    import importlib.util
    from pathlib import Path

    import pandas as pd

    path = Path(__file__).resolve().parents[2] / "scripts" / "dplase_sweep.py"
    spec = importlib.util.spec_from_file_location("dplase_sweep", path)
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    assert sweep.main(["--out", str(tmp_path), "--quick", "--seeds", "0"]) == 0
    runs = pd.read_csv(tmp_path / "dplase_sweep_runs.csv")
    gt_names = [n for n, _ in sweep.configs(["b4", "b8", "b16", "b32"], "b8", quick=True)]
    face_names = [n for n, _ in sweep.configs(["b1", "b2", "b3"], "b1", quick=True)]
    assert runs["config"].tolist() == gt_names + face_names
    assert runs["benchmark"].tolist() == ["sprites-gt"] * 5 + ["faces"] * 5
    gt = runs[runs["benchmark"] == "sprites-gt"]
    assert np.allclose(gt["d_minus_random"], gt["disentanglement"] - gt["random_disentanglement"])
    assert gt["random_disentanglement"].nunique() == 1  # one baseline per seed
    fit = DPLaSE(2, space="w", site="b8", steps=2, seed=0, progress=False).fit(tiny_stylegan).directions_
    saved = DirectionSet.load(tmp_path / "sprites" / "seed-0" / "default" / "directions" / "dplase.npz")
    assert np.array_equal(saved.vectors, fit.vectors)
    grp = DirectionSet.load(tmp_path / "sprites" / "seed-0" / "self-expression-refine-2" / "directions" / "dplase.npz")
    assert sorted(set(grp.provenance["channel_groups"])) == [0, 1]
    md = (tmp_path / "dplase_sweep.md").read_text()
    assert "### sprites-gt" in md and "### faces" in md and "| self-expression-refine:2 | 1 |" in md
    before = (tmp_path / "dplase_sweep_runs.csv").read_bytes()
    assert sweep.main(["--out", str(tmp_path), "--quick", "--seeds", "0"]) == 0  # resumed: same table
    assert (tmp_path / "dplase_sweep_runs.csv").read_bytes() == before
    assert sweep.main(["--out", str(tmp_path), "--seeds", "0,0"]) == 2
