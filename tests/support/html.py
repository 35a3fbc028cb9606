"""Small readers of built HTML used by several test files."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

# The coach's case story as delivered, kept in the repository so a plain clone can run the tests.
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "case-klantgerichtheid.txt"


def seed_paragraphs() -> list[str]:
    """The case story's body paragraphs: line 2 up to the line ending 'neem dan gerust contact op.'."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    end = next(i for i, line in enumerate(lines) if line.rstrip().endswith("neem dan gerust contact op."))
    return [line.strip() for line in lines[1:end + 1] if line.strip()]


def seed_calls_to_action() -> list[str]:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.startswith("Download nu uw gratis")]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.lang: str | None = None
        self.title = ""
        self._in_p = 0
        self._in_title = False
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "meta" and ("name" in a or "property" in a):
            self.meta[a.get("name") or a["property"]] = a.get("content", "")
        elif tag == "link" and a.get("rel") == "canonical":
            self.canonical = a.get("href")
        elif tag == "title":
            self._in_title = True
        elif tag == "p":
            self._in_p += 1
            self._buf = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "p" and self._in_p:
            self._in_p -= 1
            self.paragraphs.append(re.sub(r"\s+", " ", "".join(self._buf)).strip())

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._in_p:
            self._buf.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector
