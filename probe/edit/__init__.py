"""Editing: point drags (DragGAN, FreeDrag), GAN inversion, and the drag evaluation harness."""
from .drag import DEFAULT_SITES, DragError, DragGAN, DragResult, DragStep, FreeDrag, default_site, make_drag
from .invert import FACE_TEMPLATE, InversionError, InversionResult, align_face, comparison_png, invert, psnr

__all__ = ["DragGAN", "FreeDrag", "DragStep", "DragResult", "DragError", "make_drag", "default_site", "DEFAULT_SITES",
           "invert", "InversionResult", "InversionError", "align_face", "comparison_png", "psnr", "FACE_TEMPLATE"]
