"""Loopback load test of the dashboard: N concurrent clients for S seconds against the analysis callbacks.

    python -m benchmarks.load_dashboard                      # 8 clients, 30 s, a 100k-row synthetic study
    python -m benchmarks.load_dashboard --clients 2 --seconds 2 --rows 2000 --json out.json
    python -m benchmarks.load_dashboard --no-memo            # as before the view memo (A/B)
    python -m benchmarks.load_dashboard --prewarm            # warm state only
    python -m benchmarks.load_dashboard --cold               # one client: each view's cost per new input variant
    make load ROWS=30000000                                  # a 30M-row study (make's spelling of --rows)

The study is synthetic but real-format: written through `probe.store` (manifest, latents.npy from the real
tiny-dcgan model, samples + 100k-row interventions tables with the measure columns of the `image` measures; the
interventions are generated and written in chunks as parts and merged by the store's streaming merge), then `probe.stats.analyze` makes the effects / correlations / controlling tables, and a 2-D embedding table is
added; `dashboards.app.create_app` opens it like any other study. The server binds 127.0.0.1 only (an ephemeral
port). The clients (threads of a separate process) POST the payloads the browser sends to
`/_dash-update-component` for the non-generating views (page layouts, heatmap, controlling list, walk comparison
curves, embedding scatter, lasso selection), cycling through input variants, and the script reports p50 / p95 /
max latency, the error count (HTTP status != 200 or an error box in the response) and each view's cold cost.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd


# ---- callback payloads ------------------------------------------------------------------------------------------
class Callback:
    """The request body the Dash renderer POSTs to /_dash-update-component for one callback of `app`.

    `output`: a substring of the callback's output key (e.g. "co-heat-box.children"); `payload(values, changed)`
    fills inputs and states by "id.property" from `values` (missing ones are None)."""

    def __init__(self, app, output: str):
        keys = [k for k in app.callback_map if output in k]
        if len(keys) != 1:
            raise KeyError(f"{output!r} matches callbacks {keys}; name one output of one callback")
        self.key = keys[0]
        spec = app.callback_map[self.key]
        outs = [o for o in self.key.strip(".").split("...")] if self.key.startswith("..") else [self.key]
        self.outputs = [dict(zip(("id", "property"), o.rsplit(".", 1))) for o in outs]
        self.multi = self.key.startswith("..")
        self.inputs = [dict(i) for i in spec["inputs"]]
        self.state = [dict(s) for s in spec.get("state", [])]

    def payload(self, values: dict, changed: list[str] | None = None) -> dict:
        def fill(items):
            return [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

        return {
            "output": self.key,
            "outputs": self.outputs if self.multi else self.outputs[0],
            "inputs": fill(self.inputs),
            "state": fill(self.state),
            "changedPropIds": changed if changed is not None else [f"{i['id']}.{i['property']}" for i in self.inputs],
        }


def has_error_box(body) -> bool:
    """Whether a callback response shows a probe error box (className probe-error) anywhere."""
    return '"probe-error"' in (body if isinstance(body, str) else json.dumps(body))


# ---- the synthetic study ----------------------------------------------------------------------------------------
def make_study(
    path: str | os.PathLike,
    n_rows: int = 100_000,
    n_samples: int = 400,
    seed: int = 0,
    chunk_rows: int = 1 << 20,
    embed_samples: int = 2000,
    analyze: bool = True,
    summary: bool = True,
):
    """A complete real-format study of about n_rows intervention rows on tiny-dcgan, written through probe.store.

    Targets: the 16 z variables (shift), 2 random directions and the 32 b2 channels, up to n_rows / (n_samples * 5);
    beyond 50 targets the samples grow (n_rows / (targets * 5)). The interventions are generated in chunks of about
    chunk_rows rows, each written as a part (Study.write_part) and merged by Study.finish (streaming), so the whole
    table is never in memory. Measure values are synthetic (per-target linear effects + noise); the tables, dtypes
    and manifest are real. The 2-D embedding table holds the first `embed_samples` samples. analyze=False leaves
    the effects / correlations / controlling tables to `probe stats`. summary: store alpha_summary.parquet as
    `probe run` does (False: an older study, which the dashboard summarises on first open).
    """
    import torch

    from probe import stats, walks
    from probe.directions.base import DirectionSet
    from probe.io import atomic_save_npy
    from probe.measures import MeasureSet
    from probe.models import load_model
    from probe.store import Study

    rng = np.random.default_rng(seed)
    model = load_model("tiny-dcgan")
    infos = MeasureSet(["image"]).infos
    names = [i.name for i in infos]
    alphas = [-2.0, -1.0, 0.0, 1.0, 2.0]
    n_targets = max(1, n_rows // (n_samples * len(alphas)))
    v = rng.standard_normal((2, 16))
    ds = DirectionSet(["d0", "d1"], v / np.linalg.norm(v, axis=1, keepdims=True), "z", "random")
    targets = [walks.variable(i, "z") for i in range(16)]
    targets += [walks.direction(ds, i, "linear", source="random") for i in range(2)]
    targets += [walks.channel("b2", [c]) for c in range(model.channels("b2"))]
    targets = targets[:n_targets]
    n_samples = max(1, n_rows // (len(targets) * len(alphas)))
    spec = {
        "name": "load",
        "model": "tiny-dcgan",
        "measures": ["image"],
        "n_samples": n_samples,
        "seed": seed,
        "space": "z",
        "batch_size": 64,
        "part_rows": 1024,
        "walk": "linear",
        "alphas": alphas,
        "targets": [],
    }
    st = Study.create(
        path,
        {
            "study_id": "load",
            "name": "load",
            "spec": spec,
            "model": "tiny-dcgan",
            "weights_hash": model.weights_hash,
            "model_info": model.describe(),
            "space": "z",
            "measures": {i.name: {"unit": i.unit, "lo": i.lo, "hi": i.hi, "description": i.description} for i in infos},
            "seed": seed,
            "n_samples": n_samples,
            "alphas": alphas,
            "targets": [t.to_dict() for t in targets],
            "versions": {},
            "density": None,
        },
    )
    z = model.sample(n_samples, seed).numpy().astype(np.float32)
    atomic_save_npy(st.path / "latents.npy", z)
    st.save_directions(ds, "random")
    logp = -0.5 * (z.astype(np.float64) ** 2).sum(1) - 8 * np.log(2 * np.pi)
    base = pd.DataFrame(
        {
            "sample_id": np.arange(n_samples),
            "seed": seed,
            "space": "z",
            "norm": np.linalg.norm(z, axis=1).astype(np.float64),
            "logp": logp,
            "chi2_pct": 0.5,
            **{m: rng.uniform(0, 1, n_samples) + 0.1 * z[:, j % 16] for j, m in enumerate(names)},
        }
    )
    st.write_table("samples", base)
    # interventions in plan order (target, sample_id, step), in chunks of whole samples of one target
    T, N, A = len(targets), n_samples, len(alphas)
    slope = rng.normal(0, 0.05, (T, len(names))) * (rng.uniform(size=(T, len(names))) < 0.3)
    norm = base["norm"].to_numpy()
    meas = {m: base[m].to_numpy() for m in names}
    per = max(1, chunk_rows // A)  # samples per chunk
    k = 0
    for t, tg in enumerate(targets):
        for s0 in range(0, N, per):
            si, ai = (a.ravel() for a in np.meshgrid(np.arange(s0, min(N, s0 + per)), np.arange(A), indexing="ij"))
            alpha = np.asarray(alphas)[ai]
            dlogp = np.zeros(len(si)) if tg.kind == "channel" else -0.5 * alpha**2
            cols = {
                "sample_id": si,
                "target_kind": tg.kind,
                "target": tg.name,
                "method": tg.method,
                "walk": tg.walk,
                "step": ai,
                "alpha": alpha,
                "norm": norm[si],
                "logp": logp[si] + dlogp,
                "dlogp": dlogp,
            }
            for j, m in enumerate(names):
                d = slope[t, j] * alpha + np.where(ai == alphas.index(0.0), 0.0, rng.normal(0, 0.01, len(si)))
                cols[m] = meas[m][si] + d
                cols[f"d_{m}"] = d
            st.write_part(k, pd.DataFrame(cols))
            k += 1
    st.finish(k)
    st = Study(path)
    if summary:
        from probe.query import write_alpha_summary

        write_alpha_summary(st)
    if analyze:
        stats.analyze(st)
    mu = z.mean(0)
    _, _, vt = np.linalg.svd(z - mu, full_matrices=False)
    E = min(N, embed_samples)
    w = walks.apply(torch.from_numpy(z[:16]), "z", targets[min(16, T - 1)], alphas).numpy()
    xy = (np.concatenate([z[:E], w]) - mu) @ vt[:2].T
    W = len(w)
    st.write_table(
        "embedding",
        pd.DataFrame(
            {
                "point_id": np.arange(len(xy)),
                "kind": ["sample"] * E + ["walk"] * W,
                "sample_id": np.r_[np.arange(E), np.repeat(np.arange(min(16, N)), A)],
                "target": [""] * E + [targets[min(16, T - 1)].name] * W,
                "alpha": np.r_[np.zeros(E), np.tile(alphas, min(16, N))],
                "x": xy[:, 0],
                "y": xy[:, 1],
            }
        ),
    )
    return Study(path)


def build(path: str, n_rows: int, analyze: bool = True, summary: bool = True) -> float:
    """make_study in a process of its own (spawned by main, so the server's peak RSS excludes the build)."""
    t0 = time.perf_counter()
    make_study(path, n_rows, analyze=analyze, summary=summary)
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak resident set size of this process (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the views the clients request ------------------------------------------------------------------------------
def views(app) -> list[tuple[str, Callback, list[dict]]]:
    """(name, callback, input-value variants) of the non-generating views of the analysis pages. The variants
    (q thresholds, measures, target subsets, colourings, selections) are what different users would pick;
    the clients cycle through them, so the first request of each variant is computed cold under load."""
    st = app.probe_ctx.study
    ms = st.measures
    tn = st.target_names
    emb = app.probe_ctx.table("embedding")
    samples = emb[emb["kind"] == "sample"][["sample_id", "x", "y"]]
    walked = sorted(emb.loc[emb["kind"] != "sample", "target"].unique())  # the Embedding page draws picked walks
    pts = [{"customdata": [int(s)], "x": float(x), "y": float(y)} for s, x, y in samples.itertuples(index=False)]
    route = Callback(app, "page.children")
    out = [(f"page {p}", route, [{"url.pathname": p}]) for p in ("/", "/correlations", "/walks", "/embedding")]
    heat = Callback(app, "co-heat.figure")
    qs = ["0.05", "0.01", "0.1", "1e-6", "0.5"]
    for which in ("std", "slope", "r"):
        out.append(
            (
                f"heatmap {which}",
                heat,
                [
                    {
                        "co-value.value": which,
                        "co-q.value": q,
                        "co-sig.value": sig,
                        "co-order.value": order,
                        "co-min.value": "0.1" if sig else "0",
                    }
                    for sig in ([], ["sig"])
                    for q in qs
                    for order in (("effect", "cluster") if q == "0.05" else ("effect",))
                ],
            )
        )
    out.append(("controlling", Callback(app, "co-controlling.children"), [{"co-measure.value": m} for m in ms]))
    out.append(
        (
            "walks compare",
            Callback(app, "wk-compare-box.children"),
            [
                {"wk-compare.value": tn[i : i + 4], "wk-cmp-measure.value": ms[i % len(ms)]}
                for i in range(0, max(1, len(tn) - 3), max(1, len(tn) // 20))
            ],
        )
    )
    out.append(
        (
            "embedding scatter",
            Callback(app, "em-scatter.figure"),
            [{"em-color.value": c, "em-walks.value": w} for w in (walked[:2], []) for c in [*ms, "logp", "norm"]],
        )
    )
    out.append(
        (
            "embedding lasso",
            Callback(app, "em-selection.children"),
            [{"em-scatter.selectedData": {"points": pts[i : i + 40]}} for i in range(0, min(len(pts), 400), 40)],
        )
    )
    return out


# ---- server and clients -----------------------------------------------------------------------------------------
def serve(app, host: str = "127.0.0.1"):
    """Start the app's Flask server on host:<ephemeral port> in a daemon thread -> (server, base url)."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load test only runs on loopback; got host {host!r}")
    srv = make_server(host, 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, name="load-server", daemon=True).start()
    return srv, f"http://{host}:{srv.server_port}"


def _clients(url: str, work: list[tuple[str, list[dict]]], clients: int, seconds: float) -> tuple[list, float]:
    """`clients` threads POST the payloads of `work` round-robin for `seconds` -> ([(view, s, ok, error)], wall).
    Runs in its own process (as browsers would), so the clients do not share the server's GIL."""
    import requests

    results: list[tuple[str, float, bool, str]] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(i: int):
        local = []
        with requests.Session() as s:
            j = i
            while time.perf_counter() < stop:
                name, payloads = work[j % len(work)]
                body = payloads[(j // len(work)) % len(payloads)]
                j += 1
                t0 = time.perf_counter()
                err = ""
                try:
                    r = s.post(url + "/_dash-update-component", json=body, timeout=60)
                    ok = r.status_code == 200 and not has_error_box(r.text)
                    if not ok:
                        err = f"HTTP {r.status_code}: {r.text[:200]}"
                except Exception as e:  # noqa: BLE001 - counted as an error
                    ok, err = False, f"{type(e).__name__}: {e}"
                local.append((name, time.perf_counter() - t0, ok, err))
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


def run_load(app, clients: int = 8, seconds: float = 30.0, warmup: bool = True, prewarm: bool = False) -> dict:
    """Serve `app` on 127.0.0.1 and run `clients` concurrent clients (threads of one separate process) over the
    views(app) payloads for `seconds` -> latency summary (overall and per view, plus each view's cold cost)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import requests

    vs = views(app)
    work = [(name, [cb.payload(v) for v in variants]) for name, cb, variants in vs]
    srv, url = serve(app)
    cold: dict[str, float] = {}
    try:
        if warmup:  # the first variant of each view, one client: the cold (uncached) cost of each view
            with requests.Session() as s:
                for name, payloads in work:
                    t0 = time.perf_counter()
                    s.post(url + "/_dash-update-component", json=payloads[0], timeout=120)
                    cold[name] = (time.perf_counter() - t0) * 1000
                for name, payloads in work if prewarm else ():  # every variant once: measure the warm state
                    for body in payloads[1:]:
                        s.post(url + "/_dash-update-component", json=body, timeout=120)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
            results, wall = ex.submit(_clients, url, work, clients, seconds).result()
    finally:
        srv.shutdown()
    out = summarize(results, clients, wall)
    for name, ms in cold.items():
        out["views"].setdefault(name, {})["cold_ms"] = ms
    out["variants"] = sum(len(v) for _, _, v in vs)
    return out


def profile(app, repeat: int = 20, top: int = 8) -> dict:
    """One client, no load: each view's first variant once (cold, timed), then `repeat` warm requests under cProfile
    (the Flask test client: routing, the callback, serialisation) -> {view: warm ms per request}; prints each
    view's `top` functions by own time."""
    import cProfile
    import io
    import pstats

    client = app.server.test_client()
    out = {}
    for name, cb, variants in views(app):
        body = cb.payload(variants[0])
        t0 = time.perf_counter()
        client.post("/_dash-update-component", json=body)
        cold = (time.perf_counter() - t0) * 1000
        pr = cProfile.Profile()
        t0 = time.perf_counter()
        pr.enable()
        for _ in range(repeat):
            r = client.post("/_dash-update-component", json=body)
        pr.disable()
        out[name] = (time.perf_counter() - t0) * 1000 / repeat
        buf = io.StringIO()
        pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(top)
        rows = [ln for ln in buf.getvalue().splitlines() if ln.strip()[:1].isdigit()][:top]
        print(
            f"{name}: cold {cold:.1f} ms, {out[name]:.1f} ms per warm request, response {len(r.data) / 1024:.0f} kB",
            flush=True,
        )
        print("\n".join("    " + ln.strip() for ln in rows), flush=True)
    return out


def cold_costs(app) -> dict:
    """One client, no load, nothing memoised yet: every input variant of each view requested once (the Flask test
    client: routing, the callback, serialisation) -> {view: {variants, first_ms, mean_ms, max_ms}}. The first
    variant also reads the view's tables; mean / max are over the other variants (the cost of each new variant)."""
    client = app.server.test_client()
    out = {}
    for name, cb, variants in views(app):
        ms = []
        for v in variants:
            t0 = time.perf_counter()
            r = client.post("/_dash-update-component", json=cb.payload(v))
            ms.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200 or has_error_box(r.get_data(as_text=True)):
                raise RuntimeError(f"{name}: variant {v} failed: HTTP {r.status_code} {r.get_data(as_text=True)[:200]}")
        rest = ms[1:] or ms
        out[name] = {"variants": len(ms), "first_ms": ms[0], "mean_ms": float(np.mean(rest)), "max_ms": max(rest)}
    return out


def cold_report(c: dict) -> str:
    """cold_costs as a text table."""
    lines = [f"{'view':<30} {'variants':>8} {'first ms':>9} {'mean ms':>8} {'max ms':>8}"]
    for v, d in c.items():
        lines.append(f"{v:<30} {d['variants']:>8} {d['first_ms']:>9.1f} {d['mean_ms']:>8.1f} {d['max_ms']:>8.1f}")
    return "\n".join(lines)


def summarize(results, clients: int, wall: float) -> dict:
    """Per-view and overall request count, p50 / p95 / max latency (ms) and errors."""
    df = pd.DataFrame(results, columns=["view", "s", "ok", "error"])

    def stat(d):
        ms = d["s"].to_numpy() * 1000
        return {
            "n": int(len(d)),
            "p50_ms": float(np.percentile(ms, 50)) if len(d) else None,
            "p95_ms": float(np.percentile(ms, 95)) if len(d) else None,
            "max_ms": float(ms.max()) if len(d) else None,
            "errors": int((~d["ok"]).sum()),
        }

    return {
        "clients": clients,
        "seconds": wall,
        "requests": int(len(df)),
        "req_per_s": len(df) / wall if wall else 0.0,
        **stat(df),
        "views": {v: stat(g) for v, g in df.groupby("view", sort=False)},
        "first_errors": df.loc[~df["ok"], "error"].head(5).tolist(),
    }


def report(s: dict) -> str:
    """The summary as a text table (overall line, then one line per view)."""
    lines = [
        f"{s['clients']} clients, {s['seconds']:.1f} s: {s['requests']} requests ({s['req_per_s']:.1f}/s), "
        f"p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, max {s['max_ms']:.1f} ms, "
        f"errors {s['errors']} ({s.get('variants', '?')} input variants)",
        f"{'view':<30} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'err':>4} {'cold ms':>8}",
    ]
    for v, d in s["views"].items():
        if "n" not in d:
            continue
        lines.append(
            f"{v:<30} {d['n']:>6} {d['p50_ms']:>8.1f} {d['p95_ms']:>8.1f} {d['max_ms']:>8.1f} "
            f"{d['errors']:>4} {d.get('cold_ms', float('nan')):>8.1f}"
        )
    lines += [f"error: {e}" for e in s["first_errors"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Build (or reuse) the study, serve it on 127.0.0.1, run the clients, print the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rows", type=int, default=100_000, help="intervention rows of the synthetic study")
    ap.add_argument("--study", type=Path, default=None, help="reuse / keep the synthetic study here")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary as JSON")
    ap.add_argument(
        "--prewarm",
        action="store_true",
        help="request every input variant once before timing (measures the warm, memoised state only)",
    )
    ap.add_argument(
        "--no-memo",
        action="store_true",
        help="switch the view memo off (Context.MEMO_SIZE = 0): "
        "every request computes its figure, as before the cache existed",
    )
    ap.add_argument(
        "--no-wire",
        action="store_true",
        help="memoise views as built (Context.WIRE = False): "
        "plotly encodes each figure on every request, as before (A/B)",
    )
    ap.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave memoised views in the GC's full collections (Context.FREEZE = False), as before (A/B)",
    )
    ap.add_argument(
        "--no-summary",
        action="store_true",
        help="build the study without alpha_summary.parquet "
        "(an older study: the dashboard summarises it on first open)",
    )
    ap.add_argument(
        "--cold",
        action="store_true",
        help="no load test: one client requests every input variant of each view once, nothing memoised "
        "before, and prints each view's cost per new variant",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="no load test: profile warm requests of each view "
        "one at a time (cProfile) and print where their time goes",
    )
    a = ap.parse_args([] if argv is None and __name__ != "__main__" else argv)
    import torch

    torch.set_num_threads(1)
    from dashboards.app import Context, create_app

    if a.no_memo:
        Context.MEMO_SIZE = 0
    if a.no_wire:
        Context.WIRE = False
    if a.no_freeze:
        Context.FREEZE = False
    with tempfile.TemporaryDirectory() as tmp:
        path = a.study or Path(tmp) / "study"
        if not (path / "manifest.json").is_file():
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
                dt = ex.submit(build, str(path), a.rows, True, not a.no_summary).result()
            print(f"synthetic study {path}: {a.rows} rows requested, built in {dt:.1f} s", flush=True)
        app = create_app(path)
        n = app.probe_ctx.iv_count()
        print(
            f"study: {n} intervention rows, {len(app.probe_ctx.latents())} samples; "
            f"{a.clients} clients x {a.seconds:g} s on 127.0.0.1",
            flush=True,
        )
        if a.profile:
            return profile(app)
        if a.cold:
            c = cold_costs(app)
            print(cold_report(c), flush=True)
            la = os.getloadavg()
            print(f"one client, each variant once; load average after the run {la[0]:.2f} on {os.cpu_count()} CPUs")
            if a.json:
                a.json.write_text(json.dumps({"cold": c, "load_avg": la, "rows": n}, indent=1))
            return c
        s = run_load(app, a.clients, a.seconds, prewarm=a.prewarm)
    s.update(
        rows=n,
        prewarm=a.prewarm,
        memo=not a.no_memo,
        freeze=bool(getattr(Context, "FREEZE", False)),
        load_avg=os.getloadavg(),
        cpus=os.cpu_count(),
        server_peak_rss_mb=peak_rss_mb(),
    )
    print(report(s), flush=True)
    print(f"server process peak RSS {s['server_peak_rss_mb']:.0f} MB ({n} intervention rows)", flush=True)
    print(
        f"memo {'on' if s['memo'] else 'off'}, freeze {'on' if s['freeze'] else 'off'}, "
        f"prewarm {'on' if a.prewarm else 'off'}; load average after the "
        f"run {s['load_avg'][0]:.2f} on {s['cpus']} CPUs",
        flush=True,
    )
    if a.json:
        a.json.write_text(json.dumps(s, indent=1))
    return s


if __name__ == "__main__":
    main()
