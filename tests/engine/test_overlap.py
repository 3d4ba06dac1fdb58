"""The engine's overlap of rendering and measuring: same parts, same order, errors raised, nothing left running."""

import threading

import numpy as np
import pandas as pd
import pytest
import torch

from probe.density import GaussianDensity
from probe.engine import measure_base, measured, run_plan, use_overlap
from probe.measures import MeasureError, MeasureSet
from probe.walks import Target, channel, variable


def _frames(parts):
    out = []
    for p in parts:
        d = {
            "k": np.full(len(p.target), p.k),
            "target": p.target,
            "sample_id": p.sample_id,
            "step": p.step,
            "alpha": p.alpha,
            "norm": p.norm,
            "logp": p.logp,
            **p.scores,
        }
        out.append(pd.DataFrame(d))
    return out


def _plan(model, measures, overlap, space="z", density=None, **kw):
    z = model.sample(7, 5)
    lat = model.to_space(z, "z", space) if space != "z" else z
    targets = [
        variable(0, space),
        variable(3, space, mode="set"),
        channel(model.sites[1], [1, 4]),
        Target("direction", "m/a", "isodensity", vector=np.ones(model.dim(space)) / 4),
    ]
    base = measure_base(model, lat, space, measures, density, batch_size=3, overlap=overlap)
    parts = list(
        run_plan(
            model,
            lat,
            space,
            targets,
            [-2.0, 0.0, 1.5],
            measures,
            density,
            batch_size=4,
            part_rows=10,
            base=base,
            overlap=overlap,
            **kw,
        )
    )
    return base, parts


@pytest.fixture(scope="module")
def image_measures():
    return MeasureSet(["image"])


def test_overlap_gives_identical_part_frames(tiny_dcgan, image_measures):
    b0, p0 = _plan(tiny_dcgan, image_measures, overlap=False)
    b1, p1 = _plan(tiny_dcgan, image_measures, overlap=True)
    assert [p.k for p in p1] == list(range(len(p1))) == [p.k for p in p0] and len(p0) == 9
    assert b0.keys() == b1.keys() and all(np.array_equal(b0[k], b1[k]) for k in b0)
    for f0, f1 in zip(_frames(p0), _frames(p1)):
        pd.testing.assert_frame_equal(f0, f1, check_exact=True)
    assert list(p0[0].scores) == image_measures.names


def test_overlap_identical_in_w_with_skipped_parts(tiny_stylegan, image_measures):
    with torch.no_grad():
        w = tiny_stylegan.to_space(tiny_stylegan.sample(300, 1), "z", "w")
    dens = GaussianDensity().fit(w)
    _, p0 = _plan(tiny_stylegan, image_measures, False, "w", dens, skip=[0, 3, 8])
    _, p1 = _plan(tiny_stylegan, image_measures, True, "w", dens, skip=[0, 3, 8])
    assert [p.k for p in p1] == [1, 2, 4, 5, 6, 7]
    for f0, f1 in zip(_frames(p0), _frames(p1)):
        pd.testing.assert_frame_equal(f0, f1, check_exact=True)


def test_overlap_with_cpu_measures_faces(faces):
    ms = MeasureSet(["brightness", "yaw", "gender"])
    assert ms.device == "cpu"
    z = faces.sample(6, 3)
    a = measure_base(faces, z, "z", ms, batch_size=2, overlap=False)
    b = measure_base(faces, z, "z", ms, batch_size=2, overlap=True)
    assert list(a) == ["brightness", "yaw", "gender", "norm", "logp"]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_default_overlaps_only_off_the_cpu(tiny_dcgan, image_measures):
    assert use_overlap(tiny_dcgan, image_measures) is False
    assert use_overlap(tiny_dcgan, MeasureSet(["sprites"])) is False  # the model is on the CPU
    assert use_overlap(tiny_dcgan, image_measures, overlap=True) is True


def test_measured_keeps_order_and_runs_on_a_worker(image_measures):
    g = torch.Generator().manual_seed(0)
    imgs = [torch.rand(n, 3, 8, 8, generator=g) * 2 - 1 for n in (3, 1, 4, 2, 5)]
    seen = []
    stream = ((im if i != 2 else None, (i, threading.current_thread().name)) for i, im in enumerate(imgs))
    for scores, (i, _) in measured(stream, image_measures, overlap=True):
        seen.append(i)
        want = image_measures(imgs[i]) if i != 2 else {}
        assert scores.keys() == want.keys() and all(np.array_equal(scores[k], want[k]) for k in want)
    assert seen == [0, 1, 2, 3, 4]
    assert not [t for t in threading.enumerate() if t.name.startswith("probe-measures")]


def test_a_measure_error_on_the_worker_is_raised(tiny_dcgan, tmp_path):
    f = tmp_path / "bad.py"
    f.write_text(
        "import numpy as np\nfrom probe.measures import Measure, MeasureInfo\n"
        "class Bad(Measure):\n    infos = (MeasureInfo('bad', 'u', 0, 1, 'one value short'),)\n"
        "    def __call__(self, img):\n        return {'bad': np.zeros(len(img) - 1)}\n"
        "def make():\n    return Bad()\n"
    )
    ms = MeasureSet([f"{f}:make"])
    assert ms.device == "cpu"
    z = tiny_dcgan.sample(5, 0)
    for overlap in (False, True):
        with pytest.raises(MeasureError) as e:
            list(run_plan(tiny_dcgan, z, "z", [variable(0)], [1.0], ms, batch_size=2, part_rows=3, overlap=overlap))
        assert str(e.value) == (f"measure '{f}:make' returned 'bad' with shape [1]; expected one value per image [2]")
    assert not [t for t in threading.enumerate() if t.name.startswith("probe-measures")]
