"""SeFa on NVlabs-shaped StyleGAN2 / StyleGAN3: official layer choice vs every affine, checked against an
independent eigen decomposition of the affine weights read from the state dict."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from probe.directions.base import DirectionError, DirectionSet
from probe.directions.sefa import SeFa
from probe.models import StyleGANGenerator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from test_adapter import sg2_net, sg3_net  # noqa: E402


@pytest.fixture(scope="module")
def sg2():
    return StyleGANGenerator(sg2_net(), name="sg2")


@pytest.fixture(scope="module")
def sg3():
    return StyleGANGenerator(sg3_net(), name="sg3")


def _eig(state: dict, keys: list[str], k: int = 5) -> np.ndarray:
    """Official SeFa by hand: unit columns of the concatenated [w_dim, C] weights, eig of W W^T, top k."""
    w = np.concatenate([state[n].double().numpy().T for n in keys], 1)
    w = w / np.linalg.norm(w, axis=0, keepdims=True)
    vals, vecs = np.linalg.eig(w @ w.T)
    order = np.argsort(-vals.real)[:k]
    return vecs.real[:, order].T


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a * b).sum(1)) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _affine_keys(model, pattern: str) -> list[str]:
    return [n for n in model.module.synthesis.state_dict() if re.fullmatch(pattern, n)]


def test_official_stylegan2_is_the_convs_plus_the_last_torgb(sg2):
    st = sg2.module.synthesis.state_dict()
    convs = _affine_keys(sg2, r"b\d+\.conv[01]\.affine\.weight")
    assert len(convs) == 7  # b4: conv1; b8..b32: conv0, conv1
    official = convs + ["b32.torgb.affine.weight"]
    est = SeFa(5).fit(sg2)
    assert est.weight_.shape == (16, sum(st[n].shape[0] for n in official))
    assert (_cos(est.directions_.vectors, _eig(st, official)) > 0.9999).all()
    every = _affine_keys(sg2, r".*affine\.weight")
    assert len(every) == 11
    alla = SeFa(5, affines="all-affines").fit(sg2)
    assert (_cos(alla.directions_.vectors, _eig(st, every)) > 0.9999).all()
    assert est.directions_.info[0]["affines"] == "official" and alla.directions_.provenance["affines"] == "all-affines"


def test_layer_ranges_follow_the_ws_rows_each_affine_reads(sg2):
    st = sg2.module.synthesis.state_dict()
    # ws rows 1, 2: b8.conv0 and b8.conv1 read them; b4's ToRGB reads row 1 too but is not the last ToRGB
    est = SeFa(3, layers=(1, 3)).fit(sg2)
    assert est.weight_.shape[1] == st["b8.conv0.affine.weight"].shape[0] + st["b8.conv1.affine.weight"].shape[0]
    assert (
        _cos(est.directions_.vectors, _eig(st, ["b8.conv0.affine.weight", "b8.conv1.affine.weight"], 3)) > 0.9999
    ).all()
    alla = SeFa(3, layers=(1, 3), affines="all-affines").fit(sg2)
    keys = ["b4.torgb.affine.weight", "b8.conv0.affine.weight", "b8.conv1.affine.weight"]
    assert (_cos(alla.directions_.vectors, _eig(st, keys, 3)) > 0.9999).all()
    assert est.directions_.space == "ws" and est.directions_.layers == [(1, 3)] * 3


def test_stylegan3_uses_the_layer_affines(sg3, tmp_path):
    st = sg3.module.synthesis.state_dict()
    layers = _affine_keys(sg3, r"L\d+_.*\.affine\.weight")
    assert len(layers) == 15  # L0 .. L14 (ToRGB); the input's transform affine is not a style
    est = SeFa(5).fit(sg3)
    assert (_cos(est.directions_.vectors, _eig(st, layers)) > 0.9999).all()
    alla = SeFa(5, affines="all-affines").fit(sg3)
    assert (_cos(alla.directions_.vectors, _eig(st, ["input.affine.weight", *layers])) > 0.9999).all()
    p = est.directions_.save(tmp_path / "sefa.npz")
    back = DirectionSet.load(p)
    assert back.info[0]["affines"] == "official" and back.provenance["affines"] == "official"


def test_unknown_mode_is_refused(sg2):
    with pytest.raises(DirectionError) as e:
        SeFa(5, affines="torgb").fit(sg2)  # checked in fit: __init__ only stores parameters
    assert str(e.value) == "SeFa: affines 'torgb' unknown; use one of ['official', 'all-affines']"
