"""Direction discovery methods; each estimator's fit() yields a DirectionSet (registry.py lists them).

The names below are imported from their modules on first use: reading a DirectionSet file (`probe.directions.base`,
as the store does) imports no estimator, model or study code.

Two names are also submodules. `probe.directions.evaluate` is the function (as it always was): the import system
binds every imported submodule as an attribute of its package, and for this one name the package keeps the
function instead (`_Package`); `from probe.directions.evaluate import ...` still reads the module.
`groundtruth` is the submodule (its function is `probe.directions.groundtruth.groundtruth`).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

# name -> submodule that defines it
_NAMES = {
    "DirectionError": "base",
    "DirectionSet": "base",
    "GroundTruthScore": "disentanglement",
    "DPLaSE": "dplase",
    "density_preserve": "dplase",
    "DirectionEstimator": "estimator",
    "evaluate": "evaluate",
    "evaluate_study": "evaluate",
    "method_summary": "evaluate",
    "GANSpace": "ganspace",
    "run_groundtruth": "groundtruth",
    "InterFaceGAN": "interfacegan",
    "edit_codes": "interfacegan",
    "fit_from_model": "interfacegan",
    "project": "interfacegan",
    "sample_and_score": "interfacegan",
    "fit_methods": "pipeline",
    "RandomDirections": "random_dirs",
    "random_orthonormal": "random_dirs",
    "METHODS": "registry",
    "SeFa": "sefa",
    "factorize": "sefa",
}

__all__ = [
    "DirectionError",
    "DirectionEstimator",
    "DirectionSet",
    "DPLaSE",
    "GANSpace",
    "InterFaceGAN",
    "RandomDirections",
    "SeFa",
    "METHODS",
    "density_preserve",
    "edit_codes",
    "evaluate",
    "evaluate_study",
    "method_summary",
    "factorize",
    "fit_from_model",
    "fit_methods",
    "project",
    "random_orthonormal",
    "sample_and_score",
    "GroundTruthScore",
    "run_groundtruth",
]


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    elif (Path(__file__).parent / f"{name}.py").is_file():
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_FUNCTION_NAMED_LIKE_ITS_MODULE = ("evaluate",)


class _Package(types.ModuleType):
    """Keeps `evaluate` the function when the import system binds the submodule of that name to the package."""

    def __setattr__(self, name: str, value) -> None:
        if (
            name in _FUNCTION_NAMED_LIKE_ITS_MODULE
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # static analysers and IDEs see the real objects
    from .base import DirectionError, DirectionSet  # noqa: F401
    from .disentanglement import GroundTruthScore  # noqa: F401
    from .dplase import DPLaSE, density_preserve  # noqa: F401
    from .estimator import DirectionEstimator  # noqa: F401
    from .evaluate import evaluate, evaluate_study, method_summary  # noqa: F401
    from .ganspace import GANSpace  # noqa: F401
    from .groundtruth import run_groundtruth  # noqa: F401
    from .interfacegan import InterFaceGAN, edit_codes, fit_from_model, project, sample_and_score  # noqa: F401
    from .pipeline import fit_methods  # noqa: F401
    from .random_dirs import RandomDirections, random_orthonormal  # noqa: F401
    from .registry import METHODS  # noqa: F401
    from .sefa import SeFa, factorize  # noqa: F401
