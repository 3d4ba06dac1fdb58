import numpy as np
import pytest
import torch
from PIL import Image

from probe.edit import FACE_TEMPLATE, InversionError, align_face, invert, psnr
from probe.edit.invert import image_loss, ssim


def test_inverts_generated_image_in_z(blob):
    z = torch.tensor([[1.0, -1.0]])
    with torch.no_grad():
        target = blob.synthesize(z, "z")[0]
    res = invert(blob, target, steps=60, n_init=1, lr=0.1)  # start at z = 0: the blob sits 5.7 px away
    assert res.space == "z" and res.latent.shape == (1, 2) and res.img.shape == (3, 32, 32)
    assert res.psnr > res.psnr_init + 15
    assert torch.allclose(res.latent, z, atol=0.05)
    assert res.psnr == pytest.approx(psnr(blob.synthesize(res.latent, "z")[0], target), abs=1e-4)
    assert np.mean(res.history[-5:]) < 0.2 * np.mean(res.history[:5])


def test_best_of_several_starts(blob):
    with torch.no_grad():
        target = blob.synthesize(torch.tensor([[1.0, -1.0]]), "z")[0]
    one = invert(blob, target, steps=1, n_init=1)
    many = invert(blob, target, steps=1, n_init=16)
    assert many.psnr_init > one.psnr_init


def test_inverts_stylegan_in_w(tiny_stylegan):
    with torch.no_grad():
        target = tiny_stylegan.synthesize(tiny_stylegan.sample(1, 5), "z")[0]
    res = invert(tiny_stylegan, target, steps=40)
    assert res.space == "w" and res.latent.shape == (1, tiny_stylegan.w_dim)
    assert res.psnr > res.psnr_init + 3


def test_losses_are_zero_on_identical_images():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(image_loss(x, x, 0.5), torch.zeros(2), atol=1e-5)
    assert (image_loss(x, -x, 0.5) > 1).all()


def test_picture_input_is_resized(tiny_dcgan):
    pic = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    res = invert(tiny_dcgan, pic, steps=2, n_init=2, align=False)
    assert res.target.shape == (3, 32, 32) and not res.aligned


def test_bad_images_give_clear_errors(tiny_dcgan):
    with pytest.raises(InversionError, match=r"img: expected a tensor \[3, 32, 32\]"):
        invert(tiny_dcgan, torch.zeros(3, 16, 16), steps=1)
    with pytest.raises(InversionError, match="img: expected a torch tensor"):
        invert(tiny_dcgan, [[1, 2, 3]], steps=1)
    with pytest.raises(InversionError, match="must be uint8"):
        invert(tiny_dcgan, np.zeros((32, 32, 3), np.float32), steps=1)
    with pytest.raises(InversionError, match="in \\[-1, 1\\]"):
        invert(tiny_dcgan, torch.full((3, 32, 32), 3.0), steps=1)
    with pytest.raises(InversionError, match="does not exist"):
        invert(tiny_dcgan, "no/such/file.png", steps=1)
    with pytest.raises(InversionError, match="no face found"):
        invert(tiny_dcgan, np.full((64, 64, 3), 128, np.uint8), steps=1, align=True)
    with pytest.raises(Exception, match="space 'w' is not available"):
        invert(tiny_dcgan, torch.zeros(3, 32, 32), space="w", steps=1)


def test_align_astronaut_matches_template():
    from skimage import data

    from probe.measures.faces import face_landmarks

    img = align_face(data.astronaut(), 64)
    assert img.shape == (3, 64, 64) and img.min() >= -1 and img.max() <= 1
    err = np.linalg.norm(face_landmarks(img[None])[0] - FACE_TEMPLATE * 64, axis=1)
    assert err.mean() < 1.5


def _two_blobs(blob):
    with torch.no_grad():  # no single z draws two blobs: the latent alone cannot reconstruct this
        return blob.synthesize(torch.tensor([[1.5, -1.5], [-1.5, 1.5]]), "z").max(0).values


def test_extended_inversion_fits_what_the_latent_cannot(blob):
    target = _two_blobs(blob)
    plain = invert(blob, target, steps=40, n_init=4)
    ext = invert(
        blob, target, steps=40, n_init=4, offset_site="feat", offset_steps=150, offset_lr=0.05, offset_reg=0.01
    )
    assert plain.offsets == {} and plain.psnr_latent == pytest.approx(plain.psnr)
    assert list(ext.offsets) == ["feat"] and ext.offsets["feat"].shape == (1, 8, 32, 32)
    assert ext.psnr_latent == pytest.approx(plain.psnr, abs=1e-4)  # stage 1 is the same inversion
    assert ext.psnr > ext.psnr_latent + 6
    assert torch.equal(ext.latent, plain.latent)  # the latent is held fixed in stage 2
    with torch.no_grad(), blob.offsets(ext.offsets):
        again = blob.synthesize(ext.latent, "z")[0]
    assert torch.allclose(again, ext.img, atol=1e-6) and not blob.site_modules["feat"]._forward_hooks


def test_offset_regulariser_shrinks_the_offset(blob):
    target = _two_blobs(blob)
    size = [
        float(
            invert(blob, target, steps=5, n_init=1, offset_site="feat", offset_steps=40, offset_lr=0.05, offset_reg=r)
            .offsets["feat"]
            .abs()
            .mean()
        )
        for r in (0.0, 100.0)
    ]
    assert size[1] < 0.5 * size[0]


def test_extended_inversion_bad_site(blob):
    with pytest.raises(InversionError, match="offset_site: site 'b9' does not exist"):
        invert(blob, torch.zeros(3, 32, 32), steps=1, offset_site="b9")


def test_inversion_object_yields_steps_with_the_same_numbers(blob):
    from probe.edit import Inversion, InversionResult, InversionStep

    target = _two_blobs(blob)
    kw = dict(n_init=4, seed=3, offset_site="feat", offset_steps=10, offset_lr=0.05, offset_reg=0.01)
    items = list(Inversion(max_steps=20, **kw).steps(blob, target))
    steps, res = items[:-1], items[-1]
    assert isinstance(res, InversionResult) and all(isinstance(s, InversionStep) for s in steps)
    assert [s.stage for s in steps] == ["latent"] * 20 + ["offset"] * 10 and [s.step for s in steps] == list(range(30))
    assert [s.loss for s in steps] == res.history and steps[0].img.shape == (3, 32, 32)
    assert torch.equal(steps[19].latent, res.latent)  # the latent after the last latent step
    # the numbers of the function this object replaced, for the same seed (pinned before the change)
    assert res.psnr == pytest.approx(46.63791535562987, abs=1e-6)
    assert res.psnr_latent == pytest.approx(38.91259091276143, abs=1e-6)
    assert res.psnr_init == pytest.approx(37.96717499991686, abs=1e-6)
    assert res.latent[0].tolist() == pytest.approx([1.245999813079834, -1.0324537754058838], abs=1e-6)
    assert res.status == "ok"
    same = invert(blob, target, steps=20, **kw)
    assert torch.equal(same.latent, res.latent) and same.psnr == res.psnr and same.history == res.history


def test_inversion_stop_and_resume(blob):
    from probe.edit import Inversion, InversionStep

    target = _two_blobs(blob)
    inv = Inversion(max_steps=40, n_init=4, offset_site="feat", offset_steps=20)
    seen = 0
    for item in inv.steps(blob, target):
        if isinstance(item, InversionStep):
            seen += 1
            if seen == 5:
                inv.stop()  # as the dashboard's Stop does, from the job thread
    res = item
    assert res.status == "stopped" and len(res.history) == 5 and res.offsets == {}  # the offset stage is skipped
    assert res.psnr == pytest.approx(psnr(blob.synthesize(res.latent, "z")[0], target), abs=1e-4)
    again = inv.run(blob, target, start=res.latent)  # resume from the stopped latent; the flag is cleared
    assert again.status == "ok" and len(again.history) == 60 and list(again.offsets) == ["feat"]
    assert again.psnr_init == pytest.approx(res.psnr, abs=1e-4)  # it starts where the stopped run ended


def test_inversion_parameters_are_checked(blob):
    from probe.edit import Inversion

    with pytest.raises(InversionError, match="steps must be >= 1 and lr > 0; got steps=0"):
        Inversion(max_steps=0)
    with pytest.raises(InversionError, match="offset_steps must be >= 1"):
        Inversion(offset_site="feat", offset_steps=0)
    assert Inversion(max_steps=7).params()["max_steps"] == 7
