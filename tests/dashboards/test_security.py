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
from tests.helpers import HOSTILE_FACTORY

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
    (st / "link-out.json").symlink_to(outside / "secret.json")  # file symlink pointing outside
    (st / "dir-out").symlink_to(outside)  # directory symlink pointing outside
    (st / "link-in.json").symlink_to(st / "sub" / "inner.json")  # symlink that stays inside: allowed
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


@pytest.mark.parametrize(
    "path",
    [
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
    ],
)
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
    assert _get(port, "/study-file/sub/")[0] == 404  # never a listing
    assert _get(port, "/study-file/latents.txt")[0] == 404


@pytest.mark.parametrize(
    "output, values, want",
    [
        (
            "ed-live-img.src",
            {"ed-dir.value": "../../outside/secret::0", "ed-live-sample.value": 0, "ed-alpha.value": 1},
            "is not in this study; pick one from the list",
        ),
        (
            "ed-gallery.children",
            {"ed-set.value": "../../outside/secret", "ed-sample.value": 0},
            "direction set '../../outside/secret' is not in this study",
        ),
        (
            "wk-curves-box.children",
            {
                "wk-target.value": "../outside/secret.json",
                "wk-measures.value": ["brightness"],
                "wk-density.value": "dlogp",
                "wk-scale.value": "units",
            },
            "has no rows in the interventions table",
        ),
        ("page.children", {"url.pathname": "/../../outside/secret.json"}, "no page at"),
    ],
)
def test_path_like_callback_inputs_refused(served, output, values, want):
    """Callback inputs are names looked up in the study, never paths: a path-like value is one error line."""
    app, port, root = served
    r = app.server.test_client().post("/_dash-update-component", json=Callback(app, output).payload(values))
    body = json.dumps(r.get_json(), ensure_ascii=False)  # Dash writes / as \u002f
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
    s.manifest["measures"] = {
        (HOSTILE_MEASURE if k == "brightness" else k): v for k, v in s.manifest["measures"].items()
    }
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
    for path, ready in (
        ("/correlations", "#co-heat .main-svg"),
        ("/walks", "#wk-cmp .main-svg"),
        ("/edits", "#ed-gallery-fig .main-svg"),
    ):
        dash_duo.driver.get(dash_duo.server_url + path)
        dash_duo.wait_for_element(ready, timeout=60)
        assert dash_duo.driver.execute_script("return window.__xss === undefined")
        assert dash_duo.driver.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
    assert HOSTILE_DIRECTION in dash_duo.find_element("#page").text  # the edits gallery row label, as text
    assert dash_duo.driver.execute_script("return window.__xss === undefined")


# ---- stored XSS through the page title ---------------------------------------------------------------------------
XSS_NAME = "x</title><script>window.pwned=1;fetch('/?pwned')</script>"


@pytest.fixture(scope="module")
def xss_study(tiny_study, tmp_path_factory):
    """tiny_study whose manifest name closes <title> and opens a script."""
    path = tmp_path_factory.mktemp("xss") / "study"
    shutil.copytree(tiny_study.path, path)
    m = json.loads((path / "manifest.json").read_text())
    m["name"] = XSS_NAME
    (path / "manifest.json").write_text(json.dumps(m))
    return path


def test_index_title_is_escaped(xss_study):
    r = create_app(xss_study).server.test_client().get("/")
    body = r.get_data(as_text=True)
    script_src = r.headers["Content-Security-Policy"].split("; ")[1].split()
    assert script_src[:2] == ["script-src", "'self'"] and len(script_src) > 2
    assert all(h.startswith("'sha256-") for h in script_src[2:])  # inline scripts only by hash
    assert (
        "<title>latent-probe: x&lt;/title&gt;&lt;script&gt;window.pwned=1;fetch(&#x27;/?pwned&#x27;)"
        "&lt;/script&gt;</title>"
    ) in body
    assert "<script>window.pwned" not in body and body.count("</title>") == 1


@pytest.mark.browser
def test_title_payload_runs_no_script(dash_duo, xss_study):
    """Every page in Chromium: the payload sets no global, makes no request, and is the title text."""
    import flask

    from dashboards.pages import PAGES

    app = create_app(xss_study)
    seen = []
    app.server.before_request(lambda: seen.append(flask.request.full_path))
    dash_duo.start_server(app)
    for p in PAGES:
        dash_duo.driver.get(dash_duo.server_url + p.PATH)
        dash_duo.wait_for_text_to_equal("#page h2", p.NAME, timeout=60)
        assert dash_duo.driver.execute_script("return document.title") == f"latent-probe: {XSS_NAME}"
        assert dash_duo.driver.execute_script("return typeof window.pwned") == "undefined"
        assert dash_duo.find_element("#title").text == f"latent-probe: {XSS_NAME}"
    assert [u for u in seen if "pwned" in u] == []
    # the Content-Security-Policy is live: an inline script injected into the page does not run
    dash_duo.driver.execute_script(
        "var s = document.createElement('script'); s.textContent = 'window.injected = 1';document.body.appendChild(s);"
    )
    assert dash_duo.driver.execute_script("return typeof window.injected") == "undefined"
    assert sum(u.startswith("/_dash-layout") for u in seen) == 1 + len(PAGES)  # start_server's load + each page


# ---- /study-file/ with odd paths and names -----------------------------------------------------------------------
def test_study_file_nul_and_long_paths_are_one_line(served, caplog):
    app, port, root = served
    c = app.server.test_client()
    with caplog.at_level("DEBUG"):
        r = c.get("/study-file/a%00b.json")
        assert (r.status_code, r.get_data(as_text=True)) == (400, "bad study-file path: it contains a NUL byte\n")
        r = c.get("/study-file/" + "a" * 5000 + ".json")
        assert (r.status_code, r.get_data(as_text=True)) == (
            404,
            "no such file in this study (served: .json .parquet .npz .npy .html)\n",
        )
        assert _get(port, "/study-file/" + "b/" * 2500 + "x.json") == (
            404,
            "no such file in this study (served: .json .parquet .npz .npy .html)\n",
        )
        assert _get(port, "/study-file/a%00b.json") == (400, "bad study-file path: it contains a NUL byte\n")
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info] == []


def test_download_name_is_safe_ascii_with_rfc5987(tiny_study, tmp_path):
    st = tmp_path / "study"
    shutil.copytree(tiny_study.path, st)
    name = 't"; x=1\u202e\r\u00e9.parquet'
    (st / name).write_bytes(b"PAR1")
    r = create_app(st).server.test_client().get("/study-file/" + __import__("urllib.parse").parse.quote(name))
    assert r.status_code == 200 and r.data == b"PAR1"
    assert r.headers["Content-Disposition"] == (
        "attachment; filename=\"t___x_1___.parquet\"; filename*=UTF-8''t%22%3B%20x%3D1%E2%80%AE%0D%C3%A9.parquet"
    )
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"


# ---- access token on non-loopback binds --------------------------------------------------------------------------
TOKEN = "tok-0123456789abcdef"
DENIED = (403, "access token missing or wrong: open the address with ?token= that probe dash printed\n")


def _status(r):
    return r.status_code, r.get_data(as_text=True)


def test_token_checked_on_every_request(tiny_study):
    from dashboards.security import token_cookie

    app = create_app(tiny_study.path, token=TOKEN)
    c = app.server.test_client()
    for path in (
        "/",
        "/_dash-layout",
        "/_dash-dependencies",
        "/study-file/manifest.json",
        "/drag",
        "/assets/style.css",
        "/?token=" + TOKEN[:-1],
        "/?token=",
    ):
        assert _status(c.get(path)) == DENIED, path
    assert _status(c.post("/_dash-update-component", json={})) == DENIED
    r = c.get("/?token=" + TOKEN)
    assert r.status_code == 200 and 'id="react-entry-point"' in r.get_data(as_text=True)
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith(token_cookie(TOKEN))]
    assert cookie == [f"{token_cookie(TOKEN)}={TOKEN}; HttpOnly; Path=/; SameSite=Strict"]
    assert c.get("/_dash-layout").status_code == 200  # the cookie from now on
    assert c.get("/study-file/manifest.json").get_json()["name"] == "tiny"
    other = app.server.test_client()
    other.set_cookie(token_cookie(TOKEN), "tok-wrong-wrong-wrong")
    assert _status(other.get("/_dash-layout")) == DENIED


def test_loopback_app_needs_no_token(tiny_study):
    c = create_app(tiny_study.path).server.test_client()
    assert c.get("/").status_code == 200 and c.get("/_dash-layout").status_code == 200


def _cli(monkeypatch, capsys, *args):
    """Run `probe dash ARGS` with Dash.run replaced -> (exit code, stdout lines, the app, run kwargs)."""
    import dash

    from probe.cli import main

    seen = {}
    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: seen.update(app=self, **kw))
    monkeypatch.setattr(sys, "argv", ["probe", "dash", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return e.value.code, out.out.splitlines(), out.err, seen


def test_cli_non_loopback_bind_generates_and_prints_a_token(tiny_study, monkeypatch, capsys):
    code, lines, _, seen = _cli(monkeypatch, capsys, tiny_study.path, "--host", "0.0.0.0", "--port", "8124")
    assert code == 0 and seen["host"] == "0.0.0.0" and seen["debug"] is False
    assert lines[0] == "latent-probe dashboard for 'tiny': http://0.0.0.0:8124/"
    pre = (
        "access token required on 0.0.0.0 (the dashboard serves a model, uploads and compute without other "
        "authentication): open http://0.0.0.0:8124/?token="
    )
    assert len(lines) == 2 and lines[1].startswith(pre)
    token = lines[1][len(pre) :]
    assert len(token) == 32
    c = seen["app"].server.test_client()
    assert _status(c.get("/")) == DENIED and c.get("/?token=" + token).status_code == 200


def test_cli_chosen_token_and_loopback_forms(tiny_study, monkeypatch, capsys):
    code, lines, _, seen = _cli(monkeypatch, capsys, tiny_study.path, "--host", "10.1.2.3", "--token", TOKEN)
    assert code == 0 and lines[1].endswith(f"open http://10.1.2.3:8050/?token={TOKEN}")
    assert _status(seen["app"].server.test_client().get("/")) == DENIED
    for host in ("127.0.0.5", "localhost", "::1"):
        code, lines, _, seen = _cli(monkeypatch, capsys, tiny_study.path, "--host", host)
        assert code == 0 and len(lines) == 1, host
        assert seen["app"].server.test_client().get("/").status_code == 200


@pytest.mark.parametrize(
    "args, err",
    [
        (
            ["--host", "0.0.0.0", "--debug"],
            "error: --debug serves the Werkzeug debugger, which runs code; use it on "
            "127.0.0.1 only, not --host 0.0.0.0",
        ),
        (
            ["--token", "short"],
            "error: --token must be 16..256 URL-safe characters (letters, digits, - _ . ~); or leave "
            "it out to get a generated one",
        ),
        (["--host", "a b\n"], "error: --host must be an IP address or a host name (e.g. 127.0.0.1); got 'a b\\n'"),
    ],
)
def test_cli_refuses_unsafe_options(tiny_study, monkeypatch, capsys, args, err):
    code, lines, errtext, seen = _cli(monkeypatch, capsys, tiny_study.path, *args)
    assert code == 2 and lines == [] and seen == {}
    assert errtext.strip() == err


def test_cli_echoes_names_with_control_characters_escaped(tiny_study, tmp_path, monkeypatch, capsys):
    st = tmp_path / "study"
    shutil.copytree(tiny_study.path, st)
    m = json.loads((st / "manifest.json").read_text())
    m["name"] = "ok\n\rfake: \x1b[2J\u202eevil\u2066x\u2069"
    (st / "manifest.json").write_text(json.dumps(m))
    code, lines, _, _ = _cli(monkeypatch, capsys, st, "--port", "8125")
    assert code == 0
    assert lines == [
        "latent-probe dashboard for 'ok\\n\\rfake: \\x1b[2J\\u202eevil\\u2066x\\u2069': http://127.0.0.1:8125/"
    ]


def test_no_page_renders_raw_html(full_study, xss_study):
    """Text reaches the page only as React text nodes: no Markdown with raw HTML, no Iframe srcDoc, no
    dangerouslySetInnerHTML anywhere in a page layout."""
    from dash import dcc, html
    from dash.development.base_component import Component

    from dashboards.pages import PAGES

    def walk(c):
        yield c
        kids = getattr(c, "children", None)
        for k in kids if isinstance(kids, (list, tuple)) else [kids]:
            if isinstance(k, Component):
                yield from walk(k)

    seen = 0
    for study in (full_study.path, xss_study):
        ctx = create_app(study).probe_ctx
        for p in PAGES:
            for c in walk(p.layout(ctx)):
                seen += 1
                assert not (isinstance(c, dcc.Markdown) and getattr(c, "dangerously_allow_html", False)), p.NAME
                assert not (isinstance(c, html.Iframe) and getattr(c, "srcDoc", None)), p.NAME
                assert "dangerouslySetInnerHTML" not in c.to_plotly_json()["props"], p.NAME
    assert seen > 100


# ---- a study whose model is code: re-rendered only when the user names it ----------------------------------------
CODE_MODEL = HOSTILE_FACTORY


@pytest.fixture
def code_study(tmp_path, monkeypatch, capsys):
    from probe.models import load_model
    from tests.helpers import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen.py").write_text(CODE_MODEL)
    (tmp_path / "spec.toml").write_text(
        'name = "code"\nmodel = "gen.py:factory"\nmeasures = ["brightness"]\n'
        'n_samples = 4\nalphas = [-1.0, 1.0]\n[[targets]]\nkind = "variables"\n'
        "indices = [0]\n"
    )
    code, _, err = cli(["run", "spec.toml", "--out", "st", "--no-progress"], capsys)
    assert code == 0, err
    (tmp_path / "MARKER").unlink()
    load_model.cache_clear()
    yield tmp_path / "st"
    load_model.cache_clear()


def _grid(app) -> str:
    r = app.server.test_client().post(
        "/_dash-update-component", json=Callback(app, "ov-grid-msg.children").payload({"ov-n.value": 8})
    )
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_dash_renders_a_code_model_only_when_named(code_study, monkeypatch, capsys):
    from probe.models import load_model

    body = _grid(create_app(code_study))
    assert (
        "probe-error" in body
        and (
            "was made with model 'gen.py:factory', a Python file; it is not run when a "
            "study is opened: pass --model gen.py:factory (or --trust-model)"
        )
        in body
    )
    assert not (code_study.parent / "MARKER").exists()
    for flags in (["--model", "gen.py:factory"], ["--trust-model"]):
        load_model.cache_clear()
        code, lines, err, seen = _cli(monkeypatch, capsys, code_study, *flags)
        assert code == 0, err
        body = _grid(seen["app"])
        assert "probe-error" not in body and "first 4 samples" in body, flags
        assert (code_study.parent / "MARKER").read_text() == "imported"
        (code_study.parent / "MARKER").unlink()


# ---- DNS rebinding and unexpected errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "host, status",
    [
        ("evil.example:8050", 403),
        ("evil.example", 403),
        ("10.0.0.5:8050", 403),
        ("127.0.0.1:8050", 200),
        ("127.8.9.1", 200),
        ("localhost:8050", 200),
        ("[::1]:8050", 200),
    ],
)
def test_tokenless_app_answers_loopback_host_headers_only(tiny_study, host, status):
    """Without a token, a page under another host name (a rebound DNS name pointing at 127.0.0.1) is refused."""
    app = create_app(tiny_study.path)
    r = app.server.test_client().get("/_dash-layout", headers={"Host": host})
    assert r.status_code == status
    if status == 403:
        assert r.get_data(as_text=True) == (
            f"host {host!r} is not a loopback address; open http://127.0.0.1:PORT/ or serve with probe dash --token\n"
        )
    t = create_app(tiny_study.path, token=TOKEN).server.test_client()  # with a token, any host name
    assert t.get("/_dash-layout?token=" + TOKEN, headers={"Host": host}).status_code == 200


def test_unexpected_callback_error_is_one_line_without_traceback(tiny_study, caplog):
    app = create_app(tiny_study.path)
    cb = Callback(app, "dg-points.data")
    with caplog.at_level("DEBUG"):
        r = app.server.test_client().post(
            "/_dash-update-component",
            json=cb.payload({"dg-canvas.clickData": {"points": []}}, changed=["dg-canvas.clickData"]),
        )
    assert (r.status_code, r.get_data(as_text=True)) == (
        500,
        "internal error in the dashboard (IndexError); reload the page\n",
    )
    assert [x for x in caplog.records if x.exc_info or x.levelname in ("ERROR", "CRITICAL")] == []
    assert [x.getMessage() for x in caplog.records if x.name == app.server.logger.name] == [
        "POST /_dash-update-component: IndexError: list index out of range"
    ]
