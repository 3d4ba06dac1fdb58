"""Dashboard security: loopback bind by default, no file outside the study root (over real HTTP, raw paths,
symlinks), path-like callback inputs refused, and hostile study / measure / target / direction names rendered as
text in a real browser (no script runs)."""
import http.client
import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from benchmarks.load_dashboard import Callback, serve
from dashboards.app import create_app

SECRET = "TOP-SECRET-0123456789"
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">'
HOSTILE_MEASURE = "<script>window.__xss=2</script>"
HOSTILE_DIRECTION = "</script><img src=x onerror=window.__xss=3>"


def test_dash_cli_binds_loopback_by_default(tiny_study, monkeypatch, capsys):
    """`probe dash STUDY` asks the server for 127.0.0.1 (Dash.run replaced so the test does not serve)."""
    import dash
    from probe.cli import main
    seen = {}
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: seen.update(kw))
    monkeypatch.setattr(sys, "argv", ["probe", "dash", str(tiny_study.path), "--port", "8123"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123 and seen["debug"] is False
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out


@pytest.fixture(scope="module")
def served(tiny_study, tmp_path_factory):
    """A copy of the tiny study with symlinks in and out, served on 127.0.0.1 by the real werkzeug server."""
    root = tmp_path_factory.mktemp("sec")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"secret": SECRET}))
    st = root / "study"
    shutil.copytree(tiny_study.path, st)
    (st / "sub").mkdir()
    (st / "sub" / "inner.json").write_text('{"ok": 1}')
    (st / "link-out.json").symlink_to(outside / "secret.json")        # file symlink pointing outside
    (st / "dir-out").symlink_to(outside)                              # directory symlink pointing outside
    (st / "link-in.json").symlink_to(st / "sub" / "inner.json")       # symlink that stays inside: allowed
    app = create_app(st)
    srv, url = serve(app)
    yield app, srv.server_port, root
    srv.shutdown()


def _get(port: int, path: str) -> tuple[int, str]:
    """GET with the path sent exactly as given (no client-side normalisation of .. or //)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("GET", path, skip_accept_encoding=True)
    c.endheaders()
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, body


@pytest.mark.parametrize("path", [
    "/study-file/../outside/secret.json",
    "/study-file/..%2foutside%2fsecret.json",
    "/study-file/%2e%2e/outside/secret.json",
    "/study-file/sub/../../outside/secret.json",
    "/study-file//{root}/outside/secret.json",
    "/study-file/{root}/outside/secret.json",
    "/study-file/%2F{root}/outside/secret.json",
    "/study-file/link-out.json",
    "/study-file/dir-out/secret.json",
    "/study-file/../../../../../../etc/passwd",
    "/study-file/..\\outside\\secret.json",
    "/../outside/secret.json",
])
def test_no_file_outside_the_study_root(served, path):
    app, port, root = served
    status, body = _get(port, path.format(root=str(root).lstrip("/")))
    # refused, or (for paths that do not reach the /study-file/ route) the app's own HTML shell
    assert status in (400, 403, 404) or (status == 200 and 'id="react-entry-point"' in body), (status, body[:200])
    assert SECRET not in body and "root:" not in body


def test_files_inside_the_root_are_served(served):
    app, port, root = served
    status, body = _get(port, "/study-file/manifest.json")
    assert status == 200 and json.loads(body)["name"] == "tiny"
    assert _get(port, "/study-file/sub/inner.json") == (200, '{"ok": 1}')
    assert _get(port, "/study-file/link-in.json") == (200, '{"ok": 1}')
    assert _get(port, "/study-file/sub/")[0] == 404                     # never a listing
    assert _get(port, "/study-file/latents.txt")[0] == 404


@pytest.mark.parametrize("output, values, want", [
    ("ed-live-img.src", {"ed-dir.value": "../../outside/secret::0", "ed-live-sample.value": 0, "ed-alpha.value": 1},
     "is not in this study; pick one from the list"),
    ("ed-gallery.children", {"ed-set.value": "../../outside/secret", "ed-sample.value": 0},
     "direction set '../../outside/secret' is not in this study"),
    ("wk-curves-box.children", {"wk-target.value": "../outside/secret.json", "wk-measures.value": ["brightness"],
                                "wk-density.value": "dlogp"}, "has no rows in the interventions table"),
    ("page.children", {"url.pathname": "/../../outside/secret.json"}, "no page at"),
])
def test_path_like_callback_inputs_refused(served, output, values, want):
    """Callback inputs are names looked up in the study, never paths: a path-like value is one error line."""
    app, port, root = served
    r = app.server.test_client().post("/_dash-update-component", json=Callback(app, output).payload(values))
    body = json.dumps(r.get_json(), ensure_ascii=False)          # Dash writes / as \u002f
    assert r.status_code == 200 and "probe-error" in body and want in body, body[:300]
    assert SECRET not in body


# ---- hostile names in a real browser ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_study(tiny_study, tmp_path_factory):
    """tiny_study with a hostile study name, measure name (columns renamed in every table) and direction name."""
    from probe import stats
    from probe.directions.base import DirectionSet
    from probe.store import Study
    path = tmp_path_factory.mktemp("hostile") / "study"
    shutil.copytree(tiny_study.path, path)
    s = Study(path)
    s.manifest["name"] = HOSTILE_NAME
    s.manifest["measures"] = {(HOSTILE_MEASURE if k == "brightness" else k): v
                              for k, v in s.manifest["measures"].items()}
    s.save_manifest()
    s = Study(path)
    ren = {"brightness": HOSTILE_MEASURE, "d_brightness": f"d_{HOSTILE_MEASURE}"}
    for t in ("samples", "interventions"):
        df = pd.read_parquet(path / f"{t}.parquet").rename(columns=ren)
        s.write_table(t, df)
    stats.analyze(s)
    s.save_directions(DirectionSet([HOSTILE_DIRECTION, "d1"], np.eye(2, 16), "z", "interfacegan"), "interfacegan")
    return Study(path)


@pytest.mark.browser
def test_hostile_names_render_as_text(dash_duo, hostile_study):
    dash_duo.start_server(create_app(hostile_study.path))
    dash_duo.wait_for_element("#ov-grid .main-svg", timeout=60)
    assert dash_duo.find_element("#title").text == f"latent-probe: {HOSTILE_NAME}"
    assert HOSTILE_MEASURE in dash_duo.find_element("#ov-measures").text
    for path, ready in (("/correlations", "#co-heat .main-svg"), ("/walks", "#wk-cmp .main-svg"),
                        ("/edits", "#ed-gallery-fig .main-svg")):
        dash_duo.driver.get(dash_duo.server_url + path)
        dash_duo.wait_for_element(ready, timeout=60)
        assert dash_duo.driver.execute_script("return window.__xss === undefined")
        assert dash_duo.driver.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
    assert HOSTILE_DIRECTION in dash_duo.find_element("#page").text      # the edits gallery row label, as text
    assert dash_duo.driver.execute_script("return window.__xss === undefined")
