"""Direction discovery methods; each estimator's fit() yields a DirectionSet (registry.py lists them).

The names below are imported from their modules on first use: reading a DirectionSet file (`probe.directions.base`,
as the store does) imports no estimator, model or study code.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

# name -> submodule that defines it
_NAMES = {"DirectionError": "base", "DirectionSet": "base", "GroundTruthScore": "disentanglement",
          "DPLaSE": "dplase", "density_preserve": "dplase", "DirectionEstimator": "estimator",
          "evaluate": "evaluate", "evaluate_study": "evaluate", "method_summary": "evaluate", "GANSpace": "ganspace",
          "groundtruth": "groundtruth", "run_groundtruth": "groundtruth", "InterFaceGAN": "interfacegan",
          "edit_codes": "interfacegan", "fit_from_model": "interfacegan", "project": "interfacegan",
          "sample_and_score": "interfacegan", "fit_methods": "pipeline", "RandomDirections": "random_dirs",
          "random_orthonormal": "random_dirs", "METHODS": "registry", "SeFa": "sefa", "factorize": "sefa"}

__all__ = ["DirectionError", "DirectionEstimator", "DirectionSet", "DPLaSE", "GANSpace", "InterFaceGAN",
           "RandomDirections", "SeFa", "METHODS", "density_preserve", "edit_codes", "evaluate", "evaluate_study",
           "method_summary", "factorize", "fit_from_model", "fit_methods", "project", "random_orthonormal",
           "sample_and_score", "GroundTruthScore", "groundtruth", "run_groundtruth"]


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    elif (Path(__file__).parent / f"{name}.py").is_file():
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value   # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real objects
    from .base import DirectionError, DirectionSet  # noqa: F401
    from .disentanglement import GroundTruthScore  # noqa: F401
    from .dplase import DPLaSE, density_preserve  # noqa: F401
    from .estimator import DirectionEstimator  # noqa: F401
    from .evaluate import evaluate, evaluate_study, method_summary  # noqa: F401
    from .ganspace import GANSpace  # noqa: F401
    from .groundtruth import groundtruth, run_groundtruth  # noqa: F401
    from .interfacegan import InterFaceGAN, edit_codes, fit_from_model, project, sample_and_score  # noqa: F401
    from .pipeline import fit_methods  # noqa: F401
    from .random_dirs import RandomDirections, random_orthonormal  # noqa: F401
    from .registry import METHODS  # noqa: F401
    from .sefa import SeFa, factorize  # noqa: F401
