"""Factor CNN trainer and the train/quality CLI on tiny settings."""

import json

import torch
from typer.testing import CliRunner

from probe.cli import app
from probe.measures.sprites import SpriteFactors


def test_cli_train_factors_tiny(tmp_path):
    r = CliRunner().invoke(
        app, ["train", "factors", "--steps", "2", "--batch", "8", "--n-eval", "32", "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "shape accuracy" in r.output and "hue R2" in r.output
    ck = torch.load(tmp_path / "sprite_factors.pt", weights_only=True)
    assert ck["metrics"]["steps"] == 2 and ck["metrics"]["n"] == 32
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 <= m["shape_accuracy"] <= 1 and m["eval_seed"] != m["train_seed"]
    out = SpriteFactors(path=str(tmp_path / "sprite_factors.pt"))(torch.zeros(2, 3, 64, 64) - 1)
    assert out["sprite_x"].shape == (2,)


def test_cli_quality(tmp_path):
    r = CliRunner().invoke(app, ["train", "quality", "--n", "64", "--out", str(tmp_path / "q.json")])
    assert r.exit_code == 0, r.output
    assert "Frechet distance" in r.output
    assert json.loads((tmp_path / "q.json").read_text())["n"] == 64
