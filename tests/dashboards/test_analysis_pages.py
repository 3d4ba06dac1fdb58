"""Overview, Correlations and Walks in headless Chromium on demo-like studies: what a user sees (element text,
figure traces, plot heights, no sideways scrolling at 1280x800, no error boxes) and the shared AG Grid tables."""

import re
import shutil

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains

from dashboards.app import create_app
from dashboards.pages.correlations import HEAT_ROWS

pytestmark = pytest.mark.browser
T = 30  # s: generous for 2 shared cores
SCI = re.compile(r"^-?\d\.\d{2}e[-+]?\d+$")


@pytest.fixture(scope="module")
def wide_study(tmp_path_factory):
    """More targets than the heatmap shows at once (32 ws variables + 2 linear + 2 distance-walk directions),
    192 latent variables in the r view, image measures in three units; with stats and evaluation tables."""
    from probe import stats
    from probe.directions import evaluate_study
    from probe.directions.base import DirectionSet
    from probe.study import parse_spec, run_study

    root = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(0)
    for name, method in (("random.npz", "random"), ("boundary.npz", "boundary")):
        v = rng.standard_normal((2, 16))
        DirectionSet(["d0", "d1"], v / np.linalg.norm(v, axis=1, keepdims=True), "ws", method).save(root / name)
    spec = parse_spec(
        {
            "name": "wide",
            "model": "tiny-stylegan",
            "measures": ["image"],
            "n_samples": 24,
            "seed": 0,
            "space": "ws",
            "alphas": [-2, 0, 2],
            "targets": [
                {"kind": "variables", "indices": list(range(32))},
                {"kind": "directions", "file": "random.npz"},
                {"kind": "directions", "file": "boundary.npz", "walk": "distance"},
            ],
        },
        base=root,
    )
    s = run_study(spec, root / "study", progress=False)
    stats.analyze(s)
    evaluate_study(s)
    yield s
    shutil.rmtree(root, ignore_errors=True)


def _open(duo, study, path="/"):
    duo.start_server(create_app(study.path))
    duo.driver.set_window_size(1280, 800)
    if path != "/":
        duo.driver.get(duo.server_url + path)
    duo.wait_for_element("#page h2", timeout=T)


def _gd(duo, graph_id, expr):
    """Evaluate `expr` on the plotly graph div of dcc.Graph `graph_id` (gd: its data, layout)."""
    return duo.driver.execute_script(
        f"var gd = document.querySelector('#{graph_id} .js-plotly-plot'); return gd ? ({expr}) : null;"
    )


def _wait_gd(duo, graph_id, expr, want=True):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(duo.driver, T).until(lambda _: _gd(duo, graph_id, expr) == want)


def _errors(duo):
    return [e.text for e in duo.find_elements(".probe-error, .dash-fe-error, .dash-error-card")]


def _no_errors(duo):
    """No error box, no Dash error overlay, no "Error" text and no browser console error."""
    assert _errors(duo) == []
    assert "Error" not in duo.find_element("#page").text
    assert duo.get_logs() == []


def _no_sideways_scroll(duo):
    w = duo.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert w[0] <= w[1], f"page is {w[0]} px wide in a {w[1]} px window"


def _rect(duo, sel):
    return duo.driver.execute_script(f"return document.querySelector('{sel}').getBoundingClientRect().toJSON()")


def _set_q(duo, text):
    box = duo.find_element("#co-q")
    duo.clear_input(box)
    box.send_keys(text + "\n")


def _click_cell(duo, fx, fy):
    area = duo.wait_for_element("#co-heat .nsewdrag", timeout=T)
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    w, h = area.size["width"], area.size["height"]
    ActionChains(duo.driver).move_to_element_with_offset(area, int(fx * w), int(fy * h)).click().perform()


# ---- Overview ---------------------------------------------------------------------------------------------------
def test_overview_no_error_box_at_load_or_on_image_count_change(dash_duo, full_study):
    _open(dash_duo, full_study)
    _wait_gd(dash_duo, "ov-grid", "gd.data.length == 2 && gd.data[1].customdata.length == 16")
    dash_duo.wait_for_element("#ov-measures .ag-row", timeout=T)
    assert _errors(dash_duo) == []
    for n in (8, 32):  # 24 samples: 32 shows all 24
        dash_duo.select_dcc_dropdown("#ov-n", value=str(n))
        _wait_gd(dash_duo, "ov-grid", f"gd.data[1].customdata.length == {min(n, 24)}")
        assert _errors(dash_duo) == []
    assert f"first {24} samples" in dash_duo.find_element("#ov-grid").text
    heads = [e.text for e in dash_duo.find_elements("#ov-measures .ag-header-cell-text")]
    assert heads[:4] == ["measure", "unit", "low", "high"]
    assert "brightness" in [e.text for e in dash_duo.find_elements("#ov-measures .ag-cell[col-id='measure']")]
    # the grid fits its column at 1280 px: no sideways scroll
    assert _rect(dash_duo, "#ov-grid")["right"] <= 1280
    _no_sideways_scroll(dash_duo)
    area = dash_duo.find_element("#ov-grid .nsewdrag")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    ActionChains(dash_duo.driver).move_to_element_with_offset(
        area, int(area.size["width"] / 16), int(area.size["height"] / 6)
    ).click().perform()
    dash_duo.wait_for_contains_text("#ov-sample", "sample 0", timeout=T)
    assert "degrees" in dash_duo.find_element("#ov-sample").text  # units beside the measures
    _no_errors(dash_duo)


# ---- Correlations ---------------------------------------------------------------------------------------------
def test_correlations_capped_heatmap_standardised_default_and_q_box(dash_duo, wide_study):
    _open(dash_duo, wide_study, "/correlations")
    _wait_gd(dash_duo, "co-heat", "gd.data.length == 2")
    assert _errors(dash_duo) == []
    assert "standardised slope" in _gd(dash_duo, "co-heat", "gd.layout.title.text")
    assert _gd(dash_duo, "co-heat", "gd.data[1].y.length") == 36
    assert _gd(dash_duo, "co-heat", "gd.layout.meta.visible") == HEAT_ROWS
    h = _rect(dash_duo, "#co-heat")["height"]
    assert h <= 20 * HEAT_ROWS + 170 + 5  # not 18 px x every row
    dash_duo.wait_for_contains_text("#co-heat-count", "36 of 36 targets", timeout=T)
    assert f"rows 1-{HEAT_ROWS} in view" in dash_duo.find_element("#co-heat-count").text
    # hover shows the standardised slope with its unit, the raw slope with the measure's unit, p / q in e-notation
    hover = _gd(dash_duo, "co-heat", "gd.data[1].hovertemplate")
    assert "p=%{customdata[1]:.2e}" in hover and "q=%{customdata[2]:.2e}" in hover
    assert _gd(dash_duo, "co-heat", "gd.data[1].text[0][0]").startswith("sd / alpha<br>slope=")
    # q below 0.01, in scientific notation, is accepted
    _set_q(dash_duo, "1e-6")
    dash_duo.wait_for_contains_text("#co-heat-count", "at q <= 1e-06", timeout=T)
    assert "faded: q > 1e-06" in _gd(dash_duo, "co-heat", "gd.layout.title.text")
    # out of range: one line naming the field and the fix; the heatmap stays
    _set_q(dash_duo, "2")
    dash_duo.wait_for_text_to_equal(
        "#co-heat-msg .probe-error", "q threshold 2 lies outside [1e-12, 1]; type e.g. 0.05 or 1e-6", timeout=T
    )
    _set_q(dash_duo, "abc")
    dash_duo.wait_for_contains_text("#co-heat-msg .probe-error", "q threshold 'abc' is not a number", timeout=T)
    _set_q(dash_duo, "0.05")
    dash_duo.wait_for_contains_text("#co-heat-count", "at q <= 0.05", timeout=T)
    _no_sideways_scroll(dash_duo)
    _no_errors(dash_duo)


def test_correlations_only_significant_rows_filter_keeps_fewer(dash_duo, wide_study):
    # every target of a tiny deterministic model is "significant" on something (as on the demo): the filter
    # also asks for a standardised effect of at least a chosen size
    from probe.stats import standardised_effects

    eff = standardised_effects(wide_study)
    big = eff.assign(a=eff["std_slope"].abs()).groupby("target")["a"].max()
    lo = float(f"{np.quantile(big, 0.5):.3g}")
    want = int((big >= lo).sum())
    assert 0 < want < 36
    _open(dash_duo, wide_study, "/correlations")
    _wait_gd(dash_duo, "co-heat", "gd.data.length == 2")
    dash_duo.find_element("#co-sig input").click()
    dash_duo.wait_for_contains_text("#co-heat-count", "36 of 36 targets (only those", timeout=T)  # |effect| >= 0
    box = dash_duo.find_element("#co-min")
    dash_duo.clear_input(box)
    box.send_keys(f"{lo:g}\n")
    dash_duo.wait_for_contains_text(
        "#co-heat-count",
        f"{want} of 36 targets (only those with a cell at q <= 0.05 and |effect| >= {lo:g})",
        timeout=T,
    )
    assert _gd(dash_duo, "co-heat", "gd.data[1].y.length") == want
    dash_duo.clear_input(box)
    box.send_keys("-1\n")
    dash_duo.wait_for_text_to_equal(
        "#co-heat-msg .probe-error", "|effect| threshold -1 must be a finite number >= 0; type e.g. 0.1", timeout=T
    )
    _no_errors_but_boxes(dash_duo)


def _no_errors_but_boxes(duo):
    assert not duo.find_elements(".dash-fe-error, .dash-error-card")
    assert duo.get_logs() == []


def test_correlations_cell_detail_beside_heatmap_survives_q_change(dash_duo, wide_study):
    _open(dash_duo, wide_study, "/correlations")
    _wait_gd(dash_duo, "co-heat", "gd.data.length == 2")
    _click_cell(dash_duo, 0.1, 0.02)  # first row (largest effect), first measure
    dash_duo.wait_for_element("#co-cell-text", timeout=T)
    text = dash_duo.find_element("#co-cell-text").text
    assert " x brightness: slope = " in text and "sd / alpha" in text
    p = re.search(r"p = (\S+),", text)[1]
    assert SCI.match(p), text  # p in scientific notation, never "0"
    dash_duo.wait_for_element("#co-scatter .main-svg", timeout=T)
    dash_duo.wait_for_element("#co-strip .main-svg", timeout=T)
    heat, det, strip = _rect(dash_duo, "#co-heat"), _rect(dash_duo, ".co-detail"), _rect(dash_duo, "#co-strip")
    assert det["left"] >= heat["right"] - 2 and det["top"] < heat["top"] + 60  # beside, not below
    assert strip["right"] <= det["right"] + 1  # the strip fits its column
    _no_sideways_scroll(dash_duo)
    # a new q redraws the heatmap; the clicked cell's scatter and strip stay
    _set_q(dash_duo, "1e-3")
    dash_duo.wait_for_contains_text("#co-heat-count", "at q <= 0.001", timeout=T)
    assert dash_duo.find_element("#co-cell-text").text == text
    assert dash_duo.find_elements("#co-scatter .main-svg") and dash_duo.find_elements("#co-strip .main-svg")
    _no_errors(dash_duo)


def test_correlations_raw_slope_and_r_views(dash_duo, wide_study):
    _open(dash_duo, wide_study, "/correlations")
    _wait_gd(dash_duo, "co-heat", "gd.data.length == 2")
    dash_duo.find_elements("#co-value label")[1].click()  # raw slopes, one colour scale per measure
    _wait_gd(dash_duo, "co-heat", "gd.layout.meta.colour == 'measure'")
    assert "hue<br>(degrees / alpha)" in _gd(dash_duo, "co-heat", "gd.layout.xaxis.ticktext")
    assert "own colour scale" in _gd(dash_duo, "co-heat", "gd.layout.title.text")
    dash_duo.find_elements("#co-value label")[2].click()  # r over samples: 192 variables
    _wait_gd(dash_duo, "co-heat", "gd.data[1].y.length == 192")
    dash_duo.wait_for_contains_text("#co-heat-count", "192 of 192 variables", timeout=T)
    # insignificant cells are faded colour, not grey: the r view is readable when nothing passes
    assert _gd(dash_duo, "co-heat", "gd.data[0].opacity") == pytest.approx(0.35)
    assert _gd(dash_duo, "co-heat", "gd.data[0].colorscale[0][1]") != "rgb(215,215,215)"
    dash_duo.find_elements("#co-order label")[1].click()  # clustered rows
    _wait_gd(dash_duo, "co-heat", "gd.layout.meta.order == 'cluster'")
    _no_sideways_scroll(dash_duo)
    _no_errors(dash_duo)


def test_effects_and_controlling_grids_sort_filter_export(dash_duo, wide_study):
    _open(dash_duo, wide_study, "/correlations")
    dash_duo.wait_for_element("#co-effects .ag-row", timeout=T)
    heads = [e.text for e in dash_duo.find_elements("#co-effects .ag-header-cell-text")]
    assert "standardised slope (sd / alpha)" in heads and "q" in heads
    qs = [e.text for e in dash_duo.find_elements("#co-effects .ag-cell[col-id='q']")]
    assert qs and all(SCI.match(t) for t in qs), qs[:5]
    # long table: a fixed height, rows scrolled virtually (far fewer rows in the page than in the table)
    n = len(wide_study.table("effects"))
    assert len(dash_duo.find_elements("#co-effects .ag-row")) < n
    assert dash_duo.find_element("#co-effects-rows").text == f"{n} rows"
    # CSV export: the button exports the grid (captured in the page instead of a download)
    dash_duo.driver.execute_script(
        "var api = dash_ag_grid.getApi('co-effects'); window.__csv = null;"
        "api.exportDataAsCsv = function() { window.__csv = api.getDataAsCsv(); };"
    )
    dash_duo.find_element("#co-effects-box .probe-csv").click()
    from selenium.webdriver.support.ui import WebDriverWait

    csv = WebDriverWait(dash_duo.driver, T).until(lambda d: d.execute_script("return window.__csv"))
    lines = csv.strip().splitlines()
    assert lines[0].startswith('"method","target","measure","standardised slope (sd / alpha)"')
    assert len(lines) == n + 1
    # sort by clicking a header: std slope ascending
    hdr = [
        e for e in dash_duo.find_elements("#co-effects .ag-header-cell-text") if e.text.startswith("standardised slope")
    ][0]
    hdr.click()
    from selenium.webdriver.support.ui import WebDriverWait as W

    W(dash_duo.driver, T).until(
        lambda d: d.execute_script(
            "var api = dash_ag_grid.getApi('co-effects'); var v = [];"
            "api.forEachNodeAfterFilterAndSort(r => v.push(r.data.std_slope)); v = v.filter(x => x != null);"
            "return v.every((x, i) => i == 0 || v[i - 1] <= x);"
        )
    )
    dash_duo.wait_for_element("#co-controlling", timeout=T)
    assert dash_duo.find_elements("#co-ctl-table") or dash_duo.find_elements("#co-ctl-empty")
    _no_errors(dash_duo)


# ---- Walks ----------------------------------------------------------------------------------------------------
def test_walks_one_axis_per_unit_standardised_and_distance_walks(dash_duo, wide_study):
    _open(dash_duo, wide_study, "/walks")
    _wait_gd(dash_duo, "wk-curves", "gd.layout.meta.units.join(',') == 'fraction'")
    dash_duo.select_dcc_dropdown("#wk-measures", value="hue")  # degrees: a second axis
    dash_duo.find_element("#page h2").click()  # close the menu
    _wait_gd(dash_duo, "wk-curves", "gd.layout.meta.units.join(',') == 'fraction,degrees'")
    assert _gd(dash_duo, "wk-curves", "gd.layout.yaxis2.title.text") == "change (degrees)"
    assert (
        _gd(dash_duo, "wk-curves", "gd.data.filter(t => t.mode == 'lines+markers').map(t => t.yaxis).join()")
        == "y,y,y2"
    )
    dash_duo.find_elements("#wk-scale label")[1].click()  # standardised: one axis
    _wait_gd(dash_duo, "wk-curves", "gd.layout.meta.units.join(',') == 'measure sds'")
    # InterFaceGAN-style distance walks: labelled by walk, alpha read as a distance to the boundary
    dash_duo.select_dcc_dropdown("#wk-target", value="boundary/d0 (direction, distance walk)")
    _wait_gd(dash_duo, "wk-curves", "gd.layout.title.text.startsWith('boundary/d0')")
    assert "signed distance" in _gd(dash_duo, "wk-curves", "gd.layout.xaxis.title.text")
    dash_duo.wait_for_element("#wk-strip .main-svg", timeout=T)
    assert _rect(dash_duo, "#wk-strip")["right"] <= 1280
    dash_duo.wait_for_element("#wk-eval-table .ag-row", timeout=T)
    assert dash_duo.find_elements("#wk-eval-table-box .probe-csv")
    _no_sideways_scroll(dash_duo)
    _no_errors(dash_duo)
