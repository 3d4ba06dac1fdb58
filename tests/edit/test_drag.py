import itertools

import numpy as np
import pytest
import torch

from probe.edit import DragError, DragGAN, DragResult, DragStep, FreeDrag, default_site, make_drag
from probe.edit.drag import scaled

Z0 = torch.zeros(1, 2)  # blob centred at (16, 16)


@pytest.mark.parametrize("method", [DragGAN(lr=0.05, max_steps=60), FreeDrag(lr=0.05, max_steps=60)])
def test_blob_moves_to_target(blob, method):
    res = method.run(blob, Z0, "z", [[16, 16]], [[21, 16]])
    assert isinstance(res, DragResult) and res.converged
    assert res.distances[0] <= 1.0
    cx = 16 + 4 * float(res.latent[0, 0])  # where the generator now draws the blob
    assert 19 < cx < 23 and abs(float(res.latent[0, 1])) < 0.25  # FreeDrag may lag its handle by < 2 px
    x = res.trajectory[:, 0, 0]
    assert x[-1] > x[0] and (np.diff(x) >= -1).all()  # tracked point moves toward the target
    assert res.steps > 0 and res.seconds > 0 and res.img.shape == (3, 32, 32)


def test_motion_loss_decreases(blob):
    steps = [s for s in DragGAN(lr=0.05, max_steps=60).drag(blob, Z0, "z", [[16, 16]], [[21, 16]])
             if isinstance(s, DragStep)]
    loss = [s.loss for s in steps]
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
    assert not torch.equal(capped.latent, z)


def test_freedrag_line_search_stays_on_segment(tiny_dcgan):
    h, t = np.array([[6.0, 8.0]]), np.array([[24.0, 20.0]])
    res = FreeDrag(max_steps=40, d=64).run(tiny_dcgan, tiny_dcgan.sample(1, 3), "z", h, t)
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
    assert (d.setting(faces, "r1", 3), d.setting(faces, "r2", 12)) == (48, 24)  # tuned on the face model
    assert (d.setting(tiny_dcgan, "r1", 3), d.setting(tiny_dcgan, "r2", 12)) == (3, 12)  # the paper's
    assert DragGAN(r1=5).setting(faces, "r1", 3) == 5  # what the caller gives wins
    assert default_site(faces, "draggan") == "b2" and default_site(faces, "freedrag") == "b4"
