"""Editing: point drags (DragGAN, FreeDrag), GAN inversion, and the drag evaluation harness."""

from .drag import DragError, DragGAN, DragResult, DragStep, FreeDrag, default_site, make_drag
from .invert import (
    FACE_TEMPLATE,
    Inversion,
    InversionError,
    InversionResult,
    InversionStep,
    align_face,
    comparison_png,
    invert,
    psnr,
)
from .mix import MixError, grid_png, mix_transfer, mixing_grid, style_mix
from .quality import EditQuality, QualityGuard, edit_record

__all__ = [
    "DragGAN",
    "FreeDrag",
    "DragStep",
    "DragResult",
    "DragError",
    "make_drag",
    "default_site",
    "invert",
    "Inversion",
    "InversionStep",
    "InversionResult",
    "InversionError",
    "align_face",
    "comparison_png",
    "psnr",
    "FACE_TEMPLATE",
    "QualityGuard",
    "EditQuality",
    "edit_record",
    "style_mix",
    "mixing_grid",
    "grid_png",
    "mix_transfer",
    "MixError",
]
