"""`probe stats STUDY`, `probe embed STUDY`: statistics and UMAP tables of a finished study."""

from __future__ import annotations

import time

import typer

from ..errors import ProbeError
from . import app, echo


def _open(path: str):
    from ..store import Study

    return Study(path)


@app.command("stats")
def stats_cmd(
    study: str = typer.Argument(..., help="study directory (made by probe run)"),
    q_max: float = typer.Option(0.05, "--q-max", help="FDR level for controlling variables"),
    level: float = typer.Option(0.95, "--level", help="confidence level of the slope CIs"),
    top: int = typer.Option(5, "--top", help="controlling variables printed per measure"),
) -> None:
    """Slopes with CIs (effects), latent-measure correlations and controlling variables, BH-FDR corrected."""
    from ..stats import analyze

    if not 0 < level < 1:
        raise ProbeError(f"--level must be in (0, 1), e.g. 0.95; got {level}")
    if not 0 < q_max <= 1:
        raise ProbeError(f"--q-max must be in (0, 1], e.g. 0.05; got {q_max}")
    if top < 1:
        raise ProbeError(f"--top must be >= 1; got {top}")
    s = _open(study)
    t0 = time.perf_counter()
    with s.lock():
        out = analyze(s, q_max=q_max, level=level)
    dt = time.perf_counter() - t0
    for name in ("effects", "correlations"):
        if name in out:
            d = out[name]
            echo(
                f"{name}: {len(d)} tests, {int((d['q'] <= q_max).sum())} with q <= {q_max:g} "
                f"-> {s.path / (name + '.parquet')}"
            )
    ctl = out["controlling"]
    echo(f"controlling: {len(ctl)} rows -> {s.path / 'controlling.parquet'}  ({dt:.2f} s)")
    for m, g in ctl.groupby("measure", sort=False):
        best = ", ".join(f"{r.target} ({r.effect:+.3g}, q={r.q:.2g})" for r in g.head(top).itertuples())
        echo(f"  {m:<12} [{g['source'].iloc[0]}] {best}")


@app.command("embed")
def embed_cmd(
    study: str = typer.Argument(..., help="study directory (made by probe run)"),
    walks: bool = typer.Option(True, "--walks/--no-walks", help="also place latent walk points"),
    max_samples: int = typer.Option(16, "--max-samples", help="samples whose walks are placed"),
    n_neighbors: int = typer.Option(15, "--n-neighbors", help="UMAP n_neighbors"),
    min_dist: float = typer.Option(0.1, "--min-dist", help="UMAP min_dist"),
    seed: int = typer.Option(0, "--seed", help="UMAP random_state"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="reuse STUDY/.cache/embed coordinates"),
) -> None:
    """UMAP of the sample latents (+ walk points via transform) -> embedding.parquet."""
    from ..embed import embed_study

    if max_samples < 1:
        raise ProbeError(f"--max-samples must be >= 1; got {max_samples}")
    if n_neighbors < 2:
        raise ProbeError(f"--n-neighbors must be >= 2; got {n_neighbors}")
    if not 0 <= min_dist <= 1:
        raise ProbeError(f"--min-dist must be in [0, 1]; got {min_dist}")
    s = _open(study)
    t0 = time.perf_counter()
    with s.lock():
        df = embed_study(
            s,
            walks=walks,
            max_samples=max_samples,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            random_state=seed,
            cache=cache,
        )
    n = df["kind"].value_counts()
    echo(
        f"embedding: {int(n.get('sample', 0))} samples, {int(n.get('walk', 0))} walk points "
        f"-> {s.path / 'embedding.parquet'}  ({time.perf_counter() - t0:.1f} s)"
    )
