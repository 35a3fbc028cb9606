"""A visitor in a real Chromium: home page, to the case story, nothing from another host."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.html import seed_paragraphs

pytestmark = [pytest.mark.browser, pytest.mark.engine_independent]


def test_visitor_reads_the_case_story(browser, static_server: str, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: foreign.append(r.url)
            if urlsplit(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)

    page.goto(static_server + "/")
    page.screenshot(path=str(artifacts / "home-desktop.png"), full_page=True)
    page.get_by_role("link", name="Klantgerichtheid begint bij samenwerking tussen teams").first.click()
    page.wait_for_url("**/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/")
    first = seed_paragraphs()[0]
    assert page.get_by_text(first).is_visible()
    page.screenshot(path=str(artifacts / "post-desktop.png"), full_page=True)
    context.close()

    assert errors == []
    assert foreign == []


def test_phone_width_has_no_horizontal_scroll(browser, static_server: str, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    for path, name in (("/", "home-phone"), ("/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/",
                                              "post-phone")):
        page.goto(static_server + path)
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    context.close()
