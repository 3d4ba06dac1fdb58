"""Editing: point drags (DragGAN, FreeDrag), GAN inversion, and the drag evaluation harness."""
from .drag import DEFAULT_SITES, MODEL_DEFAULTS, DragError, DragGAN, DragResult, DragStep, FreeDrag, default_site, make_drag
from .invert import FACE_TEMPLATE, InversionError, InversionResult, align_face, comparison_png, invert, psnr
from .mix import MixError, grid_png, mix_transfer, mixing_grid, style_mix

__all__ = ["DragGAN", "FreeDrag", "DragStep", "DragResult", "DragError", "make_drag", "default_site", "DEFAULT_SITES",
           "MODEL_DEFAULTS",
           "invert", "InversionResult", "InversionError", "align_face", "comparison_png", "psnr", "FACE_TEMPLATE",
           "style_mix", "mixing_grid", "grid_png", "mix_transfer", "MixError"]
