"""The built site as a visitor, a search engine and a feed reader see it."""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from support.html import parse, seed_calls_to_action, seed_paragraphs
from werkzeug.exceptions import HTTPException

from leadform.wsgi import APP_PREFIXES
from site_config.checks import CSS_URL, scan_html

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

ROOT = Path(__file__).resolve().parent.parent
POST = "blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/index.html"


def test_case_story_is_published_word_for_word(site_pages: dict[str, str]) -> None:
    paragraphs = parse(site_pages[POST]).paragraphs
    seed = seed_paragraphs()
    assert len(seed) == 18
    found = [p for p in paragraphs if p in seed]
    assert found == seed, "every paragraph of the seed, in order, exactly as written"


def test_case_story_date_and_title(site_pages: dict[str, str]) -> None:
    html = site_pages[POST]
    assert 'datetime="2019-10-08 17:41:00+02:00"' in html
    assert "<h1" in html and "Klantgerichtheid begint bij samenwerking tussen teams" in html


def test_both_checklist_calls_to_action_stand_under_the_post(site_pages: dict[str, str]) -> None:
    html = site_pages[POST]
    page_text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    last_paragraph = seed_paragraphs()[-1]
    for line in seed_calls_to_action():
        assert line in page_text
        assert page_text.index(line) > page_text.index(last_paragraph)
    assert 'href="../../checklists/teams/"' in html
    assert 'href="../../checklists/leiderschap/"' in html


def test_every_page_is_dutch_with_title_description_and_canonical(site_pages: dict[str, str]) -> None:
    for path, html in site_pages.items():
        page = parse(html)
        assert page.lang == "nl", path
        assert page.title.strip(), path
        if path in ("404.html", ".app-shell.html"):  # error pages and the app's page shell have no URL of their own
            continue
        assert len(page.meta.get("description", "")) > 40, path
        assert page.canonical and page.canonical.startswith("https://"), path
        assert page.meta.get("og:title") and page.meta.get("og:url") == page.canonical, path


def test_every_internal_link_and_anchor_resolves(site_dir: Path, site_pages: dict[str, str], app) -> None:
    """Links into the site point at a built page (and anchor); links into the app at one of its GET routes."""
    ids = {path: parse(html).ids for path, html in site_pages.items()}
    routes = app.url_map.bind("site.test")
    broken = []
    for path, html in site_pages.items():
        for href in parse(html).links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "tel:")):
                continue
            if parts.path.startswith(APP_PREFIXES):
                try:
                    routes.match(parts.path, method="GET")
                except HTTPException:
                    broken.append(f"{path} -> {href} (no such page in the app)")
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), unquote(parts.path))) \
                if parts.path else path
            target = target.lstrip("./") if target != "." else ""
            file = site_dir / target
            if file.is_dir() or parts.path.endswith("/") or target == "":
                file = file / "index.html"
            if not file.exists():
                broken.append(f"{path} -> {href}")
                continue
            rel = file.relative_to(site_dir).as_posix()
            if parts.fragment and rel in ids and parts.fragment not in ids[rel] \
                    and not parts.fragment.startswith("__"):
                broken.append(f"{path} -> {href} (anchor)")
    assert broken == []


def test_nothing_is_loaded_from_another_host(site_dir: Path, site_pages: dict[str, str]) -> None:
    for path, html in site_pages.items():
        assert scan_html(html).external == [], path
    for css in site_dir.rglob("*.css"):
        assert CSS_URL.findall(css.read_text(encoding="utf-8")) == [], css.name


def test_feed_holds_the_post_with_its_real_date(site_dir: Path) -> None:
    root = ET.parse(site_dir / "feed_rss_created.xml").getroot()
    items = root.findall("./channel/item")
    post = next(i for i in items if "Klantgerichtheid begint" in i.findtext("title", ""))
    assert post.findtext("pubDate", "").startswith("Tue, 08 Oct 2019 17:41:00")
    assert post.findtext("link", "").endswith("/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/")


def test_sitemap_lists_the_post_and_the_pages(site_dir: Path) -> None:
    sitemap = (site_dir / "sitemap.xml").read_text(encoding="utf-8")
    for url in ("blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/", "contact/",
                "checklists/teams/", "checklists/leiderschap/", "privacy/", "cookies/"):
        assert url in sitemap


def test_required_pages_exist(site_dir: Path) -> None:
    for page in ("index.html", "contact/index.html", "over/index.html", "privacy/index.html",
                 "cookies/index.html", "checklists/teams/index.html", "checklists/leiderschap/index.html",
                 "diensten/teamcoaching/index.html", "diensten/leiderschapscoaching/index.html",
                 "diensten/opleiding-klantgerichtheid/index.html",
                 "diensten/samenwerking-tussen-teams/index.html", "blog/archive/2019/index.html",
                 "blog/category/klantgerichtheid/index.html"):
        assert (site_dir / page).exists(), page


def test_footer_has_legal_details_from_site_config(site_pages: dict[str, str]) -> None:
    from site_config import load_settings

    coach = load_settings().coach
    for path in ("index.html", POST, "contact/index.html"):
        html = site_pages[path]
        assert coach.company_number in html and coach.address.street in html, path
        assert 'href="' in html and "Cookiebeleid" in html


def test_checklist_pdfs_are_not_public_files_of_the_site(site_dir: Path) -> None:
    assert list(site_dir.rglob("*.pdf")) == []


def test_the_feeds_take_their_title_from_site_yml(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the coach replaced the example values in site.yml, the feeds say the new name too."""
    import dataclasses

    from mkdocs.config import load_config

    import site_config

    real = site_config.load_settings()
    mine = dataclasses.replace(real, site=dataclasses.replace(real.site, name="Coaching Céline Maes",
                                                              description="Teamcoaching in de Westhoek."))
    monkeypatch.chdir(ROOT)
    config = load_config("mkdocs.yml")
    monkeypatch.setattr(config.plugins["site_config/hooks.py"], "load_settings", lambda: mine)
    config = config.plugins.on_config(config)
    rss = config.plugins["rss"]
    for feed in (rss.feed_created, rss.feed_updated):
        assert feed.title == "Coaching Céline Maes — blog"
        assert feed.description == "Teamcoaching in de Westhoek."
    assert "Voorbeeld" not in "".join(line for line in (ROOT / "mkdocs.yml").read_text(encoding="utf-8").splitlines()
                                      if "feed" in line)
