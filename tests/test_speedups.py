"""The build's speed-ups change how fast the site is built, never what it holds (site_config/speedups.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

POSTS = {
    # Headings after the separator, a link before it.
    "met-tussentitels": ("Een bericht met tussentitels", "Lees ook [onze diensten](../../diensten/index.md).",
                         "## Eerste stap\n\nTekst.\n\n## Tweede stap\n\nMeer tekst."),
    # A reference link and an abbreviation defined after the separator, used before it: a converter
    # that had never seen the rest would lose both (the excerpt's converter keeps them from its first,
    # whole conversion, as Material's own does).
    "met-verwijzingen": ("Een bericht met verwijzingen", "Een [traject][t] voor elke KMO.",
                         "De rest.\n\n[t]: ../../diensten/teamcoaching.md\n*[KMO]: kleine of middelgrote onderneming"),
    # The separator inside a code block before the real one: the part before the first separator
    # in the Markdown is not the excerpt, so this post must be converted whole.
    "met-code": ("Een bericht met code", "Zo knip je een bericht:\n\n```html\n<!-- more -->\n```",
                 "De rest."),
}


def write_posts(project: Path) -> None:
    for n, (slug, (title, excerpt, rest)) in enumerate(POSTS.items(), start=1):
        for category in ("Teamcoaching", "Leiderschap"):  # on the index, an archive year and two categories
            text = (f"---\ntitle: \"{title} ({category})\"\ndescription: \"Een testbericht.\"\ndate:\n"
                    f"  created: 2024-02-0{n}T10:00:00+01:00\nauthors:\n  - coach\ncategories:\n  - {category}\n"
                    f"slug: {slug}-{category.lower()}\n---\n\n{excerpt}\n\n<!-- more -->\n\n{rest}\n")
            (project / "docs" / "blog" / "posts" / f"{slug}-{category.lower()}.md").write_text(text, encoding="utf-8")


def build(project: Path, out: Path, quick: str) -> tuple[dict[str, str], tuple[int, int]]:
    """The built pages, and how many excerpts were converted whole and only before the separator."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "SITE_QUICK_EXCERPTS": quick}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-v", "-d", str(out)],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    counts = re.search(r"excerpts converted whole: (\d+), only before the separator: (\d+)", result.stderr)
    assert counts, result.stderr[-2000:]
    pages = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.html"))}
    return pages, (int(counts[1]), int(counts[2]))


def test_quick_excerpts_build_the_same_pages(project_copy: Path, tmp_path: Path) -> None:
    write_posts(project_copy)
    material, (_, none) = build(project_copy, tmp_path / "material", "0")
    quick, (whole, quick_ones) = build(project_copy, tmp_path / "quick", "1")
    assert none == 0
    # Each post's first excerpt is Material's own; the later ones took the quick way, except those of
    # the two posts with the separator inside code.
    posts = len(list((project_copy / "docs" / "blog" / "posts").glob("*.md")))
    assert whole == posts + 2 * 2 and quick_ones > 0  # the code posts are on three lists each
    assert material.keys() == quick.keys()
    different = [name for name in material if material[name] != quick[name]]
    assert not different, f"pages that differ: {different[:10]}"
    index = quick["blog/index.html"]
    # Both defined after the separator, both at work in the excerpt on the list.
    assert '<abbr title="kleine of middelgrote onderneming">KMO</abbr>' in index
    assert '<a href="../diensten/teamcoaching/">traject</a>' in index
    assert "Zo knip je een bericht" in index and "&lt;!-- more --&gt;" in index
