"""What a build published, for the app to check what visitors send against it.

After every build (hooks.on_post_build) `write_published()` records in `<site>/.published.json`:
- `paths`: every page's path as a browser's location.pathname gives it, the only paths
  POST /api/analytics counts (anything else would let anyone fill the table with made-up paths);
- `banner_hashes`: the fingerprints of the cookie banner text the pages show, the only ones
  POST /api/consent accepts as proof of what a visitor saw.
Dotfiles are never served, so the file is for the app only. A step of its own, like the CSP, for a
build without the MkDocs hooks: `python -m site_config.published site/`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PUBLISHED_FILE = ".published.json"
BANNER_HASH = re.compile(r'data-consent-hash="([0-9a-f]{16,64})"')


@dataclass(frozen=True)
class Published:
    paths: frozenset[str]
    banner_hashes: frozenset[str]


def page_path(relative: str, prefix: str = "") -> str:
    """`blog/index.html` -> `/blog/`, as location.pathname shows it (percent-encoded)."""
    path = "/" + relative[: -len("index.html")] if relative.endswith("index.html") else "/" + relative
    return quote(prefix.rstrip("/") + path, safe="/~")


def scan(site_dir: Path, prefix: str = "") -> Published:
    paths, hashes = set(), set()
    for page in site_dir.rglob("*.html"):
        relative = page.relative_to(site_dir).as_posix()
        if relative == "404.html" or any(part.startswith(".") for part in page.relative_to(site_dir).parts):
            continue
        paths.add(page_path(relative, prefix))
        hashes.update(BANNER_HASH.findall(page.read_text(encoding="utf-8")))
    return Published(frozenset(paths), frozenset(hashes))


def write_published(site_dir: Path, prefix: str = "") -> Published:
    published = scan(site_dir, prefix)
    data = {"paths": sorted(published.paths), "banner_hashes": sorted(published.banner_hashes)}
    (site_dir / PUBLISHED_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return published


def read_published(site_dir: Path) -> Published | None:
    """The published file of a built site, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((site_dir / PUBLISHED_FILE).read_text(encoding="utf-8"))
        return Published(frozenset(map(str, data["paths"])), frozenset(map(str, data["banner_hashes"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    """`python -m site_config.published SITE_DIR [PATH_PREFIX]`: write the file, print what it holds."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or not Path(args[0]).is_dir():
        print("usage: python -m site_config.published SITE_DIR [PATH_PREFIX]", file=sys.stderr)
        return 2
    done = write_published(Path(args[0]), args[1] if len(args) == 2 else "")
    print(f"{len(done.paths)} pages, {len(done.banner_hashes)} banner hash(es)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
