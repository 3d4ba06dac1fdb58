"""Measures: images -> named attribute scores.

Measures are named individually (`gender`, `brightness`) or by group (`faces`, `image`); a user measure is
`path/to/file.py:factory` returning a `Measure`. `MeasureSet` runs each provider once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..userfile import call_factory
from .base import (
    Measure,
    MeasureError,
    MeasureInfo,
    categorical,
    check_img,
    circular,
    difference,
    measure_kinds,
    short_names,
    to_uint8,
    wrap,
)
from .image import ImageStats


def _faces() -> type[Measure]:
    from .faces import FaceMeasures

    return FaceMeasures


def _sprites() -> type[Measure]:
    from .sprites import SpriteFactors

    return SpriteFactors


GROUPS: dict[str, Callable[[], type[Measure]]] = {"faces": _faces, "image": lambda: ImageStats, "sprites": _sprites}


def catalog() -> list[MeasureInfo]:
    """Every built-in measure with its unit and range."""
    return [i for g in GROUPS.values() for i in g().infos]


def _user_measure(spec: str) -> Measure:
    m = call_factory(spec, "measure", MeasureError)
    if not isinstance(m, Measure) or not m.infos:
        raise MeasureError(f"measure {spec!r} must return a probe.measures.Measure with non-empty `infos`")
    return m


class MeasureSet:
    """The measures a study asks for.  __call__(img [N, 3, H, W]) -> {name: float64 [N]} in `names` order."""

    def __init__(self, names: Sequence[str]):
        if not names:
            raise MeasureError("measures: name at least one measure, e.g. ['gender', 'brightness'] or ['faces']")
        by_name = {i.name: g for g, f in GROUPS.items() for i in f().infos}
        self._providers: dict[str, Measure] = {}
        self._lazy: dict[str, Callable[[], Measure]] = {}
        self.infos: list[MeasureInfo] = []
        for n in names:
            if ".py:" in n:
                m = _user_measure(n)
                self._providers[n] = m
                self.infos += [i for i in m.infos if i.name not in self.names]
            elif n in GROUPS:
                self._lazy.setdefault(n, lambda g=n: GROUPS[g]()())
                self.infos += [i for i in GROUPS[n]().infos if i.name not in self.names]
            elif n in by_name:
                g = by_name[n]
                self._lazy.setdefault(g, lambda g=g: GROUPS[g]()())
                if n not in self.names:
                    self.infos.append(next(i for i in GROUPS[g]().infos if i.name == n))
            else:
                raise MeasureError(
                    f"unknown measure {n!r}; use one of {sorted(by_name)} or a group "
                    f"{sorted(GROUPS)} or path/to/file.py:factory"
                )
        self._owner = {}
        for key, f in self._lazy.items():
            for i in GROUPS[key]().infos:
                self._owner.setdefault(i.name, key)
        for key, m in self._providers.items():
            for i in m.infos:
                self._owner.setdefault(i.name, key)

    @property
    def names(self) -> list[str]:
        return [i.name for i in self.infos]

    def info(self, name: str) -> MeasureInfo:
        return next(i for i in self.infos if i.name == name)

    @property
    def device(self) -> str:
        """ "cpu" when some measure of the set computes on the CPU (the engine overlaps it with rendering), else
        "any" (every measure computes on the images' device)."""
        keys = dict.fromkeys(self._owner[n] for n in self.names)
        return "any" if all(self._device(k) == "any" for k in keys) else "cpu"

    def _device(self, key: str) -> str:
        if key in self._providers:
            return getattr(self._providers[key], "device", "cpu")
        return getattr(GROUPS[key](), "device", "cpu")

    def provider(self, key: str) -> Measure:
        if key not in self._providers:
            self._providers[key] = self._lazy[key]()
        return self._providers[key]

    def __call__(self, img: torch.Tensor) -> dict[str, np.ndarray]:
        img = check_img(img, keep_device=True)
        host = img if img.device.type == "cpu" else None
        keys = dict.fromkeys(self._owner[n] for n in self.names)
        scores: dict[str, np.ndarray] = {}
        for k in keys:
            if self._device(k) == "any":
                got = self.provider(k)(img)
            else:
                host = img.cpu() if host is None else host
                got = self.provider(k)(host)
            for n in self.names:
                if self._owner[n] == k:
                    if n not in got:
                        raise MeasureError(f"measure {k!r} declared {n!r} in its infos but did not return it")
                    if np.shape(got[n]) != (len(img),):
                        raise MeasureError(
                            f"measure {k!r} returned {n!r} with shape {list(np.shape(got[n]))}; "
                            f"expected one value per image [{len(img)}]"
                        )
                    scores[n] = got[n]
        return {n: np.asarray(scores[n], dtype=np.float64) for n in self.names}


__all__ = [
    "Measure",
    "MeasureError",
    "MeasureInfo",
    "MeasureSet",
    "ImageStats",
    "catalog",
    "check_img",
    "to_uint8",
    "GROUPS",
    "measure_kinds",
    "categorical",
    "circular",
    "wrap",
    "difference",
    "short_names",
]
