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
