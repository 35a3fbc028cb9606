"""`make new-post` gives the coach a draft that builds and stays unpublished."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import mkdocs_build

from site_config.checks import check_post, split_front_matter
from site_config.new_post import allowed_categories, create

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out


def test_new_post_is_a_valid_draft_dated_now(tmp_path: Path) -> None:
    now = dt.datetime(2026, 5, 4, 9, 30)
    path = create("Waarom teams elkaar niet begrijpen", posts=tmp_path, now=now)
    assert path.name == "2026-05-04-waarom-teams-elkaar-niet-begrijpen.md"
    text = path.read_text(encoding="utf-8")
    meta, _ = split_front_matter(text)
    assert meta["draft"] is True
    assert meta["date"]["created"] == now
    assert check_post("x.md", text, allowed_categories(), ["coach"]) == []


def test_scaffolded_post_builds_and_is_published_once_flipped(project_copy: Path) -> None:
    posts = project_copy / "docs" / "blog" / "posts"
    path = create("Één vraag over feedback", posts=posts, now=dt.datetime(2024, 2, 1, 8, 0))
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 0, result.stderr
    assert not (project_copy / "site" / "blog" / "een-vraag-over-feedback").exists()
    path.write_text(path.read_text(encoding="utf-8").replace("draft: true", "draft: false"), encoding="utf-8")
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 0, result.stderr
    assert (project_copy / "site" / "blog" / "een-vraag-over-feedback" / "index.html").exists()
