"""Self-contained HTML report: sections, escaping, offline loading in headless Chromium, CLI."""

import json
import re
import shutil
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import torch

from probe.errors import ProbeError
from probe.store import Study
from reports.build import (
    OPTIONAL,
    SECTIONS,
    ReportError,
    _diverse,
    _thumbs,
    build_report,
    fmt,
    fmt_p,
    focus_measures,
    script_json,
)

HOSTILE = "<script>alert(1)</script>"
HOSTILE_TARGET = "</script><img src=x onerror=alert(2)>"
HOSTILE_DIRECTION = "</script><script>alert(3)</script>"


def _copy(study, dst) -> Study:
    shutil.copytree(study.path, dst)
    return Study(dst)


def _add_edits(study: Study) -> None:
    """Real edits rows through Study.add_edit: a 3-step DragGAN run (ok), the same run recorded as degraded, and an
    inversion row; plus drag/drag_eval.csv (the probe drag-eval summary)."""
    from probe import figures
    from probe.edit import make_drag
    from probe.restudy import study_model

    model = study_model(study)
    lat = torch.as_tensor(study.latents()[:1])
    with torch.no_grad():
        before = model.synthesize(lat, study.space)[0]
    r = make_drag("draggan", max_steps=3, site="b2").run(model, lat, study.space, [[10, 10]], [[14, 12]])
    png0, png1 = figures.img_to_png_bytes(before), figures.img_to_png_bytes(r.img)
    row = {
        "kind": "drag",
        "method": "draggan",
        "model": study.model_name,
        "site": "b2",
        "space": r.space,
        "steps": r.steps,
        "sample_id": 0,
        "seconds": r.seconds,
        "points": {"handles": r.handles.tolist(), "targets": r.targets.tolist(), "final": r.points.tolist()},
        "handle_dist_px": float(r.distances.mean()),
        "outside_change": 0.0123,
        "quality": {"drift_brightness": 0.031, "warning": "face measures drifted"},
        "status": "ok",
    }
    study.add_edit(row, png0, png1)
    study.add_edit({**row, "status": "degraded", "handle_dist_px": 7.5}, png0, png1)
    study.add_edit(
        {
            "kind": "invert",
            "method": "invert",
            "model": study.model_name,
            "steps": 4,
            "psnr": 21.5,
            "status": "ok",
            "sample_id": 1,
        },
        png1,
        png0,
    )
    d = study.path / "drag"
    d.mkdir()
    md0 = float(np.linalg.norm(r.handles - r.targets, axis=1).mean())  # drag-eval columns (probe.edit.evaluate)
    pd.DataFrame(
        [
            {
                "method": "draggan",
                "points": 1,
                "pair": 0,
                "md_before": md0,
                "md_after": float(r.distances.mean()),
                "seconds": r.seconds,
                "steps": r.steps,
                "converged": r.converged,
                "outside_change": 0.01,
                "status": "ok",
                "degraded": False,
                "max_drift": 0.02,
            }
        ]
    ).to_csv(d / "drag_eval.csv", index=False)


def _add_embedding(study: Study) -> None:
    """An embedding table (schema.EMBEDDING_COLUMNS) of samples + random/d0 walk points, from a 2-D PCA of the
    latents: the report only reads the table; UMAP (probe.embed, ~40 s numba compile) is tested by its owner."""
    from probe.walks import apply

    lat = study.latents().reshape(len(study.latents()), -1)
    mu = lat.mean(0)
    _, _, vt = np.linalg.svd(lat - mu, full_matrices=False)
    rows = [
        dict(kind="sample", sample_id=i, target="", alpha=0.0, x=x, y=y)
        for i, (x, y) in enumerate((lat - mu) @ vt[:2].T)
    ]
    from probe.restudy import study_target

    t, al = study_target(study, "random/d0"), study.alphas
    for i in range(3):
        w = apply(torch.as_tensor(lat[i : i + 1].copy()), study.space, t, al).numpy().reshape(len(al), -1)
        rows += [
            dict(kind="walk", sample_id=i, target=t.name, alpha=a, x=x, y=y)
            for a, (x, y) in zip(al, (w - mu) @ vt[:2].T)
        ]
    df = pd.DataFrame(rows)
    df.insert(0, "point_id", np.arange(len(df)))
    study.write_table("embedding", df)


@pytest.fixture(scope="module")
def full_study(tiny_study, tmp_path_factory):
    """A copy of tiny_study with every table: stats, evaluation, ground truth, embedding, three edits rows."""
    from probe import stats
    from probe.directions import evaluate_study
    from probe.directions.groundtruth import groundtruth

    s = _copy(tiny_study, tmp_path_factory.mktemp("report") / "study")
    stats.analyze(s)
    evaluate_study(s)
    groundtruth(s, factors=["brightness", "contrast", "centroid_x", "centroid_y"])  # image stats as "factors"
    _add_embedding(s)
    _add_edits(s)
    return s


@pytest.fixture(scope="module")
def report(full_study, tmp_path_factory):
    return build_report(full_study, tmp_path_factory.mktemp("out") / "report.html")


@pytest.fixture(scope="module")
def hostile_report(tiny_study, tmp_path_factory):
    """A copy of tiny_study with hostile names: the study name, an effects target, a direction name."""
    from probe import stats
    from probe.directions.base import DirectionSet

    s = _copy(tiny_study, tmp_path_factory.mktemp("hostile") / "study")
    s.manifest["name"] = HOSTILE
    s.save_manifest()
    e = stats.effects(s)
    e.loc[e["slope"].abs().idxmax(), "target"] = HOSTILE_TARGET  # strongest: shown in a forest plot
    s.write_table("effects", e)
    s.save_directions(DirectionSet([HOSTILE_DIRECTION], np.eye(1, 16), "z", "hostile"))
    return build_report(Study(s.path), s.path / "report.html")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-sync",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--window-size=1280,900",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _load(driver, path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser"), driver.get_log("performance")  # drain earlier pages' logs
    driver.get(path.resolve().as_uri())
    n = driver.execute_script("return document.querySelectorAll('div.fig').length")
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.querySelectorAll('div.fig.js-plotly-plot').length") == n
    )
    return n


def _requests(driver):
    urls = []
    for e in driver.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m["method"] == "Network.requestWillBeSent":
            urls.append(m["params"]["request"]["url"])
    return urls


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.scripts = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "script":
            self.scripts.append(a)


# ---- pure parts ------------------------------------------------------------------------------------
def test_script_json_escapes_closing_tags_and_round_trips():
    obj = {"name": "</script><!-- & <b>", "v": [1.5, None]}
    s = script_json(obj)
    assert "</" not in s and "<!--" not in s and "<" not in s and "&" not in s
    assert json.loads(s) == obj


def test_walk_targets_one_per_method_first():
    t = ["z[1]", "z[2]", "z[1]", "ig/g", "z[3]", "rd/0", "ig/a"]
    m = ["variable", "variable", "variable", "ig", "variable", "random", "ig"]
    assert _diverse(t, m) == ["z[1]", "ig/g", "rd/0", "z[2]", "z[3]", "ig/a"]


def test_fmt_and_thumbs():
    assert fmt(0.123456) == "0.123" and fmt(3.2e-7) == "3.20e-07" and fmt(float("nan")) == "–"
    assert fmt(np.int64(7)) == "7" and fmt("a<b") == "a<b" and fmt(pd.NA) == "–" and fmt(None) == "–"
    t = _thumbs(torch.rand(2, 5, 3, 128, 128) * 2 - 1, 48)
    assert tuple(t.shape) == (2, 5, 3, 48, 48) and t.min() >= -1.01 and t.max() <= 1.01
    small = torch.zeros(1, 3, 32, 32)
    assert _thumbs(small, 48) is small


def test_p_and_q_print_in_scientific_notation():
    assert fmt_p(3.9e-6) == "3.90e-06" and fmt_p(0.5) == "5.00e-01" and fmt_p(0.0) == "<1e-300"
    assert fmt_p(float("nan")) == "–" and fmt_p(np.float64(1e-12)) == "1.00e-12"


def test_focus_measures_come_from_the_manifest(tiny_study, tmp_path):
    assert focus_measures(tiny_study) == tiny_study.measures  # spec measures ["image"]: all of them
    s = _copy(tiny_study, tmp_path / "focus")
    s.manifest["spec"]["measures"] = ["contrast", "image"]  # first entry: one measure
    s.save_manifest()
    assert focus_measures(Study(s.path)) == ["contrast"]
    s.manifest["model_info"]["default_measures"] = ["image"]  # the model's defaults win
    s.save_manifest()
    assert focus_measures(Study(s.path)) == tiny_study.measures
    s.manifest["model_info"]["default_measures"] = ["nope.py:f"]  # unknown / user code: spec order
    s.manifest["spec"]["measures"] = ["nope.py:f"]
    s.save_manifest()
    assert focus_measures(Study(s.path)) == tiny_study.measures


def test_report_opens_with_findings(report, full_study):
    html = report.read_text()
    first = re.search(r'<section id="([a-z]+)"', html).group(1)
    assert first == "findings" and html.index('id="findings"') < html.index('id="spec"')
    k = full_study.table("controlling")
    top = k[k["measure"] == k["measure"].iloc[0]].sort_values("rank").iloc[0]
    assert f"{top.target} {top.effect:+.3g} (q {fmt_p(top.q)})" in html  # top controlling variable, q in e-notation
    ev = full_study.table("evaluation")
    ev = ev[ev["is_target"]]
    m = ev["measure"].iloc[0]
    best = ev[ev["measure"] == m].sort_values("specificity", ascending=False).iloc[0]
    assert "Best direction per measure" in html
    assert re.search(rf'<td class="s">{re.escape(m)}</td><td class="s">{re.escape(best.target)}</td>', html)
    assert f">{fmt(float(best.specificity))}</td>" in html
    for sid, _ in SECTIONS:
        if sid not in ("findings", "groundtruth"):
            assert f'<li><a href="#{sid}">' in html  # links down
    heads = re.findall(r"<h3>Forest plot: ([^<]+)</h3>", html)
    assert heads == focus_measures(full_study)[:8]
    assert not re.search(r">0</td>", html.split('id="effects"')[1].split("</section>")[0])  # no p/q printed as 0


def _figure_after(html: str, heading: str) -> dict:
    part = html.split(f"<h3>{heading}</h3>", 1)[1]
    raw = re.search(r'<script type="application/json" class="fig-data"[^>]*>(.*?)</script>', part, re.S).group(1)
    return json.loads(raw)


def test_effect_heatmap_is_standardised(report, full_study):
    fig = _figure_after(report.read_text(), "Standardised effects")
    e, s = full_study.table("effects"), full_study.table("samples")
    assert fig["layout"]["meta"]["rows"] == e["target"].nunique() <= 30 and fig["layout"]["height"] <= 800
    sig = fig["data"][1]
    cols, rows = sig["x"], sig["y"]
    j = cols.index("brightness")
    want = e[e["measure"] == "brightness"].set_index("target")["slope"] / s["brightness"].std(ddof=1)
    cd = sig["customdata"]
    if isinstance(cd, dict):  # plotly's typed-array JSON
        import base64

        shape = [int(x) for x in str(cd["shape"]).split(",")]
        cd = np.frombuffer(base64.b64decode(cd["bdata"]), dtype=np.dtype(cd["dtype"])).reshape(shape)
    got = {r: float(cd[i][j][0]) for i, r in enumerate(rows)}
    assert all(abs(got[t] - want[t]) <= 1e-9 * max(1.0, abs(want[t])) for t in rows)
    assert "sd per unit alpha" in json.dumps(sig["text"]) and "fraction per unit alpha" in json.dumps(sig["text"])


def test_forest_plots_only_for_the_studys_measures(full_study, tmp_path):
    s = _copy(full_study, tmp_path / "focus")
    s.manifest["spec"]["measures"] = ["contrast", "image"]
    s.save_manifest()
    html = build_report(Study(s.path), tmp_path / "r.html", cdn=True).read_text()
    assert re.findall(r"<h3>Forest plot: ([^<]+)</h3>", html) == ["contrast"]
    assert "Measures the study was about: contrast." in html
    assert _figure_after(html, "Standardised effects")["data"][1]["x"][0] == "contrast"  # its column first


def test_report_has_every_section_figure_and_inline_plotly(report, full_study):
    html = report.read_text()
    p = _Ids()
    p.feed(html)
    for sid, _ in SECTIONS:
        assert sid in p.ids
        assert f'href="#{sid}"' in html  # table of contents
    assert 'class="report-section absent"' not in html  # every table present -> no absent section
    srcs = [s.get("src") for s in p.scripts if s.get("src")]
    assert srcs == []  # nothing loaded from outside
    import plotly.offline

    assert html.count(plotly.offline.get_plotlyjs()[-300:]) == 1  # plotly.js inlined exactly once
    n_fig = len(re.findall(r'<div class="fig" id="fig-\d+">', html))
    assert n_fig >= 8 and html.count('class="fig-data"') == n_fig
    assert full_study.manifest["weights_hash"] in html and full_study.manifest["versions"]["torch"] in html
    assert ">q</th>" in html and "CI lo (95%)" in html
    assert "Drag evaluation per method" in html and ">no edit</td>" in html
    # edits table: runs with quality columns, the degraded one warned about, before / after of each run
    assert "Runs (edits table)" in html and ">handle distance (px)</th>" in html and ">drift_brightness</th>" in html
    assert ">0.0123</td>" in html and ">21.5</td>" in html and "face measures drifted" in html
    assert '<p class="warning">1 of 3 runs did not end well: drag-0002 degraded' in html
    for rid in ("drag-0001", "drag-0002", "invert-0003"):
        assert f"<figcaption>{rid} before</figcaption>" in html
    assert "<figcaption>drag-0002 after (degraded)</figcaption>" in html and "data:image/png;base64," in html
    assert "Walk trajectories of 1 of 1 targets" in html  # embedding: walks of random/d0
    assert "passwd" not in html  # non-image fields are not shown
    assert "Scores per method" in html and "Top factor per direction" in html  # ground truth
    assert "Importance per direction and factor" in html and ">random/d0</td>" in html
    assert report.stat().st_size < 8_000_000


def test_missing_tables_name_the_command(tiny_study, tmp_path):
    s = _copy(tiny_study, tmp_path / "bare")
    html = build_report(s, tmp_path / "r.html", cdn=True).read_text()
    p = _Ids()
    p.feed(html)
    assert all(sid in p.ids for sid, _ in SECTIONS if sid not in OPTIONAL)
    assert "groundtruth" not in p.ids and 'href="#groundtruth"' not in html  # only studies with known factors
    for cmd in (f"probe stats {s.path}", f"probe embed {s.path}", "probe discover", f"probe drag --study {s.path}"):
        assert cmd in html
    assert html.count('class="report-section absent"') == 4  # correlations, effects, embedding, edits
    assert 'id="walks" class="report-section"' in html and "Walk strip: z[0]" in html


def test_incomplete_study_says_resume(tiny_study, tmp_path):
    s = _copy(tiny_study, tmp_path / "running")
    s.manifest["status"] = "running"
    s.save_manifest()
    html = build_report(Study(s.path), tmp_path / "r.html", cdn=True, n_grid=4).read_text()
    assert html.count(f"probe run SPEC.toml --out {s.path} --resume") == 2  # walks + density drift
    assert 'id="walks" class="report-section absent"' in html and "status &#39;running&#39;" in html
    assert "Sample grid" in html and 'id="samples" class="report-section"' in html


def test_cdn_option_small_file(full_study, tmp_path):
    html = build_report(full_study, tmp_path / "c.html", cdn=True).read_text()
    import plotly.offline

    assert f'src="https://cdn.plot.ly/plotly-{plotly.offline.get_plotlyjs_version()}.min.js"' in html
    assert len(html.encode()) < 1_500_000


def test_bad_output_paths(full_study, tmp_path):
    with pytest.raises(ReportError, match="is a directory"):
        build_report(full_study, tmp_path)
    with pytest.raises(ReportError, match=r"\.html"):
        build_report(full_study, tmp_path / "report.pdf")
    with pytest.raises(ProbeError, match="does not exist"):
        build_report(tmp_path / "nope", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "report.pdf").exists()


def test_cli_report(full_study, tmp_path, monkeypatch, capsys):
    from probe.cli import main

    out = tmp_path / "cli.html"
    monkeypatch.setattr(sys, "argv", ["probe", "report", str(full_study.path), "-o", str(out), "--cdn"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0 and out.stat().st_size > 10_000 and "wrote" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["probe", "report", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and "probe run" in err and "\n" not in err


# ---- in the browser ---------------------------------------------------------------------------------
@pytest.mark.browser
def test_report_opens_offline_in_chromium(browser, report):
    n = _load(browser, report)
    assert n >= 8
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    res = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith("data:") for u in res), res
    reqs = _requests(browser)
    assert [u for u in reqs if not u.startswith(("data:", report.resolve().as_uri()))] == []
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('section.report-section')).map(s => s.id)"
    )
    assert visible == [sid for sid, _ in SECTIONS]
    assert browser.execute_script("return document.querySelectorAll('.fig-error').length") == 0
    assert browser.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length") >= n
    imgs = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert imgs and all(c and w > 0 for c, w in imgs)


@pytest.mark.browser
def test_hostile_names_are_escaped(browser, hostile_report):
    from selenium.common.exceptions import NoAlertPresentException

    html = hostile_report.read_text()
    assert "<script>alert(" not in html and "<img src=x" not in html and "</script><img" not in html
    _load(browser, hostile_report)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.find_element("id", "study-name").text == HOSTILE
    assert HOSTILE in browser.title
    body = browser.find_element("tag name", "body").text
    assert HOSTILE_DIRECTION in body and HOSTILE_TARGET in body
    # only our own scripts: plotly.js, the figure-data blocks and the loader
    n_data = browser.execute_script("return document.querySelectorAll('script.fig-data').length")
    assert browser.execute_script("return document.scripts.length") == n_data + 2
    assert browser.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


def test_density_drift_table_from_duckdb_equals_pandas(tiny_study):
    from probe.query import Query
    from reports.build import Section, _directions, _Figs, _table

    sec = Section("directions", "Directions")
    _directions(tiny_study, sec, _Figs(), Query(tiny_study))
    got = next(b for b in sec.blocks if b["heading"] == "Density drift per method and walk at the largest |alpha|")
    iv = tiny_study.table("interventions")
    d = iv.assign(abs_dlogp=iv["dlogp"].abs(), abs_alpha=iv["alpha"].abs())
    top = d[d["abs_alpha"] == d["abs_alpha"].max()]
    g = top.groupby(["method", "walk"]).agg(
        targets=("target", "nunique"),
        alpha_abs=("abs_alpha", "first"),
        dlogp_abs_mean=("abs_dlogp", "mean"),
        dlogp_abs_max=("abs_dlogp", "max"),
    )
    want = Section("x", "x")
    _table(want, g.reset_index())
    assert got["rows"] == want.blocks[0]["rows"] and got["columns"] == want.blocks[0]["columns"]
    assert [r[0][1] for r in got["rows"]] == ["channel", "random", "variable"]


@pytest.mark.browser
def test_report_fits_1280_px_and_opens_with_findings(browser, report):
    browser.set_window_size(1280, 800)
    try:
        w = browser.execute_script("return window.innerWidth")
        browser.set_window_size(1280 + (1280 - w), 800)  # the viewport itself 1280 px wide
        _load(browser, report)
        assert browser.execute_script("return window.innerWidth") == 1280
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        wide = browser.execute_script(
            "return Array.from(document.querySelectorAll('body *')).filter(e => { var r = e.getBoundingClientRect(); "
            "return r.right > 0 && r.width > window.innerWidth; }).map(e => e.tagName + '#' + e.id)"
        )  # not plotly's "
        # off-screen text-measuring svg (left -10000 px)
        assert wide == []
        clipped = browser.execute_script(  # every figure (sample grid and strips too) within its column
            "return Array.from(document.querySelectorAll('div.fig')).filter(d => { var s = d.querySelector("
            "'.main-svg'); return !s || s.getBoundingClientRect().right > d.getBoundingClientRect().right + 1 "
            "|| d.getBoundingClientRect().right > window.innerWidth; }).map(d => d.id)"
        )
        assert clipped == []
        main = browser.find_element("css selector", "section#findings")
        assert main.location["y"] < 800  # findings are the first thing seen
        text = main.text
        assert text.startswith("Findings") and "Top controlling variables per measure" in text
        assert "Best direction per measure" in text
        assert browser.execute_script("return document.querySelectorAll('.fig-error').length") == 0
    finally:
        browser.set_window_size(1280, 900)


def test_quality_columns_keep_the_largest_drifts():
    """Many measures: only the drift columns with the largest |drift| over the runs are shown (the table fits)."""
    from reports.drag import quality_columns

    q = [json.dumps({f"drift_m{i}": (i - 3) * 0.1 * (k + 1) for i in range(8)} | {"reason": "moved"}) for k in range(2)]
    out = quality_columns(pd.DataFrame({"quality": q}), max_drift=3)
    assert list(out.columns) == ["drift_m0", "drift_m6", "drift_m7", "notes"]  # |drift| 0.6, 0.6, 0.8 kept
    assert out["notes"].tolist() == ["reason: moved", "reason: moved"]
    assert out["drift_m7"].tolist() == pytest.approx([0.4, 0.8])
