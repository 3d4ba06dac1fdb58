"""No pickle is ever loaded: malicious .pt / .pkl / .npz / .npy files are refused and their payload never runs.

Each malicious file carries a pickle whose `__reduce__` would create a marker file when unpickled; every test
asserts the load is refused with a one-line ProbeError AND that the marker never appears. A source scan keeps
every loader in the code base on `weights_only=True` / `allow_pickle=False`.
"""
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
from tests.helpers import cli

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
    torch.save({"weights": torch.zeros(2), "payload": Evil(marker)}, path)   # a normal-looking torch zip archive
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
    spec.write_text(f'name = "x"\nmodel = "{p}"\nmeasures = ["brightness"]\nn_samples = 2\nalphas = [1.0]\n'
                    f'[[targets]]\nkind = "variables"\nindices = [0]\n')
    code, _, err = cli(["run", spec, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert code == 2 and "model: evil.pt: refused or unreadable checkpoint" in err, err
    assert not (tmp_path / "out").exists()


def test_evil_torchscript_lookalike_refused(tmp_path, marker):
    from probe.models import load_model
    p = _evil_torchscript_lookalike(tmp_path / "evil2.pt", marker)
    with pytest.raises(ProbeError, match="evil2.pt: TorchScript archive failed to load"):
        load_model(str(p))


def test_evil_pkl_model_never_opened(tmp_path, marker):
    from probe.models import load_model
    import pickle
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(ProbeError, match="evil.pkl: pickle files are not loaded"):
        load_model(str(p))


def _evil_npz(path: Path, marker: Path) -> Path:
    """A DirectionSet-shaped .npz whose `vectors` is an object array holding the payload."""
    meta = {"format_version": 1, "names": ["d0"], "space": "z", "method": "evil", "model": None,
            "weights_hash": None, "layers": [None], "site": None, "info": {}, "provenance": {}}
    np.savez(path, vectors=np.array([Evil(marker)], dtype=object), scales=np.ones(1),
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return path


def test_evil_direction_set_refused(tmp_path, marker, capsys, tiny_study):
    from probe.directions.base import DirectionSet
    p = _evil_npz(tmp_path / "evil.npz", marker)
    with pytest.raises(ProbeError, match="evil.npz is not a DirectionSet file .*allow_pickle=False"):
        DirectionSet.load(p)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "x"\nmodel = "tiny-dcgan"\nmeasures = ["brightness"]\nn_samples = 2\nalphas = [1.0]\n'
                    '[[targets]]\nkind = "directions"\nfile = "evil.npz"\n')
    code, _, err = cli(["run", spec, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert code == 2 and "targets[0].file: evil.npz is not a DirectionSet file" in err, err
    # dropped into a study's directions/: reading the study's sets refuses it; the dashboard shows one line
    st = tmp_path / "study"
    shutil.copytree(tiny_study.path, st)
    shutil.copy(p, st / "directions" / "evil.npz")
    from dashboards.app import create_app
    from probe.store import Study
    with pytest.raises(ProbeError, match="evil.npz is not a DirectionSet file"):
        Study(st).directions()
    app = create_app(st)
    from benchmarks.load_dashboard import Callback
    r = app.server.test_client().post("/_dash-update-component", json=Callback(app, "page.children").payload(
        {"url.pathname": "/edits"}))
    assert r.status_code == 200 and "evil.npz is not a DirectionSet file" in r.get_data(as_text=True)


def test_evil_npy_latents_refused(tmp_path, marker, capsys, tiny_study):
    evil = np.array([Evil(marker)], dtype=object)
    p = tmp_path / "lat.npy"
    np.save(p, evil, allow_pickle=True)
    code, _, err = cli(["drag", "--model", "tiny-dcgan", "--latent", p, "--space", "z", "--point", "1,1->2,2",
                     "--steps", "1", "--out", tmp_path / "d.png"], capsys)
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
    assert emb._load(key) is None          # a damaged / hostile cache entry is recomputed, never unpickled


# calls that can unpickle, and what makes each one safe
LOADERS = {r"torch\.load\(": "weights_only=True", r"np\.load\(": "allow_pickle=False",
           r"numpy\.load\(": "allow_pickle=False"}
FORBIDDEN = [r"\bpickle\.loads?\(", r"\bjoblib\.load\(", r"\bread_pickle\(", r"\bdill\.", r"\bcloudpickle\.",
             r"\bshelve\.", r"\bmarshal\.loads?\(", r"allow_pickle=True", r"weights_only=False"]


def test_source_has_no_pickle_loads():
    bad = []
    for f in sorted(p for d in ("probe", "dashboards", "reports", "benchmarks") for p in (ROOT / d).rglob("*.py")):
        text = f.read_text()
        for pat, safe in LOADERS.items():
            for m in re.finditer(pat, text):
                call = text[m.start():text.find("\n", text.find(")", m.end()))]
                if safe not in call:
                    bad.append(f"{f.relative_to(ROOT)}: {call.strip()[:100]} (needs {safe})")
        for pat in FORBIDDEN:
            for m in re.finditer(pat, text):
                line = text[:m.start()].count("\n") + 1
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
