"""Build checks that speak the coach's language.

Each function returns a list of plain-language problems (in Dutch, for the
coach) so that `hooks.py` can fail the build with a message that names the file
and says how to fix it, before MkDocs or a plugin fails with a developer's one.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any

import yaml

FRONT_MATTER = re.compile(r"\A---\s*\n(.*?\n)---\s*\n", re.DOTALL)
EXCERPT = "<!-- more -->"
DATE_HELP = "Schrijf de datum als 2024-05-31 of, met uur, als 2024-05-31 09:30:00 (met seconden)."
# [text](target "title") and ![alt](src), outside code spans
MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?((?:https?:)?//[^'\")\s]+)", re.IGNORECASE)


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """Return (front matter, body); front matter is None when it is absent or unreadable."""
    match = FRONT_MATTER.match(text)
    if not match:
        return None, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None, text[match.end():]
    return (meta if isinstance(meta, dict) else None), text[match.end():]


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return None  # a string means YAML did not read a date: Material would refuse it too


def check_post(path: str, text: str, categories: Iterable[str], authors: Iterable[str]) -> list[str]:
    """Problems in one blog post's front matter, each a sentence the coach can act on."""
    if not FRONT_MATTER.match(text):
        return [f"{path}: het bericht begint niet met een kop tussen twee regels '---'. "
                "Maak een nieuw bericht met 'make new-post TITLE=\"Titel\"' en kopieer je tekst erin."]
    meta, body = split_front_matter(text)
    if meta is None:
        return [f"{path}: de kop tussen de regels '---' is niet leesbaar. Controleer de dubbele punten, "
                "de inspringing en de aanhalingstekens."]
    problems = []
    if not str(meta.get("title") or "").strip():
        problems.append(f"{path}: de titel ontbreekt. Voeg een regel 'title: Je titel' toe aan de kop.")
    if not str(meta.get("description") or "").strip():
        problems.append(f"{path}: de korte beschrijving ontbreekt. Voeg een regel 'description: ...' toe "
                        "(één zin die zoekmachines tonen).")
    date = meta.get("date")
    created = date.get("created") if isinstance(date, dict) else date
    if created in (None, ""):
        problems.append(f"{path}: de datum ontbreekt. {DATE_HELP}")
    elif _as_datetime(created) is None:
        problems.append(f"{path}: de datum '{created}' is geen geldige datum. {DATE_HELP}")
    allowed = list(categories)
    for category in meta.get("categories") or []:
        if category not in allowed:
            problems.append(f"{path}: de categorie '{category}' bestaat niet. Kies uit: {', '.join(allowed)}.")
    known = list(authors)
    for author in meta.get("authors") or []:
        if author not in known:
            problems.append(f"{path}: de auteur '{author}' is onbekend. Kies uit: {', '.join(known)} "
                            "(zie docs/blog/.authors.yml).")
    if "draft" in meta and not isinstance(meta["draft"], bool):
        problems.append(f"{path}: 'draft' moet 'true' (nog niet publiceren) of 'false' (publiceren) zijn.")
    if EXCERPT not in body:
        problems.append(f"{path}: de regel '{EXCERPT}' ontbreekt. Zet ze na de eerste alinea: "
                        "wat erboven staat, verschijnt als samenvatting op de blogpagina.")
    return problems


def _strip_code(markdown: str) -> str:
    markdown = re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]+`", "", markdown)


def check_markdown_links(src_uri: str, markdown: str, exists: Callable[[str], bool]) -> list[str]:
    """Broken links, missing images and images without alt text in one page's Markdown.

    `exists(src_uri)` tells whether a file with that path exists under docs/.
    """
    problems = []
    path = f"docs/{src_uri}"
    folder = posixpath.dirname(src_uri)
    for bang, label, target in MD_LINK.findall(_strip_code(markdown)):
        is_image = bang == "!"
        if is_image and not label.strip():
            problems.append(f"{path}: de afbeelding '{target}' heeft geen beschrijving (alt-tekst). "
                            "Schrijf tussen de vierkante haken wat er op de afbeelding staat.")
        if EXTERNAL.match(target):
            if is_image:
                problems.append(f"{path}: de afbeelding '{target}' komt van een andere website. "
                                "Zet het bestand in de map van het bericht en verwijs er zo naar.")
            continue
        if target.startswith(("#", "mailto:", "tel:")):
            continue
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not file_part:
            continue
        resolved = posixpath.normpath(posixpath.join(folder, file_part)).lstrip("/")
        if exists(resolved):
            continue
        if is_image:
            problems.append(f"{path}: de afbeelding '{target}' ontbreekt. Controleer de bestandsnaam "
                            "en of het bestand naast het bericht staat.")
        elif file_part.endswith(".md") or "." not in posixpath.basename(file_part):
            problems.append(f"{path}: de link '{label}' wijst naar '{target}', maar die pagina bestaat niet. "
                            "Controleer de bestandsnaam (met .md).")
        else:
            problems.append(f"{path}: de link '{label}' wijst naar het bestand '{target}', "
                            "maar dat bestand bestaat niet.")
    return problems


class _ResourceScanner(HTMLParser):
    """Collects resources a page would load from another host, and images without alt."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src",
             "audio": "src", "embed": "src", "object": "data", "track": "src"}
    LINK_LOADS = {"stylesheet", "icon", "preload", "modulepreload", "prefetch", "manifest",
                  "apple-touch-icon", "preconnect", "dns-prefetch"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.no_alt: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        attr = self.LOADS.get(tag)
        if attr and a.get(attr) and EXTERNAL.match(a[attr] or ""):
            self.external.append(a[attr] or "")
        if tag in ("img", "source") and a.get("srcset"):
            self.external += [p.split()[0] for p in (a["srcset"] or "").split(",") if EXTERNAL.match(p.strip())]
        rels = set((a.get("rel") or "").split())
        if tag == "link" and rels & self.LINK_LOADS and EXTERNAL.match(a.get("href") or ""):
            self.external.append(a.get("href") or "")
        if tag == "img" and not (a.get("alt") or "").strip():
            self.no_alt.append(a.get("src") or "?")
        if tag == "script":
            self.scripts.append(a)
        if a.get("style"):
            self.external += CSS_URL.findall(a["style"] or "")

    def handle_data(self, data: str) -> None:
        if self.lasttag == "style":
            self.external += CSS_URL.findall(data)


def scan_html(html: str) -> _ResourceScanner:
    scanner = _ResourceScanner()
    scanner.feed(html)
    return scanner


def check_page_html(path: str, html: str) -> list[str]:
    """Resources from other hosts and images without alt text in a rendered page."""
    scanner = scan_html(html)
    problems = [f"{path}: de pagina laadt '{url}' van een andere website. Dat mag niet: het lekt de "
                "bezoekers aan die website. Zet het bestand op de eigen site of laat het weg."
                for url in dict.fromkeys(scanner.external)]
    problems += [f"{path}: de afbeelding '{src}' heeft geen beschrijving (alt-tekst)."
                 for src in dict.fromkeys(scanner.no_alt)]
    return problems
