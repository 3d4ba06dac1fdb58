"""A study's rows, re-rendered: the study's model (with its trust rules), its targets, the engine's pixels.

The store (`probe.store.Study`) only reads and writes files; this module loads what re-rendering needs:

    check_model(study) -> str                      may the study's model load? (nothing is loaded) -> name to load
    study_model(study) -> Generator                the study's model on `study.device`, cached per opened Study
    study_target(study, target) -> walks.Target    a target rebuilt from its table string ("z[17]", "b2:c41")
    rerender(study, sample_ids, target, alphas)    -> img [N, A, 3, H, W] in [-1, 1], the engine's pixels

Trust: a study whose model is code (file.py:factory, TorchScript) loads it only when the user named it
(`Study(path, model=...)`, the `--model` of a command) or passed `trust_model` (`--trust-model`); a model file
whose sha256 differs from the one recorded at run time is refused.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np

from .directions.base import DirectionSet
from .engine import render
from .errors import printable
from .io import StoreError
from .models import load_model
from .models.zoo import model_file, model_file_sha256, model_kind, model_options, resolve_model
from .walks import Target

_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # opened Study -> its Generator
_GUARD = threading.Lock()


class ModelTrustError(StoreError):
    """A study's model is code (file.py:factory, TorchScript) the user did not name, or its file changed."""


def _shown(name: str) -> str:
    """A model name or path for messages: relative to the working directory when inside it."""
    path, sep, fn = name.rpartition(":") if ".py:" in name else (name, "", "")
    p = Path(path)
    if p.is_absolute():
        try:
            path = str(p.relative_to(Path.cwd()))
        except ValueError:
            pass
    return printable(path + sep + fn)


def check_model(study) -> str:
    """Decide, without loading anything, whether the study's model may be loaded; -> the name to load.

    Code (file.py:factory, TorchScript) loads only when the user named it (`study.model_arg`, equal to the study's
    after resolving paths, or a file with the recorded sha256) or set `study.trust_model`; a file whose sha256
    differs from the one recorded at run time is refused. ModelTrustError (one line) otherwise."""
    name = study.model_name
    kind = model_kind(name)
    f = model_file(name)
    code = ("python", "torchscript")
    if f is not None and not f.is_file() and study.manifest.get("model_kind") in code:
        kind = study.manifest["model_kind"]  # a missing file cannot be inspected: the stricter rule applies
    want = study.manifest.get("model_file_sha256")
    arg = resolve_model(study.model_arg, Path.cwd()) if study.model_arg else None
    if arg is not None and arg != name:
        same_fn = kind != "python" or (".py:" in arg and arg.rpartition(":")[2] == name.rpartition(":")[2])
        if not (want and same_fn and model_file_sha256(arg) == want):
            fix = (
                f"pass --model {_shown(name)} or --trust-model"
                if kind in code
                else "drop --model (only file.py:factory and TorchScript models need it) or give the same file moved"
            )
            raise ModelTrustError(
                f"--model {printable(study.model_arg)!r} is not the model of study "
                f"{printable(study.name)!r} ({_shown(name)!r}); {fix}"
            )
        name = arg  # the recorded file, moved: the user named it
    elif arg is None and kind in code and not study.trust_model:
        what = "a Python file" if kind == "python" else "a TorchScript archive (code)"
        raise ModelTrustError(
            f"study {printable(study.name)!r} was made with model {_shown(name)!r}, "
            f"{what}; it is not run when a study is opened: pass --model "
            f"{_shown(name)} (or --trust-model) to allow it"
        )
    f = model_file(name)
    if want and f is not None:
        if not f.is_file():
            raise StoreError(
                f"model file {_shown(str(f))!r} of study {printable(study.name)!r} does not "
                f"exist; restore it or pass --model with the moved file"
            )
        have = model_file_sha256(name)
        if have != want:
            raise ModelTrustError(
                f"model file {_shown(str(f))!r} changed since the study was run (sha256 "
                f"{have[:12]}… != {want[:12]}…); re-run the study or restore the file"
            )
    return name


def study_model(study):
    """The study's Generator on `study.device` (after `check_model`), loaded once per opened Study with the
    study's model options; StoreError if its weights changed since the study ran."""
    with _GUARD:
        m = _MODELS.get(study)
    if m is not None:
        return m
    name = check_model(study)
    m = load_model(name, **model_options(study.manifest.get("spec")))
    want = study.manifest.get("weights_hash")
    if want and m.weights_hash != want:
        raise StoreError(
            f"model {_shown(name)!r} now has weights hash {m.weights_hash}, but the study "
            f"was run with {want}; restore those weights or re-run the study"
        )
    m = m.to(study.device)
    with _GUARD:
        return _MODELS.setdefault(study, m)


def study_target(study, target: str) -> Target:
    """Rebuild a walks.Target from its table string (e.g. 'z[17]', 'random/d0', 'b2:c41')."""
    recs = {t["name"]: t for t in study.manifest.get("targets", [])}
    if target not in recs:
        raise StoreError(f"target {target!r} is not in study {study.name!r}; targets are e.g. {list(recs)[:6]}")
    rec = recs[target]
    vec = None
    if rec["kind"] == "direction":
        ds = DirectionSet.load(study.path / "directions" / f"{rec['source']}.npz")
        vec = ds.vector(rec["name"].split("/", 1)[1])
    return Target.from_dict(rec, vec)


def rerender(study, sample_ids, target, alphas):
    """Re-render study rows exactly as the engine did.  # sample_ids [N], alphas [A] -> img [N, A, 3, H, W]

    target: a Target or its table string."""
    t = target if isinstance(target, Target) else study_target(study, target)
    lat = study.latents()
    ids = np.atleast_1d(np.asarray(sample_ids, dtype=np.int64))
    if len(ids) and (ids.min() < 0 or ids.max() >= len(lat)):
        raise StoreError(f"sample_ids must lie in 0..{len(lat) - 1}")
    bs = int(study.manifest.get("spec", {}).get("batch_size", 64))
    return render(study_model(study), lat[ids], study.space, t, alphas, study.density(), batch_size=bs)
