"""GAN trainer on tiny settings: finite losses, atomic checkpoints, exact resume, weights_only artifacts."""

import json

import pytest
import torch
from typer.testing import CliRunner

from probe.cli import app
from probe.train.trainer import load_generator, train_gan

KW = dict(batch=4, seed=3, tiny=True, ckpt_every=1, sample_every=0, log_every=1, log=lambda *_: None)


@pytest.mark.parametrize("arch", ["stylegan", "dcgan"])
def test_three_iterations_finite_and_loadable(tmp_path, arch):
    path = train_gan(arch, iters=3, out=tmp_path, r1_every=2, **KW)
    logs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in logs] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"], r["r1"]])).all() for r in logs)
    assert logs[-1]["r1"] > 0  # R1 ran
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["iter"] == 3 and ck["arch"] == arch and set(ck) >= {"G", "D", "G_ema", "opt_g", "opt_d"}
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries
    G = load_generator(path)
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim))
    assert img.shape == (2, 3, 64, 64) and torch.isfinite(img).all()


def test_resume_repeats_uninterrupted_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train_gan("stylegan", iters=3, out=a, r1_every=2, **KW)
    train_gan("stylegan", iters=2, out=b, r1_every=2, **KW)
    ck = torch.load(b / "checkpoint.pt", weights_only=True)
    torch.save({**ck, "elapsed": 1000.0}, b / "checkpoint.pt")  # a long earlier session
    msgs = []
    train_gan("stylegan", iters=3, out=b, r1_every=2, **{**KW, "log": msgs.append})
    assert any("resumed" in m for m in msgs)
    sa = torch.load(a / "generator.pt", weights_only=True)["state_dict"]
    sb = torch.load(b / "generator.pt", weights_only=True)["state_dict"]
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert torch.load(b / "checkpoint.pt", weights_only=True)["iter"] == 3
    last = json.loads((b / "log.jsonl").read_text().splitlines()[-1])
    assert last["elapsed_s"] >= 1000 and last["s_per_iter"] < 100  # speed of this session, not of the whole run


def test_resume_refuses_other_settings(tmp_path):
    train_gan("stylegan", iters=1, out=tmp_path, **KW)
    with pytest.raises(ValueError, match="another --out"):
        train_gan("dcgan", iters=2, out=tmp_path, **KW)


def test_w_avg_tracked_and_ema_differs(tmp_path):
    train_gan("stylegan", iters=2, out=tmp_path, **KW)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["G_ema"]["mapping.w_avg"].abs().sum() > 0
    assert any(not torch.equal(ck["G"][k], ck["G_ema"][k]) for k in ck["G"] if k != "mapping.w_avg")


def test_cli_train_gan_tiny(tmp_path):
    r = CliRunner().invoke(
        app,
        [
            "train",
            "gan",
            "--arch",
            "dcgan",
            "--tiny",
            "--iters",
            "2",
            "--batch",
            "4",
            "--out",
            str(tmp_path),
            "--sample-every",
            "0",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "generator.pt" in r.output and (tmp_path / "generator.pt").is_file()
    r = CliRunner().invoke(app, ["train", "gan", "--arch", "nope", "--out", str(tmp_path)])
    assert r.exit_code != 0


@pytest.mark.parametrize("arch", ["stylegan", "dcgan"])
def test_trained_generator_loads_as_a_model_path(tmp_path, arch):
    from probe.errors import ProbeError
    from probe.models import load_model

    run = tmp_path / "myrun"
    path = train_gan(arch, iters=1, out=run, **KW)
    g = load_model(str(path))
    assert g.name == "myrun" and g.z_dim == 8
    z = torch.randn(2, 8)
    with torch.no_grad():
        img = g.synthesize(z, "z")
        img_ck = load_model(str(run / "checkpoint.pt")).synthesize(z, "z")  # the EMA generator of the checkpoint
    assert img.shape == (2, 3, 64, 64) and torch.equal(img, img_ck)
    if arch == "stylegan":
        assert g.num_ws > 0 and "w" in g.spaces
    ck = torch.load(path, weights_only=True)
    torch.save({**ck, "config": {**ck["config"], "z_dim": 5}}, tmp_path / "bad.pt")
    with pytest.raises(ProbeError, match=r"^model 'bad': not a loadable `probe train gan` generator"):
        load_model(str(tmp_path / "bad.pt"))


def test_resumed_stage_takes_its_own_learning_rate(tmp_path):
    train_gan("stylegan", iters=1, out=tmp_path, lr=0.002, **KW)
    train_gan("stylegan", iters=2, out=tmp_path, lr=0.0005, **KW)  # a second stage with a lower lr
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert [g["lr"] for g in ck["opt_g"]["param_groups"]] == pytest.approx([0.0005 * 0.1, 0.0005])
    assert ck["opt_d"]["param_groups"][0]["lr"] == pytest.approx(0.0005 * 16 / 17)
    logs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    stage = [r for r in logs if r.get("event") == "resume"]
    assert len(stage) == 1 and stage[0]["iter"] == 1 and stage[0]["hparams"]["lr"] == 0.0005
    assert [r["iter"] for r in logs if "event" not in r] == [1, 2]
