"""The security headers every response carries, and reading cookies' attributes: checked on the
app and `make run` (test_security_headers.py) and on nginx + gunicorn (test_nginx_deploy.py)."""

from __future__ import annotations

from pathlib import Path

from leadform.web import HSTS

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def assert_secure(headers, policy: str, https: bool) -> None:
    for name, value in COMMON.items():
        assert headers.get(name) == value, name
    assert headers.get("Content-Security-Policy") == policy
    assert headers.get("Strict-Transport-Security") == (HSTS if https else None)


def bundle_path(site_dir: Path) -> str:
    """The URL path of Material's fingerprinted JavaScript bundle in a built site."""
    return "/assets/javascripts/" + next((site_dir / "assets" / "javascripts").glob("bundle.*.min.js")).name


def cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    """A Set-Cookie header's cookie name and its attributes, names lower-cased."""
    first, *rest = [part.strip() for part in header.split(";")]
    attrs = {}
    for part in rest:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    return first.split("=", 1)[0], attrs


def set_cookies(response) -> dict[str, dict[str, str]]:
    """Every cookie a werkzeug response sets, with its attributes."""
    return dict(cookie_attributes(h) for h in response.headers.getlist("Set-Cookie"))
