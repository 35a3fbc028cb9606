"""Every mistake the coach can make stops the build with a message the coach understands."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import mkdocs_build

from site_config import load_settings

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

POST = """---
title: Een test
description: Een bericht om de controles van de build te testen, met genoeg woorden.
date:
  created: {date}
authors: [{author}]
categories: [{category}]
---

Eerste alinea.

<!-- more -->

{body}
"""


def write_post(project: Path, date: str = "2024-03-01 10:00:00", author: str = "coach",
               category: str = "Leiderschap", body: str = "Tekst.") -> None:
    text = POST.format(date=date, author=author, category=category, body=body)
    (project / "docs" / "blog" / "posts" / "test.md").write_text(text, encoding="utf-8")


def build_error(project: Path) -> str:
    result = mkdocs_build(project / "mkdocs.yml", project / "site")
    assert result.returncode != 0, "the build should have failed"
    return result.stderr


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"date": "31/02/2024"}, ["docs/blog/posts/test.md", "de datum '31/02/2024' is geen geldige datum"]),
        ({"date": "2024-03-01 10:00"}, ["de datum '2024-03-01 10:00' is geen geldige datum", "met seconden"]),
        ({"date": "''"}, ["docs/blog/posts/test.md", "de datum ontbreekt"]),
        ({"category": "Koken"}, ["docs/blog/posts/test.md", "de categorie 'Koken' bestaat niet", "Leiderschap"]),
        ({"author": "jan"}, ["docs/blog/posts/test.md", "de auteur 'jan' is onbekend"]),
        ({"body": "Zie [de diensten](../../diensten/bestaat-niet.md)."},
         ["docs/blog/posts/test.md", "wijst naar '../../diensten/bestaat-niet.md'", "bestaat niet"]),
        ({"body": "![Een foto van het team](team.jpg)"},
         ["docs/blog/posts/test.md", "de afbeelding 'team.jpg' ontbreekt"]),
        ({"body": "![](../../assets/logo.svg)"},
         ["docs/blog/posts/test.md", "heeft geen beschrijving (alt-tekst)"]),
        ({"body": '<script src="https://cdn.example.com/x.js"></script>'},
         ["laadt 'https://cdn.example.com/x.js' van een andere website"]),
    ],
    ids=["bad-date", "date-without-seconds", "missing-date", "unknown-category", "unknown-author", "broken-link",
         "missing-image", "image-without-alt", "external-script"],
)
def test_mistake_fails_with_plain_message(project_copy: Path, kwargs: dict, words: list[str]) -> None:
    write_post(project_copy, **kwargs)
    error = build_error(project_copy)
    for word in words:
        assert word in error
    assert "Traceback" not in error


def test_unreadable_front_matter_is_explained(project_copy: Path) -> None:
    post = project_copy / "docs" / "blog" / "posts" / "test.md"
    post.write_text("---\ntitle: [oeps\n---\n\nTekst\n", encoding="utf-8")
    assert "de kop tussen de regels '---' is niet leesbaar" in build_error(project_copy)


def test_a_correct_post_builds(project_copy: Path) -> None:
    write_post(project_copy, body="Zie [teamcoaching](../../diensten/teamcoaching.md).")
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 0, result.stderr
    assert (project_copy / "site" / "blog" / "een-test" / "index.html").exists()


def test_posts_are_plain_markdown_unless_they_ask_for_macros(project_copy: Path) -> None:
    """Curly braces in a post are text (a code sample, a quote); `render_macros: true` opts in."""
    write_post(project_copy, body="In Jinja schrijf je {{ coach.name }}.")
    other = project_copy / "docs" / "blog" / "posts" / "met-macro.md"
    other.write_text((project_copy / "docs" / "blog" / "posts" / "test.md").read_text(encoding="utf-8")
                     .replace("---\n", "---\nrender_macros: true\n", 1).replace("title: Een test", "title: Met macro")
                     .replace("In Jinja schrijf je", "Je coach is"), encoding="utf-8")
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 0, result.stderr
    plain = (project_copy / "site" / "blog" / "een-test" / "index.html").read_text(encoding="utf-8")
    assert "In Jinja schrijf je {{ coach.name }}." in plain
    rendered = (project_copy / "site" / "blog" / "met-macro" / "index.html").read_text(encoding="utf-8")
    assert f"Je coach is {load_settings().coach.name}." in rendered


def test_future_posts_and_drafts_are_not_published(project_copy: Path) -> None:
    write_post(project_copy, date="2999-01-01 09:00:00")
    draft = project_copy / "docs" / "blog" / "posts" / "draft.md"
    draft.write_text(POST.format(date="2024-01-01", author="coach", category="Leiderschap", body="x")
                     .replace("title: Een test", "title: Nog geheim\ndraft: true"), encoding="utf-8")
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 0, result.stderr
    site = project_copy / "site"
    assert not (site / "blog" / "een-test").exists()
    assert not (site / "blog" / "nog-geheim").exists()
    everything = "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    assert "Nog geheim" not in everything and "Een test" not in everything
