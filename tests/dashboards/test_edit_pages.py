"""Embedding, Edits and Drag in headless Chromium at 1280x800: what a user sees (trace counts, plot sizes, texts,
images, no sideways scrolling, no error boxes) and what the page does (walks on demand, sample-only selection,
download, PCA switch, one drag job at a time, quality verdicts, edits saved into the study)."""

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.dashboards.ui import (
    T,
    above_fold,
    box_select_all,
    error_texts,
    hover,
    no_errors,
    no_sideways_scroll,
    open_page,
    plot_height,
    traces,
    wait_until,
)

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
    assert tr[1]["n"] == 4 * (5 + 1)  # 4 samples x 5 alphas, a gap after each
    assert plot_height(dash_duo, "em-scatter") >= 450
    # hovering a walk point shows that point (re-rendered), labelled with its own alpha
    walk_pts = _trace_points(dash_duo, "em-scatter", 1)
    assert len(walk_pts) == 20
    hover(dash_duo, walk_pts[0])  # sample 0 at alpha = -2
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
    assert dash_duo.driver.execute_script(
        "return document.querySelector('#em-scatter .js-plotly-plot')._fullData.map(t => t.unselected.marker.opacity)"
    ) == [0.18, 0.18]
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
        "return [s.x[i], s.y[i], w.x[j], w.y[j]];"
    )
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
    walked = [o for o in opts if o.startswith("random: ")]  # the walked directions carry their measured effect
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
    dash_duo.wait_for_contains_text(
        "#ed-live-label", "sample_id must be an integer in 0..23 (the box is empty or out of range)", timeout=T
    )
    assert len(error_texts(dash_duo)) == 1
    dash_duo.clear_input(sid)
    sid.send_keys("1\n")
    dash_duo.wait_for_contains_text("#ed-live-label", "sample 1", timeout=T)
    # the gallery names rows by their measured effect
    dash_duo.wait_for_element("#ed-gallery-fig .main-svg", timeout=T)
    assert "InterFaceGAN (interfacegan)" in dash_duo.find_element("#ed-gallery-fig").text
    dash_duo.select_dcc_dropdown("#ed-set", index=2)  # random: walked, so its rows name the measure moved
    dash_duo.wait_for_contains_text("#ed-gallery-fig", "random (random)", timeout=T)
    assert f"d0: {d0['measure']} " in dash_duo.find_element("#ed-gallery-fig").text
    no_sideways_scroll(dash_duo)
    no_errors(dash_duo)


def _study_copy(study, tmp_path):
    """A private copy of a session study (the Drag page writes edits into its study)."""
    import shutil

    from probe.store import Study

    shutil.copytree(study.path, tmp_path / "study")
    return Study(tmp_path / "study")


def _place_points(duo, a=(0.3, 0.4), b=(0.6, 0.5)):
    from tests.dashboards.ui import click_xy

    duo.wait_for_element("#dg-canvas .main-svg", timeout=T)
    click_xy(duo, "dg-canvas", *a)
    duo.wait_for_contains_text("#dg-points-text", "1 handle(s), 0 target(s)", timeout=T)
    click_xy(duo, "dg-canvas", *b)
    duo.wait_for_contains_text("#dg-points-text", "1 handle(s), 1 target(s)", timeout=T)


def _set_steps(duo, n):
    steps = duo.find_element("#dg-steps")
    duo.clear_input(steps)
    steps.send_keys(str(n))


def test_drag_before_after_verdict_saved_one_job_reset(dash_duo, full_study, tmp_path):
    study = _study_copy(full_study, tmp_path)
    app = open_page(dash_duo, study, "/drag")
    _place_points(dash_duo)
    no_sideways_scroll(dash_duo)
    _set_steps(dash_duo, 3)
    dash_duo.find_element("#dg-run").click()
    dash_duo.wait_for_element("#dg-verdict", timeout=T)
    # before and after side by side; the after image shows the handle's live position and path
    before, after = dash_duo.find_element("#dg-canvas"), dash_duo.find_element("#dg-after")
    assert abs(before.location["y"] - after.location["y"]) < 4 and after.location["x"] > before.location["x"]
    names = [t["name"] for t in traces(dash_duo, "dg-after")]
    assert names[0] == "image" and "path 0" in names and "handles" in names
    assert dash_duo.find_element("#dg-live-points").text.startswith("handles now: (")
    # an honest verdict with the quality numbers, never a bare "done"
    v = dash_duo.find_element("#dg-verdict").text
    assert (
        v.split(":")[0] in ("ok", "not reached", "image degraded", "the handle never moved (0.0 px); the drag failed")
        and "done" not in v
    )
    q = dash_duo.find_element("#dg-quality").text
    assert "change outside the handle region" in q and "/ 255" in q and "largest measure drift" in q
    # the run is saved into the study (edits table + before/after images) for the report
    dash_duo.wait_for_contains_text("#dg-saved", "saved into the study as drag-0001", timeout=T)
    ed = study.edits()
    assert list(ed["run_id"]) == ["drag-0001"] and ed["kind"].iloc[0] == "drag" and ed["sample_id"].iloc[0] == 0
    assert ed["status"].iloc[0] in ("ok", "degraded") and ed["steps"].iloc[0] <= 3
    assert (study.path / ed["before"].iloc[0]).is_file() and (study.path / ed["after"].iloc[0]).is_file()
    # one job at a time: a Run during a run is refused with a message, and no second job starts
    _set_steps(dash_duo, 2000)
    dash_duo.find_element("#dg-run").click()
    dash_duo.wait_for_contains_text("#dg-counter", "draggan: step", timeout=T)
    assert dash_duo.find_elements("#dg-verdict") == []  # the old result cleared on the new run
    dash_duo.find_element("#dg-run").click()
    dash_duo.wait_for_contains_text("#dg-refused", "refused: a draggan is already running", timeout=T)
    assert sum(j["state"] == "running" for j in app.probe_ctx.jobs.values()) == 1
    assert sum(j["kind"] == "drag" for j in app.probe_ctx.jobs.values()) == 2
    dash_duo.find_element("#dg-stop").click()
    dash_duo.wait_for_contains_text("#dg-counter", "(stopped)", timeout=T)
    dash_duo.wait_for_contains_text("#dg-verdict", "stopped", timeout=T)
    wait_until(lambda: len(study.edits()) == 2, what="the stopped run saved")
    assert study.edits()["status"].iloc[1] == "stopped"
    # messages clear on a new run
    _set_steps(dash_duo, 2)
    dash_duo.find_element("#dg-run").click()
    dash_duo.wait_for_contains_text("#dg-counter", "(finished: ", timeout=T)
    assert dash_duo.find_elements("#dg-refused") == []
    said = dash_duo.wait_for_element("#dg-verdict", timeout=T).text  # the counter and the verdict box agree
    word = {
        "ok:": "ok",
        "image degraded:": "degraded",
        "not reached:": "not reached",
        "the handle never": "never moved",
    }
    assert dash_duo.find_element("#dg-counter").text.endswith(
        f"(finished: {next(w for k, w in word.items() if said.startswith(k))})"
    )
    # Reset: points, result and messages gone, the after panel blank
    dash_duo.find_element("#dg-reset").click()
    dash_duo.wait_for_contains_text("#dg-points-text", "0 handle(s), 0 target(s)", timeout=T)
    dash_duo.wait_for_text_to_equal("#dg-counter", "idle", timeout=T)
    assert dash_duo.find_elements("#dg-verdict") == [] and dash_duo.find_element("#dg-live-points").text == ""
    assert [t["name"] for t in traces(dash_duo, "dg-after")] == ["image"]
    no_errors(dash_duo)


def test_drag_mask_region_and_upload(dash_duo, full_study, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    study = _study_copy(full_study, tmp_path)
    open_page(dash_duo, study, "/drag")
    dash_duo.wait_for_element("#dg-canvas .main-svg", timeout=T)
    # a mask region: drawn as a rectangle on the image, the drag holds everything outside it
    dash_duo.find_elements("#dg-tool label")[1].click()
    wait_until(
        lambda: (
            dash_duo.driver.execute_script(
                "return document.querySelector('#dg-canvas .js-plotly-plot')._fullLayout.dragmode"
            )
            == "drawrect"
        )
    )
    area = dash_duo.find_element("#dg-canvas .nsewdrag")
    w, h = area.size["width"], area.size["height"]
    ActionChains(dash_duo.driver).move_to_element_with_offset(
        area, int(0.2 * w), int(0.2 * h)
    ).click_and_hold().move_by_offset(int(0.3 * w), int(0.2 * h)).move_by_offset(
        int(0.2 * w), int(0.2 * h)
    ).release().perform()
    dash_duo.wait_for_contains_text("#dg-mask-count", "mask: 1 region(s) may change", timeout=T)
    dash_duo.find_elements("#dg-tool label")[0].click()
    _place_points(dash_duo, (0.35, 0.4), (0.55, 0.5))
    _set_steps(dash_duo, 2)
    dash_duo.find_element("#dg-run").click()
    dash_duo.wait_for_contains_text("#dg-saved", "saved into the study as drag-0001", timeout=T)
    import json

    boxes = json.loads(study.edits()["params"].iloc[0])["mask_boxes"]
    assert len(boxes) == 1 and boxes[0][0] < boxes[0][2]
    dash_duo.find_element("#dg-clear-mask").click()
    wait_until(lambda: dash_duo.find_element("#dg-mask-text").text == "", what="the mask cleared")
    # an upload that is not an image: a message, no traceback; a real one is inverted, then shown
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    dash_duo.find_element("#dg-upload input[type=file]").send_keys(str(bad))
    dash_duo.wait_for_contains_text("#dg-msg", "'notes.txt' is not an image; choose a PNG or JPEG", timeout=T)
    assert "Traceback" not in dash_duo.find_element("#page").text
    from PIL import Image

    good = tmp_path / "photo.png"
    Image.new("RGB", (40, 48), (200, 120, 60)).save(good)
    inv = dash_duo.find_element("#dg-inv-steps")
    dash_duo.clear_input(inv)
    inv.send_keys("5")
    dash_duo.select_dcc_dropdown("#dg-offset-site", value="none")
    dash_duo.find_element("#dg-upload input[type=file]").send_keys(str(good))
    dash_duo.wait_for_element("#dg-inverted", timeout=T)
    assert "psnr" in dash_duo.find_element("#dg-inverted").text
    assert dash_duo.find_element("#dg-msg").text == "inverting photo.png ..."
    _place_points(dash_duo)
    _set_steps(dash_duo, 2)
    dash_duo.find_element("#dg-run").click()
    dash_duo.wait_for_contains_text("#dg-saved", "saved into the study as drag-0002", timeout=T)
    assert dash_duo.find_element("#dg-msg").text == ""  # the upload message cleared by the new run
    assert study.edits()["sample_id"].isna().iloc[1]  # an uploaded photo has no sample id
    no_errors(dash_duo)


# ---- the pages' pure parts ------------------------------------------------------------------------------------
def test_verdict_is_honest():
    from dashboards.pages.drag import verdict

    still = [[[10.0, 10.0]], [[10.0, 10.0]], [[10.2, 10.0]]]  # the handle never moved
    assert verdict("ok", still, [[30, 10]], {}) == (
        "warn",
        "the handle never moved (0.2 px); the drag failed: try more steps or another method",
    )
    went = [[[10.0, 10.0]], [[20.0, 10.0]], [[29.5, 10.0]]]
    assert verdict("ok", went, [[30, 10]], {"degraded": False})[0] == "ok"
    assert verdict("ok", went, [[30, 10]], {"degraded": True, "reason": "change outside 40/255 > 20"}) == (
        "warn",
        "image degraded: change outside 40/255 > 20",
    )
    assert verdict("degraded", went[:2], [[30, 10]], {}) == (
        "warn",
        "not reached: a handle is still 10.0 px from its target (moved up to 10.0 px)",
    )
    assert verdict("stopped", still, [[30, 10]], {})[0] == "stopped"


def test_job_outcome_matches_verdict():
    from dashboards.pages.drag import outcome

    went = {"kind": "drag", "trajectory": [[[10.0, 10.0]], [[29.5, 10.0]]], "targets": [[30, 10]], "distances": [0.5]}
    assert outcome({**went, "state": "running"}) == "running"
    assert outcome({**went, "state": "done", "status": "ok", "quality": {"degraded": False}}) == "finished: ok"
    bad = {"degraded": True, "reason": "change outside 40/255 > 20"}
    assert outcome({**went, "state": "done", "status": "ok", "quality": bad}) == "finished: degraded"
    assert outcome({**went, "state": "done", "status": "degraded", "quality": bad}) == "finished: degraded"
    short = {**went, "trajectory": went["trajectory"][:1] + [[[20.0, 10.0]]], "distances": [10.0]}
    assert outcome({**short, "state": "done", "status": "degraded", "quality": {}}) == "finished: not reached"
    still = {**went, "trajectory": [[[10.0, 10.0]], [[10.1, 10.0]]], "distances": [19.9]}
    assert outcome({**still, "state": "done", "status": "ok", "quality": {}}) == "finished: never moved"
    assert outcome({**short, "state": "stopped", "status": "stopped", "quality": {}}) == "stopped"
    assert outcome({**short, "state": "stopped", "status": "stopped", "quality": bad}) == "stopped: degraded"
    assert outcome({"kind": "drag", "state": "stopped"}) == "stopped"
    assert outcome({"kind": "drag", "state": "done"}) == "finished: no result"
    assert outcome({"kind": "invert", "state": "done"}) == "finished"
    assert outcome({"kind": "invert", "state": "error"}) == "error"


def test_mask_boxes_and_ids():
    import numpy as np

    from dashboards.pages.drag import boxes_from_relayout, mask_array
    from dashboards.pages.embedding import EmbeddingInputError, parse_ids, selected_samples
    from probe.errors import ProbeError

    boxes = boxes_from_relayout(
        {
            "shapes": [
                {"type": "rect", "x0": 2.2, "y0": 3.0, "x1": 5.0, "y1": 1.0},
                {"type": "line", "x0": 0, "y0": 0, "x1": 9, "y1": 9},
                {"type": "rect", "x0": 40, "y0": 40, "x1": 90, "y1": 99},
            ]
        },
        16,
    )
    assert boxes == [[2.2, 3.0, 5.0, 1.0], [15.5, 15.5, 15.5, 15.5]][:1]  # the off-image box is clipped away
    m = mask_array(boxes, 16)
    assert m.shape == (16, 16) and m.sum() == 4 * 3 and m[1:4, 2:6].all()
    assert boxes_from_relayout({"autosize": True}, 16) is None and mask_array([], 16) is None
    assert isinstance(EmbeddingInputError("x"), ProbeError)
    assert parse_ids("3, 10-12 3", 20) == [3, 10, 11, 12]
    for bad, msg in (
        ("x1", "find: 'x1' is not a sample id; type ids and ranges like 3, 10-12"),
        ("5-30", "find: '5-30' is outside the sample ids 0..19"),
    ):
        with pytest.raises(EmbeddingInputError, match="^" + msg.replace("(", r"\(") + "$"):
            parse_ids(bad, 20)
    sel = {
        "points": [
            {"customdata": [4, 4]},
            {"customdata": [4, 30, 2.0, "z[0]"]},
            {"customdata": [7, 7]},
            {"customdata": [9, 31, -1.0, "z[0]"]},
            {},
        ]
    }
    assert selected_samples(sel) == [4, 7] and np.array_equal(selected_samples(None), [])
