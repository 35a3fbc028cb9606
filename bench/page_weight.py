"""What a visitor downloads: the first view of a post, then the first search, on 10 and 500 posts.

Why: the issue "Performance" sets a budget of 100 KB compressed for a post's first view,
whatever the size of the blog; the home page with the coach's portrait has 150 KB (`--page /`).
Each site is served gzip-compressed (as in production) on
127.0.0.1 and opened in a fresh Chromium context (empty cache); the server counts the bytes.

"baseline" builds the same project with the lazy search switched off (the partial emptied in a
copy of the theme overrides), i.e. Material's eager search, for a before/after comparison.

    python bench/page_weight.py [--posts 10 500] [--no-baseline] [--page /]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, Hit, as_dict, chromium, gzip_server, mkdocs_build
from generate_posts import make_project

POST = "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/"
LAZY_PARTIAL = Path("partials/deferred-requests.html")
BUDGET = 100_000


@dataclass
class Weight:
    """Bytes the server sent (body after gzip, and with headers) and the requests, per phase."""

    label: str
    variant: str
    posts: int
    first_view_bytes: int = 0
    first_view_wire_bytes: int = 0
    first_view_requests: int = 0
    index_requested_on_first_view: bool = False
    search_bytes: int = 0
    search_requests: int = 0
    search_found_post: bool = False
    search_ms: int = 0
    search_index_raw_bytes: int = 0
    search_index_gzip_bytes: int = 0
    responses: list[tuple[str, int]] = field(default_factory=list)
    error: str = ""


def make_baseline(project: Path) -> Path:
    """Give the project its own theme overrides with the lazy-search partial emptied."""
    overrides = project / "overrides-baseline"
    if overrides.exists():
        shutil.rmtree(overrides)
    shutil.copytree(ROOT / "site_config" / "overrides", overrides)
    (overrides / LAZY_PARTIAL).write_text("", encoding="utf-8")
    config = project / "mkdocs.baseline.yml"
    text = (project / "mkdocs.yml").read_text(encoding="utf-8")
    config.write_text(text.replace("custom_dir: site_config/overrides", "custom_dir: overrides-baseline"),
                      encoding="utf-8")
    return config


def _summary(hits: list[Hit]) -> tuple[int, int, int]:
    return (sum(h.body_bytes for h in hits), sum(h.body_bytes + h.header_bytes for h in hits), len(hits))


def measure(browser: Any, site_dir: Path, label: str, variant: str, posts: int, first: str = POST) -> Weight:
    """Open the page `first` (the post) in a fresh context, wait for the network to settle, then search
    the post's title."""
    weight = Weight(label=label, variant=variant, posts=posts)
    index = site_dir / "search" / "search_index.json"
    if index.exists():
        raw = index.read_bytes()
        weight.search_index_raw_bytes = len(raw)
        weight.search_index_gzip_bytes = len(gzip.compress(raw, compresslevel=6, mtime=0))
    with gzip_server(site_dir) as (base, log):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        try:
            page.goto(base + first, wait_until="networkidle")
            page.wait_for_timeout(500)
            hits = log.take()
            weight.first_view_bytes, weight.first_view_wire_bytes, weight.first_view_requests = _summary(hits)
            weight.index_requested_on_first_view = any(h.path.endswith("/search_index.json") for h in hits)
            weight.responses = [(h.path, h.body_bytes) for h in sorted(hits, key=lambda h: -h.body_bytes)]

            query = page.get_by_role("textbox", name="Zoeken")
            start = time.perf_counter()
            query.click()
            query.press_sequentially("klantgerichtheid", delay=20)
            result = page.locator(f".md-search-result__list a[href$='{POST}']").first
            result.wait_for(state="visible", timeout=60_000)
            weight.search_ms = round((time.perf_counter() - start) * 1000)
            weight.search_found_post = True
            page.wait_for_load_state("networkidle")
            weight.search_bytes, _, weight.search_requests = _summary(log.take())
        except Exception as exc:  # a benchmark reports, it does not stop
            weight.error = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            context.close()
    return weight


def weigh(projects: dict[int, Path], site_dirs: dict[int, Path], baseline: bool, work: Path,
          first: str = POST) -> list[Weight]:
    """Measure each built project; with `baseline`, also build and measure the eager variant."""
    weights: list[Weight] = []
    with chromium() as browser:
        for count, project in projects.items():
            weights.append(measure(browser, site_dirs[count], f"{count} posts", "lazy search", count, first))
            if baseline:
                build = mkdocs_build(make_baseline(project), work / f"baseline-{count}" / "site", f"{count} posts")
                if build.returncode:
                    weights.append(Weight(f"{count} posts", "baseline (eager search)", count,
                                          error=build.stderr_tail))
                    continue
                weights.append(measure(browser, Path(build.site_dir), f"{count} posts", "baseline (eager search)",
                                       count, first))
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--no-baseline", action="store_true", help="skip the eager-search comparison")
    parser.add_argument("--page", default=POST, help="the page whose first view is weighed (default: the post)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-weight-") as tmp:
        work = Path(tmp)
        projects, site_dirs = {}, {}
        for count in args.posts:
            projects[count] = make_project(work / f"posts-{count}", count)
            build = mkdocs_build(projects[count] / "mkdocs.yml", projects[count] / "site", f"{count} posts")
            if build.returncode:
                raise SystemExit(build.stderr_tail)
            site_dirs[count] = Path(build.site_dir)
        weights = weigh(projects, site_dirs, not args.no_baseline, work, args.page)
    print(json.dumps([as_dict(w) for w in weights], indent=2))


if __name__ == "__main__":
    main()
