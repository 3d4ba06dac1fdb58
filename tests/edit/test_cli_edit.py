import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from probe.cli import app
from probe.cli.edit import parse_point
from probe.errors import ProbeError

runner = CliRunner()


def test_parse_point():
    assert parse_point("20,30->26,30") == ((20.0, 30.0), (26.0, 30.0))
    assert parse_point(" 1.5, 2 -> 3,4.25 ") == ((1.5, 2.0), (3.0, 4.25))
    for bad in ["20,30", "20,30->26", "a,b->c,d", "20;30->26;30", ""]:
        with pytest.raises(ProbeError, match=r"^--point: expected x,y->x,y .*got"):
            parse_point(bad)
    with pytest.raises(ProbeError, match="quote it, the shell reads > as a redirect"):
        parse_point("20,30-")  # what the shell leaves of an unquoted 20,30->26,30


def test_drag_cli_writes_png_and_latent(tmp_path):
    out = tmp_path / "edit.png"
    r = runner.invoke(
        app,
        [
            "drag",
            "--model",
            "tiny-dcgan",
            "--seed",
            "3",
            "--point",
            "10,12->14,12",
            "--method",
            "freedrag",
            "--steps",
            "3",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (516, 256)
    assert np.load(tmp_path / "edit.npy").shape == (1, 16)
    assert "freedrag:" in r.output


def test_drag_cli_bad_point(tmp_path):
    r = runner.invoke(
        app, ["drag", "--model", "tiny-dcgan", "--point", "10,12=>14,12", "--out", str(tmp_path / "x.png")]
    )
    assert isinstance(r.exception, ProbeError) and "--point: expected x,y->x,y" in str(r.exception)
    assert not (tmp_path / "x.png").exists()


def test_invert_then_drag_cli(tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(img)
    r = runner.invoke(
        app, ["invert", str(img), "--model", "tiny-stylegan", "--out", str(tmp_path / "inv"), "--steps", "3"]
    )
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "inv" / "inversion.json").read_text())
    assert meta["space"] == "w" and np.isfinite(meta["psnr"])
    assert (tmp_path / "inv" / "comparison.png").is_file()
    r = runner.invoke(
        app,
        [
            "drag",
            "--model",
            "tiny-stylegan",
            "--latent",
            str(tmp_path / "inv" / "latent.npy"),
            "--point",
            "8,8->12,8",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "d.png"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "d.npy").shape == (1, 12, 16)  # dragged in ws


def test_invert_cli_bad_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    r = runner.invoke(app, ["invert", str(bad), "--model", "tiny-dcgan", "--out", str(tmp_path / "o")])
    assert isinstance(r.exception, ProbeError) and "could not be read as an image" in str(r.exception)
    assert not (tmp_path / "o").exists()


def test_extended_invert_then_drag_with_offsets(tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(img)
    inv = tmp_path / "inv"
    r = runner.invoke(
        app,
        [
            "invert",
            str(img),
            "--model",
            "tiny-dcgan",
            "--out",
            str(inv),
            "--steps",
            "3",
            "--offset-site",
            "b1",
            "--offset-steps",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    meta = json.loads((inv / "inversion.json").read_text())
    assert meta["offset_sites"] == ["b1"] and meta["offset_steps"] == 3 and np.isfinite(meta["psnr_latent"])
    with np.load(inv / "offsets.npz") as z:
        assert z["b1"].shape == (1, 64, 4, 4)
    r = runner.invoke(
        app,
        [
            "drag",
            "--model",
            "tiny-dcgan",
            "--latent",
            str(inv / "latent.npy"),
            "--offsets",
            str(inv / "offsets.npz"),
            "--point",
            "8,8->12,8",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "d.png"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "drag",
            "--model",
            "tiny-dcgan",
            "--latent",
            str(inv / "latent.npy"),
            "--offsets",
            str(tmp_path / "none.npz"),
            "--point",
            "8,8->12,8",
            "--out",
            str(tmp_path / "e.png"),
        ],
    )
    assert isinstance(r.exception, ProbeError) and "--offsets: file" in str(r.exception)
