"""One fitted UMAP per test session (umap-learn JIT costs 10-40 s per process)."""

import numpy as np
import pytest

CLUSTERS = 3


@pytest.fixture(scope="session")
def blobs():
    """45 latents in 3 well separated clusters in 8-d: x [45, 8], labels [45]."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, (CLUSTERS, 8))
    labels = np.repeat(np.arange(CLUSTERS), 15)
    return (centres[labels] + rng.normal(0, 1, (45, 8))).astype(np.float32), labels


@pytest.fixture(scope="session")
def fitted_umap(blobs, tmp_path_factory):
    """LatentEmbedding fitted on the blobs with a disk cache; transform compiled once."""
    from probe.embed import LatentEmbedding

    emb = LatentEmbedding(n_neighbors=10, random_state=0, cache_dir=tmp_path_factory.mktemp("umap-cache")).fit(blobs[0])
    emb.transform(blobs[0][:2])
    return emb
