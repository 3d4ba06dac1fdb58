"""A real NVlabs-format network pickle through every command: run, discover, drag, invert, mix, report, dash."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from probe.models.stylegan import seeded_init_
from probe.models.stylegan2 import Generator
from tests.helpers import cli
from tests.models.test_nvlabs_pkl import write_pkl

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"


def _fixture_net():
    info = json.loads((DATA / "sg2_32_info.json").read_text())
    with np.load(DATA / "sg2_32_state.npz", allow_pickle=False) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    g = Generator(**info["init_kwargs"]).eval()
    g.load_state_dict(state)
    return info, g


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("pkl")
    info, g = _fixture_net()
    write_pkl(d / "net.pkl", {"G": g, "G_ema": g}, info)
    cinfo = copy.deepcopy(info)
    cinfo["init_kwargs"]["c_dim"] = 4
    cond = seeded_init_(Generator(**cinfo["init_kwargs"]).eval(), 1)
    write_pkl(d / "cond.pkl", {"G_ema": cond}, cinfo)
    return d


SPEC = """name = "pkl"
model = "{model}"
measures = ["image"]
n_samples = 4
space = "w"
alphas = [-1.0, 1.0]
truncation_psi = 0.7
{extra}
[[targets]]
kind = "channels"
site = "b32"
channels = [0]
mode = "shift"

[[targets]]
kind = "variables"
indices = 2
"""


@pytest.mark.slow
def test_a_pickle_works_in_every_command(nets, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pkl = nets / "net.pkl"
    (tmp_path / "spec.toml").write_text(SPEC.format(model=pkl, extra=""))
    code, out, err = cli(["run", "spec.toml", "--out", "study", "--no-progress"], capsys)
    assert code == 0, err
    assert "study 'pkl' complete: 4 samples, 3 targets, 24 intervention rows" in out
    man = json.loads((tmp_path / "study" / "manifest.json").read_text())
    info = man["model_info"]
    assert info["pickle_sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert info["pickle_key"] == "G_ema" and info["architecture"] and info["truncation_psi"] == 0.7
    assert man["spec"]["truncation_psi"] == 0.7 and man["spec"]["noise_mode"] == "const"
    iv = __import__("pandas").read_parquet(tmp_path / "study" / "interventions.parquet")
    assert iv[iv.target == "b32:c0"]["d_brightness"].abs().max() > 0  # the last block's channel edit shows

    code, out, err = cli(["discover", "study", "--method", "sefa", "--k", "3", "--no-progress"], capsys)
    assert code == 0, err
    assert "3 sefa directions in space 'w'" in out

    code, out, err = cli(
        [
            "drag",
            "--model",
            str(pkl),
            "--point",
            "10,10->12,10",
            "--steps",
            "2",
            "--truncation-psi",
            "0.7",
            "--out",
            "drag.png",
        ],
        capsys,
    )
    assert code == 0, err
    assert out.startswith("draggan: ") and Path("drag.png").is_file() and np.load("drag.npy").shape == (1, 8, 64)

    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save("face.png")
    code, out, err = cli(["invert", "face.png", "--model", str(pkl), "--steps", "2", "--out", "inv"], capsys)
    assert code == 0, err
    assert json.loads(Path("inv/inversion.json").read_text())["model_options"]["truncation_psi"] == 1.0

    code, out, err = cli(
        [
            "mix",
            "--model",
            str(pkl),
            "--a",
            "1",
            "--b",
            "2",
            "--layers",
            "0-3",
            "--transfer",
            "--n",
            "4",
            "--cell",
            "16",
            "--out",
            "mix.png",
        ],
        capsys,
    )
    assert code == 0, err
    assert "mixed ws layers 0..2 of 8" in out
    assert [ln.split(" |")[0] for ln in Path("mix_transfer.md").read_text().splitlines()[2:]] == [
        "| 0-1",
        "| 1-3",
        "| 3-5",
        "| 5-8",
    ]

    code, out, err = cli(["report", "study", "--out", "report.html"], capsys)
    assert code == 0, err
    assert "pickle_sha256" in Path("report.html").read_text()

    from dashboards.app import create_app
    from dashboards.pages import PAGES

    ctx = create_app(tmp_path / "study").probe_ctx
    for p in PAGES:
        assert p.layout(ctx) is not None, p.NAME
    assert ctx.model().truncation_psi == 0.7  # re-renders use the study's options


def test_conditional_pickle_needs_a_class(nets, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cond = nets / "cond.pkl"
    (tmp_path / "spec.toml").write_text(SPEC.format(model=cond, extra=""))
    code, out, err = cli(["run", "spec.toml", "--out", "study", "--no-progress"], capsys)
    assert code == 2 and not (tmp_path / "study").exists()
    assert err == (
        "error: spec.toml: model 'cond' is conditional (c_dim=4); pick a class with class_idx = N (spec) or --class N\n"
    )
    code, out, err = cli(["models", "--describe", str(cond), "--class", "4"], capsys)
    assert code == 2 and err == "error: class_idx: 4 out of range for model 'cond' with c_dim=4; use 0..3\n"
    code, out, err = cli(["models", "--describe", str(cond), "--class", "3"], capsys)
    assert code == 0, err
    assert "class_idx: 3" in out and "c_dim: 4" in out
    (tmp_path / "spec.toml").write_text(SPEC.format(model=cond, extra='class_idx = 1\nnoise_mode = "none"'))
    code, out, err = cli(["run", "spec.toml", "--out", "study", "--no-progress"], capsys)
    assert code == 0, err
    man = json.loads((tmp_path / "study" / "manifest.json").read_text())
    assert man["model_info"]["class_idx"] == 1 and man["model_info"]["noise_mode"] == "none"


@pytest.mark.parametrize(
    "extra, msg",
    [
        ("truncation_psi = 3.0", "truncation_psi: Input should be less than or equal to 2"),
        ('noise_mode = "fixed"', "noise_mode: Input should be 'const', 'random' or 'none'"),
        ("class_idx = -1", "class_idx: Input should be greater than or equal to 0"),
        ("class_idx = 1", "model 'net' is not conditional (c_dim=0); remove class_idx / --class"),
    ],
)
def test_spec_options_are_checked_before_anything_is_made(nets, tmp_path, capsys, monkeypatch, extra, msg):
    monkeypatch.chdir(tmp_path)
    spec = SPEC.format(model=nets / "net.pkl", extra="").replace("truncation_psi = 0.7\n", extra + "\n")
    (tmp_path / "spec.toml").write_text(spec)
    code, out, err = cli(["run", "spec.toml", "--out", "study", "--no-progress"], capsys)
    assert code == 2 and not (tmp_path / "study").exists()
    assert err == f"error: spec.toml: {msg}\n"
