"""Sprite drag evaluation: centre-to-centre drags measured by a centre measure; the CLI dispatch; errors."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from probe.cli import app
from probe.edit.drag import DragError
from probe.edit.evaluate import EDIT_COLUMNS
from probe.edit.sprites_eval import (CentreMeasure, centre_group, drift_markdown, sprite_drag_eval,
                                     summarize_drift)
from probe.models.dcgan import TorchGenerator


class Spot(nn.Module):
    """z [N, 2] -> a white Gaussian spot on black at (16 + 5 z0, 16 + 5 z1) (32 px); site `feat` = conv features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.feat = nn.Conv2d(1, 8, 5, padding=2)
        yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        self.register_buffer("xx", xx)
        self.register_buffer("yy", yy)

    def forward(self, z):
        cx, cy = 16 + 5 * z[:, 0, None, None], 16 + 5 * z[:, 1, None, None]
        spot = torch.exp(-((self.xx - cx) ** 2 + (self.yy - cy) ** 2) / (2 * 2.5 ** 2))[:, None]
        f = self.feat(spot)  # the site; the image is the spot itself (plus a zero-weight path through f)
        return (spot * 2 - 1).repeat(1, 3, 1, 1) + 0 * f.mean(1, keepdim=True)


@pytest.fixture(scope="module")
def spot():
    return TorchGenerator(Spot(), 2, name="spot", sites={"feat": "feat"}, conv_input=False)


def test_centre_measure_reads_pixels(spot):
    cm = CentreMeasure("image")
    z = torch.tensor([[0.0, 0.0], [1.0, -0.6]])
    xy, other = cm(spot.synthesize(z))
    assert np.allclose(xy, [[16, 16], [21, 13]], atol=0.3)  # luma centroid, pixel-index coordinates
    assert set(other) == {"brightness", "contrast", "saturation", "hue"}


def test_drags_move_the_centre_toward_the_target(spot):
    kw = {m: {"max_steps": 40, "lr": 0.05} for m in ("draggan", "freedrag")}
    edits = sprite_drag_eval(spot, n_pairs=3, seed=0, drag_kwargs=kw, min_distance=3.0, measure="image",
                             oracles=False)
    assert list(edits.columns[:len(EDIT_COLUMNS)]) == EDIT_COLUMNS
    assert {"drift_brightness", "drift_hue"} <= set(edits.columns)
    assert len(edits) == 6 and set(edits["method"]) == {"draggan", "freedrag"} and (edits["points"] == 1).all()
    assert (edits["md_before"] >= 3.0).all()
    for m, g in edits.groupby("method"):
        assert g["md_after"].mean() < 0.5 * g["md_before"].mean(), (m, g[["md_before", "md_after"]])
    s = summarize_drift(edits)
    assert s["method"].tolist() == ["no edit", "draggan", "freedrag"]
    md = drift_markdown(s)
    lines = md.splitlines()
    assert lines[0].endswith("| mean abs Δ brightness | mean abs Δ contrast | mean abs Δ saturation | "
                             "mean abs Δ hue |")
    assert len(lines) == 5 and all(l.count("|") == lines[0].count("|") for l in lines)


def test_oracle_rows_give_the_table_its_ceiling(spot):
    edits = sprite_drag_eval(spot, n_pairs=2, seed=0, methods=(), min_distance=3.0, measure="image")
    assert edits["method"].tolist() == ["oracle-local", "oracle-shift"] * 2
    shift = edits[edits["method"] == "oracle-shift"]
    assert (shift["md_after"] < 0.3).all() and (shift["md_before"] >= 3.0).all()  # the spot lands on the target
    assert (shift["seconds"] == 0).all() and shift["converged"].isna().all()
    assert (shift["drift_brightness"] < 0.02).all()  # moving the spot keeps its brightness


def test_errors(spot, tiny_stylegan):
    with pytest.raises(DragError, match=r"^--pairs must be >= 1"):
        sprite_drag_eval(spot, n_pairs=0)
    with pytest.raises(DragError, match=r"^measure: centre measure group 'faces' unknown"):
        sprite_drag_eval(spot, n_pairs=1, measure="faces")
    with pytest.raises(DragError, match=r"pairs have centres at least 99.0 px apart; use fewer --pairs"):
        sprite_drag_eval(spot, n_pairs=2, min_distance=99.0, measure="image")
    assert centre_group(tiny_stylegan) == "image"


def _sprites():
    from probe.errors import ProbeError
    from probe.models import load_model
    try:
        from probe.measures.sprites import load_factor_net
        load_factor_net()
        return load_model("sprites")
    except ProbeError as e:
        pytest.skip(f"zoo model 'sprites' or the sprite factor CNN not available: {e}")


def test_sprites_model_uses_factor_cnn_and_cli_dispatch(tmp_path):
    g = _sprites()
    assert centre_group(g) == "sprites"
    cm = CentreMeasure("sprites")
    xy, other = cm(g.synthesize(g.sample(4, 0)))
    assert xy.shape == (4, 2) and ((xy > 5) & (xy < 59)).all()  # sprites lie inside the frame
    assert set(other) == {"sprite_shape", "sprite_scale", "sprite_rotation", "sprite_hue"}
    r = CliRunner().invoke(app, ["drag-eval", "--model", "sprites", "--pairs", "1", "--steps", "2",
                                 "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "drag_eval.csv")
    assert df["method"].tolist() == ["draggan", "freedrag", "oracle-local", "oracle-shift"]
    assert "drift_sprite_shape" in df and (df["steps"] <= 2).all()
    assert "shape changed (share)" in (tmp_path / "drag_eval.md").read_text()
