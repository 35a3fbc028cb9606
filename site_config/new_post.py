"""Scaffold a blog post: `make new-post TITLE="Mijn titel"`.

Writes docs/blog/posts/<date>-<slug>.md with front matter that passes the build
checks, dated now and marked as a draft until the coach sets `draft: false`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import unicodedata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
POSTS = ROOT / "docs" / "blog" / "posts"


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-") or "bericht"


def allowed_categories(mkdocs_yml: Path = ROOT / "mkdocs.yml") -> list[str]:
    text = mkdocs_yml.read_text(encoding="utf-8")
    block = re.search(r"categories_allowed:\n((?:\s+- .+\n)+)", text)
    return re.findall(r"- (.+)", block.group(1)) if block else []


def render(title: str, now: dt.datetime, categories: list[str]) -> str:
    meta = {
        "title": title,
        "description": "Schrijf hier in één zin waarover dit artikel gaat.",
        "date": {"created": now.replace(second=0, microsecond=0)},
        "draft": True,
        "authors": ["coach"],
        "categories": categories[:1],
        "tags": [],
        "slug": slugify(title),
    }
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    return (
        f"---\n{front}---\n\n"
        f"<!-- Kies categorieën uit: {', '.join(categories)}. Zet 'draft: false' om te publiceren. -->\n\n"
        "Schrijf hier de eerste alinea: ze verschijnt als samenvatting op de blogpagina.\n\n"
        "<!-- more -->\n\n"
        "Schrijf hier de rest van je artikel.\n"
    )


def create(title: str, posts: Path = POSTS, now: dt.datetime | None = None) -> Path:
    now = now or dt.datetime.now().astimezone()
    path = posts / f"{now:%Y-%m-%d}-{slugify(title)}.md"
    if path.exists():
        raise SystemExit(f"Er bestaat al een bericht {path.relative_to(posts.parent.parent.parent)}.")
    path.write_text(render(title, now, allowed_categories()), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Maak een nieuw blogbericht (als ontwerp).")
    parser.add_argument("title", help="de titel van het bericht")
    path = create(parser.parse_args().title.strip() or "Nieuw bericht")
    print(f"Nieuw bericht: {path.relative_to(ROOT)} (nog een ontwerp: zet 'draft: false' om te publiceren)")


if __name__ == "__main__":
    main()
