"""The notebook API (`import probe`) and examples/quickstart.ipynb, executed in a real kernel (nbclient)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import probe

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
HEAVY = ("torch", "dash", "plotly", "pandas", "duckdb", "umap", "sklearn")


def _python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_probe_loads_no_heavy_module():
    got = json.loads(_python(f"import json, sys, probe; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"))
    assert got == []


def test_every_api_name_resolves_without_dash():
    got = json.loads(
        _python(
            "import json, sys, probe\n"
            "names = {n: type(getattr(probe, n)).__name__ for n in probe.__all__}\n"
            "print(json.dumps({'names': names, 'dash': 'dash' in sys.modules, 'dir': sorted(dir(probe))}))"
        )
    )
    assert set(got["names"]) == set(probe.__all__)
    assert got["dash"] is False  # figures are plotly; only the dashboard imports dash
    assert set(probe.__all__) <= set(got["dir"])
    assert got["names"]["figures"] == "module" and got["names"]["load_model"] == "function"
    assert got["names"]["GANSpace"] == "type"


def test_api_names_are_the_library_objects():
    from probe.edit.drag import FreeDrag
    from probe.models.zoo import load_model
    from probe.stats import effects
    from probe.store import Study

    assert probe.load_model is load_model and probe.effects is effects and probe.FreeDrag is FreeDrag
    assert probe.open_study is Study and probe.Study is Study
    assert probe.figures is sys.modules["probe.figures"]


def test_unknown_name_says_what_exists():
    with pytest.raises(
        AttributeError,
        match=r"module 'probe' has no attribute 'load_modle'; the notebook API is "
        r".*load_model",
    ):
        probe.load_modle  # noqa: B018


def _outputs(nb) -> tuple[str, str, list[str]]:
    """All stream text of the executed notebook, the text/plain of its rich outputs, and their MIME types."""
    text, plain, mimes = [], [], []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o["output_type"] != "error", f"cell failed: {o.get('ename')}: {o.get('evalue')}"
            if o["output_type"] == "stream":
                text.append(o["text"])
            else:
                mimes += list(o.get("data", {}))
                plain.append(o.get("data", {}).get("text/plain", ""))
    return "".join(text), "\n".join(plain), mimes


@pytest.mark.slow
def test_quickstart_notebook_runs_and_its_numbers_are_the_library_s(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "ship the notebook without outputs"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text, plain, mimes = _outputs(nb)

    assert "img [8, 3, 32, 32]" in text
    shown = [float(v) for v in re.search(r"brightness \[([^\]]+)\]", text).group(1).split(",")]
    model = probe.load_model("tiny-stylegan")
    img = model.synthesize(model.sample(8, seed=0), "z")
    want = probe.MeasureSet(["image"])(img)["brightness"]
    np.testing.assert_allclose(shown, want, atol=6e-5)  # printed to 4 decimals

    # the study it wrote: 32 samples x (4 variables + 3 GANSpace directions) x 5 alphas
    assert "samples 32 interventions 1120" in text
    study = probe.open_study(tmp_path / "studies" / "quickstart")
    assert study.table("interventions").shape[0] == 1120 and set(study.measures) >= {"brightness", "hue"}
    effects = study.table("effects")
    assert effects.shape[0] == 7 * 6  # 7 targets x 6 image measures
    m = re.search(r"effects (\d+) rows; strongest: (\S+) (\S+) slope (-?[\d.]+)", text)
    top = effects.sort_values("q").iloc[0]
    assert (int(m.group(1)), m.group(2), m.group(3)) == (42, top["target"], top["measure"])
    assert float(m.group(4)) == pytest.approx(top["slope"], abs=5e-5)
    rows = re.findall(r"^(ganspace/pc\d)\s+(\w+)\s+([\d.]+)\s", plain, re.M)  # evaluation: one row per direction
    assert [t for t, _, _ in rows] == ["ganspace/pc0", "ganspace/pc1", "ganspace/pc2"]
    assert all(m in study.measures and 0 < float(s) for _, m, s in rows)

    # editing: the handle moves towards its target along the drag line; inversion improves on its start
    d = re.search(r"drag steps (\d+) handle \[16.0, 16.0\] -> \[([\d.]+), ([\d.]+)\] distance ([\d.]+) px", text)
    assert int(d.group(1)) >= 1 and float(d.group(3)) == 16.0 and float(d.group(4)) < 4.0
    p = re.search(r"inversion psnr ([\d.]+) dB \(start ([\d.]+) dB\)", text)
    assert float(p.group(1)) > float(p.group(2)) + 5

    assert mimes.count("application/vnd.plotly.v1+json") == 4  # sample grid, walk strip, forest, inversion


def _python_block(path: Path) -> str:
    return re.search(r"```python\n(.*?)```", path.read_text(), re.S).group(1)


def test_readme_example_is_the_api_page_s_and_runs(tmp_path):
    code = _python_block(ROOT / "README.md")
    assert code == _python_block(ROOT / "docs" / "api.md")
    assert len(code.strip().splitlines()) <= 12
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    assert len(rows) == 3 and all(r[1] in {"w[0]", "w[1]", "w[2]"} for r in rows)  # index, target, measure, ...
    assert (tmp_path / "effects.html").stat().st_size > 10_000
    study = probe.open_study(tmp_path / "studies" / "hello")
    assert len(study.table("effects")) == 3 * 6  # 3 variables x 6 image measures
    assert study.table("interventions").shape[0] == 16 * 3 * 3
