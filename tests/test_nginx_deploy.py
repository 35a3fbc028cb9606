"""The production config, run for real: deploy/nginx.conf in front of gunicorn (deploy/gunicorn.conf.py).

deploy/local.py swaps only host-specific values (paths, ports, a throwaway certificate), so the
headers checked here are the ones production sends. Needs Debian's nginx (apt-get install -y nginx)
and openssl; without them the test fails and says so.
"""

from __future__ import annotations

import http.client
import re
import shutil
import ssl
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TEST_DATABASE_URL
from support.headers import COMMON, assert_secure, bundle_path, cookie_attributes

from leadform.web import APP_POLICY, HSTS, response_headers
from site_config import csp

sys.path.insert(0, str(ROOT))
from deploy import local  # noqa: E402


def test_nginx_snippet_sends_exactly_the_apps_header_set() -> None:
    """deploy/security-headers.conf + HSTS line of nginx.conf == leadform.web.response_headers(https=True)."""
    snippet = (ROOT / "deploy" / "security-headers.conf").read_text()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    pattern = re.compile(r'^\s*add_header ([\w-]+) "([^"]*)" always;', re.MULTILINE)
    sent = dict(pattern.findall(snippet)) | {k: v for k, v in pattern.findall(conf) if k != "Cache-Control"}
    expected = {k: v for k, v in response_headers(True).items() if k != "Content-Security-Policy"}
    assert sent == expected


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, site_dir: Path,
               pdf_dir: Path):
    assert Path(local.NGINX).exists(), "nginx not found: apt-get install -y nginx"
    assert shutil.which("openssl"), "openssl not found: apt-get install -y openssl"
    workdir = tmp_path_factory.mktemp("deploy")
    env = {"LEADFORM_SECRET_KEY": "test-" + "0" * 40, "LEADFORM_PDF_DIR": str(pdf_dir),
           "LEADFORM_OUTBOX_THREAD": "false", "LEADFORM_RATELIMIT_ENABLED": "false",
           "LEADFORM_MAIL_BACKEND": "file", "LEADFORM_ALLOW_FILE_MAIL": "1"}
    if TEST_DATABASE_URL:  # this run's PostgreSQL database, its schema made before the app starts on it
        request.getfixturevalue("_postgresql_schema")
        env["LEADFORM_DATABASE_URL"] = TEST_DATABASE_URL
    with local.nginx_and_app(site_dir, workdir, env) as running:
        yield running


def fetch(deployment: local.Deployment, path: str, https: bool = True) -> http.client.HTTPResponse:
    if https:
        context = ssl.create_default_context(cafile=str(deployment.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", deployment.https_port, context=context, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", deployment.http_port, timeout=10)
    conn.request("GET", path, headers={"Host": local.HOST, "Accept-Encoding": "gzip"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def assert_once(response: http.client.HTTPResponse) -> None:
    names = [name.lower() for name, _ in response.getheaders()]
    for name in [*COMMON, "Content-Security-Policy", "Strict-Transport-Security", "Cache-Control"]:
        assert names.count(name.lower()) == 1, f"{name} sent {names.count(name.lower())} times"


def test_static_responses_carry_the_build_policy_and_hsts(deployment, site_dir: Path) -> None:
    policy = csp.read_policy(site_dir)
    for path, status, cache in [("/", 200, "no-cache"), ("/blog/", 200, "no-cache"),
                                (bundle_path(site_dir), 200, "public, max-age=31536000, immutable"),
                                ("/bestaat-niet/", 404, "no-cache")]:
        response = fetch(deployment, path)
        assert response.status == status, path
        assert_secure(response.headers, policy, https=True)
        assert response.headers["Cache-Control"] == cache, path
        assert_once(response)


def test_dotfiles_are_not_served(deployment) -> None:
    for path in ("/.csp.json", "/.csp.nginx.conf", "/assets/.x"):
        response = fetch(deployment, path)
        assert response.status == 404, path


def test_app_responses_carry_the_apps_headers_once(deployment, site_dir: Path) -> None:
    for path, status in [("/api/csrf", 200), ("/download/nope", 404), ("/team/r/nope", 404)]:
        response = fetch(deployment, path)
        assert response.status == status, path
        # JSON gets the app's policy; a page the app draws in the site's shell the site's, for its inline scripts
        html = response.headers["Content-Type"].startswith("text/html")
        assert_secure(response.headers, csp.read_policy(site_dir) if html else APP_POLICY, https=True)
        assert response.headers["Cache-Control"] == "no-store"
        assert_once(response)
    cookie = fetch(deployment, "/api/csrf").headers["Set-Cookie"]
    name, attrs = cookie_attributes(cookie)
    assert name == "__Host-session" and "secure" in attrs and "httponly" in attrs and attrs["samesite"] == "Lax"
    assert HSTS == "max-age=31536000; includeSubDomains"


def test_plain_http_redirects_to_https(deployment) -> None:
    response = fetch(deployment, "/blog/?q=x", https=False)
    assert response.status == 301
    assert response.headers["Location"] == f"https://{local.HOST}:{deployment.https_port}/blog/?q=x"


def test_access_log_has_no_client_address_or_query(deployment) -> None:
    fetch(deployment, "/?email=jan@example.be")
    log = (deployment.prefix / "access.log").read_text()
    assert log and "127.0.0.1" not in log and "jan@example.be" not in log


def test_sitemap_gz_is_a_gzip_file_and_no_server_version_is_named(deployment) -> None:
    """The outside test found sitemap.xml.gz served as XML and a Server header naming versions."""
    response = fetch(deployment, "/sitemap.xml.gz")
    assert response.status == 200 and response.headers["Content-Type"] == "application/gzip"
    assert response.headers.get("Content-Encoding") is None
    for path in ("/", "/sitemap.xml.gz", "/api/csrf", "/bestaat-niet/"):
        server = fetch(deployment, path).headers.get("Server", "")
        assert not any(ch.isdigit() for ch in server), (path, server)
