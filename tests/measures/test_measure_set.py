"""MeasureSet: groups, single names, order, unknown names, user measure files."""

import numpy as np
import pytest
import torch

from probe.measures import MeasureError, MeasureSet, catalog
from probe.measures.image import ImageStats

USER = """
import numpy as np
from probe.measures import Measure, MeasureInfo

class Red(Measure):
    infos = (MeasureInfo("redness", "fraction", 0.0, 1.0, "mean red channel"),)
    def __call__(self, img):
        return {"redness": ((img[:, 0] + 1) / 2).mean((1, 2)).numpy()}

class Liar(Measure):
    infos = (MeasureInfo("promised", "x", 0.0, 1.0, "declared but never returned"),)
    def __call__(self, img):
        return {"other": np.zeros(len(img))}

def make():
    return Red()

def liar():
    return Liar()

def not_a_measure():
    return 42
"""


@pytest.fixture
def user_file(tmp_path):
    p = tmp_path / "my_measures.py"
    p.write_text(USER)
    return p


def test_group_expands_in_declared_order():
    ms = MeasureSet(["image"])
    assert ms.names == [i.name for i in ImageStats.infos]
    assert MeasureSet(["faces"]).names == ["gender", "age", "yaw", "roll", "face_x", "face_y", "face_scale"]


def test_single_names_keep_the_asked_order_and_dedupe():
    ms = MeasureSet(["hue", "brightness", "hue", "image"])
    assert ms.names[:2] == ["hue", "brightness"] and len(ms.names) == len(set(ms.names)) == 6
    s = ms(torch.zeros(2, 3, 8, 8))
    assert list(s) == ms.names and all(v.shape == (2,) for v in s.values())
    assert ms.info("hue").unit == "degrees"


def test_faces_are_loaded_only_when_asked():
    ms = MeasureSet(["gender", "brightness"])
    assert ms._providers == {}  # lazily built on the first call


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(MeasureError) as e:
        MeasureSet(["brightnes"])
    msg = str(e.value)
    assert "'brightnes'" in msg and "brightness" in msg and "gender" in msg and "file.py:factory" in msg
    assert "\n" not in msg


def test_empty_list_is_an_error():
    with pytest.raises(MeasureError, match="at least one"):
        MeasureSet([])


def test_catalog_declares_every_measure():
    names = [i.name for i in catalog()]
    assert {
        "gender",
        "age",
        "yaw",
        "roll",
        "face_x",
        "face_y",
        "face_scale",
        "brightness",
        "saturation",
        "hue",
        "contrast",
    } <= set(names)
    assert len(names) == len(set(names))
    assert all(i.lo < i.hi and i.unit and i.description for i in catalog())


def test_user_measure_file(user_file):
    ms = MeasureSet([f"{user_file}:make", "brightness"])
    assert ms.names == ["redness", "brightness"]
    img = torch.full((3, 3, 4, 4), -1.0)
    img[1, 0] = 1.0
    s = ms(img)
    np.testing.assert_allclose(s["redness"], [0, 1, 0])


def test_user_measure_errors(user_file, tmp_path):
    with pytest.raises(MeasureError, match="does not exist"):
        MeasureSet([f"{tmp_path / 'nope.py'}:make"])
    with pytest.raises(MeasureError, match="failed to load"):
        MeasureSet([f"{user_file}:missing"])
    with pytest.raises(MeasureError, match="must return a probe.measures.Measure"):
        MeasureSet([f"{user_file}:not_a_measure"])
    ms = MeasureSet([f"{user_file}:liar"])
    with pytest.raises(MeasureError, match="did not return it"):
        ms(torch.zeros(1, 3, 4, 4))
