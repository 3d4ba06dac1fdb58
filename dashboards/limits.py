"""Server-side bounds on everything the browser sends to the dashboard (one place; docs/readme/86-threat-model.md
lists them). `create_app(study_dir, limits=Limits(...))` takes other values (tests use tiny ones)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

MAX_REQUEST_BYTES = 16 * 2**20  # any request body (Flask MAX_CONTENT_LENGTH: 413 before the body is read)
MAX_UPLOAD_BYTES = 10 * 2**20  # one uploaded image file (decoded from its base64 data URI)
MAX_PIXELS = 4096 * 4096  # width x height of an uploaded image, checked on its header before decoding
MAX_STEPS = 2000  # drag steps and inversion steps per run
MAX_POINTS = 32  # handle/target pairs per drag
JOB_TIME_LIMIT_S = 600.0  # a drag or inversion job is stopped after this many seconds

# PIL's own guard for any other decoding path: it warns above MAX_IMAGE_PIXELS and refuses above twice that
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class Limits:
    """The bounds one app enforces (defaults: the module constants)."""

    max_request_bytes: int = MAX_REQUEST_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    max_steps: int = MAX_STEPS
    max_points: int = MAX_POINTS
    job_time_limit_s: float = JOB_TIME_LIMIT_S


LIMITS = Limits()
