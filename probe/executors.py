"""Executors: where a study's parts are computed.  The driver (run_study) stays the only writer.

`InProcessExecutor` renders the parts in this process (the default). `RayExecutor` sends them as Ray tasks to
long-lived actors that each load the model and measures once (`num_gpus=1` per actor when the cluster has GPUs,
one CPU otherwise) and yields each `PartResult` as it arrives, in any order; the store writes parts in any order
and merges them in plan order, so resume works as in-process. A part depends only on the plan, so a part lost
with a dead worker is computed again (Ray restarts the actor and retries the task; the driver reschedules it on
another actor after that) and the tables equal an in-process run.

    with RayExecutor(address="auto", workers=4) as ex:
        run_study("spec.toml", "studies/x", executor=ex)

Ray is an optional extra: `pip install latent-probe[ray]`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from .engine import PartResult, plan_parts, run_plan
from .errors import ProbeError
from .walks import Target

EXECUTORS = ("inproc", "ray")
MAX_WORKERS = 1024
# per part: Ray retries a task on its restarted actor this often, then the driver reschedules it this often
TASK_RETRIES, RESCHEDULES, ACTOR_RESTARTS = 2, 3, 4


class ExecutorError(ProbeError):
    """An executor was asked for wrongly or lost its workers; the message names the fix."""


@dataclass
class Plan:
    """Everything a worker needs to compute any part of a study; plain data (arrays, dicts, strings).

    latent [N, *shape] base latents (row = sample_id); alphas [A]; targets expanded; density: a GaussianDensity
    dict (w / ws) or None; base: {measure / norm / logp: [N]} base values reused at alpha = 0.
    """

    model: str
    options: dict
    measures: list[str]
    latent: np.ndarray
    space: str
    targets: list[Target]
    alphas: np.ndarray
    density: dict | None
    batch_size: int
    part_rows: int
    base: dict[str, np.ndarray] | None = None
    rows: int = field(init=False)

    def __post_init__(self):
        self.latent = np.ascontiguousarray(self.latent, dtype=np.float32)
        self.alphas = np.asarray(self.alphas, dtype=np.float64).reshape(-1)
        self.rows = len(self.targets) * len(self.latent) * len(self.alphas)

    @property
    def parts(self) -> list[tuple[int, int]]:
        """The plan's parts [(lo, hi)] in plan order."""
        return plan_parts(len(self.latent), len(self.targets), len(self.alphas), self.part_rows)

    def to_payload(self) -> dict:
        """Plain dict for a worker: targets as Target.to_dict() plus their vectors."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        d["targets"] = [t.to_dict() for t in self.targets]
        d["vectors"] = [t.vector for t in self.targets]
        return d

    @classmethod
    def from_payload(cls, d: dict) -> Plan:
        d = dict(d)
        vectors = d.pop("vectors")
        d["targets"] = [Target.from_dict(t, v) for t, v in zip(d["targets"], vectors)]
        return cls(**d)


def _density(d: dict | None):
    if d is None:
        return None
    from .density import GaussianDensity

    return GaussianDensity.from_dict(d)


@torch.no_grad()
def score_latents(model, measures, latent, space: str, batch_size: int) -> dict[str, np.ndarray]:
    """Render and score latents in batches of batch_size.  # latent [N, *shape] -> {measure: [N]}"""
    lat = torch.as_tensor(latent)
    out: dict[str, list] = {m: [] for m in measures.names}
    for i in range(0, len(lat), batch_size):
        for k, v in measures(model.synthesize(lat[i : i + batch_size], space)).items():
            out[k].append(v)
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in out.items()}


def _run(model, measures, plan: Plan, density, skip, **kw) -> Iterator[PartResult]:
    return run_plan(
        model,
        torch.from_numpy(plan.latent),
        plan.space,
        plan.targets,
        plan.alphas,
        measures,
        density,
        plan.batch_size,
        plan.part_rows,
        skip=skip,
        base=plan.base,
        **kw,
    )


def _compute_part(model, measures, plan: Plan, density, k: int) -> PartResult:
    return next(_run(model, measures, plan, density, [j for j in range(len(plan.parts)) if j != k]))


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not progress)


class InProcessExecutor:
    """Computes the parts in this process, in plan order (today's behaviour)."""

    name = "inproc"

    def run(
        self,
        plan: Plan,
        skip: Sequence[int] = (),
        progress: bool = False,
        desc: str = "interventions",
        model=None,
        measures=None,
        density=None,
    ) -> Iterator[PartResult]:
        """Yield a PartResult for every part not in `skip`.  model / measures / density: objects already loaded
        (else loaded from the plan)."""
        from .measures import MeasureSet
        from .models import load_model

        model = model if model is not None else load_model(plan.model, **plan.options)
        measures = measures if measures is not None else MeasureSet(plan.measures)
        density = density if density is not None else _density(plan.density)
        yield from _run(model, measures, plan, density, skip, progress=progress, desc=desc)

    def score(
        self, model: str, options: dict, measures: Sequence[str], latent: np.ndarray, space: str, batch_size: int = 64
    ) -> dict[str, np.ndarray]:
        """Render and score latents.  # latent [N, *shape] -> {measure: [N]}"""
        from .measures import MeasureSet
        from .models import load_model

        return score_latents(load_model(model, **options), MeasureSet(list(measures)), latent, space, batch_size)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Worker:
    """A Ray actor: loads the model and the measures once; computes parts and scores batches."""

    def __init__(self, model: str, options: dict, measures: list[str]):
        import ray

        from .measures import MeasureSet
        from .models import load_model

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        torch.set_num_threads(max(1, int(cpus)))
        self.model = load_model(model, **options)
        if ray.get_gpu_ids() and hasattr(self.model, "to"):
            self.model = self.model.to("cuda")  # Ray shows the actor only its own GPU
        self.measures = MeasureSet(list(measures))
        self.plans: dict[str, tuple[Plan, object]] = {}

    def pid(self) -> int:
        return os.getpid()

    def part(self, plan_id: str, payload: dict, k: int) -> dict:
        if plan_id not in self.plans:
            self.plans = {plan_id: (p := Plan.from_payload(payload), _density(p.density))}
        plan, density = self.plans[plan_id]
        r = _compute_part(self.model, self.measures, plan, density, k)
        return {f.name: getattr(r, f.name) for f in fields(r)}

    def score(self, latent: np.ndarray, space: str, batch_size: int) -> dict:
        return score_latents(self.model, self.measures, latent, space, batch_size)


def _plain_options(options: dict) -> dict:
    """Model options without those at load_model's defaults (so {} and the spec's explicit defaults match)."""
    import inspect

    from .models import load_model

    defaults = {k: p.default for k, p in inspect.signature(load_model).parameters.items() if p.kind is p.KEYWORD_ONLY}
    return {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "--executor ray: Ray is not installed; pip install 'latent-probe[ray]' (or "
            "'ray>=2.9'), or use --executor inproc"
        ) from None
    return ray


class RayExecutor:
    """Parts as Ray tasks on `workers` model-holding actors.  address: None starts a local Ray (or uses the one
    already initialised in this process), "auto" or "HOST:PORT" connects to a running cluster (`ray start --head`).

    The actors live until close() (or the end of a `with` block), so several runs on one model load it once.
    window: tasks in flight per actor; task_retries / restarts: Ray's max_task_retries / max_restarts per actor.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        window: int = 2,
        task_retries: int = TASK_RETRIES,
        restarts: int = ACTOR_RESTARTS,
    ):
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS:
            raise ExecutorError(f"--workers: {workers!r} is out of range; use 1..{MAX_WORKERS} actors")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ExecutorError(f"--address: {address!r} is empty; use auto or HOST:PORT of a running Ray head")
        _import_ray()
        self.address, self.workers, self.window = address, workers, max(1, int(window))
        self.task_retries, self.restarts = int(task_retries), int(restarts)
        self.rescheduled = 0  # tasks the driver moved to another actor after their actor died
        self._key = None
        self._actors: list = []
        self._ids = itertools.count()

    # ---- cluster and actors ----------------------------------------------------------------------------
    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            try:
                if self.address is None:
                    ray.init(include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(address=self.address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ExecutorError(
                    f"--address {self.address!r}: cannot connect to Ray ({first}); start a head "
                    f"with `ray start --head` and pass its HOST:PORT, or omit --address"
                ) from None
        return ray

    def _ensure(self, model: str, options: dict, measures: Sequence[str]) -> list:
        ray = self._ray()
        from .measures import MeasureSet

        options = _plain_options(options)
        key = (model, tuple(sorted(options.items(), key=str)), tuple(MeasureSet(list(measures)).names))
        if key == self._key and self._actors:
            return self._actors
        self.close()
        total = ray.cluster_resources()
        gpus = 1 if total.get("GPU", 0) >= 1 else 0
        for res, need in (("CPU", self.workers), ("GPU", self.workers * gpus)):
            if need > total.get(res, 0):
                raise ExecutorError(
                    f"--workers: {self.workers} actors need {need} {res}s but the Ray cluster has "
                    f"{total.get(res, 0):g}; use --workers {int(total.get(res, 0))} or add nodes"
                )
        cls = ray.remote(_Worker).options(
            num_cpus=1, num_gpus=gpus, max_restarts=self.restarts, max_task_retries=self.task_retries
        )
        self._actors = [cls.remote(model, dict(options), list(measures)) for _ in range(self.workers)]
        self._key = key
        return self._actors

    def worker_pids(self, timeout: float = 120.0) -> list[int]:
        """OS process ids of the actors (waits up to `timeout` s for actors that are restarting)."""
        import time

        ray = self._ray()
        from ray import exceptions as rex

        out, t0 = [], time.monotonic()
        for a in self._actors:
            while True:
                try:
                    out.append(ray.get(a.pid.remote()))
                    break
                except rex.RayActorError:
                    if time.monotonic() - t0 > timeout:
                        raise ExecutorError(
                            f"ray: a worker did not come back within {timeout:g} s; check the cluster's logs"
                        ) from None
                    time.sleep(0.2)
        return out

    def start(self, model: str, options: dict, measures: Sequence[str]) -> RayExecutor:
        """Start the actors for this model and measures now (run() and score() start them when needed)."""
        self._ensure(model, options, measures)
        return self

    def close(self) -> None:
        """Stop the actors (the Ray cluster stays up)."""
        if self._actors:
            ray = _import_ray()
            for a in self._actors:
                try:
                    ray.kill(a)
                except Exception:
                    pass
        self._actors, self._key = [], None

    def __enter__(self):
        self._ray()  # connect now: a wrong --address fails before any work
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- scheduling ----------------------------------------------------------------------------------
    def _map(self, submit, jobs: list, what: str):
        """Run submit(actor, job) for every job, `window` in flight per actor; yields (job, result) as they
        finish.  A task whose actor died (after Ray's own retries) is rescheduled on the next actor."""
        ray = self._ray()
        from ray import exceptions as rex

        lost = tuple(getattr(rex, n) for n in ("RayActorError", "ActorUnavailableError") if hasattr(rex, n))
        actors = self._actors
        todo = list(reversed(jobs))
        inflight: dict = {}
        load = [0] * len(actors)
        tries: dict = {}
        last: dict = {}
        try:
            while todo or inflight:
                while todo and len(inflight) < self.window * len(actors):
                    job = todo.pop()
                    i = min(range(len(actors)), key=lambda j: (j == last.get(job), load[j], j))
                    inflight[submit(actors[i], job)] = (job, i)
                    load[i] += 1
                (ref,), _ = ray.wait(list(inflight), num_returns=1)
                job, i = inflight.pop(ref)
                load[i] -= 1
                try:
                    out = ray.get(ref)
                except lost as e:
                    tries[job], last[job] = tries.get(job, 0) + 1, i
                    if tries[job] > RESCHEDULES:
                        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                        raise ExecutorError(
                            f"ray: {what} {job} failed on {tries[job]} workers ({first}); check "
                            f"the workers' memory and logs, then run again with --resume"
                        ) from None
                    todo.append(job)
                    self.rescheduled += 1
                    continue
                except rex.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, ProbeError):
                        raise cause from None
                    raise
                yield job, out
        finally:
            for ref in inflight:
                try:
                    ray.cancel(ref)
                except Exception:
                    pass

    def run(
        self, plan: Plan, skip: Sequence[int] = (), progress: bool = False, desc: str = "interventions", **_local
    ) -> Iterator[PartResult]:
        """Yield a PartResult for every part not in `skip`, in the order they finish."""
        ray = self._ray()
        self._ensure(plan.model, plan.options, plan.measures)
        skip = set(skip)
        todo = [k for k in range(len(plan.parts)) if k not in skip]
        if not todo:
            return
        payload = ray.put(plan.to_payload())
        plan_id = f"{os.getpid()}-{id(self)}-{next(self._ids)}"
        parts = plan.parts
        with _bar(sum(parts[k][1] - parts[k][0] for k in todo), desc, progress) as bar:
            for k, out in self._map(lambda a, k: a.part.remote(plan_id, payload, k), todo, "part"):
                bar.update(parts[k][1] - parts[k][0])
                yield PartResult(**out)

    def score(
        self, model: str, options: dict, measures: Sequence[str], latent: np.ndarray, space: str, batch_size: int = 64
    ) -> dict[str, np.ndarray]:
        """Render and score latents on the actors, in chunks of whole batches.  # [N, *shape] -> {measure: [N]}"""
        self._ray()
        self._ensure(model, options, measures)
        latent = np.ascontiguousarray(latent, dtype=np.float32)
        n = len(latent)
        per = max(1, -(-n // (batch_size * self.window * len(self._actors)))) * batch_size
        chunks = list(range(0, n, per))
        if not chunks:
            from .measures import MeasureSet

            return {m: np.empty(0) for m in MeasureSet(list(measures)).names}
        got = dict(
            self._map(lambda a, lo: a.score.remote(latent[lo : lo + per], space, batch_size), chunks, "rows from")
        )
        return {m: np.concatenate([got[lo][m] for lo in chunks]) for m in got[chunks[0]]}


def make_executor(name: str = "inproc", address: str | None = None, workers: int | None = None):
    """An executor by CLI name: inproc | ray (address, workers: Ray only)."""
    if name not in EXECUTORS:
        raise ExecutorError(f"--executor: {name!r} is unknown; use one of {list(EXECUTORS)}")
    if name == "inproc":
        if address is not None or workers is not None:
            flag = "--address" if address is not None else "--workers"
            raise ExecutorError(f"{flag}: only used with --executor ray; add --executor ray or remove {flag}")
        return InProcessExecutor()
    return RayExecutor(address=address, workers=2 if workers is None else workers)


__all__ = ["Plan", "InProcessExecutor", "RayExecutor", "ExecutorError", "make_executor", "score_latents", "EXECUTORS"]
