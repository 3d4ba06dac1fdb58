"""InterFaceGAN: one linear-SVM boundary per measure, conditional projection, edits by boundary distance.

Per measure the top / bottom `ratio` of samples by score become positives / negatives, each side is split
`split` : (1 - split) into train / held-out, and `sklearn.svm.SVC(kernel="linear", C)` is fitted. We use SVC
(libsvm) rather than LinearSVC because it is the original's classifier: plain hinge loss with an unpenalised
intercept (LinearSVC defaults to squared hinge and penalises the intercept), so boundaries match the paper's;
at the few thousand samples a boundary is fitted on it is fast enough. The unit normal points toward higher
scores. As in the original the edit direction is the unit normal alone; the SVM's intercept, in units of that
normal, is kept per boundary as info["offset"] (b of the hyperplane n.x + b = 0), which the `distance` walk of
probe.walks uses to place a latent at a signed distance from the boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .base import DirectionError, DirectionSet
from .estimator import DirectionEstimator


def _as_np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n < 1e-12:
        raise DirectionError("a boundary normal has zero length; the conditions span the primal direction")
    return v / n


def project(primal: np.ndarray, conditions: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Conditional normal: remove the condition normals from `primal`, renormalise.  # [D], [[D]...] -> [D]

    0 conditions: unchanged; 1: n - (n.c)c; 2: the paper's closed form with alpha, beta; more: the
    least-squares projection onto the orthogonal complement of span(conditions).
    """
    n = _unit(_as_np(primal).reshape(-1))
    cs = [_unit(_as_np(c).reshape(-1)) for c in conditions]
    for c in cs:
        if c.shape != n.shape:
            raise DirectionError(f"condition normal has dimension {c.shape[0]}, primal has {n.shape[0]}")
    if not cs:
        return n
    if len(cs) == 1:
        c = cs[0]
        return _unit(n - (n @ c) * c)
    if len(cs) == 2:
        c1, c2 = cs
        r = c1 @ c2
        den = 1 - r**2 + 1e-8
        a = (n @ c1 - (n @ c2) * r) / den
        b = (n @ c2 - (n @ c1) * r) / den
        return _unit(n - a * c1 - b * c2)
    C = np.stack(cs, 1)  # [D, k]
    coef, *_ = np.linalg.lstsq(C, n, rcond=None)
    return _unit(n - C @ coef)


def edit_codes(codes, normal, distances) -> np.ndarray:
    """Codes moved to absolute signed distances from the boundary (through the origin).

    codes [N, D] with normal [D]: out[i, a] = codes[i] - (codes[i].n) n + distances[a] n  -> [N, A, D].
    codes [N, L, D] with normal [D] (W+): the offsets distances[a] n are added to every layer, no centring
    (as the original linear_interpolate); with normal [L*D] the flattened codes are placed absolutely.
    """
    x = _as_np(codes)
    n = _unit(_as_np(normal).reshape(-1))
    d = _as_np(distances).reshape(-1)
    if x.ndim == 1:
        x = x[None]
    if x.ndim == 3 and n.shape[0] == x.shape[2]:
        return (x[:, None] + d[None, :, None, None] * n).astype(np.float32)  # [N, A, L, D]
    shape = x.shape
    flat = x.reshape(len(x), -1)
    if flat.shape[1] != n.shape[0]:
        raise DirectionError(f"codes of shape {list(shape)} do not fit a normal of dimension {n.shape[0]}")
    base = flat - (flat @ n)[:, None] * n
    out = base[:, None] + d[None, :, None] * n
    return out.reshape(len(x), len(d), *shape[1:]).astype(np.float32)


def _split_labels(scores: np.ndarray, ratio: float, split: float, rng: np.random.Generator):
    ok = np.flatnonzero(np.isfinite(scores))
    s = scores[ok]
    chosen = int(len(s) * ratio) if 0 < ratio <= 1 else int(ratio)
    chosen = min(chosen, len(s) // 2)
    ntr = int(chosen * split)
    if ntr < 2 or chosen - ntr < 1:
        raise DirectionError(
            f"InterFaceGAN: ratio={ratio} of {len(s)} valid samples gives {chosen} per side; "
            f"sample more latents or raise ratio (need >= 3 per side)"
        )
    order = np.argsort(-s, kind="stable")
    pos, neg = ok[order[:chosen]], ok[order[-chosen:]]
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    tr = np.concatenate([pos[:ntr], neg[:ntr]])
    va = np.concatenate([pos[ntr:], neg[ntr:]])
    ytr = np.r_[np.ones(ntr), np.zeros(ntr)]
    yva = np.r_[np.ones(chosen - ntr), np.zeros(chosen - ntr)]
    return tr, ytr, va, yva, float(scores[pos].min()), float(scores[neg].max())


class InterFaceGAN(DirectionEstimator):
    """Supervised boundaries, one per measure.

    measure: a measure name or list (one direction per measure, named after it); ratio: fraction (0, 1] or
    count of samples per side, one value or {measure: value} (missing measures: 0.02); split: train fraction
    per side; C: SVM regularisation; space: z | w | ws; per_layer: for ws, one boundary per layer
    (directions `<measure>@<l>` restricted to layer l) instead of one on the flattened codes;
    seed: shuffling before the split (and the latents drawn by fit(model));
    n_samples, batch_size, progress: latents sampled, rendered and scored by fit(model);
    conditions: [(primal, [condition, ...]), ...] conditional directions `primal|c1,c2` added to the set;
    periods: {measure: period} of circular measures, labelled by cos(2 pi m / period) (the top and bottom of an
    angle are the same picture).
    fit(latents, scores) or fit(model) (samples n_samples latents with `seed`, renders and scores them).
    Attributes after fit: directions_ (DirectionSet), accuracy_ {measure: held-out accuracy}; fit(model) also
    keeps latents_ [N, *shape] and scores_ {measure: [N]}.
    """

    method = "interfacegan"

    def __init__(
        self,
        measure: str | Sequence[str] = "gender",
        ratio: float | Mapping[str, float] = 0.02,
        split: float = 0.7,
        C: float = 1.0,
        space: str = "z",
        per_layer: bool = False,
        seed: int = 0,
        n_samples: int = 5000,
        batch_size: int = 64,
        progress: bool = False,
        conditions: Sequence[tuple[str, Sequence[str]]] = (),
        periods: Mapping[str, float] | None = None,
    ):
        self.measure, self.ratio, self.split, self.C = measure, ratio, split, C
        self.space, self.per_layer, self.seed = space, per_layer, seed
        self.n_samples, self.batch_size, self.progress = n_samples, batch_size, progress
        self.conditions, self.periods = conditions, periods

    @property
    def measures(self) -> list[str]:
        return [self.measure] if isinstance(self.measure, str) else list(self.measure)

    def ratio_for(self, measure: str) -> float:
        """The ratio used for `measure` (ratio may be one float or {measure: float}, default 0.02)."""
        return float(self.ratio.get(measure, 0.02)) if isinstance(self.ratio, Mapping) else float(self.ratio)

    def _fit_one(self, x: np.ndarray, s: np.ndarray, rng, ratio: float) -> tuple[np.ndarray, dict]:
        from sklearn.svm import SVC

        tr, ytr, va, yva, hi, lo = _split_labels(s, ratio, self.split, rng)
        # random_state: libsvm draws its seed from NumPy's global generator otherwise (unused without
        # probability estimates, so the boundary is the same for any value)
        clf = SVC(kernel="linear", C=self.C, random_state=int(self.seed)).fit(x[tr], ytr)
        n = clf.coef_.reshape(-1).astype(np.float64)
        info = {
            "offset": float(clf.intercept_[0] / np.linalg.norm(n)),
            "acc_val": float((clf.predict(x[va]) == yva).mean()),
            "acc_train": float((clf.predict(x[tr]) == ytr).mean()),
            "n_train": int(len(tr)),
            "n_val": int(len(va)),
            "score_hi": hi,
            "score_lo": lo,
            "ratio": ratio,
        }
        ok = np.isfinite(s)
        info["acc_all_median"] = float(((x[ok] @ n > -clf.intercept_[0]) == (s[ok] > np.median(s[ok]))).mean())
        return _unit(n), info

    def fit(self, latents, scores=None, model=None, executor=None) -> InterFaceGAN:
        """latents [N, D] (z / w) or [N, L, D] (ws); scores [N] (one measure), [N, M] or {measure: [N]}.

        fit(model): sample n_samples latents of `model` with `seed`, render and score them with the measures
        (executor: probe.executors, as sample_and_score), then fit on those."""
        if scores is None and hasattr(latents, "synthesize"):
            model = latents
            latents, scores = sample_and_score(
                model,
                self.measures,
                int(self.n_samples),
                seed=int(self.seed),
                space=self.space,
                batch_size=int(self.batch_size),
                progress=self.progress,
                executor=executor,
            )
            self._fit(latents, scores, model)
            self.latents_, self.scores_ = latents, scores
            self.directions_.provenance.update({"n_samples": int(self.n_samples), "sample_seed": int(self.seed)})
            return self
        if scores is None:
            raise DirectionError("InterFaceGAN.fit: pass latents and their scores, or a model to sample from")
        return self._fit(latents, scores, model)

    def _fit(self, latents, scores, model) -> InterFaceGAN:
        x = _as_np(latents)
        if isinstance(scores, Mapping):
            missing = [m for m in self.measures if m not in scores]
            if missing:
                raise DirectionError(f"InterFaceGAN: scores lack measures {missing}; have {sorted(scores)}")
            S = {m: _as_np(scores[m]).reshape(-1) for m in self.measures}
        else:
            a = _as_np(scores)
            a = a.reshape(len(a), -1)
            if a.shape[1] != len(self.measures):
                raise DirectionError(f"InterFaceGAN: scores have {a.shape[1]} columns for measures {self.measures}")
            S = {m: a[:, i] for i, m in enumerate(self.measures)}
        for m, period in (self.periods or {}).items():
            if m in S:
                S[m] = np.cos(2 * np.pi * S[m] / float(period))
        if any(len(s) != len(x) for s in S.values()):
            raise DirectionError(
                f"InterFaceGAN: {len(x)} latents but scores of length "
                f"{[len(s) for s in S.values()]}; pass one score per latent"
            )
        if self.space == "ws" and x.ndim != 3:
            raise DirectionError("InterFaceGAN: space 'ws' needs latents [N, num_ws, w_dim]")
        if self.space != "ws" and x.ndim != 2:
            raise DirectionError(f"InterFaceGAN: space {self.space!r} needs latents [N, D]; got {list(x.shape)}")
        names, vecs, layers, info = [], [], [], []
        for m, s in S.items():
            rng = np.random.default_rng(self.seed)
            if self.space == "ws" and self.per_layer:
                for l in range(x.shape[1]):
                    v, i = self._fit_one(x[:, l], s, rng, self.ratio_for(m))
                    names.append(f"{m}@{l}"), vecs.append(v), layers.append((l, l + 1))
                    info.append({"measure": m, "layer": l, **i})
            else:
                v, i = self._fit_one(x.reshape(len(x), -1), s, rng, self.ratio_for(m))
                names.append(m), vecs.append(v), layers.append(None), info.append({"measure": m, **i})
        prov = {
            "ratio": dict(self.ratio) if isinstance(self.ratio, Mapping) else self.ratio,
            "split": self.split,
            "C": self.C,
            "per_layer": self.per_layer,
            "seed": self.seed,
            "n_latents": int(len(x)),
            "classifier": "sklearn.svm.SVC(kernel='linear')",
        }
        if self.periods:
            prov["circular_labels"] = {m: f"cos(2 pi {m} / {p})" for m, p in self.periods.items()}
        self.directions_ = DirectionSet(
            names,
            np.stack(vecs),
            self.space,
            self.method,
            getattr(model, "name", ""),
            getattr(model, "weights_hash", "") if model else "",
            layers,
            info=info,
            provenance=prov,
        )
        self.accuracy_ = {n: i["acc_val"] for n, i in zip(names, info)}
        if self.conditions:
            self.directions_ = self.with_conditionals(self.conditions)
        return self

    def conditional(self, primal: str, conditions: Sequence[str]) -> DirectionSet:
        """A new one-direction set `<primal>|<c1>,<c2>` with the conditions projected out.  # vectors [1, D]"""
        ds = self.directions_
        for n in [primal, *conditions]:
            if n not in ds.names:
                raise DirectionError(f"no boundary named {n!r}; fitted: {ds.names}")
        v = project(ds.vector(primal), [ds.vector(c) for c in conditions])
        i = ds.names.index(primal)
        info = dict(ds.info[i], conditions=list(conditions), cos_to_primal=float(v @ ds.vector(primal)))
        info.pop("offset", None)  # the primal's intercept belongs to its own normal: this plane is taken through 0
        return DirectionSet(
            [f"{primal}|{','.join(conditions)}"],
            v[None],
            ds.space,
            ds.method,
            ds.model,
            ds.weights_hash,
            [ds.layers[i]],
            info=[info],
            provenance=dict(ds.provenance),
        )

    def with_conditionals(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> DirectionSet:
        """directions_ plus one conditional direction per (primal, conditions) pair."""
        ds = self.directions_
        extra = [self.conditional(p, c) for p, c in pairs]
        if not extra:
            return ds
        return DirectionSet(
            ds.names + [e.names[0] for e in extra],
            np.concatenate([ds.vectors] + [e.vectors for e in extra]),
            ds.space,
            ds.method,
            ds.model,
            ds.weights_hash,
            ds.layers + [e.layers[0] for e in extra],
            info=ds.info + [e.info[0] for e in extra],
            provenance=ds.provenance,
        )


@torch.no_grad()
def sample_and_score(
    model,
    measures,
    n: int,
    seed: int = 0,
    space: str = "z",
    batch_size: int = 64,
    progress: bool = False,
    executor=None,
    model_name: str | None = None,
):
    """Sample n latents, render in batches, score.  # -> latents [N, *shape(space)], {measure: [N]}

    executor (probe.executors): renders and scores on its workers, which load `model_name` (default model.name)
    with the model's options; measures are then names. Same scores as in this process."""
    from tqdm.auto import tqdm

    from ..measures import MeasureSet

    model.check_space(space)
    z = model.sample(int(n), seed)
    lat = model.to_space(z, "z", space) if space != "z" else z
    if executor is not None:
        from ..models.zoo import model_options

        names = list(measures.names) if hasattr(measures, "names") else list(measures)
        lat = lat.cpu().numpy().astype(np.float32)
        return lat, executor.score(
            model_name or model.name, model_options(model.options()), names, lat, space, batch_size
        )
    from ..engine import measured, use_overlap

    ms = measures if hasattr(measures, "names") else MeasureSet(list(measures))
    out: dict[str, list] = {m: [] for m in ms.names}

    def batches():  # rendered on the model's device; CPU measures overlap with the next render (probe.engine)
        for i in range(0, len(lat), batch_size):
            yield model.synthesize(lat[i : i + batch_size], space), None

    for scores, _ in tqdm(
        measured(batches(), ms, use_overlap(model, ms)),
        total=-(-len(lat) // batch_size),
        desc="sample+score",
        disable=not progress,
        leave=False,
    ):
        for k, v in scores.items():
            out[k].append(v)
    return lat.cpu().numpy().astype(np.float32), {k: np.concatenate(v) for k, v in out.items()}


def fit_from_model(
    model,
    measures: Sequence[str],
    n: int = 5000,
    seed: int = 0,
    space: str = "z",
    batch_size: int = 64,
    progress: bool = False,
    executor=None,
    **kw,
) -> InterFaceGAN:
    """Sample n latents with `model`, render, score with `measures`, fit one boundary per measure.

    Keeps latents_ [N, *shape] and scores_ {measure: [N]} on the returned estimator; kw go to InterFaceGAN;
    executor: see sample_and_score.
    """
    if isinstance(measures, str):
        measures = [measures]
    names = list(measures.names) if hasattr(measures, "names") else list(measures)
    return InterFaceGAN(names, space=space, seed=seed, n_samples=n, batch_size=batch_size, progress=progress, **kw).fit(
        model, executor=executor
    )
