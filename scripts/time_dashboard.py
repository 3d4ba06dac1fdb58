"""Single-client costs of the dashboard on a face study: app start, page layouts, the generating views, drags.

Reproduces the "Measured" table of docs/readme/70-dashboard.md. The study (64 samples of `faces`, variables
z[0..3], 5 alphas, measures `image`) is made with probe.run_study under --out the first time and reused after.
Each number is one call in this process, in order, so the first image costs include loading the model.

    python scripts/time_dashboard.py                       # study in studies/time-dashboard
    python scripts/time_dashboard.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SPEC = {
    "name": "time-dashboard",
    "model": "faces",
    "measures": ["image"],
    "n_samples": 64,
    "seed": 0,
    "alphas": [-2, -1, 0, 1, 2],
    "targets": [{"kind": "variables", "indices": [0, 1, 2, 3]}],
}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("studies/time-dashboard"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import probe

    probe.run_study(SPEC, a.out, resume=True, progress=False)
    res = {}
    _, res["import dashboards.app"] = _timed(lambda: __import__("dashboards.app"))
    from dashboards.app import Context, create_app
    from dashboards.pages import PAGES

    _, res["create_app"] = _timed(lambda: create_app(a.out))
    ctx = Context(probe.open_study(a.out))
    for page in PAGES:
        _, res[f"layout {page.NAME}"] = _timed(lambda page=page: page.layout(ctx))
    _, res["first grid of 16 images (model load included)"] = _timed(
        lambda: probe.figures.sample_grid(ctx.images(list(range(16))))
    )
    _, res["walk strip, 4 samples x 5 alphas"] = _timed(
        lambda: probe.figures.image_strip(ctx.render([0, 1, 2, 3], "z[0]", SPEC["alphas"]), SPEC["alphas"])
    )
    _, res["re-render of one image at one alpha"] = _timed(lambda: ctx.render([5], "z[1]", [1.5]))
    model = probe.load_model("faces")
    z = model.sample(1, 3)
    for cls in (probe.DragGAN, probe.FreeDrag):
        _, res[f"{cls.__name__}, 10 steps"] = _timed(
            lambda cls=cls: cls(max_steps=10, d_stop=0).run(model, z, "z", [[30, 40]], [[36, 40]])
        )
    for k, s in res.items():
        print(f"{k:<48} {s:8.3f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
