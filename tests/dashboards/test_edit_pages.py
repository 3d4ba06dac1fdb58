"""Embedding, Edits and Drag in headless Chromium at 1280x800: what a user sees (trace counts, plot sizes, texts,
images, no sideways scrolling, no error boxes) and what the page does (walks on demand, sample-only selection,
download, PCA switch, one drag job at a time, quality verdicts, edits saved into the study)."""
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.dashboards.ui import (T, above_fold, box_select_all, error_texts, hover, no_errors, no_sideways_scroll,
                                 open_page, plot_height, traces, wait_until)

pytestmark = pytest.mark.browser


def _trace_points(duo, graph_id, k):
    return duo.find_elements(f"#{graph_id} .scatterlayer .trace:nth-of-type({k + 1}) .point")


def test_embedding_walks_on_demand_hover_selection(dash_duo, full_study, tmp_path):
    open_page(dash_duo, full_study, "/embedding")
    dash_duo.wait_for_element("#em-scatter .scatterlayer .point", timeout=T)
    # no walks by default: one trace (the samples), no legend flood, and the plot keeps its height
    assert [t["name"] for t in traces(dash_duo, "em-scatter")] == ["samples"]
    assert plot_height(dash_duo, "em-scatter") >= 450
    dash_duo.wait_for_contains_text("#em-status", "no walks drawn", timeout=T)
    no_sideways_scroll(dash_duo)
    # walks for one picked target only
    dash_duo.select_dcc_dropdown("#em-walks", value="random/d0")
    dash_duo.wait_for_contains_text("#em-status", "walks of 1 target(s) for 4 sample(s)", timeout=T)
    tr = traces(dash_duo, "em-scatter")
    assert [t["name"] for t in tr] == ["samples", "walk random/d0"]
    assert tr[1]["n"] == 4 * (5 + 1)          # 4 samples x 5 alphas, a gap after each
    assert plot_height(dash_duo, "em-scatter") >= 450
    # hovering a walk point shows that point (re-rendered), labelled with its own alpha
    walk_pts = _trace_points(dash_duo, "em-scatter", 1)
    assert len(walk_pts) == 20
    hover(dash_duo, walk_pts[0])                # sample 0 at alpha = -2
    dash_duo.wait_for_contains_text("#em-tip-label", "random/d0, alpha=-2", timeout=T)
    walk_src = dash_duo.find_element("#em-tip-img").get_attribute("src")
    hover(dash_duo, _trace_points(dash_duo, "em-scatter", 0)[10])  # a sample without walks: its own image
    dash_duo.wait_for_text_to_equal("#em-tip-label", "sample_id=10", timeout=T)
    assert dash_duo.find_element("#em-tip-img").get_attribute("src") != walk_src
    # a box around everything counts the 24 samples, not the 20 walk points
    box_select_all(dash_duo, "em-scatter")
    dash_duo.wait_for_text_to_equal("#em-n-selected", "24 samples selected", timeout=T)
    assert len(dash_duo.find_elements("#em-table .ag-row")) > 1
    # unselected points are muted, not hidden (after a selection every trace keeps its points)
    assert len(_trace_points(dash_duo, "em-scatter", 0)) == 24
    # the selection downloads as sample ids
    dash_duo.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    dash_duo.find_element("#em-download-btn").click()
    f = tmp_path / "tiny-selection.csv"
    wait_until(lambda: f.is_file() and f.read_text().count("\n") == 25)
    assert f.read_text().splitlines() == ["sample_id", *map(str, range(24))]
    no_errors(dash_duo)


def test_embedding_pca_filter_find(dash_duo, full_study):
    open_page(dash_duo, full_study, "/embedding")
    dash_duo.wait_for_element("#em-scatter .scatterlayer .point", timeout=T)
    dash_duo.find_elements("#em-proj label")[1].click()
    dash_duo.wait_for_contains_text("#em-scatter", "PCA 1", timeout=T)
    dash_duo.select_dcc_dropdown("#em-walks", value="random/d0")
    dash_duo.wait_for_contains_text("#em-status", "walks of 1 target(s)", timeout=T)
    # the PCA walk of a sample passes through the sample at alpha = 0
    xy = dash_duo.driver.execute_script(
        "const d = document.querySelector('#em-scatter .js-plotly-plot')._fullData;"
        "const s = d[0], w = d[1]; const i = s.customdata.findIndex(c => c[0] === 0);"
        "const j = w.customdata.findIndex(c => c[0] === 0 && c[2] === 0);"
        "return [s.x[i], s.y[i], w.x[j], w.y[j]];")
    assert xy[0] == pytest.approx(xy[2], abs=1e-6) and xy[1] == pytest.approx(xy[3], abs=1e-6)
    # filter: samples outside the range turn grey (a trace of their own), none disappear
    dash_duo.select_dcc_dropdown("#em-filter-col", value="brightness (fraction)")
    lo = full_study.table("samples")["brightness"].median()
    box = dash_duo.find_element("#em-filter-lo")
    box.send_keys(f"{lo:.6f}\n")
    dash_duo.wait_for_contains_text("#em-status", "pass the filter on brightness", timeout=T)
    tr = {t["name"]: t["n"] for t in traces(dash_duo, "em-scatter")}
    assert tr["filtered out"] + tr["samples"] == 24 and 0 < tr["filtered out"] < 24
    n_pass = int((full_study.table("samples")["brightness"] >= float(f"{lo:.6f}")).sum())
    assert tr["samples"] == n_pass
    # find: ringed samples; a bad id is one line naming the control
    find = dash_duo.find_element("#em-find")
    find.send_keys("3, 5-6\n")
    dash_duo.wait_for_contains_text("#em-status", "found: 3, 5, 6", timeout=T)
    assert {t["name"]: t["n"] for t in traces(dash_duo, "em-scatter")}["found"] == 3
    dash_duo.clear_input(find)
    find.send_keys("99\n")
    dash_duo.wait_for_contains_text("#em-status", "find: '99' is outside the sample ids 0..23", timeout=T)
    assert len(error_texts(dash_duo)) == 1
    assert dash_duo.get_logs() == []


def test_edits_named_directions_live_editor_above_fold(dash_duo, full_study):
    open_page(dash_duo, full_study, "/edits")
    dash_duo.wait_for_contains_text("#ed-live-label", "alpha=1.5", timeout=T)
    # directions are named by method label and measured effect, not d0 / pc1 alone
    dash_duo.find_element("#ed-dir").click()
    dash_duo.wait_for_element(".dash-dropdown-options .dash-dropdown-option", timeout=T)
    opts = [e.text for e in dash_duo.find_elements(".dash-dropdown-options .dash-dropdown-option")]
    ActionChains(dash_duo.driver).send_keys(Keys.ESCAPE).perform()
    assert "InterFaceGAN: brightness (fitted for brightness) [interfacegan/brightness]" in opts, opts
    assert any(o.startswith("DP-LaSE: d0 (") for o in opts), opts
    walked = [o for o in opts if o.startswith("random: ")]     # the walked directions carry their measured effect
    assert len(walked) == 2 and all(" fraction per alpha (specificity " in o for o in walked), walked
    ev = full_study.table("evaluation")
    info = dash_duo.find_element("#ed-dir-info").text
    assert "moves most" in info and "specificity" in info
    # the live editor: original (alpha = 0) beside the edit, both >= 256 px, above the fold at 1280x800
    orig, live = dash_duo.find_element("#ed-orig-img"), dash_duo.find_element("#ed-live-img")
    assert orig.size["width"] >= 256 and live.size["width"] >= 256
    assert abs(orig.location["y"] - live.location["y"]) < 2 and live.location["x"] > orig.location["x"]
    assert above_fold(dash_duo, "#ed-live-img") and above_fold(dash_duo, "#ed-orig-img")
    assert dash_duo.find_element("#ed-orig-label").text == "original (alpha = 0)"
    wait_until(lambda: dash_duo.find_element("#ed-orig-img").get_attribute("src"))
    src0, src1 = orig.get_attribute("src"), live.get_attribute("src")
    assert src0.startswith("data:image/png;base64,") and src0 != src1
    # alpha 0 shows the original itself; the label names the expected change in the measure's unit
    box = dash_duo.find_element("#ed-alpha input")
    dash_duo.clear_input(box)
    box.send_keys("0\n")
    dash_duo.wait_for_contains_text("#ed-live-label", "alpha=0", timeout=T)
    wait_until(lambda: dash_duo.find_element("#ed-live-img").get_attribute("src") == src0)
    dash_duo.clear_input(box)
    box.send_keys("3\n")
    dash_duo.wait_for_contains_text("#ed-live-label", "alpha=3", timeout=T)
    d0 = ev[ev["is_target"] & (ev["target"] == "random/d0")].iloc[0]
    assert f"(expected {d0['measure']} change " in dash_duo.find_element("#ed-live-label").text
    # a bad sample id is one line naming the control
    sid = dash_duo.find_element("#ed-live-sample")
    dash_duo.clear_input(sid)
    sid.send_keys("99\n")
    dash_duo.wait_for_contains_text("#ed-live-label", "sample_id must be an integer in 0..23 (the box is empty or out of range)", timeout=T)
    assert len(error_texts(dash_duo)) == 1
    dash_duo.clear_input(sid)
    sid.send_keys("1\n")
    dash_duo.wait_for_contains_text("#ed-live-label", "sample 1", timeout=T)
    # the gallery names rows by their measured effect
    dash_duo.wait_for_element("#ed-gallery-fig .main-svg", timeout=T)
    assert "InterFaceGAN (interfacegan)" in dash_duo.find_element("#ed-gallery-fig").text
    dash_duo.select_dcc_dropdown("#ed-set", index=2)     # random: walked, so its rows name the measure moved
    dash_duo.wait_for_contains_text("#ed-gallery-fig", "random (random)", timeout=T)
    assert f"d0: {d0['measure']} " in dash_duo.find_element("#ed-gallery-fig").text
    no_sideways_scroll(dash_duo)
    no_errors(dash_duo)
