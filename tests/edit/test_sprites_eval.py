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
from probe.edit.sprites_eval import CentreMeasure, centre_spec, drift_markdown, sprite_drag_eval, summarize_drift
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
        spot = torch.exp(-((self.xx - cx) ** 2 + (self.yy - cy) ** 2) / (2 * 2.5**2))[:, None]
        f = self.feat(spot)  # the site; the image is the spot itself (plus a zero-weight path through f)
        return (spot * 2 - 1).repeat(1, 3, 1, 1) + 0 * f.mean(1, keepdim=True)


@pytest.fixture(scope="module")
def spot():
    return TorchGenerator(Spot(), 2, name="spot", sites={"feat": "feat"}, conv_input=False)


def test_centre_measure_reads_pixels(spot):
    cm = CentreMeasure(("centroid_x", "centroid_y"), ["image"])
    z = torch.tensor([[0.0, 0.0], [1.0, -0.6]])
    xy, other = cm(spot.synthesize(z))
    assert np.allclose(xy, [[16, 16], [21, 13]], atol=0.3)  # luma centroid, pixel-index coordinates
    assert set(other) == {"brightness", "contrast", "saturation", "hue"}


def test_drags_move_the_centre_toward_the_target(spot):
    kw = {m: {"max_steps": 40, "lr": 0.05} for m in ("draggan", "freedrag")}
    kw["freedrag"]["units"] = "mean"  # the toy's features are far below 1: l = 0.3 is meant relative to them
    edits = sprite_drag_eval(spot, n_pairs=3, seed=0, drag_kwargs=kw, min_distance=3.0, oracles=False)
    assert list(edits.columns[: len(EDIT_COLUMNS)]) == EDIT_COLUMNS
    assert {"drift_brightness", "drift_hue"} <= set(edits.columns)
    assert len(edits) == 6 and set(edits["method"]) == {"draggan", "freedrag"} and (edits["points"] == 1).all()
    assert (edits["md_before"] >= 3.0).all()
    for m, g in edits.groupby("method"):
        assert g["md_after"].mean() < 0.5 * g["md_before"].mean(), (m, g[["md_before", "md_after"]])
    s = summarize_drift(edits)
    assert s["method"].tolist() == ["no edit", "draggan", "freedrag"]
    md = drift_markdown(s)
    lines = md.splitlines()
    assert lines[0].endswith("| mean abs Δ brightness | mean abs Δ contrast | mean abs Δ saturation | mean abs Δ hue |")
    assert len(lines) == 5 and all(l.count("|") == lines[0].count("|") for l in lines)


def test_oracle_rows_give_the_table_its_ceiling(spot):
    edits = sprite_drag_eval(spot, n_pairs=2, seed=0, methods=(), min_distance=3.0)
    assert edits["method"].tolist() == ["oracle-local", "oracle-shift"] * 2
    shift = edits[edits["method"] == "oracle-shift"]
    assert (shift["md_after"] < 0.3).all() and (shift["md_before"] >= 3.0).all()  # the spot lands on the target
    assert (shift["seconds"] == 0).all() and shift["converged"].isna().all()
    assert (shift["drift_brightness"] < 0.02).all()  # moving the spot keeps its brightness


def test_errors(spot, tiny_stylegan):
    with pytest.raises(DragError, match=r"^--pairs must be >= 1"):
        sprite_drag_eval(spot, n_pairs=0)
    with pytest.raises(DragError, match=r"^centre: expected two measure names \(x, y\), got \['centroid_x'\]$"):
        sprite_drag_eval(spot, n_pairs=1, centre=("centroid_x",))
    with pytest.raises(DragError, match=r"pairs have centres at least 99.0 px apart; use fewer --pairs"):
        sprite_drag_eval(spot, n_pairs=2, min_distance=99.0)
    assert centre_spec(tiny_stylegan) == (("centroid_x", "centroid_y"), ["image"])  # generic models: luma centroid


def test_centre_pixels_come_from_the_measure_range(spot, tmp_path):
    """A centre measure's [lo, hi] spans the image width: a 0..64 px measure read on a 32 px image is halved."""
    f = tmp_path / "px64.py"
    f.write_text(
        "from probe.measures import ImageStats, Measure, MeasureInfo\n"
        "class Px64(Measure):  # the luma centroid in 64-px units, as the sprite factor CNN reports x, y\n"
        "    infos = (MeasureInfo('cx64', 'pixels', 0.0, 64.0, 'x'), MeasureInfo('cy64', 'pixels', 0.0, 64.0, 'y'))\n"
        "    def __call__(self, img):\n"
        "        s = ImageStats()(img)\n"
        "        return {'cx64': s['centroid_x'] * 64, 'cy64': s['centroid_y'] * 64}\n"
        "def factory():\n"
        "    return Px64()\n"
    )
    cm = CentreMeasure(("cx64", "cy64"), [f"{f}:factory"])
    img = spot.synthesize(torch.tensor([[0.0, 0.0], [1.0, -0.6]]))
    xy, other = cm(img)
    assert other == {}
    np.testing.assert_allclose(xy, CentreMeasure()(img)[0], atol=1e-9)
    assert np.allclose(xy, [[16, 16], [21, 13]], atol=0.3)


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
    assert g.defaults.drag_eval == "centres"
    assert centre_spec(g) == (("sprite_x", "sprite_y"), ["sprites"])
    cm = CentreMeasure(*centre_spec(g))
    xy, other = cm(g.synthesize(g.sample(4, 0)))
    assert xy.shape == (4, 2) and ((xy > 5) & (xy < 59)).all()  # sprites lie inside the frame
    assert set(other) == {"sprite_shape", "sprite_scale", "sprite_rotation", "sprite_hue"}
    r = CliRunner().invoke(
        app, ["drag-eval", "--model", "sprites", "--pairs", "1", "--steps", "2", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "drag_eval.csv")
    assert df["method"].tolist() == ["draggan", "freedrag", "oracle-local", "oracle-shift"]
    assert "drift_sprite_shape" in df and (df["steps"] <= 2).all()
    assert "shape changed (share)" in (tmp_path / "drag_eval.md").read_text()


def test_cli_protocol_comes_from_the_model_or_the_flag(tmp_path):
    r = CliRunner().invoke(app, ["drag-eval", "--model", "tiny-dcgan", "--protocol", "dots"])
    assert r.exit_code != 0 and str(r.exception) == "--protocol: 'dots' unknown; use one of landmarks, centres"
    r = CliRunner().invoke(
        app,
        [
            "drag-eval",
            "--model",
            "tiny-dcgan",
            "--protocol",
            "centres",
            "--pairs",
            "1",
            "--steps",
            "1",
            "--no-oracles",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "drag_eval.csv")
    assert df["method"].tolist() == ["draggan", "freedrag"] and "drift_brightness" in df  # generic centre: luma
    assert "mean abs Δ hue" in (tmp_path / "drag_eval.md").read_text()
