"""Quality numbers: Frechet distance on known Gaussians, and the report on a small n."""

import numpy as np
import pytest

from probe.train.quality import format_quality, frechet_distance, quality


def test_frechet_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, a + [2.0, 0, 0]) == pytest.approx(4.0, abs=1e-6)  # mean shift only
    b = rng.normal(size=(4000, 3)) * 2  # var 1 vs 4 per dim: (1 + 4 - 2 * 2) * 3 = 3
    assert frechet_distance(a, b) == pytest.approx(3.0, rel=0.1)


def test_quality_report_small():
    q = quality("sprites", n=96, seed=1)
    assert set(q["factors"]) == {"shape", "scale", "rotation", "x", "y", "hue"}
    for f in ("scale", "rotation", "x", "y", "hue"):
        assert 0 <= q["factors"][f]["ks_gen_vs_real"] <= 1
    assert 0 <= q["factors"]["shape"]["tv_gen_vs_real"] <= 1
    assert q["frechet"]["real_vs_real"] >= 0 and q["frechet"]["gen_vs_real"] >= 0
    txt = format_quality(q)
    assert "Frechet" in txt and "| hue |" in txt
    assert quality("sprites", n=96, seed=1)["frechet"] == q["frechet"]  # deterministic


def test_quality_cli_scores_a_training_run(tmp_path):
    """`probe train quality --model RUN/generator.pt`: a run is scored before it is shipped; an untrained tiny
    generator is far from the data."""
    import json

    from typer.testing import CliRunner

    from probe.cli import app
    from probe.train.trainer import train_gan

    path = train_gan(
        "stylegan", iters=1, batch=4, seed=0, out=tmp_path / "run", tiny=True, sample_every=0, log=lambda *_: None
    )
    r = CliRunner().invoke(
        app, ["train", "quality", "--model", str(path), "--n", "64", "--out", str(tmp_path / "q.json")]
    )
    assert r.exit_code == 0, r.output
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["model"] == "run" and q["n"] == 64
    assert q["frechet"]["gen_vs_real"] > 5 * q["frechet"]["real_vs_real"]
