"""The direction methods, in one place: name -> estimator class, display label, table order, default parameters.

Every consumer reads this registry: `probe discover --method`, the shared fit pipeline
(`probe.directions.pipeline.fit_methods`, used by the demo and `probe gt-score`), the figures' and the report's
method order and labels, and the dashboard. It names each estimator class by its import path (loaded on first
use), so the registry module itself imports no method.

A method's `defaults(FitContext)` turns the pipeline's common arguments (model, k, n_fit, seed, space,
measures) into that estimator's keyword arguments (anything else keeps the estimator's own default); a caller's
per-method options override them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .base import DirectionError


@dataclass(frozen=True)
class FitContext:
    """The common arguments of a fit: model, k directions (None: the estimator's default), n_fit samples (for
    sampling methods), seed, space (z | w; None: w when the model has it, else z), measures (supervised)."""

    model: Any
    k: int | None = None
    n_fit: int | None = None
    seed: int = 0
    space: str | None = None
    measures: Sequence[str] = ()
    progress: bool = False

    @property
    def flat_space(self) -> str:
        """`space` with ws read as w: DP-LaSE, GANSpace and random fit one w vector that ws walks broadcast."""
        sp = self.space or ("w" if "w" in self.model.spaces else "z")
        return "w" if sp == "ws" else sp


def _drop_none(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def quarter_site(model) -> str:
    """The site at a quarter of the image resolution (`b16` on a 64 px style model), else the first site."""
    want = f"b{max(4, model.resolution // 4)}"
    return want if want in model.sites else model.sites[0]


def _interfacegan(c: FitContext) -> dict:
    if not c.measures:
        raise DirectionError("interfacegan: name the measures to fit boundaries for (measures=[...] or --measures)")
    return _drop_none(
        measure=list(c.measures), space=c.space or c.flat_space, seed=c.seed, n_samples=c.n_fit, progress=c.progress
    )


def _dplase(c: FitContext) -> dict:
    own = dict(getattr(getattr(c.model, "defaults", None), "dplase", None) or {})  # the zoo entry's tuned options
    return {**own, **_drop_none(n_directions=c.k, space=c.flat_space, seed=c.seed, progress=c.progress)}


def _ganspace(c: FitContext) -> dict:
    return _drop_none(n_components=c.k, n_samples=c.n_fit, space=c.flat_space, seed=c.seed)


def _sefa(c: FitContext) -> dict:
    return _drop_none(n_components=c.k)


def _random(c: FitContext) -> dict:
    return _drop_none(K=c.k, seed=c.seed, space=c.flat_space)


@dataclass(frozen=True)
class Method:
    """One direction method. estimator: "module:Class" (imported on first use); supervised: fitted on measure
    scores (needs measures); takes_density: fit(model, density=...) accepts the study's fitted w density."""

    name: str
    label: str
    estimator: str
    defaults: Callable[[FitContext], dict]
    description: str
    supervised: bool = False
    takes_density: bool = False

    @property
    def cls(self) -> type:
        mod, _, cls = self.estimator.partition(":")
        return getattr(importlib.import_module(mod), cls)

    def params(self, ctx: FitContext, options: dict | None = None) -> dict:
        """Keyword arguments of the estimator: the defaults for ctx, then `options` (names checked)."""
        kw = self.defaults(ctx)
        opts = dict(options or {})
        valid = self.cls._get_param_names()
        bad = sorted(k for k in opts if k not in valid)
        if bad:
            raise DirectionError(
                f"options for {self.name}: {bad} are not parameters of {self.cls.__name__}; use some of {sorted(valid)}"
            )
        kw.update(opts)
        return kw

    def make(self, ctx: FitContext, options: dict | None = None):
        """A new, unfitted estimator for ctx (see params)."""
        return self.cls(**self.params(ctx, options))


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "interfacegan",
            "InterFaceGAN",
            "probe.directions.interfacegan:InterFaceGAN",
            _interfacegan,
            "linear-SVM boundary per measure (supervised)",
            supervised=True,
        ),
        Method(
            "dplase",
            "DP-LaSE",
            "probe.directions.dplase:DPLaSE",
            _dplase,
            "learned density-preserving directions with channel subspaces",
            takes_density=True,
        ),
        Method(
            "ganspace",
            "GANSpace",
            "probe.directions.ganspace:GANSpace",
            _ganspace,
            "principal components of w (or of site activations, regressed to z)",
        ),
        Method(
            "sefa",
            "SeFa",
            "probe.directions.sefa:SeFa",
            _sefa,
            "closed-form factorisation of the first latent-consuming weights",
        ),
        Method(
            "random",
            "random",
            "probe.directions.random_dirs:RandomDirections",
            _random,
            "random orthonormal directions (the baseline)",
        ),
    )
}
ORDER: tuple[str, ...] = tuple(METHODS)
BASELINE = "random"


def names() -> list[str]:
    """Registered method names in table order."""
    return list(ORDER)


def get(name: str) -> Method:
    """The Method called `name`; DirectionError naming the registered ones otherwise."""
    if name not in METHODS:
        raise DirectionError(f"method {name!r} unknown; use one of {list(ORDER)}")
    return METHODS[name]


def label(name: str) -> str:
    """Display label of a method (InterFaceGAN, DP-LaSE, ...); an unregistered name is its own label."""
    return METHODS[name].label if name in METHODS else str(name)


def ordered(methods: Sequence[str]) -> list[str]:
    """methods in table order (the registry's), then any other in the order given, each once."""
    seen = list(dict.fromkeys(methods))
    return [m for m in ORDER if m in set(seen)] + [m for m in seen if m not in METHODS]


__all__ = ["FitContext", "Method", "METHODS", "ORDER", "BASELINE", "names", "get", "label", "ordered", "quarter_site"]
