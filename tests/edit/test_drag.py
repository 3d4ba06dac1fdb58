import itertools

import numpy as np
import pytest
import torch

from probe.edit import DragError, DragGAN, DragResult, DragStep, FreeDrag, default_site, make_drag
from probe.edit.drag import scaled

Z0 = torch.zeros(1, 2)  # blob centred at (16, 16)


# FreeDrag's l (0.3) is in the site's raw feature units by default (official); this toy's features are far smaller
@pytest.mark.parametrize(
    "method", [DragGAN(lr=0.05, max_steps=60, d_stop=1), FreeDrag(lr=0.05, max_steps=60, units="mean")]
)
def test_blob_moves_to_target(blob, method):
    res = method.run(blob, Z0, "z", [[16, 16]], [[21, 16]])
    assert isinstance(res, DragResult) and res.converged and res.status == "ok" and res.reason == "arrived"
    assert res.distances[0] <= 1.0
    cx = 16 + 4 * float(res.latent[0, 0])  # where the generator now draws the blob
    assert 19 < cx < 23 and abs(float(res.latent[0, 1])) < 0.25  # FreeDrag may lag its handle by < 2 px
    x = res.trajectory[:, 0, 0]
    assert x[-1] > x[0] and (np.diff(x) >= -1).all()  # tracked point moves toward the target
    assert res.steps > 0 and res.seconds > 0 and res.img.shape == (3, 32, 32)


def test_motion_loss_decreases(blob):
    steps = [
        s
        for s in DragGAN(lr=0.05, max_steps=60, motion="paper").drag(blob, Z0, "z", [[16, 16]], [[21, 16]])
        if isinstance(s, DragStep)
    ]
    loss = [s.loss for s in steps]
    # the paper's loss |F(q + u) - sg F(q)| falls as the content follows; the official |F(q) - sg F(q - u)| is a
    # local contrast that need not fall
    assert np.mean(loss[-3:]) < 0.85 * np.mean(loss[:3])  # each step re-targets from the tracked point


def test_iteration_yields_steps_and_can_stop(tiny_dcgan):
    site = default_site(tiny_dcgan)
    it = DragGAN(max_steps=50).drag(tiny_dcgan, tiny_dcgan.sample(1, 1), "z", [[10, 10]], [[20, 14]])
    first = list(itertools.islice(it, 3))
    it.close()  # the caller stops early
    assert [s.step for s in first] == [0, 1, 2]
    assert all(isinstance(s, DragStep) and s.img.shape == (3, 32, 32) and s.points.shape == (1, 2) for s in first)
    assert not tiny_dcgan.site_modules[site]._forward_hooks  # scoped hooks removed


def test_stop_criterion_and_max_steps(tiny_dcgan):
    z = tiny_dcgan.sample(1, 2)
    near = DragGAN(d_stop=5).run(tiny_dcgan, z, "z", [[10, 10]], [[13, 10]])
    assert near.steps == 0 and near.converged and len(near.trajectory) == 1
    capped = DragGAN(max_steps=4, d_stop=0).run(tiny_dcgan, z, "z", [[5, 5]], [[25, 25]])
    assert capped.steps == 4 and not capped.converged and len(capped.losses) == 4
    assert capped.status == "degraded" and capped.reason == "handles short of their targets after 4 steps"
    assert not torch.equal(capped.latent, z)


@pytest.mark.parametrize("search", ["clip", "end"])
def test_freedrag_line_search_stays_on_segment(tiny_dcgan, search):
    h, t = np.array([[6.0, 8.0]]), np.array([[24.0, 20.0]])
    # "end" may roll back behind the handle (as the official get_each_point); not on this run
    res = FreeDrag(max_steps=40, d=64, search=search).run(tiny_dcgan, tiny_dcgan.sample(1, 3), "z", h, t)
    u = (t - h)[0] / np.linalg.norm(t - h)
    rel = res.trajectory[:, 0] - h[0]
    along, across = rel @ u, rel @ np.array([-u[1], u[0]])
    assert np.abs(across).max() < 1e-6
    assert along.min() >= -1e-9 and along.max() <= np.linalg.norm(t - h) + 1e-9
    assert along.max() > 0  # it did advance


def test_stylegan_optimises_first_layers_only(tiny_stylegan):
    z = tiny_stylegan.sample(1, 4)
    ws0 = tiny_stylegan.to_space(z, "z", "ws")
    res = DragGAN(max_steps=3, layers=4, d_stop=0).run(tiny_stylegan, z, "z", [[8, 8]], [[20, 8]])
    assert res.space == "ws" and res.latent.shape == (1, tiny_stylegan.num_ws, tiny_stylegan.w_dim)
    assert torch.equal(res.latent[:, 4:], ws0[:, 4:])
    assert not torch.equal(res.latent[:, :4], ws0[:, :4])


def test_mask_keeps_outside_region(blob):
    free = DragGAN(lr=0.05, max_steps=30).run(blob, Z0, "z", [[16, 16]], [[21, 16]])
    mask = np.zeros((32, 32))
    mask[:, :8] = 1  # only a far strip may change: the drag is held back
    held = DragGAN(lr=0.05, max_steps=30, lam=50).run(blob, Z0, "z", [[16, 16]], [[21, 16]], mask=mask)
    assert abs(float(held.latent[0, 0])) < abs(float(free.latent[0, 0]))


def test_radius_scaling():
    assert scaled(3, 512) == 3 and scaled(12, 1024) == 24 and scaled(3, 64) == 1 and scaled(12, 64) == 2


def test_bad_input_errors(tiny_dcgan):
    z = tiny_dcgan.sample(1, 0)
    with pytest.raises(DragError, match="handles: points must lie inside the 32x32 image"):
        DragGAN().run(tiny_dcgan, z, "z", [[40, 3]], [[5, 5]])
    with pytest.raises(DragError, match="must pair up"):
        DragGAN().run(tiny_dcgan, z, "z", [[4, 3]], [[5, 5], [6, 6]])
    with pytest.raises(DragError, match="one latent"):
        DragGAN().run(tiny_dcgan, tiny_dcgan.sample(2, 0), "z", [[4, 3]], [[5, 5]])
    with pytest.raises(DragError, match="targets: expected a list of"):
        DragGAN().run(tiny_dcgan, z, "z", [[4, 3]], [[5, 5, 5]])
    with pytest.raises(DragError, match="mask: expected a \\[32, 32\\]"):
        DragGAN().run(tiny_dcgan, z, "z", [[4, 3]], [[5, 5]], mask=np.ones((8, 8)))
    with pytest.raises(DragError, match="unknown drag method"):
        make_drag("magic")
    with pytest.raises(Exception, match="site 'nope' does not exist"):
        DragGAN(site="nope").run(tiny_dcgan, z, "z", [[4, 3]], [[5, 5]])


def test_drag_renders_fixed_offsets(blob):
    off = {"feat": torch.zeros(1, 8, 32, 32)}
    off["feat"][:, :, :, :4] = 2.0  # a bright band on the left that only the offset draws
    steps = list(DragGAN(lr=0.05, max_steps=3, d_stop=0).drag(blob, Z0, "z", [[16, 16]], [[21, 16]], offsets=off))
    with torch.no_grad(), blob.offsets(off):
        want = blob.synthesize(Z0, "z")[0]
    assert torch.allclose(steps[0].img, want, atol=1e-6)  # step 0 shows the image before any update
    assert torch.allclose(steps[-1].img[:, :, :2], want[:, :, :2], atol=1e-3)  # the band stays
    assert not blob.site_modules["feat"]._forward_hooks
    with pytest.raises(Exception, match=r"offset for site 'feat' must have shape \[1, 8, 32, 32\]"):
        DragGAN().run(blob, Z0, "z", [[16, 16]], [[21, 16]], offsets={"feat": torch.zeros(1, 8, 4, 4)})


def test_per_model_defaults(faces, tiny_dcgan):
    d = DragGAN()
    assert (d.setting(faces, "r1"), d.setting(faces, "r2")) == (48, 24)  # tuned on the face model
    assert (d.setting(tiny_dcgan, "r1"), d.setting(tiny_dcgan, "r2")) == (3, 12)  # the paper's
    assert DragGAN(r1=5).setting(faces, "r1") == 5  # what the caller gives wins
    assert default_site(faces, "draggan") == "b2" and default_site(faces, "freedrag") == "b4"
    assert d.resolved(faces)["lr"] == 0.02 and FreeDrag().resolved(faces)["template"] == "mean"  # the tuned variant


def test_official_defaults_are_the_defaults(tiny_dcgan, tiny_stylegan):
    dg = DragGAN().resolved(tiny_dcgan)  # 32 px, no tuned values
    assert {k: dg[k] for k in ("r1", "r2", "lam", "lr", "skip", "d_stop", "padding", "layers")} == {
        "r1": 3,
        "r2": 12,
        "lam": 20,
        "lr": 0.001,
        "skip": 1.0,
        "d_stop": 2.0,
        "padding": "zeros",
        "layers": 6,
    }
    assert DragGAN._official_stop(1024) == 4.0  # max(2, 2 h / 512)
    fd = FreeDrag().resolved(tiny_stylegan)
    assert {
        k: fd[k]
        for k in (
            "l",
            "d",
            "sub_steps",
            "lam",
            "lr",
            "d_stop",
            "template",
            "sampling",
            "substop",
            "arrival",
            "loss_points",
            "search",
            "extra_steps",
            "mask_mean",
            "partial",
        )
    } == {
        "l": 0.3,
        "d": 12,
        "sub_steps": 5,
        "lam": 10,
        "lr": 0.002,
        "d_stop": 1.0,
        "template": "grid",
        "sampling": "native",
        "substop": "after",
        "arrival": "official",
        "loss_points": "all",
        "search": "end",
        "extra_steps": 10,
        "mask_mean": "region",
        "partial": True,
    }
    assert FreeDrag(extra_steps=None).resolved(tiny_dcgan)["extra_steps"] is None  # None: no cap, not "unset"
    with pytest.raises(DragError, match=r"template: 'avg' is not an option; use one of \['grid', 'mean'\]"):
        FreeDrag(template="avg")
    with pytest.raises(DragError, match=r"padding: 'reflect' is not an option"):
        DragGAN(padding="reflect")


def _same(a, b):
    return (
        torch.equal(a.latent, b.latent)
        and a.trajectory.shape == b.trajectory.shape
        and np.array_equal(a.trajectory, b.trajectory)
    )


FD_CASES = {  # option -> (its non-official value, handles, targets, extra run kwargs); each run is 40 steps
    "template": ("mean", [[6.0, 8.0]], [[24.0, 20.0]], {}),
    "sampling": ("resized", [[6.0, 8.0]], [[24.0, 20.0]], {}),
    "substop": ("before", [[6.0, 8.0]], [[24.0, 20.0]], {}),
    "arrival": ("frozen", [[6.0, 8.0]], [[24.0, 20.0]], {}),
    "loss_points": ("active", [[6.0, 8.0], [20.0, 20.0]], [[24.0, 20.0], [20.0, 20.0]], {"units": "mean"}),
    "search": ("clip", [[10.0, 10.0]], [[14.0, 10.0]], {"d": 100}),  # range (6 px) longer than the line
    "mask_mean": ("image", [[6.0, 8.0]], [[24.0, 20.0]], {"mask": "left"}),
}


@pytest.mark.parametrize("option", list(FD_CASES))
def test_each_freedrag_option_changes_the_trajectory(tiny_dcgan, option):
    value, h, t, kw = FD_CASES[option]
    kw = dict(kw)
    mask = None
    if kw.pop("mask", None):
        mask = np.zeros((32, 32))
        mask[:, :16] = 1  # the left half may change
    z = tiny_dcgan.sample(1, 3)
    official = FreeDrag(max_steps=40, **kw).run(tiny_dcgan, z, "z", h, t, mask=mask)
    other = FreeDrag(max_steps=40, **kw, **{option: value}).run(tiny_dcgan, z, "z", h, t, mask=mask)
    assert not _same(official, other)


def test_freedrag_extra_steps_cap(blob):
    # the point is placed within d_stop early but its feature matches slowly: the cap cuts later sub-drags short
    kw = dict(max_steps=60, d_stop=5, d=100, units="mean")
    capped = FreeDrag(extra_steps=0, **kw).run(blob, Z0, "z", [[16, 16]], [[22, 16]])
    free = FreeDrag(extra_steps=None, **kw).run(blob, Z0, "z", [[16, 16]], [[22, 16]])
    assert not _same(capped, free) and len(capped.trajectory) > 2 * len(free.trajectory)  # more, shorter sub-drags


DG_CASES = {  # option -> (value, handles, targets, base kwargs)
    "skip": (2.0, [[6.0, 6.0], [20.0, 20.0]], [[26.0, 6.0], [21.5, 20.0]], {"d_stop": 2.0}),
    "padding": ("border", [[1.0, 1.0]], [[12.0, 12.0]], {"r1": 48}),
    "lr": (0.02, [[6.0, 8.0]], [[24.0, 20.0]], {}),
}


@pytest.mark.parametrize("option", list(DG_CASES))
def test_each_draggan_option_changes_the_trajectory(tiny_dcgan, option):
    value, h, t, kw = DG_CASES[option]
    z = tiny_dcgan.sample(1, 3)
    official = DragGAN(max_steps=8, **kw).run(tiny_dcgan, z, "z", h, t)
    other = DragGAN(max_steps=8, **kw, **{option: value}).run(tiny_dcgan, z, "z", h, t)
    assert not _same(official, other)


def test_draggan_official_stop_threshold(blob):
    # official: supervision continues down to 1 px, but the run stops once every handle is within 2 px
    res = DragGAN(lr=0.05, max_steps=60).run(blob, Z0, "z", [[16, 16]], [[21, 16]])
    assert res.status == "ok" and res.distances[0] <= 2.0
    tight = DragGAN(lr=0.05, max_steps=60, d_stop=1.0).run(blob, Z0, "z", [[16, 16]], [[21, 16]])
    assert tight.steps > res.steps and tight.distances[0] <= 1.0


@pytest.mark.parametrize("model", ["tiny_dcgan", "tiny_stylegan"])
def test_partial_forward_gives_the_full_forward_features(model, request):
    from probe.edit.drag import _Latent

    g = request.getfixturevalue(model)
    lat = _Latent(g, g.sample(1, 2), "z", 6)
    site = default_site(g, "freedrag")
    with torch.no_grad():
        part = lat.partial(g, site)
        _, full = lat.forward(g, [site])
    assert torch.equal(part, full[site]) and not g.site_modules[site]._forward_hooks
    h, t = [[8.0, 8.0]], [[20.0, 14.0]]
    runs = [FreeDrag(max_steps=12, partial=p).run(g, g.sample(1, 2), "z", h, t) for p in (True, False)]
    assert _same(*runs) and torch.equal(runs[0].img, runs[1].img)


@pytest.mark.parametrize("method", [DragGAN(lr=0.05, max_steps=50, d_stop=0), FreeDrag(lr=0.05, max_steps=50)])
def test_stop_ends_with_the_current_latent(blob, method):
    it = method.steps(blob, Z0, "z", [[16, 16]], [[28, 16]])
    seen = []
    for item in it:
        if isinstance(item, DragStep):
            seen.append(item)
            if len(seen) == 3:
                method.stop()
    res = item
    assert isinstance(res, DragResult) and res.status == "stopped" and res.reason == "stopped"
    assert res.steps == 3 and not res.converged
    assert torch.equal(res.latent, seen[-1].latent)  # the step record carries the latent after its update
    again = method.run(blob, res.latent, res.space, res.points, [[28, 16]])  # resume from where it stopped
    assert again.status != "stopped" and again.steps > 0  # a new run clears the stop flag


def test_extended_latent_and_locality(blob):
    h, t = [[16, 16]], [[21, 16]]
    plain = DragGAN(lr=0.05, max_steps=20, d_stop=0).run(blob, Z0, "z", h, t)
    ext = DragGAN(lr=0.05, max_steps=20, d_stop=0, extend="feat").run(blob, Z0, "z", h, t)
    assert list(plain.offsets) == [] and list(ext.offsets) == ["feat"] and ext.offsets["feat"].shape == (1, 8, 32, 32)
    assert float(ext.offsets["feat"].abs().max()) > 0 and not torch.equal(ext.latent, plain.latent)
    with torch.no_grad(), blob.offsets(ext.offsets):
        again = blob.synthesize(ext.latent, "z")[0]
    assert torch.allclose(again, ext.img, atol=1e-6)  # the result renders with its optimised offset
    from probe.edit.quality import outside_change

    with torch.no_grad():
        before = blob.synthesize(Z0, "z")[0]
    pts = np.array(h + t, float)
    local = DragGAN(lr=0.05, max_steps=20, d_stop=0, local=500, local_radius=64).run(blob, Z0, "z", h, t)
    assert outside_change(before, local.img, pts, 4) < outside_change(before, plain.img, pts, 4)
    assert float(local.latent.norm()) < 0.8 * float(plain.latent.norm())  # the image outside holds the blob back
    with pytest.raises(DragError, match="extend: site 'b9' does not exist"):
        DragGAN(extend="b9").run(blob, Z0, "z", h, t)


def test_handle_region_covers_the_segment():
    from probe.edit.drag import handle_region

    near = handle_region(32, np.array([[4.0, 16.0]]), np.array([[28.0, 16.0]]), 2)
    assert near[16, 4] and near[16, 16] and near[16, 28] and near[18, 16] and not near[19, 16]
    assert not near[16, 31] and not near[10, 16]
