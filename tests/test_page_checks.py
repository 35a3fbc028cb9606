"""The checks of a build's finished pages, spread over worker processes (site_config/page_checks.py)."""

from __future__ import annotations

from pathlib import Path

from conftest import mkdocs_build

from site_config import checks, load_settings, page_checks

BAD_IMAGE = '<img src="https://cdn.example.com/p{n}.png" alt="foto"></body>'


def _pages(site_dir: Path, folder: Path, count: int) -> list[tuple[str, Path]]:
    """`count` copies of the real site's pages; every 40th loads an image from another host."""
    sources = sorted(p for p in site_dir.rglob("*.html") if p.name == "index.html")
    pages = []
    for n in range(count):
        html = sources[n % len(sources)].read_text(encoding="utf-8")
        if n % 40 == 7:
            html = html.replace("</body>", BAD_IMAGE.format(n=n), 1)
        path = folder / f"p{n}.html"
        path.write_text(html, encoding="utf-8")
        pages.append((f"docs/p{n}.md", path))
    return pages


def test_workers_report_every_problem_in_page_order(site_dir: Path, tmp_path: Path) -> None:
    pages = _pages(site_dir, tmp_path, page_checks.PARALLEL_FROM + 60)
    categories = tuple(load_settings().consent.optional_ids)
    checks._CHECKED.clear()
    in_workers = page_checks.check_pages(pages, categories, parallel=True)
    assert not checks._CHECKED, "the pages were checked in worker processes, not in this one"
    in_one = page_checks.check_pages(pages, categories, parallel=False)
    assert in_workers == in_one
    assert [p.split(":")[0] for p in in_one if "cdn.example.com" in p] == \
        ["docs/p7.md", "docs/p47.md", "docs/p87.md", "docs/p127.md"]


def test_a_large_blog_fails_on_a_post_that_loads_from_another_host(project_copy: Path) -> None:
    """Over PARALLEL_FROM pages `mkdocs build` checks in workers; the coach still reads which post."""
    posts = project_copy / "docs" / "blog" / "posts"
    seed = (posts / "2019-10-08-klantgerichtheid-begint-bij-samenwerking.md").read_text(encoding="utf-8")
    for n in range(page_checks.PARALLEL_FROM):
        text = seed.replace("slug: klantgerichtheid-begint-bij-samenwerking-tussen-teams", f"slug: kopie-{n}")
        (posts / f"kopie-{n}.md").write_text(text, encoding="utf-8")
    bad = posts / "kopie-42.md"
    bad.write_text(bad.read_text(encoding="utf-8") + '\n<iframe src="https://cdn.example.com/video"></iframe>\n',
                   encoding="utf-8")
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 1
    assert ("docs/blog/posts/kopie-42.md: de pagina laadt 'https://cdn.example.com/video' van een andere "
            "website") in result.stderr
