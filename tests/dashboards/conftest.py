"""Dashboard test studies: a copy of the shared tiny_study with every derived table and direction set added,
and the bare tiny_study (no derived tables) for the 'which command makes it' notes."""

import shutil

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def full_study(tiny_study, tmp_path_factory):
    """tiny_study + stats tables, evaluation, ground truth, interfacegan + dplase directions and a 2-D embedding
    table."""
    import torch

    from probe import stats, walks
    from probe.directions import DPLaSE, InterFaceGAN, evaluate_study
    from probe.restudy import study_model, study_target
    from probe.store import Study

    path = tmp_path_factory.mktemp("dash") / "study"
    shutil.copytree(tiny_study.path, path)
    s = Study(path)
    stats.analyze(s)
    evaluate_study(s)
    from probe.directions.groundtruth import groundtruth

    groundtruth(s, factors=["brightness", "contrast", "centroid_x", "centroid_y"])  # image stats as "factors"
    samples = s.table("samples").sort_values("sample_id")
    lat = s.latents()
    ifg = InterFaceGAN(measure=["brightness", "contrast"], ratio=0.3, split=0.7).fit(
        lat, {m: samples[m].to_numpy() for m in ("brightness", "contrast")}
    )
    s.save_directions(ifg.directions_, "interfacegan")
    dp = DPLaSE(n_directions=2, steps=10, batch_size=4, progress=False).fit(study_model(s))
    s.save_directions(dp.directions_, "dplase")
    # embedding table: 2-D PCA coordinates of samples and of the random/d0 walk of samples 0..3 (the dashboard
    # only reads x, y; probe.embed's UMAP writes the same columns)
    t = study_target(s, "random/d0")
    walked = walks.apply(torch.from_numpy(lat[:4]), s.space, t, s.alphas).numpy()
    x = np.concatenate([lat, walked])
    mu = lat.mean(0)
    _, _, vt = np.linalg.svd(lat - mu, full_matrices=False)
    xy = (x - mu) @ vt[:2].T
    n, a = len(lat), len(s.alphas)
    emb = pd.DataFrame(
        {
            "point_id": np.arange(len(x)),
            "kind": ["sample"] * n + ["walk"] * (4 * a),
            "sample_id": np.r_[np.arange(n), np.repeat(np.arange(4), a)],
            "target": [""] * n + ["random/d0"] * (4 * a),
            "alpha": np.r_[np.zeros(n), np.tile(s.alphas, 4)],
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )
    s.write_table("embedding", emb)
    return Study(path)
