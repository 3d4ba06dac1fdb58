import math

import numpy as np
import pytest
import torch

from probe.edit import DragGAN, FreeDrag
from probe.edit.quality import (
    MAX_DRIFT,
    MAX_OUTSIDE,
    EditQuality,
    QualityError,
    QualityGuard,
    edit_record,
    measure_drift,
    outside_change,
)
from probe.measures.base import MeasureInfo

Z0 = torch.zeros(1, 2)


def test_outside_change_counts_only_far_pixels():
    before = torch.zeros(3, 16, 16)
    after = before.clone()
    after[:, 0, 0] = 1.0  # one far pixel changes by 127.5
    yy, xx = np.mgrid[0:16, 0:16]
    n_far = int(((xx - 8) ** 2 + (yy - 8) ** 2 > 9).sum())
    assert outside_change(before, after, np.array([[8.0, 8.0]]), 3) == pytest.approx(127.5 / n_far)
    assert math.isnan(outside_change(before, after, np.array([[8.0, 8.0]]), 100))  # nothing is outside


def test_measure_drift_is_relative_circular_and_counts_a_lost_face():
    infos = [
        MeasureInfo("age", "years", 0.0, 80.0, "age"),
        MeasureInfo("hue", "degrees", 0.0, 360.0, "hue", kind="circular", period=360.0),
        MeasureInfo("yaw", "interocular", -1.0, 1.0, "yaw"),
        MeasureInfo("roll", "degrees", -90.0, 90.0, "roll"),
    ]
    d = measure_drift(
        {"age": 20, "hue": 350, "yaw": 0.1, "roll": float("nan")},
        {"age": 40, "hue": 10, "yaw": float("nan"), "roll": 3.0},
        infos,
    )
    assert d["age"] == pytest.approx(0.25) and d["hue"] == pytest.approx(20 / 360)  # the short way round
    assert d["yaw"] == 1.0 and math.isnan(d["roll"])  # face lost after; unknown before
    q = EditQuality(1.0, 3.0, d)
    assert q.max_drift == 1.0 and q.as_dict()["drift_age"] == pytest.approx(0.25)


def test_thresholds(blob):
    g = QualityGuard(measures=(), radius=4).bind(blob, torch.zeros(3, 32, 32), [[16, 16]], [[21, 16]])
    calm = g.check(torch.zeros(3, 32, 32) + 0.1, [[21, 16]])
    assert not calm.degraded and calm.reason == "" and calm.handle_px == 0.0
    wild = g.check(torch.ones(3, 32, 32), [[17, 16]])
    assert wild.degraded and wild.outside_change == pytest.approx(127.5) and wild.handle_px == 4.0
    assert wild.reason == f"change outside the handle region 127.5/255 > {MAX_OUTSIDE:g}"
    assert MAX_OUTSIDE == 20.0 and MAX_DRIFT == 0.5
    with pytest.raises(QualityError, match="max_outside and max_drift must be > 0"):
        QualityGuard(max_outside=0)


def test_guard_stops_a_degrading_drag(blob):
    h, t = [[16, 16]], [[28, 16]]
    free = DragGAN(lr=0.05, max_steps=40, d_stop=0).run(
        blob, Z0, "z", h, t, guard=QualityGuard(measures=(), radius=3, max_outside=1e3)
    )
    assert free.steps == 40 and free.quality.outside_change > 0.5 and not free.quality.degraded
    g = QualityGuard(measures=(), radius=3, max_outside=0.5)
    d = DragGAN(lr=0.05, max_steps=40, d_stop=0)
    res = d.run(blob, Z0, "z", h, t, guard=g)
    assert res.status == "degraded" and not res.converged and res.steps < free.steps
    assert res.reason.startswith("image degraded: change outside the handle region")
    assert res.quality.degraded and res.quality.outside_change > 0.5


def test_guard_turns_a_success_on_a_broken_image_into_degraded(blob):
    # the drag arrives (status ok without a guard) but moves the whole blob: outside the 1 px discs it changed
    h, t = [[16, 16]], [[21, 16]]
    plain = FreeDrag(lr=0.05, max_steps=60, units="mean").run(blob, Z0, "z", h, t)  # (l relative: a toy's features)
    assert plain.status == "ok"
    res = FreeDrag(lr=0.05, max_steps=60, units="mean").run(
        blob, Z0, "z", h, t, guard=QualityGuard(measures=(), radius=1, max_outside=0.5, early_stop=False)
    )
    assert res.steps == plain.steps and res.status == "degraded" and "change outside" in res.reason


def test_guard_scores_the_models_measures(tiny_dcgan):
    g = QualityGuard(measures=("brightness", "contrast"), every=2)
    res = DragGAN(max_steps=4, d_stop=0).run(tiny_dcgan, tiny_dcgan.sample(1, 1), "z", [[8, 8]], [[20, 8]], guard=g)
    assert set(res.quality.drift) == {"brightness", "contrast"} and res.quality.max_drift >= 0
    rec = edit_record(res)
    assert rec["kind"] == "drag" and rec["method"] == "draggan" and rec["status"] == res.status
    assert rec["points"]["handles"] == [[8.0, 8.0]] and rec["handle_dist_px"] == pytest.approx(res.distances.mean())
    assert rec["outside_change"] == res.quality.outside_change and "drift_brightness" in rec["quality"]
    assert rec["params"]["lr"] == 0.001 and rec["site"] == res.site
