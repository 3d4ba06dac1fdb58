"""SpriteFactors: the shipped factor CNN reads the exact factors of fresh sprites (a seed never used in training)."""

import numpy as np
import pytest
import torch

from probe.measures import GROUPS, MeasureSet, catalog
from probe.measures.sprites import SpriteFactors, decode, encode
from probe.train import sprites as S
from probe.train.factor_cnn import evaluate

# a little below the held-out numbers of the shipped weights (n = 2000: accuracy 1.000, R2 >= 0.994; README: Sprites)
MIN_ACCURACY = 0.98
MIN_R2 = {"scale": 0.98, "rotation": 0.98, "x": 0.99, "y": 0.99, "hue": 0.98}


@pytest.fixture(scope="module")
def measure():
    return SpriteFactors()


@pytest.fixture(scope="module")
def fresh():
    return S.dataset(300, 424242)


def test_registered_as_group():
    assert "sprites" in GROUPS
    names = [i.name for i in catalog()]
    for n in ("sprite_shape", "sprite_scale", "sprite_rotation", "sprite_x", "sprite_y", "sprite_hue"):
        assert n in names
    ms = MeasureSet(["sprites"])
    img, _ = S.dataset(3, 1)
    out = ms(img)
    assert list(out) == ms.names and all(v.shape == (3,) and v.dtype == np.float64 for v in out.values())


def test_shipped_accuracy_on_fresh_data(measure):
    m = evaluate(measure.net, n=300, seed=424242)
    assert m["shape_accuracy"] >= MIN_ACCURACY, m
    for f, lo in MIN_R2.items():
        assert m[f"{f}_r2"] >= lo, (f, m)


def test_measure_units_match_dataset(measure, fresh):
    img, f = fresh
    out = measure(img)
    assert set(np.unique(out["sprite_shape"])) <= {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(out["sprite_shape"], f["shape"])
    assert np.median(np.abs(out["sprite_x"] - f["x"])) < 0.5  # pixels
    assert np.median(np.abs(out["sprite_y"] - f["y"])) < 0.5
    assert np.median(np.abs(out["sprite_hue"] - f["hue"])) < 8  # degrees
    assert np.median(np.abs(out["sprite_scale"] - f["scale"])) < 0.01
    assert ((out["sprite_rotation"] >= 0) & (out["sprite_rotation"] < 90)).all()


def test_probs_and_features(measure, fresh):
    img, f = fresh
    p = measure.probs(img[:20])
    assert p.shape == (20, len(S.SHAPES))
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    np.testing.assert_array_equal(p.argmax(1), measure(img[:20])["sprite_shape"])
    feats = measure.features(img[:20])
    assert feats.shape[0] == 20 and feats.ndim == 2 and np.isfinite(feats).all()
    np.testing.assert_array_equal(measure.features(img[:20]), feats)  # deterministic
    assert measure.features(img[:0]).shape == (0, feats.shape[1])


def test_other_sizes_are_resized(measure, fresh):
    img, f = fresh
    big = torch.nn.functional.interpolate(img[:30], scale_factor=2, mode="nearest")
    np.testing.assert_allclose(measure(big)["sprite_x"], measure(img[:30])["sprite_x"], atol=1.0)


def test_encode_decode_round_trip():
    f = S.sample_factors(50, 5)
    cls, reg = encode(f)
    logits = torch.nn.functional.one_hot(cls, len(S.SHAPES)).float()
    back = decode(logits, reg)
    np.testing.assert_array_equal(back["shape"], f["shape"])
    for k in ("scale", "rotation", "x", "y", "hue"):
        np.testing.assert_allclose(back[k], f[k], atol=1e-4)
