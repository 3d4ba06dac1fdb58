"""Shared test set-up: one torch thread per process, headless Chromium options for dash_duo."""

import os
import shutil

# One OpenMP thread in every thread, set before torch loads libgomp: tests/engine/test_faults.py forks the test
# process, and a child forked from a process whose other threads built OpenMP teams can hang in its first conv.
# Tests that race writers (tests/test_lock.py) or compare against a reference (tests/test_executors.py) start fresh
# interpreters instead, so nothing an earlier test left in this process reaches them.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The dashboard's memo moves what is alive to the GC's permanent generation after each build; in this process,
# which hosts hundreds of apps one after another, that would keep every earlier app's cyclic garbage.
os.environ.setdefault("PROBE_GC_FREEZE", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
os.environ.setdefault("DASH_TEST_CHROMEPATH", shutil.which("chromium") or "/usr/bin/chromium")


def pytest_setup_options():  # dash.testing hook: dash_duo builds Chrome from these options
    from selenium.webdriver.chrome.options import Options

    opts = Options()
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
    return opts


def pytest_collection_modifyitems(items):
    """A test that drives Chromium (dash_duo, the report tests' `browser`) is a browser test, marked or not:
    `make test-fast` (-m "not browser and not slow") never starts one."""
    for item in items:
        if {"dash_duo", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def tiny_dcgan():
    from probe.models import load_model

    return load_model("tiny-dcgan")


@pytest.fixture(scope="session")
def tiny_stylegan():
    from probe.models import load_model

    return load_model("tiny-stylegan")


@pytest.fixture(scope="session")
def faces():
    from probe.models import load_model

    return load_model("faces")


# ---- studies: small real studies shared by stats / reports / dashboard tests ------------------
TINY_STUDY_VARIABLES = [0, 1, 2, 3]


def _tiny_directions(path, dim: int, space: str, k: int = 2):
    import numpy as np

    from probe.directions.base import DirectionSet

    v = np.random.default_rng(0).standard_normal((k, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return DirectionSet([f"d{i}" for i in range(k)], v, space, "random").save(path)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A complete real study (tiny-dcgan, 24 samples, z[0..3] shifts + random/d0, random/d1 + b2:c3 scale;
    measures 'image'; alphas [-2, -1, 0, 1, 2]) -> probe.store.Study.  Treat it as read-only."""
    from probe.study import parse_spec, run_study

    root = tmp_path_factory.mktemp("tiny_study")
    _tiny_directions(root / "random.npz", 16, "z")
    spec = parse_spec(
        {
            "name": "tiny",
            "model": "tiny-dcgan",
            "measures": ["image"],
            "n_samples": 24,
            "seed": 0,
            "alphas": [-2, -1, 0, 1, 2],
            "targets": [
                {"kind": "variables", "indices": TINY_STUDY_VARIABLES},
                {"kind": "directions", "file": "random.npz"},
                {"kind": "channels", "site": "b2", "channels": [3]},
            ],
        },
        base=root,
    )
    return run_study(spec, root / "study", progress=False)


@pytest.fixture(scope="session")
def tiny_study_stylegan(tmp_path_factory):
    """A complete real study on tiny-stylegan in space w (16 samples, w[0], w[1] shifts + random/d0, d1
    isodensity walks + b8:c2 scale; measures 'image'; alphas [-2, 0, 2]) -> probe.store.Study."""
    from probe.study import parse_spec, run_study

    root = tmp_path_factory.mktemp("tiny_study_stylegan")
    _tiny_directions(root / "random.npz", 16, "w")
    spec = parse_spec(
        {
            "name": "tiny-stylegan",
            "model": "tiny-stylegan",
            "measures": ["image"],
            "n_samples": 16,
            "seed": 0,
            "space": "w",
            "alphas": [-2, 0, 2],
            "targets": [
                {"kind": "variables", "indices": [0, 1]},
                {"kind": "directions", "file": "random.npz", "walk": "isodensity"},
                {"kind": "channels", "site": "b8", "channels": [2]},
            ],
        },
        base=root,
    )
    return run_study(spec, root / "study", progress=False)
