"""Report escaping of a hostile MEASURE name (study name, target and direction names: test_report.py)."""

import shutil
from html.parser import HTMLParser

import pandas as pd

from probe.store import Study
from reports.build import build_report

HOSTILE_MEASURE = "<script>window.__xss=1</script>"
HOSTILE_UNIT = "<img src=x onerror=alert(1)>"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_hostile_measure_name_and_unit_are_escaped(tiny_study, tmp_path):
    from probe import stats

    path = tmp_path / "study"
    shutil.copytree(tiny_study.path, path)
    s = Study(path)
    info = s.manifest["measures"].pop("brightness")
    s.manifest["measures"] = {HOSTILE_MEASURE: {**info, "unit": HOSTILE_UNIT}, **s.manifest["measures"]}
    s.save_manifest()
    s = Study(path)
    ren = {"brightness": HOSTILE_MEASURE, "d_brightness": f"d_{HOSTILE_MEASURE}"}
    for t in ("samples", "interventions"):
        s.write_table(t, pd.read_parquet(path / f"{t}.parquet").rename(columns=ren))
    stats.analyze(s)
    html = build_report(Study(path), tmp_path / "r.html").read_text()
    assert HOSTILE_MEASURE not in html and HOSTILE_UNIT not in html and "<img src=x" not in html
    p = _Tags()
    p.feed(html)
    # the only scripts: plotly.js, the JSON figure blocks and the loader; no <img src=x>, no on* attributes
    kinds = [a.get("type") for t, a in p.tags if t == "script"]
    assert set(kinds) <= {"text/javascript", "application/json"}
    assert not [a for t, a in p.tags if t == "img" and a.get("src") == "x"]
    assert not [a for _, a in p.tags if any(k.startswith("on") for k in a)]
    text = "".join(p.text)
    assert HOSTILE_MEASURE in text  # shown, as text (parsed out of escaped HTML or figure JSON)
