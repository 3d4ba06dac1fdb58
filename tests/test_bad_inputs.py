"""Every bad input the toolkit takes, and the one-line error it gives (field + fix), through the real CLI.

Each case builds its input in tmp_path and runs the real `probe` entry point (`probe.cli.main`, in-process: no
torch import per case). Every case must exit with status 2, print exactly one line `error: ...` on stderr that
contains the expected fragment, print no traceback, and (for `probe run`) leave no study directory behind.
Dashboard uploads go through the real Dash callback endpoint (`/_dash-update-component`).
"""
import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from probe import schema
from probe.directions.base import DirectionSet
from tests.helpers import cli

GOOD = {"name": "b", "model": "tiny-dcgan", "measures": ["brightness"], "n_samples": 2, "seed": 0,
        "alphas": [-1, 0, 1], "targets": [{"kind": "variables", "indices": [0]}]}


def _toml(d: dict) -> str:
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)   # floats: nan / inf are valid TOML
    lines = [f"{k} = {val(v)}" for k, v in d.items() if k != "targets"]
    for t in d.get("targets", []):
        lines += ["", "[[targets]]"] + [f"{k} = {val(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


# ---- case builders: tmp -> argv -------------------------------------------------------------------------------
def run(text_or_changes, drop=()):
    """`probe run spec.toml --out tmp/out` for GOOD updated with changes (dict) or a raw TOML text (str)."""
    def make(tmp: Path):
        if isinstance(text_or_changes, str):
            text = text_or_changes
        else:
            d = {k: v for k, v in {**GOOD, **text_or_changes}.items() if k not in drop}
            text = _toml(d)
        (tmp / "spec.toml").write_text(text)
        return ["run", tmp / "spec.toml", "--out", tmp / "out", "--no-progress"]
    return make


def directions(name: str, vectors: np.ndarray, space: str = "z"):
    def make(tmp: Path):
        DirectionSet([f"d{i}" for i in range(len(vectors))], vectors, space, "random").save(tmp / name)
        return run({"targets": [{"kind": "directions", "file": name}]})(tmp)
    return make


def raw_file(name: str, data: bytes, then):
    def make(tmp: Path):
        (tmp / name).write_bytes(data)
        return then(tmp)
    return make


def _state_dict_pt() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4, 4)}, buf)
    return buf.getvalue()


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _npy(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def model_file(name: str, data: bytes):
    return raw_file(name, data, lambda tmp: run({"model": str(tmp / name)})(tmp))


def invert(name: str, data: bytes):
    return raw_file(name, data, lambda tmp: ["invert", tmp / name, "--model", "tiny-dcgan", "--steps", "1",
                                             "--out", tmp / "inv"])


def drag(latent: np.ndarray | None = None, point: str = "10,10->12,12", data: bytes | None = None):
    def make(tmp: Path):
        if latent is not None or data is not None:
            (tmp / "lat.npy").write_bytes(data if data is not None else _npy(latent))
        lat = ["--latent", tmp / "lat.npy", "--space", "z"] if (latent is not None or data is not None) else []
        return ["drag", "--model", "tiny-dcgan", *lat, "--point", point, "--steps", "1", "--out", tmp / "d.png"]
    return make


def study(cmd: str, damage=None, *extra):
    """`probe <cmd> STUDY` on a copy of the shared tiny study after damage(study_dir)."""
    def make(tmp: Path, tiny: Path):
        dst = tmp / "study"
        shutil.copytree(tiny, dst)
        if damage:
            damage(dst)
        return [cmd, dst, *extra]
    make.needs_study = True
    return make


def _manifest(**kw):
    def damage(p: Path):
        m = json.loads((p / "manifest.json").read_text())
        m.update(kw)
        (p / "manifest.json").write_text(json.dumps(m))
    return damage


def _write(name: str, data: bytes):
    return lambda p: (p / name).write_bytes(data)


def _truncate(name: str):
    return lambda p: (p / name).write_bytes((p / name).read_bytes()[:200])


CASES = [
    # spec file: syntax, unknown fields, types, values
    ("toml-malformed", run("name = [\n"), "spec.toml: not valid TOML"),
    ("toml-not-utf8", raw_file("spec.toml", b"name = \"\xff\xfe\"\n", lambda t: ["run", t / "spec.toml"]),
     "spec.toml: "),
    ("spec-missing", lambda t: ["run", t / "nope.toml"], "spec file"),
    ("unknown-field", run({"seeed": 1}), "seeed: Extra inputs are not permitted; remove it (unknown field)"),
    ("unknown-target-field", run({"targets": [{"kind": "variables", "indices": [0], "colour": "red"}]}),
     "targets[0].colour: Extra inputs are not permitted; remove it"),
    ("unknown-target-kind", run({"targets": [{"kind": "knobs"}]}), "targets[0]: Input tag 'knobs'"),
    ("missing-field", run({}, drop=("model",)), "spec.toml: model: Field required; add it"),
    ("wrong-type-int", run({"batch_size": "big"}), "batch_size: Input should be a valid integer"),
    ("wrong-type-list", run({"alphas": "big"}), "alphas: Input should be a valid list"),
    ("wrong-type-indices", run({"targets": [{"kind": "variables", "indices": "some"}]}),
     'targets[0].indices: '),
    ("n-samples-zero", run({"n_samples": 0}), "n_samples: Input should be greater than or equal to 1"),
    ("unknown-model", run({"model": "nope"}), "model: unknown model 'nope'; use a zoo name"),
    ("unknown-measure", run({"measures": ["happiness"]}), "measures: unknown measure 'happiness'"),
    ("alpha-too-big", run({"alphas": [-1.0, 0.0, 1000.0]}),
     "alphas: alpha 1000 is out of range; use values with |alpha| <= 100"),
    ("alpha-nan", run({"alphas": [float("nan"), 1.0]}), "alphas: alphas must be finite numbers; remove nan / inf"),
    ("alpha-inf", run({"alphas": [0.0, float("-inf")]}), "alphas: alphas must be finite numbers"),
    ("alpha-duplicate", run({"alphas": [1.0, 1.0]}), "alphas: alphas must be distinct"),
    ("index-out-of-range", run({"targets": [{"kind": "variables", "indices": [99]}]}),
     "targets[0].indices: index 99 out of range for z_dim=16; use 0..15"),
    ("site-unknown", run({"targets": [{"kind": "channels", "site": "b9", "channels": [0]}]}),
     "targets[0].site: 'b9' is not a site of model 'tiny-dcgan'"),
    # direction files
    ("direction-missing", run({"targets": [{"kind": "directions", "file": "none.npz"}]}),
     "targets[0].file: "),
    ("direction-wrong-dim", directions("r8.npz", np.eye(2, 8, dtype=np.float32)),
     "targets[0].file: directions in r8.npz have dimension 8, but space 'z' of model 'tiny-dcgan' takes 16"),
    ("direction-wrong-space", directions("w.npz", np.eye(2, 16, dtype=np.float32), space="w"),
     "targets[0].file: directions live in space 'w' but the study walks in 'z'; set space = \"w\""),
    ("direction-not-npz", raw_file("x.npz", b"plain text", lambda t: run(
        {"targets": [{"kind": "directions", "file": "x.npz"}]})(t)), "targets[0].file: x.npz is not a DirectionSet"),
    # model weights
    ("weights-truncated", model_file("g.pt", _state_dict_pt()[:300]), "g.pt: not a torch checkpoint archive"),
    ("weights-garbage", model_file("g.pt", b"\x00garbage" * 50), "g.pt: not a torch checkpoint archive"),
    ("weights-state-dict", model_file("g.pt", _state_dict_pt()), "g.pt holds only weights (a state dict)"),
    ("weights-pickle", model_file("g.pkl", b"\x80\x04K\x01."), "g.pkl: pickle files are not loaded"),
    ("weights-missing", lambda t: run({"model": str(t / "none.pt")})(t), "does not exist"),
    ("factory-raises", raw_file("m.py", b"def make():\n    raise RuntimeError('boom')\n",
                                lambda t: run({"model": f"{t / 'm.py'}:make"})(t)),
     "factory raised RuntimeError: boom"),
    # images for probe invert
    ("invert-not-an-image", invert("notes.txt", b"hello, I am text"), "could not be read as an image"),
    ("invert-truncated-png", invert("cut.png", _png(64, 64)[:60]), "could not be read as an image"),
    ("invert-too-small", invert("tiny.png", _png(8, 8)), "image is too small (8x8); give at least 16x16"),
    ("invert-missing", lambda t: ["invert", t / "none.png", "--model", "tiny-dcgan"], "does not exist"),
    # latents for probe drag
    ("latent-nan", drag(np.full((1, 16), np.nan, np.float32)), "contains NaN or inf values; pass finite numbers"),
    ("latent-inf", drag(np.r_[np.zeros(15), np.inf][None].astype(np.float32)), "contains NaN or inf values"),
    ("latent-wrong-dim", drag(np.zeros((1, 7), np.float32)), "must have shape [N, 16], got [1, 7]"),
    ("latent-object-array", drag(data=_npy(np.array([{"a": 1}], dtype=object), allow_pickle=True)),
     "lat.npy is not a readable .npy array"),
    ("drag-point-syntax", drag(point="10,10"), "--point: expected x,y->x,y"),
    # study directories
    ("study-missing", lambda t: ["stats", t / "nope"], "does not exist; make one with probe run"),
    ("study-newer-schema", study("stats", _manifest(schema_version=schema.SCHEMA_VERSION + 1)),
     f"has schema_version {schema.SCHEMA_VERSION + 1}, newer than this latent-probe reads "
     f"({schema.SCHEMA_VERSION}); upgrade latent-probe"),
    ("dash-newer-schema", study("dash", _manifest(schema_version=99), "--port", "8099"), "upgrade latent-probe"),
    ("study-manifest-corrupt", study("stats", _write("manifest.json", b"{not json")), "manifest.json is unreadable"),
    ("study-table-truncated", study("stats", _truncate("interventions.parquet")),
     "interventions.parquet is unreadable (ArrowInvalid); re-make it with probe run"),
    ("study-latents-garbage", study("stats", _write("latents.npy", b"not numpy")), "latents.npy is unreadable"),
    ("study-latents-nan", study("stats", _write("latents.npy", _npy(np.full((24, 16), np.nan, np.float32)))),
     "latents.npy holds NaN or inf latents"),
    ("study-latents-pickled", study("stats", _write("latents.npy", _npy(np.array([None] * 24, dtype=object),
                                                                        allow_pickle=True))),
     "latents.npy is unreadable (ValueError: Object arrays cannot be loaded when allow_pickle=False)"),
    ("study-incomplete", study("evaluate", _manifest(status="running")), "is incomplete (status 'running'); finish it"),
    ("stats-level", study("stats", None, "--level", "2"), "--level must be in (0, 1)"),
    ("dash-port", study("dash", None, "--port", "0"), "--port must be in 1..65535"),
]


@pytest.mark.parametrize("make, want", [pytest.param(m, w, id=i) for i, m, w in CASES])
def test_bad_input_is_one_line(make, want, tmp_path, capsys, tiny_study):
    args = make(tmp_path, tiny_study.path) if getattr(make, "needs_study", False) else make(tmp_path)
    code, out, err = cli(args, capsys)
    assert code == 2, (code, out, err[-800:])
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), err[-800:]
    assert want in err, err
    assert not (tmp_path / "out" / "manifest.json").exists()      # a bad spec does no work


def test_every_case_named_once():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


# ---- dashboard upload: the real callback endpoint -----------------------------------------------------------
def _upload(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize("contents, filename, want", [
    (_upload(b"hello, not an image", "text/plain"), "notes.txt",
     "upload 'notes.txt' is not an image; choose a PNG or JPEG file"),
    (_upload(_png(64, 64)[:70], "image/png"), "cut.png", "upload 'cut.png' is not an image"),
    (_upload(_png(8, 8), "image/png"), "tiny.png", "upload 'tiny.png' is 8x8 pixels; use an image of at least 16x16"),
    ("data:image/png;base64,", "empty.png", "upload 'empty.png' is not an image"),
    (None, None, "upload: no file content; choose a PNG or JPEG image"),
])
def test_dashboard_upload_errors_one_line(tiny_study, contents, filename, want):
    from benchmarks.load_dashboard import Callback
    from dashboards.app import create_app
    app = create_app(tiny_study.path)
    cb = Callback(app, "dg-src.data")
    r = app.server.test_client().post("/_dash-update-component", json=cb.payload(
        {"dg-sample.value": 0, "dg-upload.contents": contents, "dg-upload.filename": filename,
         "dg-inv-steps.value": 5}, changed=["dg-upload.contents"]))
    assert r.status_code == 200
    msg = r.get_json()["response"]["dg-msg"]["children"]
    assert msg["props"]["className"] == "probe-error" and want in msg["props"]["children"], msg
    assert not app.probe_ctx.jobs                                  # no inversion was started
