"""InterFaceGAN's two walks side by side on the face model: `linear` (z + alpha * n) and `distance` (z placed at
signed distance alpha from the boundary n.z + offset = 0).

One InterFaceGAN set (gender, age, yaw; fitted on --n-fit face samples with the demo's ratios) is saved under two
file stems, `interfacegan` (walked linearly) and `interfacegan_distance` (walked at absolute distances), so ONE
study walks both over the same samples and alphas. probe.directions.evaluate then gives, per direction and walk:
the slope of its own measure per unit alpha (with its 95% interval), specificity, and the density drift
(mean and max |dlogp| over the walk's rows); plus the spread of the samples' signed distances from the boundary
before the walk (the distance walk moves each sample by alpha - its own distance, the linear walk by alpha).

Writes <out>/interfacegan_walks.csv and .md; resumable (the fitted set and the study are kept under <out>).

  python scripts/interfacegan_walks.py --out runs/interfacegan-walks
  python scripts/interfacegan_walks.py --out /tmp/ifg-walks-quick --quick    (tiny-dcgan, image measures: a smoke run)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

FULL = {
    "model": "faces",
    "measures": ["gender", "age", "yaw", "roll", "brightness"],
    "directions": ["gender", "age", "yaw"],
    "ratio": {"gender": 0.1, "age": 0.3, "yaw": 0.1},
    "n_fit": 2000,
    "n_samples": 64,
    "alphas": [-3.0, -1.5, 0.0, 1.5, 3.0],
}
QUICK = {
    "model": "tiny-dcgan",
    "measures": ["brightness", "contrast", "saturation"],
    "directions": ["brightness", "contrast"],
    "ratio": 0.25,
    "n_fit": 160,
    "n_samples": 6,
    "alphas": [-2.0, 0.0, 2.0],
}
COLUMNS = [
    "direction",
    "walk",
    "measure",
    "slope",
    "slope_lo",
    "slope_hi",
    "specificity",
    "dlogp_abs_mean",
    "dlogp_abs_max",
    "start_distance_sd",
]


def run(
    out: str | Path,
    quick: bool = False,
    n_fit: int | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    log=print,
) -> pd.DataFrame:
    """Fit, run the two-walk study, evaluate; returns one row per direction and walk (COLUMNS)."""
    import torch

    from probe.directions import InterFaceGAN, evaluate_study
    from probe.directions.base import DirectionSet
    from probe.io import atomic_write_bytes
    from probe.models import load_model
    from probe.study import parse_spec, run_study
    from probe.walks import direction, signed_distance

    cfg = dict(QUICK if quick else FULL)
    cfg["n_fit"] = int(n_fit or cfg["n_fit"])
    cfg["n_samples"] = int(n_samples or cfg["n_samples"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = load_model(cfg["model"])
    path = out / "interfacegan.npz"
    if not path.is_file():
        est = InterFaceGAN(cfg["directions"], ratio=cfg["ratio"], n_samples=cfg["n_fit"], seed=seed + 1).fit(model)
        est.directions_.save(path)
        for name, acc in est.accuracy_.items():
            log(f"  boundary {name:<10} held-out accuracy {acc:.3f}")
    ds = DirectionSet.load(path)
    ds.save(out / "interfacegan_distance.npz")
    log(f"fitted in {time.perf_counter() - t0:.0f} s; running the study")
    spec = parse_spec(
        {
            "name": "interfacegan-walks",
            "model": cfg["model"],
            "measures": cfg["measures"],
            "n_samples": cfg["n_samples"],
            "seed": seed,
            "space": "z",
            "alphas": cfg["alphas"],
            "targets": [
                {"kind": "directions", "file": "interfacegan.npz", "walk": "linear"},
                {"kind": "directions", "file": "interfacegan_distance.npz", "walk": "distance"},
            ],
        },
        base=out,
    )
    study_dir = out / "study"
    st = run_study(spec, study_dir, resume=(study_dir / "manifest.json").is_file(), progress=False)
    ev = evaluate_study(st)
    z = torch.as_tensor(st.latents())
    rows = []
    for r in ev[ev["is_target"]].itertuples():
        name = r.target.split("/", 1)[1]
        t = direction(ds, ds.names.index(name), r.walk)
        rows.append(
            {
                "direction": name,
                "walk": r.walk,
                "measure": r.measure,
                "slope": r.slope,
                "slope_lo": r.slope_lo,
                "slope_hi": r.slope_hi,
                "specificity": r.specificity,
                "dlogp_abs_mean": r.dlogp_abs_mean,
                "dlogp_abs_max": r.dlogp_abs_max,
                "start_distance_sd": float(signed_distance(z, t).std()),
            }
        )
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values(["direction", "walk"], kind="stable").reset_index(drop=True)
    atomic_write_bytes(out / "interfacegan_walks.csv", df.to_csv(index=False).encode())
    md = to_markdown(df)
    atomic_write_bytes(out / "interfacegan_walks.md", (md + "\n").encode())
    log(md)
    log(f"done in {time.perf_counter() - t0:.0f} s: {out / 'interfacegan_walks.csv'}")
    return df


def to_markdown(df: pd.DataFrame) -> str:
    """The comparison as one Markdown table."""
    head = [
        "direction",
        "walk",
        "slope of its measure per unit alpha (95% CI)",
        "specificity",
        "mean \\|dlogp\\|",
        "max \\|dlogp\\|",
        "sd of start distance",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in df.itertuples():
        lines.append(
            f"| {r.direction} | {r.walk} | {r.slope:+.3g} ({r.slope_lo:+.3g}, {r.slope_hi:+.3g}) | "
            f"{r.specificity:.2f} | {r.dlogp_abs_mean:.2f} | {r.dlogp_abs_max:.2f} | "
            f"{r.start_distance_sd:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (resumable)")
    p.add_argument("--quick", action="store_true", help="tiny-dcgan and image measures: a smoke run")
    p.add_argument("--n-fit", type=int, default=None, help="samples for the boundaries (default 2000)")
    p.add_argument("--n-samples", type=int, default=None, help="study samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from probe.errors import ProbeError

    try:
        run(a.out, a.quick, a.n_fit, a.n_samples, a.seed)
    except ProbeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
