"""A coach's site, not a documentation site: the person, the proof, the share cards and pages that lead on.

Built with `mkdocs build --strict` as the coach builds it; a second build with other facts in site.yml
(SITE_CONFIG_DIR) shows that what the coach leaves out is not shown.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from support.html import parse, seed_paragraphs
from support.site_settings import config_copy

from site_config import load_settings

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

ROOT = Path(__file__).resolve().parent.parent
POST = "blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/index.html"
SERVICES = ["diensten/index.html", "diensten/teamcoaching/index.html", "diensten/leiderschapscoaching/index.html",
            "diensten/opleiding-klantgerichtheid/index.html", "diensten/samenwerking-tussen-teams/index.html"]
MARKETING = ["index.html", "over/index.html", "contact/index.html", "checklists/teams/index.html",
             "checklists/leiderschap/index.html", *SERVICES]


def build(site_dir: Path, config_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A strict build, not quiet (the VOORBEELD reminder is an info line), optionally on other facts."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    if config_dir:
        env["SITE_CONFIG_DIR"] = str(config_dir)
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site_dir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_portrait_bio_testimonials_and_logos_are_shown(site_dir: Path, site_pages: dict[str, str]) -> None:
    settings = load_settings()
    home, about = site_pages["index.html"], site_pages["over/index.html"]
    portrait = re.search(r'<picture><source type="image/avif" srcset="([^"]+)"[^>]*><source type="image/webp"'
                         r'[^>]*><img src="([^"]+)" alt="Portret van [^"]+" width="(\d+)" height="(\d+)"', home)
    assert portrait, "the home hero shows the portrait as AVIF and WebP, with width and height"
    assert re.search(r'<img [^>]*fetchpriority="high"[^>]*class="coach-hero__photo"', home), "seen first"
    for candidate in portrait[1].split(", "):
        path, width = candidate.split(" ")
        file = site_dir / path.removeprefix("./")
        assert file.exists(), path
        with Image.open(file) as image:
            assert image.format == "AVIF" and f"{image.width}w" == width
    with Image.open(site_dir / portrait[2].removeprefix("./")) as image:
        assert image.format == "WEBP" and (image.width, image.height) == (int(portrait[3]), int(portrait[4]))
    assert "coach-hero__photo" not in site_pages["contact/index.html"]
    assert "coach-profile__photo" in about and settings.coach.bio in about
    assert f"{settings.coach.years_of_practice()} jaar ervaring als coach" in about
    for qualification in settings.coach.qualifications:
        assert f"<li>{qualification}</li>" in about
    for page in (home, about):
        assert page.count('class="coach-quote"') == len(settings.testimonials) == 2
        assert settings.testimonials[0].organisation in page
        assert page.count("coach-clients__list") == 1 and page.count('alt="Logo van ') == len(settings.clients)


def test_linkedin_in_the_footer_and_on_about(site_pages: dict[str, str]) -> None:
    linkedin = load_settings().coach.linkedin
    assert linkedin
    for path, html in site_pages.items():
        footer = html.split('<footer class="md-footer">')[-1]  # the app's page shell too
        assert f'href="{linkedin}"' in footer, path
    assert "Mijn profiel op LinkedIn" in site_pages["over/index.html"]


def test_left_out_facts_are_not_shown_and_no_voorbeeld_reminder(tmp_path: Path) -> None:
    def strip(text: str) -> str:
        text = re.sub(r"\n  portrait:\n(    .*\n)+", "\n", text)
        text = re.sub(r"\ntestimonials:\n(  .*\n)+", "\ntestimonials: []\n", text)
        text = re.sub(r"\nclients:\n(  .*\n)+", "\n", text)
        text = re.sub(r"\n  qualifications:\n(    .*\n)+", "\n", text)
        return re.sub(r"\s+# VOORBEELD.*", "", text)

    config = config_copy(tmp_path, strip)
    result = build(tmp_path / "site", config)
    assert result.returncode == 0, result.stderr
    assert "VOORBEELD" not in result.stderr
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    about = (tmp_path / "site" / "over" / "index.html").read_text(encoding="utf-8")
    for html in (home, about):
        assert "<picture>" not in html and "coach-quote" not in html and "coach-clients" not in html
        assert "Wat klanten zeggen" not in html
    assert "coach-hero__inner--portrait" not in home
    assert "coach-profile__facts" in about  # the years of practice are still there


def test_the_build_names_the_example_values_still_to_replace(tmp_path: Path) -> None:
    result = build(tmp_path / "site")
    assert result.returncode == 0, result.stderr
    reminder = [line for line in result.stderr.splitlines() if "VOORBEELD" in line]
    assert len(reminder) == 1, reminder
    assert "site_config/site.yml heeft nog" in reminder[0] and "voorbeeldwaarden" in reminder[0]
    line_of_portrait = next(i for i, line in enumerate((ROOT / "site_config" / "site.yml").read_text(
        encoding="utf-8").splitlines(), start=1) if "voorbeeld-portret.png" in line)
    assert re.search(rf"\b{line_of_portrait}\b", reminder[0])


def test_a_missing_portrait_stops_the_build_in_dutch(tmp_path: Path) -> None:
    config = config_copy(tmp_path, lambda t: t.replace("images/voorbeeld-portret.png", "images/ik.jpg"))
    result = build(tmp_path / "site", config)
    assert result.returncode != 0
    assert "de foto 'images/ik.jpg' bestaat niet" in result.stderr


def test_every_page_has_a_share_card_of_1200_by_630(site_dir: Path, site_pages: dict[str, str]) -> None:
    site_url = load_settings().site.url
    cards = set()
    pages = {path: html for path, html in site_pages.items() if path != "404.html" and not path.startswith(".")}
    for path, html in pages.items():  # not the 404 page nor the app's page shell (.app-shell.html)
        meta = parse(html).meta
        assert meta.get("og:title") and meta.get("og:description") and meta.get("og:url"), path
        image = meta.get("og:image", "")
        assert image.startswith(site_url + "assets/og/") and image.endswith(".png"), path
        assert meta.get("twitter:card") == "summary_large_image", path
        cards.add(image)
        with Image.open(site_dir / image.removeprefix(site_url)) as card:
            assert card.format == "PNG" and card.size == (1200, 630), path
    assert len(cards) == len(pages), "one card per page"


def test_no_table_of_contents_on_the_pages_that_sell(site_pages: dict[str, str]) -> None:
    for path in MARKETING:
        html = site_pages[path]
        assert "md-sidebar--secondary" not in html, path
        assert re.search(r'<div class="md-sidebar md-sidebar--primary"[^>]*hidden>', html), path


def test_service_pages_end_with_a_button_to_the_next_step(site_pages: dict[str, str]) -> None:
    for path in SERVICES:
        main = site_pages[path].split("<article")[1].split("</article>")[0]
        last = main.rsplit('<p class="coach-actions">', 1)
        assert len(last) == 2, path
        assert re.search(r'<a class="md-button md-button--primary" href="(\.\./)+contact/#afspraak">', last[1]), path
        assert re.search(r'<a class="md-button" href="(\.\./)+checklists/(teams|leiderschap)/">', last[1]), path


def test_the_blog_reads_like_a_magazine(site_pages: dict[str, str]) -> None:
    index = site_pages["blog/index.html"]
    assert index.count('class="coach-card"') == 1 and "Lees verder" in index
    assert "Archief" not in index and "Categorieën" not in index and "md-sidebar--secondary" not in index
    for path in ("blog/archive/2019/index.html", "blog/category/klantgerichtheid/index.html"):
        assert re.search(r'<div class="md-sidebar md-sidebar--primary"[^>]*hidden>', site_pages[path]), path
    post = site_pages[POST]
    assert "Metadata" not in post and "Terug naar de inhoudsopgave" not in post and "md-sidebar--post" not in post
    assert re.search(r'<p class="coach-article__meta">\s*<time datetime="2019-10-08[^"]*">8 oktober 2019</time> · '
                     r'3 min lezen · An Voorbeeld · <a href="\.\./category/klantgerichtheid/">Klantgerichtheid</a>',
                     post)
    assert 'class="md-tag' not in post, "no tag pills that lead nowhere"


def test_search_speaks_plain_dutch(site_pages: dict[str, str]) -> None:
    html = site_pages["index.html"]
    assert "overeenkomende" not in html and "Ontbreekt" not in html
    assert '"search.result.one": "1 resultaat"' in html or '"search.result.one":"1 resultaat"' in html


def test_case_story_closes_with_a_link_and_a_button_to_contact(site_pages: dict[str, str]) -> None:
    html = site_pages[POST]
    assert seed_paragraphs()[-1] in parse(html).paragraphs  # the words unchanged, the link around two of them
    assert re.search(r'neem dan gerust <a href="\.\./\.\./contact/">contact op</a>\.</p>\s*'
                     r'<p><a class="md-button md-button--primary" href="\.\./\.\./contact/">Neem contact op</a></p>',
                     html)


def test_dutch_404_with_search_and_the_main_links(site_pages: dict[str, str]) -> None:
    html = site_pages["404.html"]
    page = parse(html)
    assert page.lang == "nl" and "Pagina niet gevonden" in page.title
    assert "Deze pagina bestaat niet (meer)" in html and "Not found" not in html
    assert '<label class="md-button md-button--primary" for="__search">Zoeken op de site</label>' in html
    for target in ("/", "/diensten/", "/checklists/teams/", "/checklists/leiderschap/", "/blog/", "/over/",
                   "/contact/"):
        assert target in page.links, target


@pytest.mark.parametrize("path", ["contact/index.html", "index.html"])
def test_phone_numbers_are_tap_to_call(site_pages: dict[str, str], path: str) -> None:
    coach = load_settings().coach
    assert f'<a href="tel:+32470123456">{coach.phone}</a>' in site_pages[path]


def test_the_hero_offers_both_checklists(site_pages: dict[str, str]) -> None:
    hero = site_pages["index.html"].split('class="coach-hero__actions"')[1].split("</p>")[0]
    for slug in load_settings().checklist_slugs:
        assert f'href="checklists/{slug}/">Gratis checklist {slug}</a>' in hero


def test_read_more_links_hold_no_stray_space(site_pages: dict[str, str]) -> None:
    links = re.findall(r'<a class="coach-more" href="[^"]+">(.*?)</a>', site_pages["index.html"])
    assert len(links) == 4
    for text in links:
        assert text.startswith("Lees meer<span") and "<svg" not in text, text


def test_a_post_with_a_picture_shows_it_on_its_card(project_copy: Path, tmp_path: Path) -> None:
    posts = project_copy / "docs" / "blog" / "posts"
    (posts / "teamdag").mkdir()
    Image.new("RGB", (800, 450), "#1d4f5c").save(posts / "teamdag" / "zaal.jpg")
    post = next(posts.glob("2019-*.md"))
    post.write_text(post.read_text(encoding="utf-8").replace(
        "slug:", "image: teamdag/zaal.jpg\nimage_alt: De zaal van de teamdag\nslug:", 1),
                    encoding="utf-8")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                            cwd=project_copy, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    index = (tmp_path / "site" / "blog" / "index.html").read_text(encoding="utf-8")
    card = re.search(r'<img class="coach-card__image" src="([^"]+)" alt="De zaal van de teamdag"', index)
    assert card and (tmp_path / "site" / "blog" / card[1]).resolve().is_file()
