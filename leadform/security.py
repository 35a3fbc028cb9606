"""Security headers: one set for every response, the static site's and the app's alike.

`response_headers()` is the single source: the Flask app adds it to each of its responses,
`leadform.serve.StaticSite` to each static file, and tests/test_security_headers.py checks that
deploy/nginx.conf (production) sends the same. The site's Content-Security-Policy allows its
inline scripts by hash (written by the build, see site_config/csp.py); the app's own pages have
no inline code, so they get the same policy without hashes.
"""

from __future__ import annotations

from flask import Flask, Response

from site_config.csp import policy

HSTS = "max-age=31536000; includeSubDomains"   # one year; sent over HTTPS only (PUBLIC_HTTPS)
APP_POLICY = policy()


def response_headers(https: bool, content_security_policy: str = APP_POLICY) -> dict[str, str]:
    """The headers every response carries; HSTS only when the site is served over HTTPS."""
    headers = {
        "Content-Security-Policy": content_security_policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "X-Frame-Options": "DENY",   # for browsers without CSP frame-ancestors
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        for name, value in response_headers(app.config["PUBLIC_HTTPS"]).items():
            if name == "Content-Security-Policy":
                response.headers.setdefault(name, value)   # a route may tighten it
            else:
                response.headers[name] = value
        return response
