"""Every page in headless Chromium: click, check what appears, and no browser console errors."""

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from dashboards.app import create_app

pytestmark = pytest.mark.browser
T = 30  # s: generous for 2 shared cores


def _open(duo, study, path="/"):
    duo.start_server(create_app(study.path))
    if path != "/":
        duo.driver.get(duo.server_url + path)
    duo.wait_for_element("#page", timeout=T)


def _click_xy(duo, graph_id, fx, fy):
    """Click a dcc.Graph's plot area at fractions (fx, fy) of its size (selenium 4.2: offsets from top-left)."""
    area = duo.wait_for_element(f"#{graph_id} .nsewdrag", timeout=T)
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    w, h = area.size["width"], area.size["height"]
    ActionChains(duo.driver).move_to_element_with_offset(
        area, max(1, int(fx * w)), max(1, int(fy * h))
    ).click().perform()


def _click_point(duo, selector, i=0):
    pts = duo.find_elements(selector)
    assert len(pts) > i, f"no point {i} at {selector}"
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", pts[i])
    ActionChains(duo.driver).move_to_element(pts[i]).click().perform()


def _no_console_errors(duo):
    assert duo.get_logs() == []


def test_overview_grid_click_and_nav(dash_duo, full_study):
    _open(dash_duo, full_study)
    dash_duo.wait_for_text_to_equal("#ov-samples", "24", timeout=T)
    dash_duo.wait_for_text_to_equal("#ov-model", "tiny-dcgan", timeout=T)
    assert "random" in dash_duo.find_element("#ov-direction-sets").text
    dash_duo.wait_for_element("#ov-grid .main-svg", timeout=T)
    assert "first 16 samples" in dash_duo.find_element("#ov-grid").text
    dash_duo.select_dcc_dropdown("#ov-n", value="8")
    dash_duo.wait_for_contains_text("#ov-grid", "first 8 samples", timeout=T)
    _click_xy(dash_duo, "ov-grid", 0.5 / 8, 0.5)  # first cell
    dash_duo.wait_for_element("#ov-sample img", timeout=T)
    assert "brightness" in dash_duo.find_element("#ov-sample").text
    dash_duo.find_element("#nav-walks").click()
    dash_duo.wait_for_text_to_equal("#page h2", "Walks", timeout=T)
    _no_console_errors(dash_duo)


def test_correlations_cell_click_scatter_strip_controlling(dash_duo, full_study):
    _open(dash_duo, full_study, "/correlations")
    dash_duo.wait_for_contains_text("#co-heat", "random/d0", timeout=T)  # default: intervention slopes
    dash_duo.find_elements("#co-value label")[2].click()  # r over samples
    dash_duo.wait_for_contains_text("#co-heat", "r per variable", timeout=T)
    _click_xy(dash_duo, "co-heat", 0.1, 0.1)  # a cell in the first row (z[0]), first measure
    dash_duo.wait_for_contains_text("#co-cell", " x ", timeout=T)
    assert dash_duo.find_element("#co-cell").text.startswith("z[")
    dash_duo.wait_for_element("#co-scatter .scatterlayer .point", timeout=T)
    dash_duo.wait_for_element("#co-strip .main-svg", timeout=T)
    assert "alpha=-2" in dash_duo.find_element("#co-strip").text
    # slope heatmap from the effects table: rows are targets
    dash_duo.find_elements("#co-value label")[1].click()
    dash_duo.wait_for_contains_text("#co-heat", "random/d0", timeout=T)
    # controlling variables table for a measure
    dash_duo.wait_for_element("#co-controlling", timeout=T)
    assert dash_duo.find_elements("#co-ctl-table") or dash_duo.find_elements("#co-ctl-empty")
    _no_console_errors(dash_duo)


def test_walks_curves_density_strip_compare(dash_duo, full_study):
    _open(dash_duo, full_study, "/walks")
    dash_duo.wait_for_element("#wk-curves .main-svg", timeout=T)
    dash_duo.wait_for_element("#wk-strip .main-svg", timeout=T)
    assert "random/d0" in dash_duo.find_element("#wk-curves").text
    dash_duo.select_dcc_dropdown("#wk-target", value="random/d1 (direction)")
    dash_duo.wait_for_contains_text("#wk-curves", "random/d1", timeout=T)
    dash_duo.wait_for_contains_text("#wk-dens", "dlogp", timeout=T)
    dash_duo.find_elements("#wk-density label")[1].click()  # logp
    dash_duo.wait_for_contains_text("#wk-dens", "logp vs alpha", timeout=T)
    dash_duo.wait_for_element("#wk-cmp .main-svg", timeout=T)
    dash_duo.wait_for_element("#wk-eval .main-svg", timeout=T)
    assert "specificity" in dash_duo.find_element("#wk-eval").text
    dash_duo.wait_for_element("#wk-gt-heatmap .main-svg", timeout=T)  # ground-truth scores (probe gt-score)
    assert "random/d0" in dash_duo.find_element("#wk-gt-heatmap").text
    methods = [c.text for c in dash_duo.find_elements("#wk-gt-scores .ag-cell[col-id='method']")]
    assert "random" in methods and len(methods) == len(set(methods))
    _no_console_errors(dash_duo)


def test_missing_tables_name_their_command(dash_duo, tiny_study):
    _open(dash_duo, tiny_study, "/correlations")
    dash_duo.wait_for_contains_text("#co-missing", "probe stats", timeout=T)
    dash_duo.find_element("#nav-embedding").click()
    dash_duo.wait_for_contains_text("#em-missing", "probe embed", timeout=T)
    dash_duo.driver.get(dash_duo.server_url + "/no-such-page")
    dash_duo.wait_for_contains_text("#page-error", "no page at '/no-such-page'", timeout=T)
    _no_console_errors(dash_duo)
