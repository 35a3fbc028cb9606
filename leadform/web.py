"""What every route shares: CSRF and rate limits, security headers, the site's page shell,
the same-origin check for the JSON endpoints, and the two small routes /api/csrf and /api/health.

Rate limits are counted per visitor IP and, on the forms that carry one, per e-mail address. Both
keys are HMACs under the app secret, so neither the limiter's storage (Redis) nor its log lines
ever hold an address or an IP. Several workers or machines share one storage
(LEADFORM_RATELIMIT_STORAGE_URI=redis://…); the embedded default `memory://` suits one process.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect, generate_csrf
from limits.storage import Storage, storage_from_string
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from leadform.forms import issue_started
from leadform.mail import mailbox
from site_config import csp, load_settings
from site_config.csp import policy

log = logging.getLogger("leadform.web")
csrf = CSRFProtect()
bp = Blueprint("web", __name__)


# -- rate limits -----------------------------------------------------------------------------------------

def _pseudonym(kind: str, value: str) -> str:
    """A stable, secret-keyed stand-in for an IP or an e-mail address, under the app's LIMIT_KEY_PREFIX."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{current_app.config.get('LIMIT_KEY_PREFIX') or 'leadform'}/{kind}:{digest}"


def client_network(address: str) -> str:
    """The client an address stands for: an IPv4 address, or the /64 an IPv6 address belongs to (one
    connection usually gets a whole /64, so its 2**64 addresses would each be a new client)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def ip_key() -> str:
    """The visitor's IP (IPv6: its /64), pseudonymised (behind a proxy, PROXY_FIX_X_FOR makes it the visitor's)."""
    return _pseudonym("ip", client_network(get_remote_address() or "unknown"))


def submitted_email() -> str:
    """The form's e-mail address as one spelling per mailbox (mail.mailbox), or '' if there is none."""
    try:
        value = request.form.get("email", "")
    except HTTPException:  # too large or malformed: the view answers that, not the limiter
        return ""
    value = value.strip()
    return mailbox(value) if value else ""


def email_key() -> str:
    return _pseudonym("email", submitted_email())


def no_email() -> bool:
    return not submitted_email()


def accepted(response: Response) -> bool:
    """Only a submission that went through counts against an address, not a typo shown again."""
    return response.status_code < 400


limiter = Limiter(ip_key, default_limits=[], headers_enabled=False, strategy="moving-window")


def per_ip(setting: str, scope: str) -> Callable:
    """Decorator: the limit named `setting` in site_config's `limits`, per IP, counted on every request."""
    return limiter.limit(lambda: getattr(load_settings().limits, setting), scope=scope)


def per_email(scope: str) -> Callable:
    """Decorator: at most `mails_per_address_per_day` accepted submissions per address per day."""
    return limiter.limit(lambda: f"{load_settings().limits.mails_per_address_per_day} per day",
                         key_func=email_key, scope=scope, exempt_when=no_email, deduct_when=accepted)


# -- headers and pages -----------------------------------------------------------------------------------

HSTS = "max-age=31536000; includeSubDomains"   # one year; sent over HTTPS only (PUBLIC_HTTPS)
APP_POLICY = policy()  # the app's pages have no inline code: the site's policy without hashes


def response_headers(https: bool, content_security_policy: str = APP_POLICY) -> dict[str, str]:
    """The headers every response carries, the static site's and the app's alike (deploy/nginx.conf
    sends the same; tests/test_security_headers.py compares). HSTS only over HTTPS."""
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


def _add_headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    for name, value in response_headers(current_app.config["PUBLIC_HTTPS"]).items():
        if name == "Content-Security-Policy":
            # a page in the site's shell allows the shell's inline scripts, as the site's pages do
            response.headers.setdefault(name, g.get("site_policy") or value)
        else:
            response.headers[name] = value
    return response


@cache
def _site_stylesheets(site_dir: str) -> tuple[str, ...]:
    """Material's fingerprinted stylesheet from the built site, then the coach's own. Keyed by the
    release's real folder: `site` is a symlink that moves to each new release."""
    folder = Path(site_dir) / "assets" / "stylesheets"
    material = sorted(p.name for p in folder.glob("main.*.min.css"))
    return tuple(f"/assets/stylesheets/{name}" for name in material[:1]) + ("/assets/stylesheets/coach.css",)


SHELL_FILE = ".app-shell.html"          # written by site_config/hooks.py at every build
SHELL_MARKERS = ("@@APP-TITLE@@", "@@APP-CONTENT@@")


@cache
def _shell(site_dir: str, mtime: float) -> tuple[tuple[str, str, str], str] | None:
    """The site's page shell cut at its two markers, and the site's CSP that allows its inline scripts;
    cached per build (the file's mtime), so a rebuild under `make run` shows at once."""
    try:
        text = (Path(site_dir) / SHELL_FILE).read_text(encoding="utf-8")
        site_policy = csp.read_policy(Path(site_dir))
    except (OSError, csp.CSPError):
        return None
    head, _, rest = text.partition(SHELL_MARKERS[0])
    middle, _, tail = rest.partition(SHELL_MARKERS[1])
    if not tail:
        return None
    return (head, middle, tail), site_policy


def site_shell(site_dir: str) -> tuple[tuple[str, str, str], str] | None:
    try:
        mtime = (Path(site_dir) / SHELL_FILE).stat().st_mtime
    except OSError:
        return None
    return _shell(site_dir, mtime)


def render_page(template: str, status: int = 200, **context: object) -> tuple[str, int]:
    """A page the app draws itself (a form shown again, an expired link, an error) in the site's own
    header, menu, cookie banner and footer: the shell the build wrote. Without a built site (the app
    alone in a test) a plain page with the site's stylesheets."""
    settings = load_settings()
    site_dir = os.path.realpath(current_app.config["SITE_DIR"])  # the release `site` points at now
    shell = site_shell(site_dir)
    html = render_template(template, settings=settings, coach=settings.coach, in_shell=shell is not None,
                           stylesheets=_site_stylesheets(site_dir), **context)
    if shell is None:
        return html, status
    (head, middle, tail), g.site_policy = shell
    return head + str(escape(context.get("title", ""))) + middle + html + tail, status


# -- the JSON endpoints' same-origin rule -------------------------------------------------------------------

def require_same_origin() -> None:
    """403 unless the request comes from a page of this site. The consent and analytics endpoints are
    exempt from the CSRF token (the banner sits on static pages and posts JSON or text): a browser
    sends a cross-origin POST of `application/json` only after a CORS preflight, which this app never
    allows, and on top a request whose Origin or Sec-Fetch-Site names another site is refused."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        abort(403)
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        abort(403)


def read_body(mimetype: str, max_bytes: int) -> bytes:
    """The body of a same-origin request of one content type: 403 from another site, 415 for another
    type, 400 when it is larger than `max_bytes` or has no declared length."""
    require_same_origin()
    if request.mimetype != mimetype:
        abort(415)
    length = request.content_length
    if length is None or length > max_bytes:
        abort(400)
    return request.get_data(cache=False)


# -- routes ----------------------------------------------------------------------------------------------

@bp.get("/api/csrf")
def csrf_token() -> Response:
    """The token a static page's form needs (forms.js fetches it), and the contact form's signed start time."""
    response = jsonify(csrf_token=generate_csrf(), started=issue_started())
    response.headers["Cache-Control"] = "no-store"
    return response


SENT_TO = "sent_to"   # session key: the address the visitor's last form mail went to


def remember_sent_to(email: str | None) -> None:
    """Keep the address for the thank-you page in the visitor's own (signed) session cookie, until the
    browser closes: never in the redirect's URL, never in a log line."""
    if email:
        session[SENT_TO] = email
    else:
        session.pop(SENT_TO, None)


@bp.get("/api/sent-to")
def sent_to() -> Response:
    """The thank-you pages repeat the address the mail went to (sent-to.js shows it as text)."""
    response = jsonify(email=session.get(SENT_TO))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/health")
def health() -> tuple[dict[str, str], int]:
    """For load balancers and monitoring: 200 when the database answers (and Redis, where the rate
    limits live there), else 503 naming what is gone. The log line names the part and the error's
    class, never a URL (it may hold a password)."""
    parts = {"database": _database_ok()}
    uri = str(current_app.config.get("RATELIMIT_STORAGE_URI") or "")
    if uri.startswith("redis"):
        parts["redis"] = _redis(uri).check()
    if not parts.get("redis", True):
        log.error("health check failed part=redis")
    body = {"status": "ok" if all(parts.values()) else "unavailable"} | {k: "ok" if v else "unreachable"
                                                                         for k, v in parts.items()}
    return body, 200 if all(parts.values()) else 503


def _database_ok() -> bool:
    """A read of the migrations' table, on a raw connection: no transaction, so it never waits for a
    SQLite writer's lock, and an emptied or dropped database fails too."""
    try:
        connection = current_app.extensions["leadform.engine"].raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT version_num FROM alembic_version")
            cursor.fetchall()
        finally:
            connection.close()
    except Exception as exc:  # any driver's error means the same: not usable now
        log.error("health check failed part=database error=%s", type(exc).__name__)
        return False
    return True


def _redis(uri: str) -> Storage:
    """One client per app for the check, with short timeouts: a health check must answer quickly."""
    storage = current_app.extensions.get("leadform.health_redis")
    if storage is None:
        storage = current_app.extensions["leadform.health_redis"] = storage_from_string(
            uri, socket_connect_timeout=1, socket_timeout=1)
    return storage


def init_app(app: Flask) -> None:
    proxies = int(app.config.get("PROXY_FIX_X_FOR") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    csrf.init_app(app)
    limiter.init_app(app)
    app.after_request(_add_headers)
    app.register_blueprint(bp)
