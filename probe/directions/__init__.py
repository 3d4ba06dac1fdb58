"""Direction discovery methods; each fit() yields a DirectionSet."""
from .base import DirectionError, DirectionSet

__all__ = ["DirectionError", "DirectionSet"]
