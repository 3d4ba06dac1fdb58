"""Shared test set-up: one torch thread per process, headless Chromium options for dash_duo."""
import os
import shutil

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("DASH_TEST_CHROMEPATH", shutil.which("chromium") or "/usr/bin/chromium")


def pytest_setup_options():  # dash.testing hook: dash_duo builds Chrome from these options
    from selenium.webdriver.chrome.options import Options
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
              "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
              "--window-size=1280,900"):
        opts.add_argument(a)
    return opts


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
