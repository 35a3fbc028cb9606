"""Markup a screen reader or a search engine relies on, checked on every built page.

These are the points Lighthouse's accessibility and SEO audits flagged before (bench/lighthouse.py):
an unnamed search dialog and links whose only text says nothing about where they lead.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

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
