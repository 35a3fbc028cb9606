"""Markup a screen reader or a search engine relies on, checked on every built page.

These are the points Lighthouse's accessibility and SEO audits flagged before (bench/lighthouse.py):
an unnamed search dialog and links whose only text says nothing about where they lead.
"""

from __future__ import annotations

import pytest
from selectolax.lexbor import LexborHTMLParser
from support.axe import serious_violations

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

GENERIC_LINK_TEXT = {"start", "hier", "klik hier", "meer", "lees meer", "link", "here", "click here", "more",
                     "read more", "learn more", "go", "this"}


def test_every_dialog_has_a_name(site_pages: dict[str, str]) -> None:
    unnamed = [(path, node.html[:80]) for path, html in site_pages.items()
               for node in LexborHTMLParser(html).css('[role="dialog"]')
               if not (node.attributes.get("aria-label") or node.attributes.get("aria-labelledby"))]
    assert unnamed == []


def test_navigation_links_say_where_they_go(site_pages: dict[str, str]) -> None:
    generic = {(path, node.text(deep=True).strip()) for path, html in site_pages.items()
               for node in LexborHTMLParser(html).css("nav a[href]")
               if node.text(deep=True).strip().lower() in GENERIC_LINK_TEXT}
    assert generic == set()


PAGES = ["/", "/diensten/", "/diensten/teamcoaching/", "/checklists/teams/", "/checklists/leiderschap/", "/blog/",
         "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/", "/over/", "/contact/", "/privacy/",
         "/cookies/", "/404.html"]


@pytest.mark.browser
def test_axe_finds_no_serious_issue_on_any_kind_of_page(browser, static_server: str) -> None:
    """What Lighthouse's accessibility audit runs (axe-core), at phone width, cookie banner shown: a hint
    text too faint on the contact form's sand background had cost that page its 100."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 412, "height": 823})  # to inject axe
    page = context.new_page()
    found = {}
    for path in PAGES:
        page.goto(static_server + path)
        found[path] = serious_violations(page)
    context.close()
    assert found == {path: [] for path in PAGES}
