"""latent-probe: interpret and edit the latent spaces of GAN image generators.

The names a notebook needs, imported on first use (``import probe`` loads neither torch nor dash)::

    import probe
    model = probe.load_model("tiny-stylegan")                 # a Generator
    img = model.synthesize(model.sample(8, seed=0), "z")       # [8, 3, H, W] in [-1, 1]
    scores = probe.MeasureSet(["image"])(img)                  # {measure: float64 [8]}
    study = probe.run_study(spec, "studies/nb")                # spec: StudySpec, dict of its fields or TOML path
    effects = probe.effects(study)                             # slopes with CIs and BH q-values per (target, measure)
    probe.figures.effects_forest(effects)                      # a plotly figure

Submodules (``probe.figures``, ``probe.stats``, ``probe.directions`` ...) load the same way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> (module, attribute): the notebook API. Each is imported from its module the first time it is used.
_API: dict[str, tuple[str, str]] = {
    # models
    "load_model": ("probe.models.zoo", "load_model"),
    "list_models": ("probe.models.zoo", "list_models"),
    "Generator": ("probe.models.base", "Generator"),
    # measures
    "MeasureSet": ("probe.measures", "MeasureSet"),
    "Measure": ("probe.measures", "Measure"),
    "MeasureInfo": ("probe.measures", "MeasureInfo"),
    "measure_catalog": ("probe.measures", "catalog"),
    # studies: specify, run, open, query
    "StudySpec": ("probe.study", "StudySpec"),
    "parse_spec": ("probe.study", "parse_spec"),
    "load_spec": ("probe.study", "load_spec"),
    "run_study": ("probe.study", "run_study"),
    "Study": ("probe.store", "Study"),
    "open_study": ("probe.store", "Study"),
    "Query": ("probe.query", "Query"),
    "render": ("probe.engine", "render"),
    "rerender": ("probe.restudy", "rerender"),
    # statistics and embedding
    "analyze": ("probe.stats", "analyze"),
    "effects": ("probe.stats", "effects"),
    "correlations": ("probe.stats", "correlations"),
    "controlling": ("probe.stats", "controlling"),
    "LatentEmbedding": ("probe.embed", "LatentEmbedding"),
    "embed_study": ("probe.embed", "embed_study"),
    # directions
    "DirectionSet": ("probe.directions.base", "DirectionSet"),
    "InterFaceGAN": ("probe.directions.interfacegan", "InterFaceGAN"),
    "DPLaSE": ("probe.directions.dplase", "DPLaSE"),
    "GANSpace": ("probe.directions.ganspace", "GANSpace"),
    "SeFa": ("probe.directions.sefa", "SeFa"),
    "RandomDirections": ("probe.directions.random_dirs", "RandomDirections"),
    "evaluate_directions": ("probe.directions.evaluate", "evaluate"),
    "direction_methods": ("probe.directions.registry", "METHODS"),
    "fit_methods": ("probe.directions.pipeline", "fit_methods"),
    # editing
    "DragGAN": ("probe.edit.drag", "DragGAN"),
    "FreeDrag": ("probe.edit.drag", "FreeDrag"),
    "Inversion": ("probe.edit.invert", "Inversion"),
    "invert": ("probe.edit.invert", "invert"),
    "style_mix": ("probe.edit.mix", "style_mix"),
    # errors
    "ProbeError": ("probe.errors", "ProbeError"),
}

# submodules reachable as attributes without an explicit import (``probe.figures.effects_forest``)
_SUBMODULES = (
    "models",
    "measures",
    "study",
    "store",
    "query",
    "stats",
    "embed",
    "directions",
    "edit",
    "walks",
    "engine",
    "figures",
    "schema",
    "errors",
    "density",
    "restudy",
    "io",
)

__all__ = sorted(_API) + list(_SUBMODULES)


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"probe.{name}")
    else:
        raise AttributeError(f"module 'probe' has no attribute {name!r}; the notebook API is {', '.join(__all__)}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the real objects
    from .directions.base import DirectionSet  # noqa: F401
    from .directions.dplase import DPLaSE  # noqa: F401
    from .directions.evaluate import evaluate as evaluate_directions  # noqa: F401
    from .directions.ganspace import GANSpace  # noqa: F401
    from .directions.interfacegan import InterFaceGAN  # noqa: F401
    from .directions.pipeline import fit_methods  # noqa: F401
    from .directions.random_dirs import RandomDirections  # noqa: F401
    from .directions.registry import METHODS as direction_methods  # noqa: F401
    from .directions.sefa import SeFa  # noqa: F401
    from .edit.drag import DragGAN, FreeDrag  # noqa: F401
    from .edit.invert import Inversion, invert  # noqa: F401
    from .edit.mix import style_mix  # noqa: F401
    from .embed import LatentEmbedding, embed_study  # noqa: F401
    from .engine import render  # noqa: F401
    from .errors import ProbeError  # noqa: F401
    from .measures import Measure, MeasureInfo, MeasureSet  # noqa: F401
    from .measures import catalog as measure_catalog  # noqa: F401
    from .models.base import Generator  # noqa: F401
    from .models.zoo import list_models, load_model  # noqa: F401
    from .query import Query  # noqa: F401
    from .restudy import rerender  # noqa: F401
    from .stats import analyze, controlling, correlations, effects  # noqa: F401
    from .store import Study  # noqa: F401
    from .store import Study as open_study  # noqa: F401
    from .study import StudySpec, load_spec, parse_spec, run_study  # noqa: F401
