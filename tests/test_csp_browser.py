"""Every built page in a real Chromium, under the real headers: zero CSP violations, search still works.

The pages come from `live_server` (leadform.wsgi.one_origin, `make run`'s one-origin app: the static site with the
build's hashed policy, and the app). Violations are caught twice: `securitypolicyviolation` events
(recorded by an init script that runs before any page script) and Chromium's console messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.browser

RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} ` +
                              `at ${e.sourceFile}:${e.lineNumber} ${e.sample || ""}`);
});
"""
POST = "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/"
APP_PAGES = ["/download/nope", "/team/teams/"]  # HTML pages the app renders itself (page.html)


def page_urls(site_dir: Path) -> list[str]:
    urls = []
    for file in sorted(site_dir.rglob("*.html")):
        rel = file.relative_to(site_dir).as_posix()
        urls.append("/" + (rel[: -len("index.html")] if rel.endswith("index.html") else rel))
    return urls


def open_page(browser: Browser) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORDER)
    page = context.new_page()
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            console.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.append(f"{page.url}: page error {error}"))
    return page, console


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_every_page_loads_without_a_csp_violation(browser: Browser, live_server, site_dir: Path) -> None:
    urls = page_urls(site_dir) + APP_PAGES
    assert len(urls) >= 15 and "/" in urls and POST in urls
    page, console = open_page(browser)
    found: dict[str, list[str]] = {}
    for url in urls:
        response = page.goto(live_server.url + url, wait_until="networkidle")
        assert response is not None and "default-src 'none'" in response.headers["content-security-policy"], url
        # The page really works: Material's stylesheet applies (sticky header) and its bundle ran.
        assert page.evaluate("getComputedStyle(document.querySelector('.md-header')).position") == "sticky", url
        if url not in APP_PAGES:
            assert page.evaluate("typeof document$") == "object", url  # Material's bundle ran
        if violations(page):
            found[url] = violations(page)
    assert found == {} and console == [], f"CSP violations: {found}\n" + "\n".join(console)

    # Control: the recorder sees a violation when there is one, and the browser blocks the script.
    page.goto(live_server.url + "/", wait_until="networkidle")
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.__injected = true"; document.body.append(s); }""")
    for _ in range(50):  # not wait_for_function: Playwright evaluates its predicate with eval(), which CSP refuses
        if violations(page):
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.__injected") is None
    assert "script-src-elem" in violations(page)[0]
    page.context.close()


def test_search_works_under_the_policy(browser: Browser, live_server) -> None:
    page, console = open_page(browser)
    page.goto(live_server.url + "/", wait_until="networkidle")
    query = page.get_by_role("textbox", name="Zoeken")
    query.click()
    query.press_sequentially("klantgerichtheid", delay=20)  # Material searches on keyup
    result = page.locator(f".md-search-result__list a[href$='{POST}']").first
    result.wait_for(state="visible", timeout=15_000)
    assert "Klantgerichtheid" in result.inner_text()
    assert violations(page) == [] and console == []
    result.click()
    page.wait_for_url(f"**{POST}")
    assert violations(page) == [] and console == []
    page.context.close()
