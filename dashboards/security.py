"""HTTP-level guards of the dashboard's Flask server: access token on non-loopback binds, a per-browser session
cookie (one job per session), request size cap, response headers, safe download names, HTML-escaped page title."""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import re
import secrets
from urllib.parse import quote

import dash
import flask
from werkzeug.exceptions import HTTPException

from probe.errors import printable

SESSION_COOKIE = "probe_session"
_SESSION_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def csp(script_hashes) -> str:
    """Content-Security-Policy: scripts only from this server or the app's own inline scripts (by hash)."""
    return (
        "default-src 'self'; script-src 'self' " + " ".join(script_hashes) + "; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
    )


class EscapedDash(dash.Dash):
    """dash.Dash whose index page HTML-escapes the title (Dash interpolates `{%title%}` raw)."""

    def interpolate_index(self, **kw):
        kw["title"] = html.escape(str(kw.get("title", "")), quote=True)
        return super().interpolate_index(**kw)


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only: 127.0.0.0/8, ::1, localhost."""
    h = host.strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of an HTTP Host header ('[::1]:8050' -> '::1', 'localhost:8050' -> 'localhost')."""
    h = host_header.strip()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_cookie(token: str) -> str:
    """Cookie name for one token (several dashboards on one host do not overwrite each other's cookie)."""
    return "probe_token_" + hashlib.sha256(token.encode()).hexdigest()[:10]


def session_id() -> str | None:
    """The browser session of the current request (None outside a request)."""
    return flask.g.get("probe_session") if flask.has_request_context() else None


def ascii_name(filename: str) -> str:
    """`filename` with every character outside A-Z a-z 0-9 . _ - replaced by _ (safe in any header)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", filename).strip(".") or "download"


def attachment(filename: str) -> str:
    """Content-Disposition value: an ASCII-only fallback name and the exact name as RFC 5987 filename*."""
    return f"attachment; filename=\"{ascii_name(filename)}\"; filename*=UTF-8''{quote(filename, safe='')}"


def plain(msg: str, status: int) -> flask.Response:
    return flask.Response(msg + "\n", status=status, mimetype="text/plain")


def install(server: flask.Flask, token: str | None, max_request_bytes: int) -> None:
    """Guard every request of `server`: body cap (413 before reading), token check when `token` is set (query
    `?token=` or cookie; 403 otherwise), without a token a loopback Host header (403 otherwise: DNS rebinding),
    session cookie, security headers, one-line 500s (no traceback) outside debug mode."""
    server.config["MAX_CONTENT_LENGTH"] = int(max_request_bytes)
    cookie = token_cookie(token) if token else None

    @server.errorhandler(413)
    def too_large(_e):
        return plain(f"request body too large (limit {int(max_request_bytes)} bytes)", 413)

    @server.errorhandler(Exception)
    def unexpected(e):  # Dash's debug mode registers its own traceback page over this one
        if isinstance(e, HTTPException):
            return e
        msg = printable(f"{type(e).__name__}: {e}")[:300]
        server.logger.warning("%s %s: %s", flask.request.method, printable(flask.request.path[:200]), msg)
        return plain(f"internal error in the dashboard ({type(e).__name__}); reload the page", 500)

    @server.before_request
    def guard():
        if token is None and not is_loopback(host_name(flask.request.host)):
            return plain(
                f"host {printable(flask.request.host[:100])!r} is not a loopback address; open "
                "http://127.0.0.1:PORT/ or serve with probe dash --token",
                403,
            )
        if token is not None:
            q = flask.request.args.get("token")
            c = flask.request.cookies.get(cookie)
            if q is not None and hmac.compare_digest(q.encode(), token.encode()):
                flask.g.probe_set_token = True
            elif c is None or not hmac.compare_digest(c.encode(), token.encode()):
                return plain(
                    "access token missing or wrong: open the address with ?token= that probe dash printed", 403
                )
        sid = flask.request.cookies.get(SESSION_COOKIE, "")
        flask.g.probe_new_session = not _SESSION_RE.fullmatch(sid)
        flask.g.probe_session = secrets.token_urlsafe(16) if flask.g.probe_new_session else sid
        return None

    @server.after_request
    def headers(resp):
        for k, v in HEADERS.items():
            resp.headers.setdefault(k, v)
        if server.config.get("PROBE_CSP"):
            resp.headers.setdefault("Content-Security-Policy", server.config["PROBE_CSP"])
        if flask.g.get("probe_new_session"):
            resp.set_cookie(SESSION_COOKIE, flask.g.probe_session, httponly=True, samesite="Strict")
        if flask.g.get("probe_set_token"):
            resp.set_cookie(cookie, token, httponly=True, samesite="Strict")
        return resp
