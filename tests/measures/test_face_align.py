"""Face alignment (probe.measures.face_align): template framing, one-line errors."""

import numpy as np
import pytest

from probe.measures.face_align import FACE_TEMPLATE, FaceAlignError, align_face


def test_template_is_the_face_framing():
    assert FACE_TEMPLATE.shape == (5, 2) and ((FACE_TEMPLATE > 0) & (FACE_TEMPLATE < 1)).all()
    assert FACE_TEMPLATE[0, 0] > FACE_TEMPLATE[2, 0]  # landmark 0 is the eye on the image's right
    assert FACE_TEMPLATE[4, 1] > FACE_TEMPLATE[:4, 1].max()  # the nose base lies below the eyes


def test_errors_name_the_fix():
    with pytest.raises(FaceAlignError, match=r"^no face found in the image; crop it to the face"):
        align_face(np.full((64, 64, 3), 128, np.uint8), 64)
    with pytest.raises(FaceAlignError, match=r"^photo: expected a uint8 RGB array \[H, W, 3\], got float64"):
        align_face(np.zeros((64, 64, 3)), 64)


def test_aligned_astronaut_lands_on_the_template():
    pytest.importorskip("dlib")
    from skimage import data

    from probe.measures.faces import face_landmarks

    img = align_face(data.astronaut(), 64)
    assert img.shape == (3, 64, 64) and float(img.min()) >= -1 and float(img.max()) <= 1
    err = np.linalg.norm(face_landmarks(img[None])[0] - FACE_TEMPLATE * 64, axis=1)
    assert err.mean() < 1.5, err
