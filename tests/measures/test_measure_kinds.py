"""measure_kinds / wrap / difference: measure semantics read from MeasureInfo fields, never from names."""

import numpy as np
import pytest

from probe.measures import MeasureError, MeasureInfo, MeasureSet, categorical, circular, difference, measure_kinds, wrap


def test_kinds_from_measure_set():
    k = measure_kinds(MeasureSet(["sprites", "image"]))
    assert k["sprite_shape"] == ("categorical", None)
    assert k["sprite_rotation"] == ("circular", 90.0)
    assert k["hue"] == ("circular", 360.0)
    assert k["sprite_hue"] == ("continuous", None)  # data range [0, 300): no wrap
    assert k["brightness"] == ("continuous", None)


def test_kinds_from_stored_dicts_and_old_manifests():
    ms = MeasureSet(["sprites"])
    stored = {i.name: i.to_dict() for i in ms.infos}
    assert measure_kinds(stored) == measure_kinds(ms)
    old = {"sprite_shape": {"unit": "class index"}, "sprite_rotation": {"unit": "degrees"}, "mine": {"unit": "m"}}
    assert measure_kinds(old) == {
        "sprite_shape": ("categorical", None),
        "sprite_rotation": ("circular", 90.0),
        "mine": ("continuous", None),
    }
    assert categorical(old) == ["sprite_shape"]
    assert circular(old) == {"sprite_rotation": 90.0}


def test_description_is_not_parsed():
    info = [MeasureInfo("angle", "degrees", 0, 90, "period 90 deg, a class index")]
    assert measure_kinds(info) == {"angle": ("continuous", None)}


def test_bad_stored_kind_names_field():
    with pytest.raises(MeasureError, match="measure 'a': kind 'round' is not one of continuous, categorical"):
        measure_kinds({"a": {"kind": "round"}})
    with pytest.raises(MeasureError, match="measure 'a': a circular measure needs a period"):
        measure_kinds({"a": {"kind": "circular"}})


def test_wrap_and_difference():
    np.testing.assert_allclose(wrap([-50, 50, 100, 45], 90), [40, -40, 10, -45])
    np.testing.assert_allclose(difference([85, 10], [5, 80], "circular", 90), [-10, 20])
    np.testing.assert_allclose(difference([1, 2.2], [1, 3], "categorical"), [0, 1])
    np.testing.assert_allclose(difference([3.0], [1.5], "continuous"), [1.5])


def test_short_names_drop_only_a_shared_prefix():
    from probe.measures import short_names

    assert short_names(["sprite_shape", "sprite_scale", "sprite_hue"]) == ["shape", "scale", "hue"]
    assert short_names(["brightness", "centroid_x"]) == ["brightness", "centroid_x"]
    assert short_names(["sprite_x", "hue"]) == ["sprite_x", "hue"]
    assert short_names(["face_x", "face_y", "face_scale"]) == ["x", "y", "scale"]
    assert short_names(["a_b", "a_b_c"]) == ["b", "b_c"]
    assert short_names(["a_", "a_b"]) == ["a_", "a_b"]  # stripping would leave an empty name
    assert short_names(["sprite_shape"]) == ["sprite_shape"]
