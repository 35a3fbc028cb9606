"""Building the site with either generator (MkDocs or ProperDocs) and comparing two built folders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# What differs between two builds of the same sources by design: the generator's name in each page, and
# the build's own time in the feeds (their channel dates; without git, a post's "updated" date is the build's
# too) and the sitemap. That time is in UTC; post dates come from the front matter in Belgian time
# (+0100/+0200) and are compared as they are.
GENERATOR_META = re.compile(r'<meta name="generator" content="[^"]*">')
BUILD_TIMES = (
    re.compile(r"<(pubDate|lastBuildDate)>[^<]*[-+]0000</\1>"),               # RSS: the build's UTC time
    re.compile(r'"date_modified": "[^"]*\+00:00"'),                           # JSON feed: the build's UTC time
    re.compile(r"<lastmod>[^<]*</lastmod>"),                                  # sitemap: the build's day
)


def build(generator: str, config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    """`<generator> build --strict` as the coach's build runs it (`python -m mkdocs` or `python -m properdocs`)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    return subprocess.run(
        [sys.executable, "-m", generator, "build", "--strict", "-q", "-f", str(config), "-d", str(site_dir)],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=300,
    )


def problem_lines(stderr: str) -> list[str]:
    """The Dutch problems of a failed build or step, one per line ("  - docs/…: …")."""
    return [line[4:].rstrip() for line in stderr.splitlines() if line.startswith("  - ")]


def normalised(path: Path) -> bytes:
    """A built file with what legitimately differs between generators and build times taken out."""
    data = path.read_bytes()
    if path.suffix not in (".html", ".xml", ".json"):
        return data
    text = GENERATOR_META.sub('<meta name="generator">', data.decode("utf-8"))
    for pattern in BUILD_TIMES:
        text = pattern.sub("«build time»", text)
    return text.encode("utf-8")


def built_files(site_dir: Path) -> dict[str, Path]:
    """Every file of a built folder by its path in it; the .gz copies `make build` adds are not the generator's."""
    return {p.relative_to(site_dir).as_posix(): p for p in sorted(site_dir.rglob("*"))
            if p.is_file() and p.suffix != ".gz"}
