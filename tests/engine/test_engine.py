"""probe.engine: batched rendering, scoped channel hooks, plan parts, determinism."""

import numpy as np
import pytest
import torch

from probe.density import GaussianDensity
from probe.engine import plan_parts, render, render_rows, run_plan
from probe.measures import MeasureSet
from probe.walks import Target, WalkError, apply, channel, variable


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.module.modules())


def test_plan_parts_cover_each_row_once():
    parts = plan_parts(n_samples=7, n_targets=3, n_alphas=5, part_rows=8)
    assert parts[:2] == [(0, 8), (8, 16)] and parts[-1] == (104, 105)
    rows = [r for lo, hi in parts for r in range(lo, hi)]
    assert rows == list(range(3 * 7 * 5))


def test_render_matches_per_sample_loop(tiny_dcgan):
    z = tiny_dcgan.sample(5, 3)
    t = Target("direction", "m/a", "linear", vector=np.ones(16) / 4)
    alphas = [-2.0, 0.0, 3.0]
    img = render(tiny_dcgan, z, "z", t, alphas, batch_size=4)
    assert img.shape == (5, 3, 3, 32, 32)
    for n in range(5):
        for a, al in enumerate(alphas):
            one = tiny_dcgan.synthesize(z[n : n + 1] + al * torch.from_numpy(t.vector), "z")
            torch.testing.assert_close(img[n, a], one[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(img[:, 1], tiny_dcgan.synthesize(z, "z"), atol=1e-6, rtol=0)


def test_channel_render_hook_scoped_and_effective(tiny_dcgan):
    z = tiny_dcgan.sample(3, 0)
    before = _hooks(tiny_dcgan)
    t = channel("b2", [0, 1, 2, 3, 4, 5, 6, 7], mode="scale")
    img = render(tiny_dcgan, z, "z", t, [-1.0, 0.0, 4.0], batch_size=2)
    assert _hooks(tiny_dcgan) == before
    base = tiny_dcgan.synthesize(z, "z")
    torch.testing.assert_close(img[:, 1], base, atol=1e-6, rtol=0)  # alpha 0: identity
    assert (img[:, 2] - base).abs().amax() > 1e-4  # x5 of 8 channels changes pixels
    # scale -1 zeroes those channels: same as editing the site by hand
    with torch.no_grad(), tiny_dcgan.edit("b2", lambda x: torch.cat([0 * x[:, :8], x[:, 8:]], 1)):
        want = tiny_dcgan.synthesize(z, "z")
    torch.testing.assert_close(img[:, 0], want, atol=1e-6, rtol=0)
    # a failing edit still removes the hook
    with pytest.raises(WalkError, match="channel 999 out of range"):
        render(tiny_dcgan, z, "z", channel("b2", [999]), [1.0])
    assert _hooks(tiny_dcgan) == before


def test_render_ws_layers_stylegan(tiny_stylegan):
    z = tiny_stylegan.sample(2, 0)
    ws = tiny_stylegan.to_space(z, "z", "ws")
    v = np.zeros(16, np.float32)
    v[0] = 1
    late = Target("direction", "m/late", "layers", vector=v, layers=(10, 12))
    img = render(tiny_stylegan, ws, "ws", late, [0.0, 5.0])
    assert img.shape == (2, 2, 3, 32, 32)
    torch.testing.assert_close(img[:, 0], tiny_stylegan.synthesize(ws, "ws"), atol=1e-5, rtol=0)
    edited = apply(ws, "ws", late, [5.0])
    assert (edited[:, :10] == ws[:, :10]).all() and (edited[:, 10:, 0] == ws[:, 10:, 0] + 5).all()
    torch.testing.assert_close(img[:, 1], tiny_stylegan.synthesize(edited, "ws"), atol=1e-5, rtol=0)


def test_run_plan_batches_whole_plan_and_skips(tiny_dcgan):
    z = tiny_dcgan.sample(10, 1)
    ms = MeasureSet(["brightness"])
    targets = [variable(0), variable(5), channel("b1", [2])]
    sizes = []
    h = tiny_dcgan.module.register_forward_hook(lambda m, i, o: sizes.append(len(o)))
    try:
        parts = list(run_plan(tiny_dcgan, z, "z", targets, [-1.0, 0.0, 1.0], ms, batch_size=16, part_rows=40))
    finally:
        h.remove()
    # 90 rows in parts of 40 rows, rendered in batches of <= 16 that span targets: no per-image loop
    assert [(p.k, len(p.sample_id)) for p in parts] == [(0, 40), (1, 40), (2, 10)]
    assert sizes == [16, 16, 8] * 2 + [10]
    p = parts[0]
    assert p.target.tolist() == [0] * 30 + [1] * 10
    assert p.sample_id.tolist()[27:33] == [9, 9, 9, 0, 0, 0] and p.step.tolist()[:4] == [0, 1, 2, 0]
    assert p.alpha.tolist()[:3] == [-1.0, 0.0, 1.0] and p.alpha.dtype == np.float64
    assert set(p.scores) == {"brightness"} and p.scores["brightness"].shape == (40,)
    # logp of a shifted z[0] follows the prior
    sel = p.target == 0
    want = (
        -0.5 * (z[p.sample_id[sel], 0].double() + torch.from_numpy(p.alpha[sel])) ** 2
        - 0.5 * (z[p.sample_id[sel], 1:].double() ** 2).sum(1)
        - 8 * np.log(2 * np.pi)
    )
    np.testing.assert_allclose(p.logp[sel], want.numpy(), atol=1e-4)
    again = list(run_plan(tiny_dcgan, z, "z", targets, [-1.0, 0.0, 1.0], ms, batch_size=16, part_rows=40, skip={0}))
    assert [q.k for q in again] == [1, 2]
    for q in again:  # deterministic: recomputed parts are identical
        np.testing.assert_array_equal(q.scores["brightness"], parts[q.k].scores["brightness"])
        np.testing.assert_array_equal(q.logp, parts[q.k].logp)


def test_mixed_batches_match_single_target_renders(tiny_dcgan):
    """A batch spanning a latent walk and two channel targets on different sites equals rendering each alone."""
    z = tiny_dcgan.sample(3, 4)
    ms = MeasureSet(["brightness", "contrast"])
    targets = [variable(2), channel("b2", [0, 1, 2, 3], mode="shift"), channel("b1", [5])]
    before = _hooks(tiny_dcgan)
    (p,) = run_plan(tiny_dcgan, z, "z", targets, [-2.0, 2.0], ms, batch_size=64)
    assert _hooks(tiny_dcgan) == before
    for t_i, t in enumerate(targets):
        img = render(tiny_dcgan, z, "z", t, [-2.0, 2.0])
        want = ms(img.reshape(-1, 3, 32, 32))
        for m in ("brightness", "contrast"):
            np.testing.assert_allclose(p.scores[m][p.target == t_i], want[m], rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        base = ms(tiny_dcgan.synthesize(z, "z"))["contrast"].repeat(2)
    for t_i in range(3):  # every target really changed its images
        assert np.abs(p.scores["contrast"][p.target == t_i] - base).min() > 1e-7


def test_run_plan_w_space_needs_density(tiny_stylegan):
    w = tiny_stylegan.to_space(tiny_stylegan.sample(4, 0), "z", "w")
    ms = MeasureSet(["brightness"])
    with pytest.raises(ValueError, match="needs a fitted GaussianDensity"):
        list(run_plan(tiny_stylegan, w, "w", [variable(0, "w")], [1.0], ms))
    dens = GaussianDensity().fit(tiny_stylegan.to_space(tiny_stylegan.sample(200, 1), "z", "w"))
    (p,) = run_plan(tiny_stylegan, w, "w", [variable(0, "w")], [0.0, 1.0], ms, density=dens)
    np.testing.assert_allclose(p.logp[::2], dens.logp(w).numpy(), atol=1e-6)
    assert (p.logp[1::2] != p.logp[::2]).all()


def test_render_rows_returns_edited_latent(tiny_dcgan):
    z = tiny_dcgan.sample(2, 0)
    lat, img = render_rows(tiny_dcgan, z, "z", variable(3, mode="set"), [7.0, -7.0])
    assert lat[:, 3].tolist() == [7.0, -7.0] and img.shape == (2, 3, 32, 32)


def test_alpha_zero_reuses_base_without_rendering(tiny_dcgan):
    from probe.density import latent_stats

    z = tiny_dcgan.sample(4, 2)
    ms = MeasureSet(["brightness", "hue"])
    with torch.no_grad():
        base = {**ms(tiny_dcgan.synthesize(z, "z")), **latent_stats(z, "z")}
    sizes = []
    h = tiny_dcgan.module.register_forward_hook(lambda m, i, o: sizes.append(len(o)))
    try:
        (shift,) = run_plan(tiny_dcgan, z, "z", [variable(1)], [-1.0, 0.0, 1.0], ms, base=base)
        (set_,) = run_plan(tiny_dcgan, z, "z", [variable(1, mode="set")], [-1.0, 0.0, 1.0], ms, base=base)
    finally:
        h.remove()
    assert sizes == [8, 12]  # the shift walk skips its 4 alpha-0 renders, `set` renders them
    zero = shift.step == 1
    for m in ("brightness", "hue"):
        np.testing.assert_array_equal(shift.scores[m][zero], base[m])
        assert (shift.scores[m][~zero] != np.repeat(base[m], 2)).any()
        # the reused rows sit where rendering them would have put them (within float32 reduction noise)
        np.testing.assert_allclose(shift.scores[m], _render_all(tiny_dcgan, z, ms, m), rtol=1e-5)
    np.testing.assert_array_equal(shift.logp[zero], base["logp"])
    assert (set_.logp[set_.step == 1] != base["logp"]).all()


def _render_all(model, z, ms, m):
    (p,) = run_plan(model, z, "z", [variable(1)], [-1.0, 0.0, 1.0], ms)
    return p.scores[m]
