"""Face alignment: map a photo's face onto the framing of generated faces (5 dlib landmarks -> `FACE_TEMPLATE`).

Used before inverting a photo into a face model (a zoo entry with `defaults.align_faces`). The template is the mean
5-point dlib landmarks (x, y) of 256 generated faces of the zoo's `faces` model, as fractions of the image size;
how: `probe.measures.faces.face_landmarks` on `model.synthesize(model.sample(256, 2026))`, mean over faces, / 64.
Order: outer/inner corner of the eye on the image's right, outer/inner corner of the left one, base of the nose.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import MeasureError

FACE_TEMPLATE = np.array([[0.7239, 0.4261], [0.5932, 0.4319], [0.2676, 0.4296], [0.4005, 0.4331], [0.5017, 0.7028]])


class FaceAlignError(MeasureError):
    """A photo could not be aligned to the face framing; the message names the fix."""


def _from_uint8(a: np.ndarray) -> torch.Tensor:  # [H, W, 3] uint8 -> img [3, H, W] in [-1, 1]
    return torch.from_numpy(a.astype(np.float32) / 127.5 - 1).permute(2, 0, 1).contiguous()


def detect_face(photo: np.ndarray) -> tuple[int, int, int, int]:
    """The largest face box (left, top, right, bottom) in a photo, dlib's HOG detector.  # photo [H, W, 3] uint8"""
    import dlib

    boxes = dlib.get_frontal_face_detector()(photo, 1)
    if len(boxes) == 0:
        raise FaceAlignError("no face found in the image; crop it to the face and pass align=False (--no-align)")
    b = max(boxes, key=lambda r: r.width() * r.height())
    return b.left(), b.top(), b.right(), b.bottom()


def _similarity(src: np.ndarray, dst: np.ndarray):
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):
        tf = SimilarityTransform.from_estimate(src, dst)
        if not tf:
            raise FaceAlignError("face alignment failed: the 5 landmarks are degenerate; pass align=False")
        return tf
    tf = SimilarityTransform()
    tf.estimate(src, dst)
    return tf


def _warp(photo: np.ndarray, src: np.ndarray, res: int, over: int = 4) -> np.ndarray:
    """Similarity-warp so that photo points `src` [5, 2] land on the template; render at over*res, area-downsample."""
    from skimage.transform import warp

    big = res * over
    tf = _similarity(FACE_TEMPLATE * big, src)  # output (template) coords -> photo coords
    out = warp(photo, tf, output_shape=(big, big), order=1, mode="edge", preserve_range=True)
    out = out.reshape(res, over, res, over, 3).mean((1, 3))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _warp_box(a: np.ndarray, corner: np.ndarray, side: float, res: int) -> np.ndarray:
    from skimage.transform import AffineTransform, warp

    tf = AffineTransform(scale=side / res, translation=corner)
    return np.clip(
        warp(a, tf, output_shape=(res, res), order=1, mode="edge", preserve_range=True) + 0.5, 0, 255
    ).astype(np.uint8)


def align_face(photo: np.ndarray, resolution: int, iterations: int = 2) -> torch.Tensor:
    """Crop and align a face photo to the face model's framing.  # photo [H, W, 3] uint8 -> img [3, R, R] in [-1, 1]

    Finds the face (HOG detector), reads the 5 landmarks, fits the similarity transform onto FACE_TEMPLATE and
    repeats on the aligned image, so that the landmarks are read in the same framing as for generated faces.
    """
    from .faces import face_landmarks

    a = np.ascontiguousarray(photo)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise FaceAlignError(f"photo: expected a uint8 RGB array [H, W, 3], got {a.dtype} {list(a.shape)}")
    x0, y0, x1, y1 = detect_face(a)
    s = max(x1 - x0, y1 - y0) * 1.3
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    crop_box = np.array([cx - s / 2, cy - s / 2])
    crop = _warp_box(a, crop_box, s, 128)
    lm = face_landmarks(_from_uint8(crop)[None])[0] * (s / 128) + crop_box  # photo coords
    out = _warp(a, lm, resolution)
    for _ in range(iterations - 1):  # refine: landmarks read on the aligned framing, mapped back to the photo
        lm_out = face_landmarks(_from_uint8(out)[None])[0]
        lm = _similarity(FACE_TEMPLATE * resolution, lm)(lm_out)  # where the aligned image's landmarks lie in the photo
        out = _warp(a, lm, resolution)
    return _from_uint8(out)


__all__ = ["FACE_TEMPLATE", "FaceAlignError", "align_face", "detect_face"]
