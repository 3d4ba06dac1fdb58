"""ImageStats on images with known answers."""

import numpy as np
import pytest
import torch

from probe.measures import ImageStats, MeasureError


def rgb(r, g, b, size=8):  # a flat colour in [0, 1] -> img [1, 3, size, size] in [-1, 1]
    return torch.tensor([r, g, b], dtype=torch.float32)[None, :, None, None].expand(1, 3, size, size) * 2 - 1


@pytest.fixture(scope="module")
def stats():
    return ImageStats()


def one(stats, img):
    return {k: float(v[0]) for k, v in stats(img).items()}


def test_black_and_white(stats):
    b, w = one(stats, rgb(0, 0, 0)), one(stats, rgb(1, 1, 1))
    assert b["brightness"] == pytest.approx(0) and w["brightness"] == pytest.approx(1)
    assert b["saturation"] == 0 and w["saturation"] == 0
    assert b["contrast"] == pytest.approx(0) and w["contrast"] == pytest.approx(0)
    assert b["centroid_x"] == 0.5 and b["centroid_y"] == 0.5  # undefined centre of a black image: the middle
    assert w["centroid_x"] == pytest.approx(0.5) and w["centroid_y"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "colour, hue, luma",
    [
        ((1, 0, 0), 0, 0.299),
        ((0, 1, 0), 120, 0.587),
        ((0, 0, 1), 240, 0.114),
        ((1, 1, 0), 60, 0.886),
        ((0, 1, 1), 180, 0.701),
        ((1, 0, 1), 300, 0.413),
    ],
)
def test_pure_colours(stats, colour, hue, luma):
    s = one(stats, rgb(*colour))
    assert s["hue"] == pytest.approx(hue, abs=1e-3)
    assert s["saturation"] == pytest.approx(1)
    assert s["brightness"] == pytest.approx(luma, abs=1e-6)


def test_half_saturated_grey_mix(stats):
    s = one(stats, rgb(1, 0.5, 0.5))  # HSV: s = (1 - 0.5) / 1
    assert s["saturation"] == pytest.approx(0.5) and s["hue"] == pytest.approx(0, abs=1e-3)


def test_hue_is_a_circular_mean(stats):
    img = rgb(1, 0, 0).clone()
    img[..., :, 4:] = rgb(1, 0, 1)[..., :, 4:]  # half red (0 deg), half magenta (300 deg) -> 330, not 150
    assert one(stats, img)["hue"] == pytest.approx(330, abs=1e-3)


def test_blob_centroid_and_contrast(stats):
    img = -torch.ones(1, 3, 32, 32)
    img[..., 4:8, 20:24] = 1  # white 4x4 blob: rows 4..7, columns 20..23
    s = one(stats, img)
    assert s["centroid_x"] == pytest.approx(22 / 32) and s["centroid_y"] == pytest.approx(6 / 32)
    shifted = torch.roll(img, shifts=(8, -8), dims=(2, 3))
    t = one(stats, shifted)
    assert t["centroid_x"] == pytest.approx(14 / 32) and t["centroid_y"] == pytest.approx(14 / 32)
    frac = 16 / 1024
    assert s["contrast"] == pytest.approx(np.sqrt(frac * (1 - frac)), rel=1e-5)  # std of a 0/1 image
    assert s["brightness"] == pytest.approx(frac)


def test_half_black_half_white_contrast(stats):
    img = -torch.ones(1, 3, 8, 8)
    img[..., 4:] = 1
    s = one(stats, img)
    assert s["contrast"] == pytest.approx(0.5) and s["centroid_x"] == pytest.approx(0.75)


def test_batch_shapes_and_ranges(stats, tiny_dcgan):
    img = tiny_dcgan.synthesize(tiny_dcgan.sample(6, 0))
    s = stats(img)
    assert set(s) == set(stats.names)
    for info in stats.infos:
        assert s[info.name].shape == (6,) and s[info.name].dtype == np.float64
        assert (s[info.name] >= info.lo).all() and (s[info.name] <= info.hi).all()


def test_bad_shape(stats):
    with pytest.raises(MeasureError, match="img"):
        stats(torch.zeros(3, 8, 8))
