"""`probe models` and `probe measures` through the real console entry point."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from probe.cli import app


def test_probe_models_lists_the_zoo():
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0
    assert [line.split()[0] for line in r.output.splitlines()] == ["faces", "tiny-dcgan", "tiny-stylegan", "sprites"]


def test_probe_models_describe():
    r = CliRunner().invoke(app, ["models", "--describe", "tiny-stylegan"])
    assert r.exit_code == 0 and "num_ws: 12" in r.output and "spaces: ['z', 'w', 'ws']" in r.output


def test_probe_measures_lists_faces_and_image():
    r = CliRunner().invoke(app, ["measures"])
    assert r.exit_code == 0
    rows = {line.split()[0]: line for line in r.output.splitlines()[1:]}
    for name in ("gender", "age", "yaw", "roll", "face_x", "face_y", "face_scale", "brightness", "hue"):
        assert name in rows
    assert "[0, 1]" in rows["gender"] and "P(male)" in rows["gender"] and "years" in rows["age"]


@pytest.mark.slow
def test_bad_model_is_one_line_exit_2():
    r = subprocess.run(
        [sys.executable, "-c", "from probe.cli import main; main()", "models", "--describe", "nope"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: unknown model 'nope'")
