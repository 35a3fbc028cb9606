"""Time `mkdocs build --strict` of the real site and of generated blogs, with each build's peak RSS.

Why: the coach rebuilds on every post; the issue "Performance" asks whether that stays fast and
small in memory when the blog grows from 10 to 500 posts.

    python bench/build_time.py [--posts 10 500]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import ROOT, Build, as_dict, mkdocs_build
from generate_posts import make_project


def time_builds(work: Path, post_counts: list[int]) -> tuple[list[Build], dict[int, Path]]:
    """Build the real site, then one generated project per post count; keep the projects for reuse."""
    builds = [mkdocs_build(ROOT / "mkdocs.yml", work / "real" / "site", "real site")]
    projects: dict[int, Path] = {}
    for count in post_counts:
        project = make_project(work / f"posts-{count}", count)
        projects[count] = project
        builds.append(mkdocs_build(project / "mkdocs.yml", project / "site", f"{count} posts"))
    return builds, projects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[10, 500])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        builds, _ = time_builds(Path(tmp), args.posts)
    print(json.dumps([as_dict(b) for b in builds], indent=2))


if __name__ == "__main__":
    main()
