"""No pickle is ever loaded: malicious .pt / .pkl / .npz / .npy files are refused and their payload never runs.

Each malicious file carries a pickle whose `__reduce__` would create a marker file when unpickled; every test
asserts the load is refused with a one-line ProbeError AND that the marker never appears. A source scan keeps
every loader in the code base on `weights_only=True` / `allow_pickle=False`.
"""

import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from probe.errors import ProbeError
from tests.helpers import HOSTILE_FACTORY, cli

ROOT = Path(__file__).resolve().parents[1]


class Evil:
    """Unpickling this creates `marker` (open(marker, "w")): proof that a payload ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path) -> Path:
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "a pickle payload ran"


def _evil_pt(path: Path, marker: Path) -> Path:
    torch.save({"weights": torch.zeros(2), "payload": Evil(marker)}, path)  # a normal-looking torch zip archive
    return path


def _evil_torchscript_lookalike(path: Path, marker: Path) -> Path:
    """The evil archive plus a `code/` entry, so the loader takes it for TorchScript (torch.jit.load)."""
    _evil_pt(path, marker)
    with zipfile.ZipFile(path, "a") as zf:
        prefix = zf.namelist()[0].split("/")[0]
        zf.writestr(f"{prefix}/code/__torch__/evil.py", "def forward(self): pass\n")
    return path


def test_evil_pt_checkpoint_refused(tmp_path, marker, capsys):
    from probe.models import load_model

    p = _evil_pt(tmp_path / "evil.pt", marker)
    with pytest.raises(ProbeError, match="evil.pt: refused or unreadable checkpoint .*only weights-only"):
        load_model(str(p))
    # through the CLI: probe models --describe and a study spec naming it
    code, _, err = cli(["models", "--describe", p], capsys)
    assert code == 2 and err.startswith("error: ") and "refused or unreadable checkpoint" in err, err
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'name = "x"\nmodel = "{p}"\nmeasures = ["brightness"]\nn_samples = 2\nalphas = [1.0]\n'
        f'[[targets]]\nkind = "variables"\nindices = [0]\n'
    )
    code, _, err = cli(["run", spec, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert code == 2 and "model: evil.pt: refused or unreadable checkpoint" in err, err
    assert not (tmp_path / "out").exists()


def test_evil_torchscript_lookalike_refused(tmp_path, marker):
    from probe.models import load_model

    p = _evil_torchscript_lookalike(tmp_path / "evil2.pt", marker)
    with pytest.raises(ProbeError, match="evil2.pt: TorchScript archive failed to load"):
        load_model(str(p))


def test_evil_pkl_model_never_opened(tmp_path, marker):
    import pickle

    from probe.models import load_model

    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(ProbeError, match="evil.pkl: refused global 'io.open' .*; nothing was executed$"):
        load_model(str(p))


def _evil_npz(path: Path, marker: Path) -> Path:
    """A DirectionSet-shaped .npz whose `vectors` is an object array holding the payload."""
    meta = {
        "format_version": 1,
        "names": ["d0"],
        "space": "z",
        "method": "evil",
        "model": None,
        "weights_hash": None,
        "layers": [None],
        "site": None,
        "info": {},
        "provenance": {},
    }
    np.savez(
        path,
        vectors=np.array([Evil(marker)], dtype=object),
        scales=np.ones(1),
        meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
    )
    return path


def test_evil_direction_set_refused(tmp_path, marker, capsys, tiny_study):
    from probe.directions.base import DirectionSet

    p = _evil_npz(tmp_path / "evil.npz", marker)
    want = (
        "evil.npz is not a readable DirectionSet .npz (ValueError: Object arrays cannot be loaded when "
        "allow_pickle=False); re-save it with DirectionSet.save"
    )
    with pytest.raises(ProbeError) as e:
        DirectionSet.load(p)
    assert str(e.value) == want
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "x"\nmodel = "tiny-dcgan"\nmeasures = ["brightness"]\nn_samples = 2\nalphas = [1.0]\n'
        '[[targets]]\nkind = "directions"\nfile = "evil.npz"\n'
    )
    code, _, err = cli(["run", spec, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert (code, err) == (2, f"error: s.toml: targets[0].file: {want}\n")
    # dropped into a study's directions/: reading the study's sets refuses it; the dashboard shows one line
    st = tmp_path / "study"
    shutil.copytree(tiny_study.path, st)
    shutil.copy(p, st / "directions" / "evil.npz")
    from dashboards.app import create_app
    from probe.store import Study

    with pytest.raises(ProbeError) as e:
        Study(st).directions()
    assert str(e.value) == want
    app = create_app(st)
    from benchmarks.load_dashboard import Callback

    r = app.server.test_client().post(
        "/_dash-update-component", json=Callback(app, "page.children").payload({"url.pathname": "/edits"})
    )
    assert r.status_code == 200 and "evil.npz is not a readable DirectionSet .npz" in r.get_data(as_text=True)


def test_evil_npy_latents_refused(tmp_path, marker, capsys, tiny_study):
    evil = np.array([Evil(marker)], dtype=object)
    p = tmp_path / "lat.npy"
    np.save(p, evil, allow_pickle=True)
    code, _, err = cli(
        [
            "drag",
            "--model",
            "tiny-dcgan",
            "--latent",
            p,
            "--space",
            "z",
            "--point",
            "1,1->2,2",
            "--steps",
            "1",
            "--out",
            tmp_path / "d.png",
        ],
        capsys,
    )
    assert code == 2 and "lat.npy is not a readable .npy array" in err, err
    st = tmp_path / "study"
    shutil.copytree(tiny_study.path, st)
    np.save(st / "latents.npy", evil, allow_pickle=True)
    from probe.store import Study

    with pytest.raises(ProbeError, match="latents.npy is unreadable .*allow_pickle=False"):
        Study(st).latents()


def test_evil_embed_cache_entry_is_ignored(tmp_path, marker):
    from probe.embed import LatentEmbedding

    emb = LatentEmbedding(cache_dir=tmp_path)
    key = "0" * 24
    np.savez(tmp_path / f"umap-{key}.npz", xy=np.array([Evil(marker)], dtype=object))
    assert emb._load(key) is None  # a damaged / hostile cache entry is recomputed, never unpickled


# calls that can unpickle, and what makes each one safe
LOADERS = {
    r"torch\.load\(": "weights_only=True",
    r"np\.load\(": "allow_pickle=False",
    r"numpy\.load\(": "allow_pickle=False",
}
FORBIDDEN = [
    r"\bpickle\.loads?\(",
    r"\bjoblib\.load\(",
    r"\bread_pickle\(",
    r"\bdill\.",
    r"\bcloudpickle\.",
    r"\bshelve\.",
    r"\bmarshal\.loads?\(",
    r"allow_pickle=True",
    r"weights_only=False",
]


def test_source_has_no_pickle_loads():
    bad = []
    for f in sorted(p for d in ("probe", "dashboards", "reports", "benchmarks") for p in (ROOT / d).rglob("*.py")):
        text = f.read_text()
        for pat, safe in LOADERS.items():
            for m in re.finditer(pat, text):
                call = text[m.start() : text.find("\n", text.find(")", m.end()))]
                if safe not in call:
                    bad.append(f"{f.relative_to(ROOT)}: {call.strip()[:100]} (needs {safe})")
        for pat in FORBIDDEN:
            for m in re.finditer(pat, text):
                line = text[: m.start()].count("\n") + 1
                bad.append(f"{f.relative_to(ROOT)}:{line}: {pat}")
    assert bad == [], bad


def test_checkpoint_safe_weights_still_load(tmp_path):
    """The refusal is specific: a weights-only archive is read (and reported as weights without architecture)."""
    from probe.models import load_model

    p = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2)}, p)
    with pytest.raises(ProbeError, match="holds only weights \\(a state dict\\), not an architecture"):
        load_model(str(p))
    buf = io.BytesIO()
    torch.save({"w": torch.ones(1)}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["w"].item() == 1.0


def test_payloads_are_live(tmp_path):
    """Control: the malicious files above DO run their payload when loaded unsafely (so the refusals matter)."""
    m1, m2 = tmp_path / "M1", tmp_path / "M2"
    try:
        torch.load(_evil_pt(tmp_path / "e.pt", m1), weights_only=False)
    except Exception:  # noqa: BLE001 - the payload runs during unpickling, whatever follows
        pass
    with np.load(_evil_npz(tmp_path / "e.npz", m2), allow_pickle=True) as z:
        z["vectors"]
    assert m1.exists() and m2.exists()


# ---- opening a study never runs its model's code (file.py:factory, TorchScript) unless named ---------------------
PAYLOAD = HOSTILE_FACTORY
SPEC = (
    'name = "pay"\nmodel = "{model}"\nmeasures = ["brightness"]\nn_samples = 4\nalphas = [-1.0, 1.0]\n'
    '[[targets]]\nkind = "variables"\nindices = [0]\n'
)


def _fresh_models():
    """Forget loaded models, so each command below really decides whether to load (no cached Generator)."""
    from probe.models import load_model

    load_model.cache_clear()


@pytest.fixture
def payload_study(tmp_path, monkeypatch, capsys) -> Path:
    """A complete study whose model is `payload.py:factory` (run from tmp_path, the user named it then); the
    marker its import writes is removed afterwards."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "payload.py").write_text(PAYLOAD)
    (tmp_path / "spec.toml").write_text(SPEC.format(model="payload.py:factory"))
    code, _, err = cli(["run", "spec.toml", "--out", "st", "--no-progress"], capsys)
    assert code == 0, err
    assert (tmp_path / "MARKER").read_text() == "imported"
    (tmp_path / "MARKER").unlink()
    _fresh_models()
    return tmp_path / "st"


UNTRUSTED = (
    "error: study 'pay' was made with model 'payload.py:factory', a Python file; it is not run when a study "
    "is opened: pass --model payload.py:factory (or --trust-model) to allow it\n"
)


def test_report_and_discover_do_not_run_a_studys_python_model(payload_study, capsys):
    m = json.loads((payload_study / "manifest.json").read_text())
    assert m["model"] == str(payload_study.parent / "payload.py") + ":factory" and m["model_kind"] == "python"
    assert m["model_file_sha256"] == hashlib.sha256((payload_study.parent / "payload.py").read_bytes()).hexdigest()
    for args in (
        ["report", "st"],
        ["discover", "st", "--method", "random", "--k", "2"],
        ["report", "st", "--model", "other.py:factory"],
    ):
        code, _, err = cli(args, capsys)
        if "other.py:factory" in args:
            assert (code, err) == (
                2,
                "error: --model 'other.py:factory' is not the model of study 'pay' "
                "('payload.py:factory'); pass --model payload.py:factory or --trust-model\n",
            )
        else:
            assert (code, err) == (2, UNTRUSTED), args
        assert not (payload_study.parent / "MARKER").exists()
    assert not (payload_study / "report.html").exists() and not (payload_study / "directions").exists()
    from probe.restudy import ModelTrustError, rerender
    from probe.store import Study

    with pytest.raises(ModelTrustError) as e:
        rerender(Study(payload_study), [0], "z[0]", [1.0])
    assert f"error: {e.value}\n" == UNTRUSTED and not (payload_study.parent / "MARKER").exists()
    # named on the command line (relative to the cwd, as typed) or trusted: it runs
    code, out, err = cli(["discover", "st", "--method", "random", "--k", "2", "--model", "payload.py:factory"], capsys)
    assert code == 0 and (payload_study.parent / "MARKER").exists(), err
    _fresh_models()
    code, out, err = cli(["report", str(payload_study), "--trust-model", "-o", "r.html"], capsys)
    assert code == 0 and out.startswith("wrote r.html"), err


def test_changed_model_file_is_refused(payload_study, capsys):
    p = payload_study.parent / "payload.py"
    then = hashlib.sha256(p.read_bytes()).hexdigest()
    p.write_text(PAYLOAD + "\n# edited\n")
    now = hashlib.sha256(p.read_bytes()).hexdigest()
    for flag in (["--model", "payload.py:factory"], ["--trust-model"]):
        code, _, err = cli(["report", "st", *flag], capsys)
        assert (code, err) == (
            2,
            f"error: model file 'payload.py' changed since the study was run (sha256 "
            f"{now[:12]}… != {then[:12]}…); re-run the study or restore the file\n",
        )
        assert not (payload_study.parent / "MARKER").exists()
    code, _, err = cli(["run", "spec.toml", "--out", "st", "--resume", "--no-progress"], capsys)
    assert (code, err) == (
        2,
        "error: --resume: model file of 'payload.py:factory' changed since the study started "
        "(sha256 differs); restore it or choose a new --out\n",
    )


def test_model_paths_resolve_against_the_spec_file(tmp_path, monkeypatch, capsys):
    """model = "nets/g.py:factory" (and a TorchScript "nets/g.pt") in specs/spec.toml, run from another directory:
    the file next to the spec is used and its sha256 recorded; a TorchScript study is not run when opened."""
    nets = tmp_path / "specs" / "nets"
    nets.mkdir(parents=True)
    (nets / "g.py").write_text(PAYLOAD.replace('Path(__file__).with_name("MARKER").write_text("imported")', ""))
    import importlib.util

    spec_mod = importlib.util.spec_from_file_location("g_net", nets / "g.py")
    mod = importlib.util.module_from_spec(spec_mod)
    spec_mod.loader.exec_module(mod)
    torch.jit.script(mod.factory()).save(str(nets / "g.pt"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for model, kind in (("nets/g.py:factory", "python"), ("nets/g.pt", "torchscript")):
        (tmp_path / "specs" / "spec.toml").write_text(SPEC.format(model=model))
        out = tmp_path / kind
        code, _, err = cli(["run", tmp_path / "specs" / "spec.toml", "--out", out, "--no-progress"], capsys)
        assert code == 0, err
        m = json.loads((out / "manifest.json").read_text())
        f = nets / model.split("/")[1].split(":")[0]
        assert (m["model"], m["model_kind"]) == (str(nets / model.split("/")[1]), kind)
        assert m["model_file_sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert not (elsewhere / "nets").exists()
    _fresh_models()
    code, _, err = cli(["report", tmp_path / "torchscript"], capsys)
    assert (code, err) == (
        2,
        f"error: study 'pay' was made with model '{nets / 'g.pt'}', a TorchScript archive "
        f"(code); it is not run when a study is opened: pass --model {nets / 'g.pt'} (or "
        f"--trust-model) to allow it\n",
    )


def test_study_measure_files_are_not_run_by_discover(tiny_study, tmp_path, capsys, marker):
    """A manifest naming a file.py:factory measure: discover --method interfacegan refuses to import it."""
    st = tmp_path / "st"
    shutil.copytree(tiny_study.path, st)
    (tmp_path / "m.py").write_text(f"open({str(marker)!r}, 'w')\ndef make():\n    pass\n")
    m = json.loads((st / "manifest.json").read_text())
    m["measures"] = {f"{tmp_path / 'm.py'}:make": {}}
    (st / "manifest.json").write_text(json.dumps(m))
    code, _, err = cli(["discover", st, "--method", "interfacegan", "--n", "8"], capsys)
    assert (code, err) == (
        2,
        f"error: the study names measure '{tmp_path / 'm.py'}:make', a Python file; it is not "
        f"run when a study is opened: pass --measures with the measures to fit\n",
    )


def test_terminal_output_escapes_names(capsys):
    """RTL overrides and newlines in names never reach the terminal raw: the CLI's one error line escapes them."""
    from probe.cli import main
    from probe.errors import printable

    assert printable("a\u202eb\nc") == "a\\u202eb\\nc" and printable("plain é") == "plain é"
    import sys

    old = sys.argv
    sys.argv = ["probe", "stats", "/nonexistent/\u202eevil\nname"]
    try:
        with pytest.raises(SystemExit):
            main()
    finally:
        sys.argv = old
    err = capsys.readouterr().err
    assert err == (
        "error: study directory '/nonexistent/\\u202eevil\\nname' does not exist; make one with probe run "
        "SPEC.toml --out /nonexistent/\\u202eevil\\nname\n"
    )


def test_report_without_the_model_file_still_writes_without_images(payload_study, capsys):
    (payload_study.parent / "payload.py").unlink()
    code, _, err = cli(["report", "st"], capsys)
    assert (code, err) == (2, UNTRUSTED)
    code, out, err = cli(["report", "st", "--trust-model"], capsys)
    assert code == 0, err
    html = (payload_study / "report.html").read_text()
    assert (
        "images not rendered: model file &#39;payload.py&#39; of study &#39;pay&#39; does not exist; restore it "
        "or pass --model with the moved file" in html
    )
    assert not (payload_study.parent / "MARKER").exists()


def test_model_flag_must_name_the_studys_model(tiny_study, capsys):
    code, _, err = cli(["report", tiny_study.path, "--model", "faces", "-o", "/tmp/never.html"], capsys)
    assert (code, err) == (
        2,
        "error: --model 'faces' is not the model of study 'tiny' ('tiny-dcgan'); drop --model "
        "(only file.py:factory and TorchScript models need it) or give the same file moved\n",
    )


def test_model_names_resolve_and_classify_without_loading(tmp_path):
    """resolve_model makes file paths absolute against a base (spec directory or cwd); model_kind decides code vs
    data from the file itself: .py factories and zip archives with code are code, weights and pickles are data."""
    from probe.models.zoo import model_file, model_kind, resolve_model

    assert [
        resolve_model(n, "/base")
        for n in ("faces", "nets/g.py:make", "w/g.pt", "nets/net.pkl", "net.pkl:G", "/abs/g.py:f", "../up/g.pt")
    ] == [
        "faces",
        "/base/nets/g.py:make",
        "/base/w/g.pt",
        "/base/nets/net.pkl",
        "/base/net.pkl:G",
        "/abs/g.py:f",
        "/up/g.pt",
    ]
    assert [model_file(n) for n in ("faces", "a/g.py:f", "net.pkl:G", "x.ckpt")] == [
        None,
        Path("a/g.py"),
        Path("net.pkl"),
        Path("x.ckpt"),
    ]
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pt")
    _evil_torchscript_lookalike(tmp_path / "ts.pt", tmp_path / "never")
    assert [
        model_kind(n) for n in ("tiny-dcgan", "g.py:f", str(tmp_path / "w.pt"), str(tmp_path / "ts.pt"), "net.pkl:G")
    ] == ["zoo", "python", "weights", "torchscript", "pickle"]
    assert not (tmp_path / "never").exists()
