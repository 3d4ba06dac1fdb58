"""A visual check that can fail: every dashboard page of a demo-like study at 1280x800, saved as PNG.

The PNGs go to $SCREENSHOT_DIR: `make screenshots` sets it to docs/img/screenshots/, which the dashboard docs show; a
plain test run writes them under studies/screenshots/ (ignored), so `make test` leaves the tracked images alone.
Each page must show its heading, what it is for (figures with their traces, the live editor, a drag verdict),
nothing wider than the viewport and no error box; a page that fails is still saved, for a look."""

import os
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dashboards.pages import PAGES
from tests.dashboards.ui import (
    T,
    error_texts,
    no_errors,
    no_sideways_scroll,
    open_page,
    plot_height,
    traces,
    wait_until,
)

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def shot_dir() -> Path:
    d = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "studies" / "screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def shot_study(tmp_path_factory):
    """A small demo-like study on the face model (real generated faces): 32 samples, image measures, walks of 4 z
    variables and 2 random directions, stats and evaluation tables, an InterFaceGAN set and a 2-D embedding
    table (PCA coordinates, the columns `probe embed` writes; UMAP's JIT would cost more than the study)."""
    import numpy as np
    import pandas as pd
    import torch

    from probe import stats, walks
    from probe.directions import InterFaceGAN, evaluate_study
    from probe.directions.base import DirectionSet
    from probe.restudy import study_target
    from probe.study import parse_spec, run_study

    root = tmp_path_factory.mktemp("shots")
    v = np.random.default_rng(0).standard_normal((2, 100))
    DirectionSet(["d0", "d1"], v / np.linalg.norm(v, axis=1, keepdims=True), "z", "random").save(root / "random.npz")
    spec = parse_spec(
        {
            "name": "faces-shots",
            "model": "faces",
            "measures": ["image"],
            "n_samples": 32,
            "seed": 0,
            "alphas": [-2, -1, 0, 1, 2],
            "targets": [{"kind": "variables", "indices": [0, 1, 2, 3]}, {"kind": "directions", "file": "random.npz"}],
        },
        base=root,
    )
    s = run_study(spec, root / "study", progress=False)
    stats.analyze(s)
    evaluate_study(s)
    samples = s.table("samples").sort_values("sample_id")
    lat = s.latents()
    ifg = InterFaceGAN(measure=["brightness", "hue"], ratio=0.3, split=0.7).fit(
        lat, {m: samples[m].to_numpy() for m in ("brightness", "hue")}
    )
    s.save_directions(ifg.directions_, "interfacegan")
    t = study_target(s, "random/d0")
    walked = walks.apply(torch.from_numpy(lat[:6]), s.space, t, s.alphas).numpy()
    x = np.concatenate([lat, walked])
    mu = lat.mean(0)
    _, _, vt = np.linalg.svd(lat - mu, full_matrices=False)
    xy = (x - mu) @ vt[:2].T
    n, a = len(lat), len(s.alphas)
    s.write_table(
        "embedding",
        pd.DataFrame(
            {
                "point_id": np.arange(len(x)),
                "kind": ["sample"] * n + ["walk"] * (6 * a),
                "sample_id": np.r_[np.arange(n), np.repeat(np.arange(6), a)],
                "target": [""] * n + ["random/d0"] * (6 * a),
                "alpha": np.r_[np.zeros(n), np.tile(s.alphas, 6)],
                "x": xy[:, 0],
                "y": xy[:, 1],
            }
        ),
    )
    return s


def _settled(duo):
    """Every graph drawn and no callback pending, twice in a row."""
    js = (
        "return !document.querySelector('[data-dash-is-loading=\"true\"]') && "
        "[...document.querySelectorAll('.js-plotly-plot')].every(g => g.querySelector('.main-svg'));"
    )
    wait_until(lambda: duo.driver.execute_script(js) and duo.driver.execute_script(js), what="the page settled")


def _embedding(duo):
    duo.wait_for_element("#em-scatter .scatterlayer .point", timeout=T)
    duo.select_dcc_dropdown("#em-walks", value="random/d0")
    duo.wait_for_contains_text("#em-status", "walks of 1 target(s)", timeout=T)
    ActionChains(duo.driver).send_keys(Keys.ESCAPE).perform()  # close the dropdown before the picture
    assert [t["name"] for t in traces(duo, "em-scatter")] == ["samples", "walk random/d0"]
    assert plot_height(duo, "em-scatter") >= 450


def _edits(duo):
    duo.wait_for_contains_text("#ed-live-label", "alpha=1.5", timeout=T)
    duo.wait_for_element("#ed-gallery-fig .main-svg", timeout=T)
    assert duo.find_element("#ed-live-img").size["width"] >= 256
    assert "moves most" in duo.find_element("#ed-dir-info").text


def _drag(duo):
    from tests.dashboards.ui import click_xy

    duo.wait_for_element("#dg-canvas .main-svg", timeout=T)
    click_xy(duo, "dg-canvas", 0.3, 0.4)
    duo.wait_for_contains_text("#dg-points-text", "1 handle(s), 0 target(s)", timeout=T)
    click_xy(duo, "dg-canvas", 0.6, 0.5)
    duo.wait_for_contains_text("#dg-points-text", "1 handle(s), 1 target(s)", timeout=T)
    steps = duo.find_element("#dg-steps")
    duo.clear_input(steps)
    steps.send_keys("5")
    duo.find_element("#dg-run").click()
    duo.wait_for_element("#dg-verdict", timeout=60)
    assert "handles" in [t["name"] for t in traces(duo, "dg-after")]
    duo.driver.execute_script("window.scrollTo(0, 0);")


def _graphs(n_min):
    def check(duo):
        duo.wait_for_element("#page .main-svg", timeout=T)
        _settled(duo)
        n = len(duo.find_elements("#page .js-plotly-plot"))
        assert n >= n_min, f"{n} figures on the page, expected at least {n_min}"

    return check


CHECKS = {
    "overview": _graphs(1),
    "correlations": _graphs(1),
    "walks": _graphs(2),
    "embedding": _embedding,
    "edits": _edits,
    "drag": _drag,
}


@pytest.mark.parametrize("page", PAGES, ids=[p.KEY for p in PAGES])
def test_page_screenshot(dash_duo, shot_study, page):
    open_page(dash_duo, shot_study, page.PATH)
    out = shot_dir() / f"{page.KEY}.png"
    try:
        dash_duo.wait_for_text_to_equal("#page h2", page.NAME, timeout=T)
        CHECKS.get(page.KEY, _graphs(0))(dash_duo)
        _settled(dash_duo)
        dash_duo.driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
        ActionChains(dash_duo.driver).move_to_element(dash_duo.find_element("#title")).perform()  # no hover label
        no_sideways_scroll(dash_duo)
        assert error_texts(dash_duo) == []
    finally:
        dash_duo.driver.save_screenshot(str(out))
    assert out.stat().st_size > 10_000  # a real page, not a blank frame
    no_errors(dash_duo)
