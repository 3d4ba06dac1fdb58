"""probe.embed: UMAP fit / transform, the coordinate cache, embed_study on a real tiny study."""

import shutil

import numpy as np
import pandas as pd
import pytest

from probe import schema
from probe.embed import EmbedError, LatentEmbedding, embed_study
from probe.errors import ProbeError
from probe.store import Study


def test_umap_keeps_torch_threads(blobs, tmp_path):
    """UMAP's numba start-up can reset torch to one thread per core (seen in the test process at its first UMAP
    in the main thread, hence this test comes first in the module); a fit and a transform leave the caller's count,
    so that later float32 sums keep their order (and their bits)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        e = LatentEmbedding(n_neighbors=10, random_state=1, cache_dir=tmp_path).fit(blobs[0])
        after_fit = torch.get_num_threads()
        e.transform(blobs[0][:3] + 0.1)
        assert (after_fit, torch.get_num_threads()) == (1, 1)
    finally:
        torch.set_num_threads(before)


def test_fit_shapes_and_clusters(fitted_umap, blobs):
    x, labels = blobs
    e = fitted_umap.embedding_
    assert e.shape == (45, 2) and np.isfinite(e).all()
    # clusters stay apart: every point's nearest neighbour in 2-d is from its own cluster
    d = np.linalg.norm(e[:, None] - e[None], axis=2) + np.eye(45) * 1e9
    assert (labels[d.argmin(1)] == labels).all()


def test_cache_hit_returns_identical_coordinates(fitted_umap, blobs):
    x = blobs[0]
    again = LatentEmbedding(n_neighbors=10, random_state=0, cache_dir=fitted_umap.cache_dir).fit(x)
    assert again.cache_hit_ and again.umap_ is None  # no UMAP run
    assert np.array_equal(again.embedding_, fitted_umap.embedding_)
    assert not fitted_umap.cache_hit_
    # the key follows the data and the parameters
    other = LatentEmbedding(n_neighbors=10, min_dist=0.3, random_state=0)
    assert other._key(fitted_umap._x) != fitted_umap.key_
    assert fitted_umap._key(fitted_umap._x + 1e-3) != fitted_umap.key_
    # a cached transform is returned without the model
    y = x[:6] + 0.05
    first = fitted_umap.transform(y)
    assert np.array_equal(again.transform(y), first) and again.umap_ is None


def test_small_steps_land_near_their_base(fitted_umap, blobs):
    x, labels = blobs
    e = fitted_umap.embedding_
    rng = np.random.default_rng(1)
    y = fitted_umap.transform(x + rng.normal(0, 0.05, x.shape).astype(np.float32))
    assert y.shape == (45, 2)
    own = np.linalg.norm(y - e, axis=1)
    spread = np.median(np.linalg.norm(e[:, None] - e[None], axis=2))
    assert np.median(own) < 0.25 * spread
    # nearest sample of each transformed point is in the base's cluster
    d = np.linalg.norm(y[:, None] - e[None], axis=2)
    assert (labels[d.argmin(1)] == labels).mean() >= 0.95


def test_bad_input(fitted_umap, blobs):
    with pytest.raises(EmbedError, match="dimension 4"):
        fitted_umap.transform(np.zeros((3, 4), np.float32))
    with pytest.raises(EmbedError, match="at least 4"):
        LatentEmbedding().fit(np.zeros((3, 8)))
    with pytest.raises(EmbedError, match="NaN"):
        LatentEmbedding().fit(np.full((10, 8), np.nan))
    with pytest.raises(EmbedError, match="before fit"):
        LatentEmbedding().transform(blobs[0])


def test_embed_study_table_and_cache(tiny_study, tmp_path):
    path = tmp_path / "study"
    shutil.copytree(tiny_study.path, path)
    st = Study(path)
    df = embed_study(st, max_samples=5, n_neighbors=8)
    assert list(df.columns) == list(schema.EMBEDDING_COLUMNS)
    iv = st.table("interventions")
    latent_targets = iv.loc[iv["target_kind"] != "channel", "target"].unique()
    n_walk = len(latent_targets) * 5 * len(st.alphas)
    assert (df["kind"] == "sample").sum() == 24 and (df["kind"] == "walk").sum() == n_walk
    assert df["point_id"].tolist() == list(range(24 + n_walk))
    assert "b2:c3" not in set(df["target"])  # channel walks do not move the latent
    assert set(df.loc[df.kind == "walk", "sample_id"]) == set(range(5))
    # anchored: alpha = 0 walk points sit on their sample
    base = df[df.kind == "sample"].set_index("sample_id")
    zero = df[(df.kind == "walk") & (df.alpha == 0)]
    assert np.allclose(zero[["x", "y"]].to_numpy(), base.loc[zero.sample_id, ["x", "y"]].to_numpy(), atol=1e-9)
    assert st.table("embedding").equals(df)
    assert list((path / ".cache" / "embed").glob("umap-*.npz"))
    again = embed_study(Study(path), max_samples=5, n_neighbors=8)
    assert again.equals(df)
    from typer.testing import CliRunner

    from probe.cli import app

    res = CliRunner().invoke(app, ["embed", str(path), "--max-samples", "5", "--n-neighbors", "8"])
    assert res.exit_code == 0, res.output
    assert f"24 samples, {n_walk} walk points" in res.output and Study(path).table("embedding").equals(df)
    bad = CliRunner().invoke(app, ["embed", str(path), "--max-samples", "0"])
    assert isinstance(bad.exception, ProbeError) and "--max-samples" in str(bad.exception)
    with pytest.raises(EmbedError, match="no latent walks"):
        embed_study(st, targets=["b2:c3"], n_neighbors=8)


def test_walk_latents_rows_are_the_pandas_selection(tiny_study):
    from probe.embed import walk_latents

    rows, x = walk_latents(tiny_study, max_samples=3, targets=["random/d1", "z[2]"])
    iv = tiny_study.table("interventions")
    want = iv[iv["target"].isin(["random/d1", "z[2]"]) & (iv["sample_id"] < 3)][["sample_id", "target", "alpha"]]
    want = want.sort_values(["target", "sample_id", "alpha"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, want)
    zero = rows["alpha"].to_numpy() == 0
    assert x.shape == (2 * 3 * 5, 16)
    np.testing.assert_array_equal(x[zero], tiny_study.latents()[rows["sample_id"].to_numpy()[zero]])
    with pytest.raises(EmbedError) as e:
        walk_latents(tiny_study, targets=["b2:c3", "nope"])
    assert str(e.value) == (
        "targets ['b2:c3', 'nope'] have no latent walks in study 'tiny'; use some of "
        "['random/d0', 'random/d1', 'z[0]', 'z[1]', 'z[2]', 'z[3]']"
    )
