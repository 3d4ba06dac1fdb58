"""The procedural sprites dataset: exact, deterministic labels checked against the rendered pixels."""

import numpy as np
import pytest
import torch

from probe.measures import ImageStats
from probe.train import sprites as S


def one(**kw):
    f = {"shape": 0, "scale": 0.3, "rotation": 0.0, "x": 32.0, "y": 32.0, "hue": 120.0}
    f.update(kw)
    return {k: np.array([v]) for k, v in f.items()}


def cover(img):  # [N, 3, H, W] in [-1, 1] -> coverage [N, H, W] (value 1 colours: max channel = coverage)
    return ((img + 1) / 2).max(1).values


def centroid(c):  # [H, W] -> (x, y) in pixel coordinates (pixel centres at +0.5)
    ys, xs = torch.meshgrid(torch.arange(c.shape[0]) + 0.5, torch.arange(c.shape[1]) + 0.5, indexing="ij")
    return float((c * xs).sum() / c.sum()), float((c * ys).sum() / c.sum())


def test_factors_deterministic_and_in_range():
    a, b = S.sample_factors(500, 3), S.sample_factors(500, 3)
    assert list(a) == list(S.FACTORS)
    for f in S.FACTORS:
        np.testing.assert_array_equal(a[f], b[f])
        lo, hi = S.RANGES[f]
        assert a[f].min() >= lo and a[f].max() < hi
    assert set(np.unique(a["shape"])) == {0, 1, 2}
    assert not np.array_equal(S.sample_factors(5, 4)["x"], a["x"][:5])


def test_render_shape_range_and_deterministic():
    img, f = S.dataset(6, 1)
    assert img.shape == (6, 3, 64, 64) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    assert torch.equal(img, S.render(f))
    assert (img[:, :, 0, 0] == -1).all()  # black background


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_centroid_matches_xy(shape):
    f = S.sample_factors(12, 10 + shape)
    f["shape"][:] = shape
    c = cover(S.render(f))
    for i in range(12):
        x, y = centroid(c[i])
        assert abs(x - f["x"][i]) < 0.5 and abs(y - f["y"][i]) < 0.5, (shape, i, x, y, f["x"][i], f["y"][i])


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_area_grows_with_scale(shape):
    scales = np.linspace(0.2, 0.399, 6)
    f = {k: np.repeat(v, 6) for k, v in one(shape=shape, rotation=30.0).items()}
    f["scale"] = scales
    area = cover(S.render(f)).sum((1, 2)).numpy()
    assert (np.diff(area) > 0).all()
    np.testing.assert_allclose(area / area[0], (scales / scales[0]) ** 2, rtol=0.03)  # area ~ scale^2
    if shape == 0:  # square of side scale * 64
        np.testing.assert_allclose(area, (scales * 64) ** 2, rtol=0.02)


def test_hue_matches_image_hue():
    hues = np.array([0.0, 37.0, 120.0, 200.0, 299.0])
    f = {k: np.repeat(v, 5) for k, v in one(shape=1).items()}
    f["hue"] = hues
    got = ImageStats()(S.render(f))["hue"]
    np.testing.assert_allclose((got - hues + 180) % 360 - 180, 0, atol=1.0)


def test_rotation_is_counter_clockwise_on_screen():
    for rot in (10.0, 45.0, 80.0):  # the ellipse's major axis angle, measured with y pointing up
        c = cover(S.render(one(shape=1, rotation=rot, scale=0.39)))[0]
        ys, xs = torch.nonzero(c > 0.5, as_tuple=True)
        u, v = xs.double() - xs.double().mean(), -(ys.double() - ys.double().mean())
        cov = torch.stack([u, v]).cov()
        evals, evecs = torch.linalg.eigh(cov)
        major = evecs[:, -1]
        ang = float(torch.rad2deg(torch.atan2(major[1], major[0]))) % 180
        assert abs(ang - rot) < 2, (rot, ang)


def test_sprite_always_inside_frame():
    extreme = []
    for shape in range(3):
        for rot in (0.0, 30.0, 45.0, 60.0, 89.9):
            for x, y in ((20.0, 20.0), (43.99, 43.99), (20.0, 43.99)):
                extreme.append({"shape": shape, "scale": 0.3999, "rotation": rot, "x": x, "y": y, "hue": 60.0})
    f = {k: np.array([e[k] for e in extreme]) for k in S.FACTORS}
    c = cover(S.render(f))
    border = torch.cat([c[:, 0], c[:, -1], c[:, :, 0], c[:, :, -1]], 1)
    assert border.max() == 0


def test_shapes_differ_and_bad_factors_refused():
    f = {k: np.repeat(v, 3) for k, v in one().items()}
    f["shape"] = np.arange(3)
    img = S.render(f)
    assert not torch.equal(img[0], img[1]) and not torch.equal(img[1], img[2])
    with pytest.raises(ValueError, match="lack"):
        S.render({"shape": [0]})
    with pytest.raises(ValueError, match="class index"):
        S.render({**one(), "shape": np.array([3])})
    assert S.render({k: np.zeros(0) for k in S.FACTORS}).shape == (0, 3, 64, 64)
