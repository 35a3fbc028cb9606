"""Security headers on every response (static site and app), the build's CSP, and the cookies.

The Chromium side (zero CSP violations on every page, search working) is in test_csp_browser.py;
the production config (nginx + gunicorn) in test_nginx_deploy.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import PUBLIC_HTTPS, ROOT, mkdocs_build
from support.headers import assert_secure, bundle_path, set_cookies
from support.servers import site_client
from werkzeug.test import Client

from leadform.web import APP_POLICY, HSTS, response_headers
from site_config import csp

REQUIRED_DIRECTIVES = {"default-src": {"'none'"}, "frame-ancestors": {"'none'"}, "base-uri": {"'none'"},
                       "form-action": {"'self'"}, "object-src": {"'none'"}}


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"duplicate directive {name}"
        parsed[name] = sources
    return parsed


# -- the policy the build wrote -----------------------------------------------------------------------

def test_the_built_policy_is_strict_and_allows_inline_scripts_only_by_hash(site_dir: Path) -> None:
    policy = csp.read_policy(site_dir)
    parsed = directives(policy)
    for name, sources in REQUIRED_DIRECTIVES.items():
        assert set(parsed[name]) == sources, name
    assert "max-age=31536000" in HSTS
    for name, sources in parsed.items():
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, name
        assert "'unsafe-hashes'" not in sources and "*" not in sources and "https:" not in sources, name
        extra = [s for s in sources if s not in ("'self'", "'none'", "data:")]
        assert all(s.startswith("'sha256-") for s in extra), (name, extra)
    assert parsed["script-src"][0] == "'self'" and len(parsed["script-src"]) > 1  # Material's inline scripts
    assert parsed["connect-src"] == ["'self'"] and parsed["worker-src"] == ["'self'"]  # search index, worker
    nginx = (site_dir / csp.NGINX_FILE).read_text()
    assert f'add_header Content-Security-Policy "{policy}" always;' in nginx


def test_every_inline_script_is_hashed_and_the_json_config_is_not(site_dir: Path, site_pages: dict[str, str]) -> None:
    """Checked here with the standard library's hashlib on the raw text, independent of csp.scan's bookkeeping."""
    import base64
    import hashlib
    import re

    allowed = set(directives(csp.read_policy(site_dir))["script-src"])
    script = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.DOTALL)
    executed = 0
    for name, html in site_pages.items():
        for match in script.finditer(html):
            attrs, body = match["attrs"], match["body"]
            digest = f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            if "src=" in attrs:
                continue
            if 'type="application/json"' in attrs:
                assert digest not in allowed, f"{name}: a JSON data block needs no hash"
                continue
            executed += 1
            assert digest in allowed, f"{name}: inline script not allowed: {body[:80]}"
    assert executed >= len(site_pages)  # Material's __md_scope script is on every page


def test_the_coachs_inline_style_or_handler_fails_the_build_naming_the_file(project_copy: Path) -> None:
    page = project_copy / "docs" / "over.md"
    page.write_text(page.read_text(encoding="utf-8") + '\n<p style="color: red" onclick="alert(1)">Rood</p>\n',
                    encoding="utf-8")
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode != 0
    assert "docs/over.md" in result.stderr
    assert "style-attribuut" in result.stderr and "onclick-attribuut" in result.stderr
    assert "coach.css" in result.stderr  # says what to do instead


@pytest.mark.parametrize(("html", "found"), [
    ('<p style="color:red">x</p>', ("p", "style")),
    ('<P STYLE="color:red">x</P>', ("p", "style")),
    ('<a href="x"onclick="go()">x</a>', ("a", "onclick")),
    ("<img/onerror=go() src=x>", ("img", "onerror")),
    ('<a href="JavaScript:go()">x</a>', ("a", "href")),
    ('<script src="/a.js" onload="go()"></script>', ("script", "onload")),
    ("<p>\u0130stanbul</p><b style=x>x</b>", ("b", "style")),   # İ lower-cases to two characters
    ("<script>var onTarget = 1; style = 2; location = 'javascript:x'</script><p>ok</p>", None),
    ('<p data-style="x">no</p><p class="button=">no</p><meta content="x">', None),
])
def test_inline_code_in_attributes_is_found_and_script_text_is_not(html: str, found: tuple[str, str] | None) -> None:
    attributes = csp.scan(html).attributes
    assert [(tag, name) for _, tag, name, _ in attributes] == ([found] if found else [])


def test_a_page_changed_after_the_build_is_caught_by_the_check(site_dir: Path, tmp_path: Path) -> None:
    """A stale policy (a page edited, a build half-copied) fails `python -m site_config.csp check`."""
    site = tmp_path / "site"
    shutil.copytree(site_dir, site)
    page = site / "over" / "index.html"
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("__md_scope=new URL(", "__md_scope=window.x=new URL(", 1), encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "site_config.csp", "check", str(site)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 1
    assert "site/over/index.html" in check.stderr and "staat niet in het beleid" in check.stderr
    assert "__md_scope=window.x" in check.stderr  # names the script, so a developer finds it

    ok = subprocess.run([sys.executable, "-m", "site_config.csp", "check", str(site_dir)], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_a_stale_nginx_include_is_caught(site_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(site_dir, site)
    (site / csp.NGINX_FILE).write_text('add_header Content-Security-Policy "default-src \'self\'" always;\n')
    with pytest.raises(csp.CSPError, match=r"\.csp\.nginx\.conf hoort bij een andere build"):
        csp.verify_policy(site)


def test_the_build_reads_its_policy_files_back(site_dir: Path, tmp_path: Path) -> None:
    """What the build itself checks after writing: both files hold the policy it made, nothing else."""
    site = tmp_path / "site"
    shutil.copytree(site_dir, site)
    value = csp.read_policy(site)
    csp.verify_written(site, value)
    with pytest.raises(csp.CSPError, match=r"\.csp\.json bevat niet het beleid"):
        csp.verify_written(site, value + " 'sha256-AAAA'")
    (site / csp.NGINX_FILE).write_text('add_header Content-Security-Policy "default-src \'self\'" always;\n')
    with pytest.raises(csp.CSPError, match=r"\.csp\.nginx\.conf hoort bij een andere build"):
        csp.verify_written(site, value)


def _add_late_hook(project: Path, snippet: str) -> Path:
    """A hook that edits a written page in on_post_build, as a plugin may; returns mkdocs.yml."""
    hook = project / "late_edit.py"
    hook.write_text(
        "from pathlib import Path\n\n"
        "def on_post_build(config):\n"
        "    page = Path(config.site_dir) / 'over' / 'index.html'\n"
        "    html = page.read_text(encoding='utf-8')\n"
        f"    page.write_text(html.replace('</body>', {snippet!r} + '</body>'), encoding='utf-8')\n")
    config = project / "mkdocs.yml"
    text = config.read_text(encoding="utf-8")
    assert "  - site_config/hooks.py\n" in text
    config.write_text(text.replace("  - site_config/hooks.py\n", "  - site_config/hooks.py\n  - late_edit.py\n"),
                      encoding="utf-8")
    return config


def test_inline_code_added_during_the_build_is_hashed(project_copy: Path) -> None:
    """Whatever writes pages before the end of the build (a plugin, a hook) is covered, not refused."""
    config = _add_late_hook(project_copy, "<style>.late{color:#123}</style>")
    result = mkdocs_build(config, project_copy / "site")
    assert result.returncode == 0, result.stderr
    added = csp.InlineCode("style", ".late{color:#123}", 0).source
    assert added in directives(csp.read_policy(project_copy / "site"))["style-src"]


def test_a_script_added_during_the_build_still_needs_consent(project_copy: Path) -> None:
    """The page checks read the pages as written at the end of the build, so a plugin that slips in
    a script that runs before consent fails the build like a script in a template would."""
    config = _add_late_hook(project_copy, '<script>document.title += " !"</script>')
    result = mkdocs_build(config, project_copy / "site")
    assert result.returncode == 1
    assert "docs/over.md: de pagina bevat een script ('document.title += \" !\"') dat meteen loopt" in result.stderr


# -- the static site (make run, live_server) -----------------------------------------------------------

@pytest.mark.parametrize("https", [False, True])
def test_every_kind_of_static_response_carries_the_headers(app, site_dir: Path, https: bool) -> None:
    client = site_client(app, site_dir, https=https)
    policy = csp.read_policy(site_dir)
    responses = {
        "page": client.get("/"),
        "gzip page": client.get("/blog/", headers={"Accept-Encoding": "gzip"}),
        "asset": client.get(bundle_path(site_dir)),
        "head": client.head("/contact/"),
        "404": client.get("/bestaat-niet/"),
        "redirect": client.get("/contact"),
        "405": client.post("/"),
    }
    assert [r.status_code for r in responses.values()] == [200, 200, 200, 200, 404, 302, 405]
    for kind, response in responses.items():
        assert_secure(response.headers, policy, https), kind


def test_dotfiles_and_the_policy_files_are_not_served(app, site_dir: Path) -> None:
    client = site_client(app, site_dir)
    for path in ("/.csp.json", "/.csp.nginx.conf", "/%2ecsp.json", "/assets/.csp.json", "/.git/config"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"default-src" not in response.data, path


def test_a_rebuild_changes_the_served_policy_without_a_restart(app, site_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(site_dir, site)
    client = site_client(app, site)
    before = client.get("/").headers["Content-Security-Policy"]
    record = json.loads((site / csp.POLICY_FILE).read_text())
    record["content-security-policy"] = before.replace("script-src 'self'", "script-src 'self' 'sha256-bmV3'")
    (site / csp.POLICY_FILE).write_text(json.dumps(record))
    os.utime(site / csp.POLICY_FILE, (1, 1))  # a different mtime, whatever the clock's resolution
    assert "'sha256-bmV3'" in client.get("/").headers["Content-Security-Policy"]


def test_without_a_policy_file_no_inline_script_is_allowed(app, site_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(site_dir, site)
    (site / csp.POLICY_FILE).unlink()
    assert site_client(app, site).get("/").headers["Content-Security-Policy"] == APP_POLICY
    assert "sha256" not in APP_POLICY


def test_make_run_passes_public_https_to_the_static_site(site_dir: Path, tmp_path: Path, pdf_dir: Path) -> None:
    from conftest import app_config

    from leadform.wsgi import with_site

    one_origin = with_site(app_config(tmp_path, pdf_dir, SITE_DIR=str(site_dir), **PUBLIC_HTTPS,
                                      OUTBOX_THREAD=False))
    assert Client(one_origin).get("/").headers["Strict-Transport-Security"] == HSTS


# -- the app ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("https", [False, True])
def test_every_kind_of_app_response_carries_the_headers(make_app, site_dir: Path, https: bool) -> None:
    app = make_app(SITE_DIR=str(site_dir), **(PUBLIC_HTTPS if https else {}))
    client = app.test_client()
    responses = {
        "json": client.get("/api/csrf"),
        "html 404": client.get("/download/nope"),
        "405": client.get("/api/contact"),
        "400 csrf": client.post("/api/contact", data={"name": "x"}),
        "unknown": client.get("/api/bestaat-niet"),
    }
    for kind, response in responses.items():
        # a page drawn in the site's shell carries the site's policy, which allows the shell's inline scripts
        expected = csp.read_policy(site_dir) if response.mimetype == "text/html" else APP_POLICY
        assert_secure(response.headers, expected, https), kind
        assert response.headers["Cache-Control"] == "no-store", kind


def test_one_origin_gives_site_and_app_their_own_policy(app, site_dir: Path) -> None:
    client = site_client(app, site_dir)
    assert client.get("/").headers["Content-Security-Policy"] == csp.read_policy(site_dir)
    assert client.get("/api/csrf").headers["Content-Security-Policy"] == APP_POLICY
    assert response_headers(False)["Content-Security-Policy"] == APP_POLICY


def test_the_apps_own_pages_run_only_inline_code_their_policy_allows(make_app, site_dir: Path, tmp_path: Path) -> None:
    """Pages the app renders (errors, expired links, a form shown again) sit in the site's shell: its inline
    scripts are the build's, allowed by hash in the policy the page is sent with, and nothing the app adds
    is inline code. Without a built site, the plain page has no inline code and gets APP_POLICY."""
    plain = make_app(SITE_DIR=str(tmp_path / "no-site")).test_client().get("/download/nope")
    assert plain.headers["Content-Security-Policy"] == APP_POLICY
    assert csp.scan(plain.get_data(as_text=True)).code == []
    app = make_app(SITE_DIR=str(site_dir))
    client = app.test_client()
    pages = {
        "link not found": client.get("/download/nope"),
        "contact form again": client.post("/api/contact", data={"name": "Jan"}),
        "checklist form again": client.post("/api/checklists/teams", data={"email": "geen-adres"}),
        "405": client.get("/api/contact", headers={"Accept": "text/html"}),
    }
    for kind, response in pages.items():
        assert response.mimetype == "text/html", kind
        found = csp.scan(response.get_data(as_text=True))
        sent = response.headers["Content-Security-Policy"]
        assert found.code and found.attributes == [], (kind, found.attributes)
        assert [c.excerpt for c in found.code if c.source not in sent] == [], kind
    templates = ROOT / "leadform" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script>" not in text and "<style" not in text and "style=" not in text, template.name


def test_live_server_sends_the_headers_over_http(live_server, site_dir: Path) -> None:
    policy = csp.read_policy(site_dir)
    with urllib.request.urlopen(live_server.url + "/blog/") as response:
        assert_secure(response.headers, policy, False)
    with urllib.request.urlopen(live_server.url + "/api/csrf") as response:
        assert_secure(response.headers, APP_POLICY, False)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(live_server.url + "/.csp.json")
    assert missing.value.code == 404


# -- cookies ------------------------------------------------------------------------------------------

def test_session_cookie_over_https_is_host_prefixed_secure_httponly_lax(make_app) -> None:
    client = make_app(**PUBLIC_HTTPS).test_client()
    cookies = set_cookies(client.get("/api/csrf", base_url="https://site.test"))
    assert list(cookies) == ["__Host-session"]
    attrs = cookies["__Host-session"]
    assert "secure" in attrs and "httponly" in attrs
    assert attrs["samesite"] == "Lax" and attrs["path"] == "/" and "domain" not in attrs  # what __Host- requires


def test_session_cookie_on_local_http_is_not_secure_but_still_httponly_lax(make_app) -> None:
    client = make_app().test_client()
    cookies = set_cookies(client.get("/api/csrf"))
    assert list(cookies) == ["session"]
    attrs = cookies["session"]
    assert "secure" not in attrs and "httponly" in attrs and attrs["samesite"] == "Lax"


@pytest.mark.parametrize("https", [False, True])
def test_consent_subject_cookie_is_httponly_strict_scoped_and_secure_over_https(make_app, https: bool) -> None:
    """The banner never reads it (the app does, on the next choice), so HttpOnly stays on."""
    from leadform.consent import SUBJECT_COOKIE, example_payload

    client = make_app(**(PUBLIC_HTTPS if https else {})).test_client()
    response = client.post("/api/consent", json=example_payload(), base_url="https://site.test" if https else None,
                           headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 201, response.data
    attrs = set_cookies(response)[SUBJECT_COOKIE]
    assert "httponly" in attrs and attrs["samesite"] == "Strict" and attrs["path"] == "/api/consent"
    assert ("secure" in attrs) is https
    consent_js = (ROOT / "docs" / "assets" / "javascripts" / "consent.js").read_text(encoding="utf-8")
    assert SUBJECT_COOKIE not in consent_js  # the page has no reason to read it
