"""The issue's checks on the real face model (DigiFace DCGAN + FaceMeasures), on small runs.

3000 scored samples fit the boundaries (gender: top/bottom 10%; age: 30%, because the age scorer is weak and
its extremes are mostly artifacts), then 256 fresh samples walk alpha in [-3, 3] along gender and along gender|age.
"""

import numpy as np
import pytest
import torch

from probe.directions import InterFaceGAN, project, sample_and_score

pytestmark = pytest.mark.slow
ALPHAS = np.arange(-3.0, 4.0)


@pytest.fixture(scope="module")
def fitted(faces):
    from probe.measures import MeasureSet

    ms = MeasureSet(["gender", "age"])
    lat, sc = sample_and_score(faces, ms, 3000, seed=1, batch_size=256)
    ds = InterFaceGAN(["gender", "age"], ratio={"gender": 0.1, "age": 0.3}, seed=0).fit(lat, sc, model=faces)
    return ms, ds.directions_.subset(["gender"]), ds.directions_.subset(["age"])


@torch.no_grad()
def _walk(model, ms, v, n=256, seed=2):
    z = model.sample(n, seed)
    zz = (z[:, None] + torch.from_numpy(ALPHAS).float()[None, :, None] * torch.from_numpy(v).float()).reshape(-1, 100)
    img = torch.cat([model.synthesize(zz[i : i + 256]) for i in range(0, len(zz), 256)])
    return {k: s.reshape(n, len(ALPHAS)) for k, s in ms(img).items()}  # {measure: [n, A]}


@pytest.fixture(scope="module")
def walks(faces, fitted):
    ms, g, a = fitted
    ng, na = g.vectors[0], a.vectors[0]
    return _walk(faces, ms, ng), _walk(faces, ms, project(ng, [na]).astype(np.float32))


def _slope(scores):  # pooled OLS slope of a measure on alpha  # [n, A] -> float
    return float(np.polyfit(np.tile(ALPHAS, len(scores)), scores.reshape(-1), 1)[0])


def test_gender_boundary_held_out_accuracy(fitted):
    _, g, _ = fitted
    assert g.names == ["gender"] and g.model == "faces"
    assert g.info[0]["acc_val"] > 0.7 and g.info[0]["n_val"] == 2 * (300 - 210)


def test_gender_walk_raises_p_male_monotonically(walks):
    p = walks[0]["gender"].mean(0)
    assert np.all(np.diff(p) > 0), p
    assert p[-1] - p[0] > 0.3


def test_conditioning_on_age_halves_the_age_drift(walks):
    plain, cond = _slope(walks[0]["age"]), _slope(walks[1]["age"])
    assert plain > 0.3  # the plain gender walk ages faces
    assert abs(cond) <= 0.5 * plain, (plain, cond)
    assert np.all(np.diff(walks[1]["gender"].mean(0)) > 0)  # and still changes gender
