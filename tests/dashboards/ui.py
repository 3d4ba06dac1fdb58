"""Browser helpers for the dashboard tests (importable as tests.dashboards.ui): open a page at 1280x800, what
the user sees (no error boxes, no sideways scrolling), clicks at plot fractions, point hovers."""

from selenium.webdriver.common.action_chains import ActionChains

from dashboards.app import create_app

T = 30  # s: generous for 2 shared cores
W, H = 1280, 800


def open_page(duo, study, path="/", **app_kw):
    """Start the app for `study` at 1280x800 and load `path`."""
    app = create_app(study.path, **app_kw)
    duo.start_server(app)
    duo.driver.set_window_size(W, H + 140)
    duo.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",  # the viewport itself is W x H
        {"width": W, "height": H, "deviceScaleFactor": 1, "mobile": False},
    )
    duo.driver.get(duo.server_url + path)
    duo.wait_for_element("#page", timeout=T)
    return app


def error_texts(duo) -> list[str]:
    """Texts of every error box (probe error, Dash error overlay / card) on the page."""
    return [e.text for e in duo.find_elements(".probe-error, .dash-fe-error, .dash-error-card")]


def no_errors(duo):
    """No error box, no Dash error overlay and no browser console error."""
    assert error_texts(duo) == []
    assert duo.get_logs() == []


def no_sideways_scroll(duo):
    """Nothing is wider than the viewport."""
    w = duo.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert w[0] <= w[1], f"page is {w[0]} px wide in a {w[1]} px viewport"


def plot_height(duo, graph_id) -> float:
    """Height in px of a dcc.Graph's plot area (the axes' drag layer)."""
    return duo.wait_for_element(f"#{graph_id} .nsewdrag", timeout=T).size["height"]


def traces(duo, graph_id) -> list[dict]:
    """The traces of a dcc.Graph's figure as plotly.js holds it ({name, mode, n})."""
    return duo.driver.execute_script(
        "const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
        "return g ? g._fullData.map(t => ({name: t.name || '', mode: t.mode || '', n: (t.x || []).length})) : null;",
        f"#{graph_id}",
    )


def click_xy(duo, graph_id, fx, fy):
    """Click a dcc.Graph's plot area at fractions (fx, fy) of its size (selenium 4.2: offsets from top-left)."""
    area = duo.wait_for_element(f"#{graph_id} .nsewdrag", timeout=T)
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    w, h = area.size["width"], area.size["height"]
    ActionChains(duo.driver).move_to_element_with_offset(
        area, max(1, int(fx * w)), max(1, int(fy * h))
    ).click().perform()


def hover(duo, element):
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    ActionChains(duo.driver).move_to_element(element).perform()


def box_select_all(duo, graph_id):
    """Box-select the whole plot area of a dcc.Graph with the modebar's box tool."""
    btn = duo.find_element(f'#{graph_id} .modebar-btn[data-val="select"]')
    duo.driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));", btn)
    area = duo.find_element(f"#{graph_id} .nsewdrag")
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", area)
    w, h = area.size["width"], area.size["height"]
    ActionChains(duo.driver).move_to_element_with_offset(area, 2, 2).click_and_hold().move_by_offset(
        w // 2, h // 2
    ).move_by_offset(w // 2 - 4, h // 2 - 4).release().perform()


def above_fold(duo, selector) -> bool:
    """Whether the element's bottom edge lies within the first viewport (page scrolled to the top)."""
    return duo.driver.execute_script(
        "window.scrollTo(0, 0); const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return r.bottom <= window.innerHeight && r.top >= 0;",
        selector,
    )


def wait_until(fn, timeout=T, what="condition"):
    """Poll fn() until it is truthy (every 0.2 s) -> its value; AssertionError naming `what` after timeout s."""
    import time

    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
