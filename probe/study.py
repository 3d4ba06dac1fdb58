"""Scripted studies: a TOML spec -> plan -> engine -> store.  `probe run SPEC.toml --out DIR [--resume]`.

    name = "tiny"                      model = "tiny-dcgan"        measures = ["image"]
    n_samples = 24                     seed = 0                    space = "z"
    batch_size = 64                    alphas = [-2, -1, 0, 1, 2]
    [[targets]]  kind = "variables"    indices = [0, 1, 2]   mode = "shift"
    [[targets]]  kind = "directions"   file = "random.npz"   names = ["d0"]   walk = "isodensity"
    [[targets]]  kind = "channels"     site = "b2"           channels = [3]   mode = "scale"

A bad spec fails before any work with one line: the field path and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from .errors import ProbeError
from .io import atomic_save_npy, atomic_write_json
from .store import DENSITY, LATENTS, MANIFEST, Study
from .walks import Target, channel, direction, variable


class SpecError(ProbeError):
    """A study spec is invalid; the message names the field path and the fix."""


# |alpha| bound: latents are ~N(0, 1) per coordinate (directions unit-norm, channel edits x * (1 + alpha)), so a
# step of 100 is already 100 standard deviations; larger values are typos (e.g. 1e6) that only saturate images.
MAX_ABS_ALPHA = 100.0
# |scale| bound: a target's step unit multiplies alpha, so the same reasoning bounds it (GANSpace stds, RMS std of w
# and channel gains are all O(1)); inf, nan, 0 and 1e308 are refused before anything is created.
MAX_ABS_SCALE = 100.0
MAX_SEED = 2**63 - 1
# plans above this many intervention rows print their size and need --yes (run_study(..., yes=True))
CONFIRM_ROWS = 5_000_000
PLAIN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _check_scale(v):
    if v is None:
        return v
    if not np.isfinite(v) or v == 0 or abs(v) > MAX_ABS_SCALE:
        raise ValueError(
            f"scale {v:g} is out of range; use a finite nonzero step unit with |scale| <= "
            f"{MAX_ABS_SCALE:g} (alpha multiplies it)"
        )
    return v


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variables(_Base):
    """Per-variable interventions on flat latent coordinates."""

    kind: Literal["variables"]
    indices: list[int] | Literal["all"] | int = "all"  # list, "all", or a count (the first n)
    mode: Literal["shift", "set"] = "shift"
    scale: float = 1.0
    walk: Literal["variable"] = "variable"

    scale_ok = field_validator("scale")(_check_scale)


class Directions(_Base):
    """Walks along the directions of a DirectionSet file (or a set already in the study's directions/)."""

    kind: Literal["directions"]
    file: str  # path.npz (relative to the spec file) or a stem in directions/
    names: list[str] | None = None
    walk: Literal["linear", "isodensity", "layers", "distance"] | None = None  # distance: InterFaceGAN's edit
    scale: float | None = None  # overrides the set's per-direction unit step

    scale_ok = field_validator("scale")(_check_scale)


class Channels(_Base):
    """Channel edits at a named site; each channel is a target, or all together with together = true."""

    kind: Literal["channels"]
    site: str
    channels: list[int]
    mode: Literal["scale", "shift"] = "scale"
    scale: float = 1.0
    together: bool = False
    walk: Literal["channel"] = "channel"

    scale_ok = field_validator("scale")(_check_scale)


TargetSpec = Annotated[Variables | Directions | Channels, Field(discriminator="kind")]


class StudySpec(_Base):
    """A study: which model, measures, samples, targets and alphas."""

    name: str = Field(min_length=1)
    model: str
    measures: list[str] = Field(min_length=1)
    n_samples: int = Field(ge=1, le=10_000_000)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    space: Literal["z", "w", "ws"] = "z"
    batch_size: int = Field(64, ge=1, le=65536)
    part_rows: int = Field(1024, ge=1, le=10_000_000)  # rows per resumable part of the interventions table
    walk: Literal["linear", "isodensity", "layers", "distance"] = "linear"  # default walk of direction targets
    alphas: list[float] = Field(min_length=1)
    targets: list[TargetSpec] = Field(min_length=1)
    truncation_psi: float = Field(1.0, ge=0, le=2, allow_inf_nan=False)  # 1 = no truncation (style models)
    noise_mode: Literal["const", "random", "none"] = "const"  # const: deterministic renders
    class_idx: int | None = Field(None, ge=0, le=1_000_000)  # class of a conditional model
    c: list[float] | None = Field(None, min_length=1, max_length=1_000_000)  # or its raw c vector [c_dim]
    device: str = "auto"  # auto | cpu | cuda | cuda:N; not part of dump(): tables do not depend on it
    _base: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="")  # spec file name, prefixed to errors

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        bad = next((c for c in v if not c.isprintable()), None)
        if bad is not None:
            raise ValueError(f"name holds the non-printable character {bad!r}; use letters, digits, '.', '_', '-'")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if not re.match(r"^(auto|cpu|cuda(:\d+)?)$", v):
            raise ValueError(f'device {v!r} is unknown; use "auto", "cpu", "cuda" or "cuda:N"')
        return v

    @field_validator("c")
    @classmethod
    def _finite_c(cls, v):
        if v is not None and not all(np.isfinite(v) & (np.abs(v) <= 1e6)):
            raise ValueError("c must hold finite numbers with |c| <= 1e6 (a class vector, e.g. one-hot)")
        return v

    @field_validator("alphas")
    @classmethod
    def _finite(cls, v):
        if not all(np.isfinite(v)):
            raise ValueError("alphas must be finite numbers; remove nan / inf")
        big = [a for a in v if abs(a) > MAX_ABS_ALPHA]
        if big:
            raise ValueError(
                f"alpha {big[0]:g} is out of range; use values with |alpha| <= {MAX_ABS_ALPHA:g} "
                f"(latents are ~N(0, 1): larger steps only saturate the images)"
            )
        if len(set(v)) != len(v):
            raise ValueError("alphas must be distinct; list each value once")
        return v

    def dump(self) -> dict:
        """The spec as JSON data (the study id hashes it), without `device`: the manifest records that apart."""
        return self.model_dump(mode="json", exclude={"device"})


# ---- loading and validation ----------------------------------------------------------------------
_FIX = {
    "extra_forbidden": "remove it (unknown field)",
    "missing": "add it",
    "union_tag_invalid": 'use kind = "variables", "directions" or "channels"',
    "union_tag_not_found": 'add kind = "variables", "directions" or "channels"',
}


def _loc(loc) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p in ("variables", "directions", "channels") and out.endswith("]"):
            continue  # discriminator tag pydantic inserts
        elif "[" in p or p in ("int", "str", "float"):
            continue  # union member / validator names, not fields
        else:
            out += ("." if out else "") + p
            if p == "indices":
                break  # union members pydantic appends
    return out or "spec"


def _spec_error(e: ValidationError, where: str) -> SpecError:
    err = e.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    fix = _FIX.get(err["type"])
    if "indices" in err["loc"]:
        fix = fix or 'use a list of ints like [0, 1], "all", or a count n'
    return SpecError(f"{where}{_loc(err['loc'])}: {msg}" + (f"; {fix}" if fix else ""))


def parse_spec(data: dict, base: str | os.PathLike | None = None, where: str = "") -> StudySpec:
    """Validate a spec dict (paths relative to `base`).  ProbeError with the field path on failure."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as e:
        raise _spec_error(e, where) from None
    spec._base = Path(base) if base is not None else Path.cwd()
    return spec


def read_spec_file(p: Path) -> dict:
    """A spec file's TOML as a dict; SpecError (one line) for non-UTF-8, unreadable or invalid TOML."""
    try:
        return tomllib.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError(f"{p.name}: not UTF-8 text (byte {e.start}); save the spec as UTF-8 TOML") from None
    except OSError as e:
        raise SpecError(f"{p.name}: cannot be read ({e.strerror}); check the path and its permissions") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{p.name}: not valid TOML ({e}); fix the syntax at that line") from None


def load_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a TOML study spec."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec file {str(p)!r} does not exist")
    spec = parse_spec(read_spec_file(p), p.parent, where=f"{p.name}: ")
    spec._source = p.name
    return spec


def _direction_file(spec: StudySpec, file: str, out_dir: Path | None) -> Path:
    if file.endswith(".npz"):
        p = Path(file)
        return p if p.is_absolute() else spec._base / p
    return (out_dir or Path(".")) / "directions" / f"{file}.npz"


def build_targets(spec: StudySpec, model, out_dir: str | os.PathLike | None = None):
    """Check the spec against the model and expand its targets.  -> (targets, {stem: DirectionSet})

    Raises SpecError naming the field path and the fix (index ranges, sites, channels, direction files).
    """
    from .directions.base import DirectionError, DirectionSet

    if spec.space not in model.spaces:
        raise SpecError(f"space: model {model.name!r} has no space {spec.space!r}; use one of {list(model.spaces)}")
    dim = model.dim(spec.space)
    out_dir = Path(out_dir) if out_dir is not None else None
    targets: list[Target] = []
    sets: dict[str, DirectionSet] = {}
    for j, t in enumerate(spec.targets):
        f = f"targets[{j}]"
        if isinstance(t, Variables):
            idx = t.indices
            if idx == "all":
                idx = list(range(dim))
            elif isinstance(idx, int):
                if not 1 <= idx <= dim:
                    raise SpecError(f"{f}.indices: count {idx} out of range for {spec.space}_dim={dim}; use 1..{dim}")
                idx = list(range(idx))
            bad = [i for i in idx if not 0 <= i < dim]
            if bad:
                raise SpecError(
                    f"{f}.indices: index {bad[0]} out of range for {spec.space}_dim={dim}; use 0..{dim - 1}"
                )
            if not idx:
                raise SpecError(f'{f}.indices: empty; name at least one index, a count or "all"')
            targets += [variable(i, spec.space, t.mode, t.scale) for i in idx]
        elif isinstance(t, Channels):
            if t.site not in model.sites:
                raise SpecError(
                    f"{f}.site: {t.site!r} is not a site of model {model.name!r}; use one of {list(model.sites)}"
                )
            nch = model.channels(t.site)
            bad = [c for c in t.channels if not 0 <= c < nch]
            if bad or not t.channels:
                raise SpecError(
                    f"{f}.channels: "
                    + (
                        f"channel {bad[0]} out of range for site {t.site!r} with {nch} channels; use 0..{nch - 1}"
                        if bad
                        else "empty; name at least one channel"
                    )
                )
            groups = [t.channels] if t.together else [[c] for c in t.channels]
            targets += [channel(t.site, g, t.mode, t.scale) for g in groups]
        else:
            p = _direction_file(spec, t.file, out_dir)
            if not p.is_file():
                raise SpecError(
                    f"{f}.file: {str(p)!r} does not exist; give a DirectionSet .npz path (relative to "
                    f"the spec) or the stem of a set in the study's directions/"
                )
            try:
                ds = DirectionSet.load(p)
            except DirectionError as e:
                raise SpecError(f"{f}.file: {e}") from None
            if ds.space != spec.space and not (ds.space == "w" and spec.space == "ws"):
                raise SpecError(
                    f"{f}.file: directions live in space {ds.space!r} but the study walks in "
                    f'{spec.space!r}; set space = "{ds.space}"'
                )
            ok = (model.w_dim, dim) if spec.space == "ws" else (dim,)
            if ds.dim not in ok:
                raise SpecError(
                    f"{f}.file: directions in {p.name} have dimension {ds.dim}, but space "
                    f"{spec.space!r} of model {model.name!r} takes {' or '.join(map(str, ok))}; "
                    f"fit the directions on this model"
                )
            names = t.names if t.names is not None else ds.names
            unknown = [n for n in names if n not in ds.names]
            if unknown:
                raise SpecError(f"{f}.names: {unknown[0]!r} is not in {p.name}; use some of {ds.names[:10]}")
            walk = t.walk or spec.walk
            if walk == "layers" and spec.space != "ws":
                raise SpecError(f"{f}.walk: 'layers' needs space = \"ws\"; use linear or isodensity in {spec.space!r}")
            stem = p.stem
            if stem in sets and sets[stem].names != ds.names:
                raise SpecError(f"{f}.file: another direction file is also named {stem!r}; rename one of them")
            sets[stem] = ds
            for n in names:
                tg = direction(ds, ds.names.index(n), walk, source=stem)
                if t.scale is not None:
                    tg.scale = float(t.scale)
                if walk == "layers" and tg.layers is None:
                    tg.layers = (0, model.num_ws)
                targets.append(tg)
    seen: dict[str, int] = {}
    for j, t in enumerate(targets):
        if t.name in seen:
            raise SpecError(f"targets: {t.name!r} appears twice; list each target once")
        seen[t.name] = j
    return targets, sets


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("latent-probe", "torch", "numpy", "pandas", "pyarrow", "pydantic"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _density(model, spec: StudySpec):
    if spec.space == "z":
        return None
    from .density import GaussianDensity

    n = max(2000, 8 * model.w_dim)
    with torch.no_grad():
        w = model.to_space(model.sample(n, spec.seed + 1), "z", "w")
    return GaussianDensity().fit(w.cpu())


def _part_frame(
    part, targets: list[Target], base: pd.DataFrame, base_logp: np.ndarray, names: list[str]
) -> pd.DataFrame:
    def col(attr):
        return pd.array(np.array([getattr(t, attr) for t in targets], dtype=object)[part.target], dtype="string")

    cols = {
        "sample_id": part.sample_id,
        "target_kind": col("kind"),
        "target": col("name"),
        "method": col("method"),
        "walk": col("walk"),
        "step": part.step,
        "alpha": part.alpha,
        "norm": part.norm,
        "logp": part.logp,
        "dlogp": part.logp - base_logp[part.sample_id],
    }
    cols.update({m: part.scores[m] for m in names})
    cols.update({f"d_{m}": part.scores[m] - base[m].to_numpy()[part.sample_id] for m in names})
    return pd.DataFrame(cols)


@lru_cache(maxsize=8)
def _measure_set(names: tuple[str, ...]):
    from .measures import MeasureSet

    return MeasureSet(list(names))  # cached like load_model: classifier sessions load once per process


def spec_model(spec: StudySpec) -> str:
    """The spec's model name with a file path resolved against the spec file's directory (zoo names as they are)."""
    from .models.zoo import resolve_model

    return resolve_model(spec.model, spec._base)


def spec_measures(spec: StudySpec) -> list[str]:
    """The spec's measures with file.py:factory paths resolved against the spec file's directory."""
    from .models.zoo import resolve_model

    return [resolve_model(m, spec._base) if ".py:" in m else m for m in spec.measures]


def plan_rows(spec: StudySpec, n_targets: int) -> int:
    """Intervention rows of a plan: n_samples x targets x alphas."""
    return spec.n_samples * n_targets * len(spec.alphas)


def _plan_line(spec: StudySpec, n_targets: int, model, measures) -> str:
    import time

    rows = plan_rows(spec, n_targets)
    n = min(spec.batch_size, 32)
    with torch.no_grad():
        lat = model.to_space(model.sample(n, spec.seed), "z", spec.space)
        measures(model.synthesize(lat, spec.space))  # warm-up (lazy measure set-up, allocations)
        t0 = time.perf_counter()
        measures(model.synthesize(lat, spec.space))
        rate = n / max(time.perf_counter() - t0, 1e-9)
    gb = rows * (8 * (10 + 2 * len(measures.names)) + 24) / 1e9  # float64 columns + the target strings
    return (
        f"plan: {spec.n_samples:,} samples x {n_targets:,} targets x {len(spec.alphas)} alphas = {rows:,} rows "
        f"(~{gb:.1f} GB, ~{rows / rate / 3600:.1f} h at {rate:,.0f} rows/s measured on one batch of {n})"
    )


def run_study(
    spec: StudySpec | dict | str | os.PathLike,
    out_dir: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
    yes: bool = False,
    executor=None,
    device: str | None = None,
) -> Study:
    """Run (or resume) a study into `out_dir`; returns the complete Study.  Same spec -> same tables.

    spec: a StudySpec, a dict of its fields (paths relative to the working directory) or a TOML file.

    executor: where the parts are computed (probe.executors: InProcessExecutor, the default, or RayExecutor);
    this process stays the only writer of parts and manifest, whatever the executor.
    device: auto | cpu | cuda | cuda:N, overriding the spec's `device` (`--device`); the manifest records it.

    Holds the study's write lock throughout (a second writer gets one line naming this PID). A new plan of more
    than CONFIRM_ROWS rows is refused unless yes=True (`--yes`), before anything is created."""
    from .io import study_lock

    spec, out, model_name, model, measures, where = _open(spec, out_dir, resume, device)
    try:
        targets, sets = build_targets(spec, model, out)
    except SpecError as e:
        raise SpecError(f"{where}{e}") from None
    if not (out / MANIFEST).is_file() and plan_rows(spec, len(targets)) > CONFIRM_ROWS and not yes:
        raise SpecError(
            f"{where}{_plan_line(spec, len(targets), model, measures)}; this is over "
            f"{CONFIRM_ROWS:,} rows: pass --yes to run it, or lower n_samples / targets / alphas"
        )
    with study_lock(out):
        existing = (out / MANIFEST).is_file()
        if existing and not resume:
            raise SpecError(
                f"--out {str(out)!r} already holds a study; add --resume to continue it or choose a new --out"
            )
        if existing:
            study = _check_resume(Study(out), spec, model_name, model)
            if study.manifest.get("stage") == SAMPLES_STAGE:  # made by run_samples: now the targets are known
                study.manifest.pop("stage")
                study.manifest["targets"] = [t.to_dict() for t in targets]
                study.save_manifest()
        else:
            study = Study.create(out, _manifest(spec, model_name, model, measures, targets))
        return _run_locked(study, spec, model, measures, targets, sets, progress, executor)


def _open(spec, out_dir, resume: bool, device: str | None):
    """Load the spec, model (on its device) and measure set; SpecError (one line) before any work."""
    from .devices import resolve_device
    from .models import load_model
    from .models.zoo import model_options

    if isinstance(spec, dict):
        spec = parse_spec(spec)
    elif not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    out = Path(out_dir)
    if (out / MANIFEST).is_file() and not resume:
        raise SpecError(f"--out {str(out)!r} already holds a study; add --resume to continue it or choose a new --out")
    where = f"{spec._source}: " if spec._source else ""
    model_name = spec_model(spec)
    try:
        model = load_model(model_name, **model_options(spec.dump()))
    except ProbeError as e:
        field = "" if str(e).startswith(("model ", "truncation_psi", "noise_mode", "class_idx", "c:")) else "model: "
        raise SpecError(f"{where}{field}{e}") from None
    try:
        model = model.to(resolve_device(device or spec.device, field="--device" if device else "device"))
    except ProbeError as e:
        raise SpecError(f"{where if not device else ''}{e}") from None
    try:
        measures = _measure_set(tuple(spec_measures(spec)))
    except ProbeError as e:
        raise SpecError(f"{where}measures: {e}") from None
    return spec, out, model_name, model, measures, where


def _check_resume(study: Study, spec: StudySpec, model_name: str, model) -> Study:
    from .models.zoo import model_file_sha256

    spec_d = spec.dump()
    old = {
        "truncation_psi": 1.0,
        "noise_mode": "const",
        "class_idx": None,
        "c": None,  # older manifests
        **study.manifest.get("spec", {}),
    }
    diff = [k for k in sorted(set(old) | set(spec_d)) if old.get(k) != spec_d.get(k)]
    if diff:
        raise SpecError(
            f"--resume: the spec differs from the study's in {diff}; resume with the same spec or choose a new --out"
        )
    if study.manifest.get("weights_hash") != model.weights_hash:
        raise SpecError(f"--resume: model {spec.model!r} weights changed since the study started; choose a new --out")
    want = study.manifest.get("model_file_sha256")
    if want and model_file_sha256(model_name) != want:
        raise SpecError(
            f"--resume: model file of {spec.model!r} changed since the study started (sha256 "
            f"differs); restore it or choose a new --out"
        )
    return study


def _manifest(spec: StudySpec, model_name: str, model, measures, targets) -> dict:
    from .devices import device_name
    from .models.zoo import model_file_sha256, model_kind

    spec_d = spec.dump()
    sid = hashlib.sha256(json.dumps(spec_d, sort_keys=True).encode()).hexdigest()[:12]
    return {
        "study_id": sid,
        "name": spec.name,
        "spec": spec_d,
        "model": model_name,
        "model_kind": model_kind(model_name),
        "model_file_sha256": model_file_sha256(model_name),
        "weights_hash": model.weights_hash,
        "model_info": model.describe(),
        "space": spec.space,
        "measures": {
            i.name: {"unit": i.unit, "lo": i.lo, "hi": i.hi, "description": i.description} for i in measures.infos
        },
        "seed": spec.seed,
        "n_samples": spec.n_samples,
        "alphas": list(spec.alphas),
        "targets": [t.to_dict() for t in targets],
        "versions": _versions(),
        "density": DENSITY if spec.space != "z" else None,
        "device": device_name(model.device),
    }


SAMPLES_STAGE = "samples"  # manifest "stage" of a study that so far holds only its base samples


def run_samples(
    spec: StudySpec | dict | str | os.PathLike,
    out_dir: str | os.PathLike,
    progress: bool = True,
    device: str | None = None,
) -> Study:
    """Write only the study's base samples (latents.npy, density, samples.parquet: they do not depend on the
    targets, so direction files need not exist yet); `run_study(..., resume=True)` later adds the targets and
    interventions, giving the same tables as a one-shot run. The manifest's targets stay [] (stage "samples")
    until then. Returns the Study (status running). Holds the study's write lock."""
    from .io import study_lock

    spec, out, model_name, model, measures, where = _open(spec, out_dir, True, device)
    with study_lock(out):
        if (out / MANIFEST).is_file():
            study = _check_resume(Study(out), spec, model_name, model)
        else:
            manifest = {**_manifest(spec, model_name, model, measures, []), "stage": SAMPLES_STAGE}
            study = Study.create(out, manifest)
        _base_samples(study, spec, model, measures, {}, progress)
        return study


def _run_locked(study: Study, spec: StudySpec, model, measures, targets, sets, progress: bool, executor=None) -> Study:
    from .engine import plan_parts

    lat, density, base = _base_samples(study, spec, model, measures, sets, progress)
    if base is None:
        study.clean_parts()
        return study
    names = measures.names
    base_logp = base["logp"].to_numpy()

    # ---- interventions, part by part ----------------------------------------------------------------
    parts = plan_parts(spec.n_samples, len(targets), len(spec.alphas), spec.part_rows)
    done = {k for k in study.parts_done if study.part_path(k).is_file()}
    from .executors import InProcessExecutor, Plan
    from .models.zoo import model_options

    plan = Plan(
        spec_model(spec),
        model_options(spec.dump()),
        spec_measures(spec),
        lat.numpy(),
        spec.space,
        targets,
        spec.alphas,
        density.to_dict() if density is not None else None,
        spec.batch_size,
        spec.part_rows,
        {c: base[c].to_numpy(np.float64) for c in [*names, "norm", "logp"]},
    )
    executor = executor if executor is not None else InProcessExecutor()
    for part in executor.run(
        plan, skip=done, progress=progress, desc=spec.name, model=model, measures=measures, density=density
    ):
        study.write_part(part.k, _part_frame(part, targets, base, base_logp, names))
    study.finish(len(parts))
    return study


def _base_samples(study: Study, spec: StudySpec, model, measures, sets, progress: bool):
    """latents.npy, density, direction files and the samples table (each written only when missing).
    -> (lat [n_samples, dim], density | None, samples table | None when the study is complete)"""
    from .engine import measure_base

    out = study.path
    # ---- base samples, density, directions (deterministic; rebuilt when missing, also in a complete study) ----
    with torch.no_grad():
        z = model.sample(spec.n_samples, spec.seed)
        lat = model.to_space(z, "z", spec.space).cpu().float()
    if not (out / LATENTS).is_file():
        atomic_save_npy(out / LATENTS, lat.numpy().astype(np.float32))
    density = _density(model, spec)
    if density is not None and not (out / DENSITY).is_file():
        atomic_write_json(out / DENSITY, density.to_dict())
    for stem, ds in sets.items():
        if not (out / "directions" / f"{stem}.npz").is_file():
            study.save_directions(ds, stem)
    if study.status == "complete":
        return lat, density, None
    names = measures.names
    if study.has("samples"):
        base = study.table("samples")
    else:
        s = measure_base(model, lat, spec.space, measures, density, spec.batch_size, progress)
        from .density import chi2_percentile

        if density is None:
            chi2 = chi2_percentile(lat).numpy()
        else:
            m2 = density.mahalanobis(lat.reshape(-1, lat.shape[-1])).square().reshape(len(lat), -1).sum(1)
            d = torch.tensor(lat[0].numel() / 2, dtype=torch.float64)
            chi2 = torch.special.gammainc(d, m2 / 2).numpy()
        base = pd.DataFrame(
            {
                "sample_id": np.arange(len(lat), dtype=np.int64),
                "seed": spec.seed,
                "space": spec.space,
                "norm": s["norm"],
                "logp": s["logp"],
                "chi2_pct": chi2,
                **{m: s[m] for m in names},
            }
        )
        study.write_table("samples", base)
        base = study.table("samples")
    return lat, density, base


__all__ = [
    "StudySpec",
    "Variables",
    "Directions",
    "Channels",
    "SpecError",
    "load_spec",
    "parse_spec",
    "build_targets",
    "run_study",
    "run_samples",
    "spec_model",
    "spec_measures",
    "plan_rows",
    "CONFIRM_ROWS",
]
