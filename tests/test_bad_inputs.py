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

GOOD = {
    "name": "b",
    "model": "tiny-dcgan",
    "measures": ["brightness"],
    "n_samples": 2,
    "seed": 0,
    "alphas": [-1, 0, 1],
    "targets": [{"kind": "variables", "indices": [0]}],
}


def _toml(d: dict) -> str:
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)  # floats: nan / inf are valid TOML

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
    return raw_file(
        name, data, lambda tmp: ["invert", tmp / name, "--model", "tiny-dcgan", "--steps", "1", "--out", tmp / "inv"]
    )


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


def _drop_key(key: str):
    def damage(p: Path):
        m = json.loads((p / "manifest.json").read_text())
        del m[key]
        (p / "manifest.json").write_text(json.dumps(m))

    return damage


def _remove(name: str):
    return lambda p: (p / name).unlink()


def _npz_without_names(tmp: Path):
    meta = {"format_version": 1, "space": "z", "method": "random"}
    np.savez(
        tmp / "nonames.npz",
        vectors=np.eye(2, 16, dtype=np.float32),
        scales=np.ones(2, np.float32),
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )
    return run({"targets": [{"kind": "directions", "file": "nonames.npz"}]})(tmp)


def _torchscript_broken(tmp: Path):
    import zipfile

    torch.save({"w": torch.zeros(2)}, tmp / "g.pt")
    with zipfile.ZipFile(tmp / "g.pt", "a") as zf:
        zf.writestr(f"{zf.namelist()[0].split('/')[0]}/code/__torch__/g.py", "def forward(self): pass\n")
    return run({"model": str(tmp / "g.pt")})(tmp)


MANIFEST_FIX = "it was not written by latent-probe or is damaged; re-run the study\n"
SCALE_FIX = "is out of range; use a finite nonzero step unit with |scale| <= 100 (alpha multiplies it)\n"


def _truncate(name: str):
    return lambda p: (p / name).write_bytes((p / name).read_bytes()[:200])


CASES = [
    # spec file: syntax, unknown fields, types, values
    ("toml-malformed", run("name = [\n"), "spec.toml: not valid TOML"),
    ("toml-not-utf8", raw_file("spec.toml", b'name = "\xff\xfe"\n', lambda t: ["run", t / "spec.toml"]), "spec.toml: "),
    ("spec-missing", lambda t: ["run", t / "nope.toml"], "spec file"),
    ("unknown-field", run({"seeed": 1}), "seeed: Extra inputs are not permitted; remove it (unknown field)"),
    (
        "unknown-target-field",
        run({"targets": [{"kind": "variables", "indices": [0], "colour": "red"}]}),
        "targets[0].colour: Extra inputs are not permitted; remove it",
    ),
    ("unknown-target-kind", run({"targets": [{"kind": "knobs"}]}), "targets[0]: Input tag 'knobs'"),
    ("missing-field", run({}, drop=("model",)), "spec.toml: model: Field required; add it"),
    ("wrong-type-int", run({"batch_size": "big"}), "batch_size: Input should be a valid integer"),
    ("wrong-type-list", run({"alphas": "big"}), "alphas: Input should be a valid list"),
    ("wrong-type-indices", run({"targets": [{"kind": "variables", "indices": "some"}]}), "targets[0].indices: "),
    ("n-samples-zero", run({"n_samples": 0}), "n_samples: Input should be greater than or equal to 1"),
    ("unknown-model", run({"model": "nope"}), "model: unknown model 'nope'; use a zoo name"),
    ("unknown-measure", run({"measures": ["happiness"]}), "measures: unknown measure 'happiness'"),
    (
        "alpha-too-big",
        run({"alphas": [-1.0, 0.0, 1000.0]}),
        "alphas: alpha 1000 is out of range; use values with |alpha| <= 100",
    ),
    ("alpha-nan", run({"alphas": [float("nan"), 1.0]}), "alphas: alphas must be finite numbers; remove nan / inf"),
    ("alpha-inf", run({"alphas": [0.0, float("-inf")]}), "alphas: alphas must be finite numbers"),
    ("alpha-duplicate", run({"alphas": [1.0, 1.0]}), "alphas: alphas must be distinct"),
    (
        "index-out-of-range",
        run({"targets": [{"kind": "variables", "indices": [99]}]}),
        "targets[0].indices: index 99 out of range for z_dim=16; use 0..15",
    ),
    (
        "site-unknown",
        run({"targets": [{"kind": "channels", "site": "b9", "channels": [0]}]}),
        "targets[0].site: 'b9' is not a site of model 'tiny-dcgan'",
    ),
    (
        "scale-inf",
        run({"targets": [{"kind": "channels", "site": "b2", "channels": [0], "scale": float("inf")}]}),
        f"error: spec.toml: targets[0].scale: scale inf {SCALE_FIX}",
    ),
    (
        "scale-1e308",
        run({"targets": [{"kind": "variables", "indices": [0], "scale": 1e308}]}),
        f"error: spec.toml: targets[0].scale: scale 1e+308 {SCALE_FIX}",
    ),
    (
        "scale-zero",
        run({"targets": [{"kind": "directions", "file": "x.npz", "scale": 0.0}]}),
        f"error: spec.toml: targets[0].scale: scale 0 {SCALE_FIX}",
    ),
    (
        "c-inf",
        run({"c": [0.0, float("inf")]}),
        "error: spec.toml: c: c must hold finite numbers with |c| <= 1e6 (a class vector, e.g. one-hot)\n",
    ),
    ("seed-negative", run({"seed": -1}), "error: spec.toml: seed: Input should be greater than or equal to 0\n"),
    (
        "part-rows-huge",
        run({"part_rows": 10**9}),
        "error: spec.toml: part_rows: Input should be less than or equal to 10000000\n",
    ),
    (
        "name-control-chars",
        run({"name": "evil\u202e\nname"}),
        "error: spec.toml: name: name holds the non-printable character '\\u202e'; use letters, digits, '.', '_', "
        "'-'\n",
    ),
    (
        "plan-too-big",
        run({"n_samples": 10_000_000, "alphas": [1.0]}),
        "error: spec.toml: plan: 10,000,000 samples x 1 targets x 1 alphas = 10,000,000 rows (~",
    ),
    # direction files
    ("direction-missing", run({"targets": [{"kind": "directions", "file": "none.npz"}]}), "targets[0].file: "),
    (
        "direction-wrong-dim",
        directions("r8.npz", np.eye(2, 8, dtype=np.float32)),
        "targets[0].file: directions in r8.npz have dimension 8, but space 'z' of model 'tiny-dcgan' takes 16",
    ),
    (
        "direction-wrong-space",
        directions("w.npz", np.eye(2, 16, dtype=np.float32), space="w"),
        "targets[0].file: directions live in space 'w' but the study walks in 'z'; set space = \"w\"",
    ),
    (
        "direction-not-npz",
        raw_file("x.npz", b"plain text", lambda t: run({"targets": [{"kind": "directions", "file": "x.npz"}]})(t)),
        "spec.toml: targets[0].file: x.npz is not a DirectionSet .npz (not a zip archive); give a file written by probe "
        "discover or DirectionSet.save\n",
    ),
    (
        "direction-no-names",
        _npz_without_names,
        "spec.toml: targets[0].file: nonames.npz: DirectionSet metadata lacks 'names'; re-save it with "
        "DirectionSet.save\n",
    ),
    # model weights
    ("weights-truncated", model_file("g.pt", _state_dict_pt()[:300]), "g.pt: not a torch checkpoint archive"),
    ("weights-garbage", model_file("g.pt", b"\x00garbage" * 50), "g.pt: not a torch checkpoint archive"),
    ("weights-state-dict", model_file("g.pt", _state_dict_pt()), "g.pt holds only weights (a state dict)"),
    (
        "weights-pickle",
        model_file("g.pkl", b"\x80\x04K\x01."),
        "g.pkl: not an NVlabs network pickle (the top level is of type int",
    ),
    ("torchscript-broken", _torchscript_broken, "g.pt: TorchScript archive failed to load (RuntimeError: "),
    ("weights-missing", lambda t: run({"model": str(t / "none.pt")})(t), "does not exist"),
    (
        "factory-raises",
        raw_file(
            "m.py", b"def make():\n    raise RuntimeError('boom')\n", lambda t: run({"model": f"{t / 'm.py'}:make"})(t)
        ),
        "factory raised RuntimeError: boom",
    ),
    # images for probe invert
    ("invert-not-an-image", invert("notes.txt", b"hello, I am text"), "could not be read as an image"),
    ("invert-truncated-png", invert("cut.png", _png(64, 64)[:60]), "could not be read as an image"),
    ("invert-too-small", invert("tiny.png", _png(8, 8)), "image is too small (8x8); give at least 16x16"),
    ("invert-missing", lambda t: ["invert", t / "none.png", "--model", "tiny-dcgan"], "does not exist"),
    # latents for probe drag
    ("latent-nan", drag(np.full((1, 16), np.nan, np.float32)), "contains NaN or inf values; pass finite numbers"),
    ("latent-inf", drag(np.r_[np.zeros(15), np.inf][None].astype(np.float32)), "contains NaN or inf values"),
    ("latent-wrong-dim", drag(np.zeros((1, 7), np.float32)), "must have shape [N, 16], got [1, 7]"),
    (
        "latent-object-array",
        drag(data=_npy(np.array([{"a": 1}], dtype=object), allow_pickle=True)),
        "lat.npy is not a readable .npy array",
    ),
    ("drag-point-syntax", drag(point="10,10"), "--point: expected x,y->x,y"),
    # study directories
    ("study-missing", lambda t: ["stats", t / "nope"], "does not exist; make one with probe run"),
    (
        "study-newer-schema",
        study("stats", _manifest(schema_version=schema.SCHEMA_VERSION + 1)),
        f"has schema_version {schema.SCHEMA_VERSION + 1}, newer than this latent-probe reads "
        f"({schema.SCHEMA_VERSION}); upgrade latent-probe",
    ),
    ("dash-newer-schema", study("dash", _manifest(schema_version=99), "--port", "8099"), "upgrade latent-probe"),
    ("study-manifest-corrupt", study("stats", _write("manifest.json", b"{not json")), "manifest.json is unreadable"),
    (
        "study-manifest-list",
        study("stats", _write("manifest.json", b"[1, 2]")),
        f"manifest.json: expected a JSON object, got a list; {MANIFEST_FIX}",
    ),
    (
        "study-manifest-no-model",
        study("discover", _drop_key("model"), "--method", "random"),
        f"manifest.json: field 'model' is missing; {MANIFEST_FIX}",
    ),
    (
        "study-manifest-measures-null",
        study("stats", _manifest(measures=None)),
        f"manifest.json: field 'measures' must be an object, got null; {MANIFEST_FIX}",
    ),
    (
        "study-manifest-targets-shape",
        study("report", _manifest(targets=[1, 2])),
        f"manifest.json: field 'targets' must list objects with a name and a kind; {MANIFEST_FIX}",
    ),
    (
        "study-table-truncated",
        study("stats", _truncate("interventions.parquet")),
        "interventions.parquet is unreadable (ArrowInvalid); re-make it with probe run",
    ),
    (
        "study-latents-garbage",
        study("stats", _write("latents.npy", b"not numpy")),
        "latents.npy is not a .npy array (no NUMPY header); it is written by probe run",
    ),
    (
        "study-latents-nan",
        study("stats", _write("latents.npy", _npy(np.full((24, 16), np.nan, np.float32)))),
        "latents.npy holds NaN or inf latents",
    ),
    (
        "study-latents-pickled",
        study("stats", _write("latents.npy", _npy(np.array([None] * 24, dtype=object), allow_pickle=True))),
        "latents.npy is unreadable (ValueError: Object arrays cannot be loaded when allow_pickle=False)",
    ),
    (
        "study-latents-missing",
        study("embed", _remove("latents.npy")),
        "has no latents.npy; rebuild it from the seed with probe run SPEC.toml --out ",
    ),
    ("study-incomplete", study("evaluate", _manifest(status="running")), "is incomplete (status 'running'); finish it"),
    ("stats-level", study("stats", None, "--level", "2"), "--level must be in (0, 1)"),
    ("stats-q-max", study("stats", None, "--q-max", "-1"), "error: --q-max must be in (0, 1], e.g. 0.05; got -1.0\n"),
    ("embed-neighbors", study("embed", None, "--n-neighbors", "1"), "error: --n-neighbors must be >= 2; got 1\n"),
    (
        "discover-k",
        study("discover", None, "--method", "random", "--k", "0"),
        "error: --k must be in 1..10,000; got 0\n",
    ),
    ("dash-port", study("dash", None, "--port", "0"), "--port must be in 1..65535"),
]


@pytest.mark.parametrize("make, want", [pytest.param(m, w, id=i) for i, m, w in CASES])
def test_bad_input_is_one_line(make, want, tmp_path, capsys, tiny_study):
    args = make(tmp_path, tiny_study.path) if getattr(make, "needs_study", False) else make(tmp_path)
    code, out, err = cli(args, capsys)
    assert code == 2, (code, out, err[-800:])
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), err[-800:]
    assert want in err, err
    assert not (tmp_path / "out").exists()  # a bad spec creates nothing


def test_every_case_named_once():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


# ---- dashboard upload: the real callback endpoint -----------------------------------------------------------
def _upload(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "contents, filename, want",
    [
        (
            _upload(b"hello, not an image", "text/plain"),
            "notes.txt",
            "upload 'notes.txt' is not an image; choose a PNG or JPEG file",
        ),
        (
            _upload(_png(64, 64)[:70], "image/png"),
            "cut.png",
            "upload 'cut.png' is not a readable image (truncated or corrupt); choose a PNG or JPEG file",
        ),
        (
            _upload(_png(8, 8), "image/png"),
            "tiny.png",
            "upload 'tiny.png' is 8x8 pixels; use an image of at least 16x16",
        ),
        ("data:image/png;base64,", "empty.png", "upload 'empty.png' is not an image"),
        (None, None, "upload: no file content; choose a PNG or JPEG image"),
    ],
)
def test_dashboard_upload_errors_one_line(tiny_study, contents, filename, want):
    from benchmarks.load_dashboard import Callback
    from dashboards.app import create_app

    app = create_app(tiny_study.path)
    cb = Callback(app, "dg-src.data")
    r = app.server.test_client().post(
        "/_dash-update-component",
        json=cb.payload(
            {
                "dg-sample.value": 0,
                "dg-upload.contents": contents,
                "dg-upload.filename": filename,
                "dg-inv-steps.value": 5,
            },
            changed=["dg-upload.contents"],
        ),
    )
    assert r.status_code == 200
    msg = r.get_json()["response"]["dg-msg"]["children"]
    assert msg["props"]["className"] == "probe-error" and want in msg["props"]["children"], msg
    assert not app.probe_ctx.jobs  # no inversion was started
