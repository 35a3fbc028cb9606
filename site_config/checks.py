"""Build checks that speak the coach's language.

Each function returns a list of plain-language problems (in Dutch, for the
coach) so that a build can stop with a message that names the file and says how
to fix it, before the generator or a plugin fails with a developer's one.

They run as steps of their own, so they do not depend on one generator's hooks
(MkDocs, ProperDocs, Zensical...):

    python -m site_config.checks docs/           # the Markdown sources, before the generator
    python -m site_config.checks --built site/   # every finished page of a built folder, after it

`hooks.py` calls the same functions from MkDocs' (and ProperDocs') events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import posixpath
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from selectolax.lexbor import LexborHTMLParser

from site_config import csp, load_settings

FRONT_MATTER = re.compile(r"\A---\s*\n(.*?\n)---\s*\n", re.DOTALL)
EXCERPT = "<!-- more -->"
DATE_HELP = "Schrijf de datum als 2024-05-31 of, met uur, als 2024-05-31 09:30:00 (met seconden)."
# [text](target "title") and ![alt](src), outside code spans
MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?((?:https?:)?//[^'\")\s]+)", re.IGNORECASE)
# libyaml's safe loader when PyYAML has it: every post's front matter is read on every build.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """Return (front matter, body); front matter is None when it is absent or unreadable."""
    match = FRONT_MATTER.match(text)
    if not match:
        return None, text
    try:
        meta = yaml.load(match.group(1), Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return None, text[match.end():]
    return (meta if isinstance(meta, dict) else None), text[match.end():]


def check_post_file(abs_path: str, path: str, categories: Iterable[str], authors: Iterable[str]) -> list[str]:
    """check_post for a post on disk."""
    return check_post(path, Path(abs_path).read_text(encoding="utf-8-sig"), categories, authors)


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


@functools.lru_cache(maxsize=2)  # the page's checks run one after the other on the same text
def parse_page(html: str) -> LexborHTMLParser:
    """A finished page as a DOM. lexbor (C) rather than html.parser, which read about 7 MB/s: with
    500 posts the page checks alone took longer than Material's whole build (bench/build_cost.py)."""
    return LexborHTMLParser(html)


class _ResourceScanner:
    """Collects resources a page would load from another host, and images without alt."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src",
             "audio": "src", "embed": "src", "object": "data", "track": "src"}
    LINK_LOADS = {"stylesheet", "icon", "preload", "modulepreload", "prefetch", "manifest",
                  "apple-touch-icon", "preconnect", "dns-prefetch"}
    SELECTOR = ", ".join([*LOADS, "link", "style", "[style]"])

    def __init__(self) -> None:
        self.external: list[str] = []
        self.no_alt: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def feed(self, html: str) -> None:
        for node in parse_page(html).css(self.SELECTOR):
            self.handle_starttag(node.tag or "", list(node.attributes.items()))
            if node.tag == "style":
                self.external += CSS_URL.findall(node.text(deep=True))

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


# -- Consent: the banner obeys the rules, and no script runs before the visitor agreed -------------------------

CONSENT_TEMPLATE = "site_config/overrides/partials/consent.html"
# Data for scripts, never run by the browser (Material's #__config).
DATA_SCRIPT_TYPES = frozenset({"application/json", "application/ld+json"})
# The site's own scripts that run without a choice: Material's bundle, forms.js, consent.js,
# scorecard.js (the checklist pages) and sent-to.js (the thank-you pages show the address the mail went to).
OWN_SCRIPT = re.compile(
    r"^(?:/|(?:\.{1,2}/)+)?assets/javascripts/(?:bundle\.[0-9a-f]{8}\.min|forms|consent|scorecard|sent-to)\.js$")
# Inline scripts that run without a choice: Material's (partials/javascripts/, except its consent banner,
# which keeps a choice without proof) and these necessary ones of the site itself, named on purpose.
OWN_INLINE_TEMPLATES = ("partials/deferred-requests.html",)
MATERIAL_INLINE_EXCLUDED = frozenset({"consent.html"})
BANNER_HASH = re.compile(r"[0-9a-f]{16,64}")
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                   "wbr"})


def template_script_pattern(source: str) -> re.Pattern[str]:
    """What an inline script of a theme template renders to: Jinja expressions match anything, spacing is free."""
    literals = [r"\s*".join(map(re.escape, part.split())) for part in _JINJA_TAG.split(source)]
    return re.compile(r"\s*" + ".*?".join(literals) + r"\s*", re.DOTALL)


@functools.lru_cache(maxsize=64)
def _template_patterns(path: Path, mtime: float) -> tuple[re.Pattern[str], ...]:
    return tuple(template_script_pattern(body) for body in _INLINE_SCRIPT.findall(path.read_text(encoding="utf-8")))


@functools.cache
def _inline_script_templates() -> tuple[Path, ...]:
    """The templates whose inline scripts may run without a choice; an override wins, as in MkDocs."""
    import material

    from site_config import CONFIG_DIR

    material_dir = Path(material.__file__).parent / "templates"
    overrides = CONFIG_DIR / "overrides"
    material_js = sorted((material_dir / "partials" / "javascripts").glob("*.html"))
    names = [f"partials/javascripts/{p.name}" for p in material_js if p.name not in MATERIAL_INLINE_EXCLUDED]
    return tuple(overrides / name if (overrides / name).is_file() else material_dir / name
                 for name in (*names, *OWN_INLINE_TEMPLATES))


def allowed_inline_scripts() -> tuple[re.Pattern[str], ...]:
    """Patterns of the inline scripts a page may hold, read from the templates that render them.

    Read from the installed Material and our overrides, so a Material upgrade or an edit of an
    allowed template needs no change here (a template is read again when its file changed).
    """
    patterns: list[re.Pattern[str]] = []
    for source in _inline_script_templates():
        if source.is_file():
            patterns += _template_patterns(source, source.stat().st_mtime)
    return tuple(patterns)


class _ConsentScanner:
    """The scripts of a finished page and the controls of its cookie banner (the element with id __consent)."""

    def __init__(self) -> None:
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.banner: dict[str, str | None] | None = None
        self.material_banner = False
        self.buttons: list[tuple[dict[str, str | None], str]] = []
        self.ticked: list[str] = []

    def feed(self, html: str) -> None:
        tree = parse_page(html)
        self.scripts = [(dict(node.attributes), node.text(deep=True)) for node in tree.css("script")]
        self.material_banner = tree.css_first('[data-md-component="consent"]') is not None
        banner = next((node for node in tree.css('[id="__consent"]') if node.tag not in _VOID), None)
        if banner is None:
            return
        self.banner = dict(banner.attributes)
        for node in banner.css("input[checked], button"):
            a = dict(node.attributes)
            if node.tag == "input":
                self.ticked.append(a.get("name") or a.get("id") or "input")
            else:
                self.buttons.append((a, " ".join(node.text(deep=True).split())))

    def close(self) -> None:
        """Nothing buffered (kept so callers written for html.parser still work)."""


def _preview(code: str) -> str:
    text = " ".join(code.split())
    return text if len(text) <= 50 else text[:50] + "…"


def _banner_problems(path: str, scan: _ConsentScanner) -> list[str]:
    problems = []
    if scan.material_banner:
        problems.append(f"{path}: Materials eigen cookiebanner staat aan ('consent' onder 'extra' in mkdocs.yml). "
                        "Die voldoet niet: hij heeft geen knop om te weigeren en vinkt cookies vooraf aan. "
                        f"Haal 'consent' weg uit mkdocs.yml; de site heeft een eigen banner ({CONSENT_TEMPLATE}).")
    if scan.banner is None:
        return [*problems, f"{path}: de cookiebanner ontbreekt op deze pagina. Elke pagina moet hem tonen: hij komt "
                           f"uit {CONSENT_TEMPLATE}, via site_config/overrides/main.html."]
    actions = {a.get("data-consent-action"): a for a, text in scan.buttons if text}
    accept, reject = actions.get("accept_all"), actions.get("reject_all")
    if reject is None:
        problems.append(f"{path}: de cookiebanner heeft geen knop 'Alles weigeren'. Weigeren moet even makkelijk zijn "
                        f"als aanvaarden: zet in {CONSENT_TEMPLATE} een knop met data-consent-action=\"reject_all\" "
                        "naast 'Alles accepteren'.")
    if accept is None:
        problems.append(f"{path}: de cookiebanner heeft geen knop 'Alles accepteren' (data-consent-action="
                        f"\"accept_all\") in {CONSENT_TEMPLATE}.")
    if accept is not None and reject is not None and accept.get("class") != reject.get("class"):
        problems.append(f"{path}: in de cookiebanner zien 'Alles accepteren' en 'Alles weigeren' er verschillend uit. "
                        f"Geef beide knoppen in {CONSENT_TEMPLATE} dezelfde opmaak (hetzelfde class-attribuut), "
                        "zodat geen van beide meer opvalt.")
    problems += [f"{path}: in de cookiebanner staat '{name}' vooraf aangevinkt. Niets mag vooraf aangevinkt zijn: de "
                 f"bezoeker vinkt zelf aan. Verwijder 'checked' in {CONSENT_TEMPLATE}." for name in scan.ticked]
    if not BANNER_HASH.fullmatch(scan.banner.get("data-consent-hash") or ""):
        problems.append(f"{path}: de cookiebanner mist de vingerafdruk van zijn tekst (data-consent-hash); zonder "
                        f"kunnen we niet aantonen wat de bezoeker las. Zie {CONSENT_TEMPLATE}.")
    return problems


def _marked_script_problems(path: str, attrs: dict[str, str | None], code: str,
                            categories: tuple[str, ...]) -> list[str]:
    category, src = attrs.get("data-consent") or "", attrs.get("data-src") or ""
    name = f"het script '{src or _preview(code)}'"
    problems = []
    if category not in categories:
        problems.append(f"{path}: {name} wacht op toestemming voor '{category}', maar dat is geen cookiecategorie "
                        f"waarvoor de bezoeker kiest. Kies uit: {', '.join(categories) or 'geen'} "
                        "(site_config/site.yml).")
    if (attrs.get("type") or "").strip().lower() != "text/plain":
        problems.append(f"{path}: {name} met data-consent moet type=\"text/plain\" hebben; anders loopt het meteen, "
                        "ook zonder toestemming.")
    if attrs.get("src") is not None:
        problems.append(f"{path}: {name} met data-consent gebruikt src; schrijf data-src, zodat de browser het bestand "
                        "zeker pas na toestemming ophaalt.")
    if not src or code.strip():
        problems.append(f"{path}: {name} met data-consent verwijst niet met data-src naar een bestand. Zet de code in "
                        "een bestand onder docs/assets/javascripts/ en verwijs ernaar met data-src.")
    elif EXTERNAL.match(src):
        problems.append(f"{path}: {name} komt van een andere website. Dat mag niet, ook niet na toestemming: het lekt "
                        "de bezoekers aan die website. Zet het bestand op de eigen site.")
    return problems


def _script_problems(path: str, scan: _ConsentScanner, categories: tuple[str, ...]) -> list[str]:
    problems = []
    inline = allowed_inline_scripts()
    for attrs, code in scan.scripts:
        if (attrs.get("type") or "").strip().lower() in DATA_SCRIPT_TYPES:
            continue
        if "data-consent" in attrs:
            problems += _marked_script_problems(path, attrs, code, categories)
            continue
        src = attrs.get("src")
        if src is not None and OWN_SCRIPT.match(re.split(r"[?#]", src, maxsplit=1)[0]):
            continue
        if src is None and any(pattern.fullmatch(code) for pattern in inline):
            continue
        what = f"het script '{src}'" if src is not None else f"een script ('{_preview(code)}')"
        problems.append(
            f"{path}: de pagina bevat {what} dat meteen loopt, zonder toestemming van de bezoeker. Een script dat "
            "niet strikt nodig is, mag pas lopen na toestemming: schrijf het als <script type=\"text/plain\" "
            "data-consent=\"CATEGORIE\" data-src=\"/assets/javascripts/bestand.js\"></script> met een categorie uit "
            f"site_config/site.yml ({', '.join(categories) or 'geen'}), of laat het weg. Is het een noodzakelijk "
            "script van de site zelf, zet het dan in de lijst in site_config/checks.py.")
    return problems


def check_consent(path: str, html: str, categories: Iterable[str]) -> list[str]:
    """The cookie banner and the scripts of one finished page.

    The banner must offer 'Alles weigeren' as plainly as 'Alles accepteren' and tick nothing in advance;
    every script must be one of the site's own (OWN_SCRIPT, allowed_inline_scripts) or wait for consent
    for one of `categories` (the optional cookie categories of site.yml).
    """
    scan = _ConsentScanner()
    scan.feed(html)
    scan.close()
    categories = tuple(categories)
    return _banner_problems(path, scan) + _script_problems(path, scan, categories)


# -- All checks of one finished page -----------------------------------------------------------------------------

def check_finished_page(path: str, html: str, categories: Iterable[str]) -> list[str]:
    """Everything a finished page must pass: nothing from another host, alt texts, the consent rules, no
    inline code in attributes (the CSP)."""
    problems = check_page_html(path, html) + check_consent(path, html, categories)
    problems += csp.attribute_problems(path, csp.scan(html))  # style="…", onclick="…"
    return problems


def check_built(site_dir: Path, labels: dict[Path, str] | None = None) -> list[str]:
    """check_finished_page over every HTML file of a built folder, whichever generator wrote it.

    A page is named by `labels` where the caller knows its source (the hooks: `docs/over.md`),
    else by its path in the folder (`site/over/index.html`)."""
    categories = tuple(load_settings().consent.optional_ids)
    labels = {path.resolve(): label for path, label in (labels or {}).items()}
    problems: list[str] = []
    for path in sorted(site_dir.rglob("*.html")):
        label = labels.get(path.resolve()) or f"site/{path.relative_to(site_dir).as_posix()}"
        problems += check_finished_page(label, path.read_text(encoding="utf-8"), categories)
    return problems


def failure(problems: list[str]) -> str:
    """The one message that stops a build, whichever step found the problems."""
    return "De site kan niet gebouwd worden:\n  - " + "\n  - ".join(problems)


# -- The Markdown sources, without a generator -------------------------------------------------------------------

class _ConfigLoader(SAFE_LOADER):  # type: ignore[misc, valid-type]
    """Reads mkdocs.yml for its data; tags that name Python objects (the emoji functions) or the
    environment are not data the checks need, so they load as None instead of failing."""


_ConfigLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
_ConfigLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@dataclass(frozen=True)
class Blog:
    """What the blog's settings in mkdocs.yml say about posts (the names and defaults of Material's blog)."""

    posts_dir: str                  # below docs/, with a trailing "/": "blog/posts/"
    categories: tuple[str, ...]     # categories_allowed
    authors: tuple[str, ...]        # the keys of the authors file
    drafts_published: bool          # `draft`: drafts are built too
    future_is_draft: bool           # `draft_if_future_date`


def read_blog(config_file: Path, docs_dir: Path) -> Blog:
    """The blog's rules, from the generator's configuration file and the authors file in the docs folder."""
    config = yaml.load(config_file.read_text(encoding="utf-8"), Loader=_ConfigLoader) or {}  # noqa: S506
    options: dict[str, Any] = {}
    for plugin in config.get("plugins") or []:
        name, values = next(iter(plugin.items())) if isinstance(plugin, dict) else (plugin, {})
        if name in ("blog", "material/blog"):
            options = values or {}
    blog_dir = str(options.get("blog_dir", "blog")).strip("/")
    posts_dir = str(options.get("post_dir", "{blog}/posts")).format(blog=blog_dir).strip("/") + "/"
    authors_file = docs_dir / str(options.get("authors_file", "{blog}/.authors.yml")).format(blog=blog_dir)
    authors: dict[str, Any] = {}
    if options.get("authors", True) and authors_file.is_file():
        data = yaml.load(authors_file.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}  # noqa: S506
        authors = data.get("authors") or {}
    return Blog(posts_dir, tuple(options.get("categories_allowed") or ()), tuple(authors),
                bool(options.get("draft", False)), bool(options.get("draft_if_future_date", False)))


def _published(meta: dict[str, Any] | None, blog: Blog) -> bool:
    """Whether the generator builds this post now: drafts and future posts are not built, so their links
    are checked when they are (as the MkDocs build does)."""
    if meta is None or blog.drafts_published:
        return True
    if meta.get("draft") is True:
        return False
    date = meta.get("date")
    created = _as_datetime(date.get("created") if isinstance(date, dict) else date)
    if not blog.future_is_draft or created is None:
        return True
    return created <= dt.datetime.now(created.tzinfo)  # a date with an offset ("+02:00") compares as such


def check_sources(docs_dir: Path, config_file: Path) -> tuple[int, list[str]]:
    """Every Markdown file of the docs folder: the posts' front matter, then the links and images of every
    page that will be built. Returns the number of files read and the problems."""
    blog = read_blog(config_file, docs_dir)

    def exists(uri: str) -> bool:
        return (docs_dir / uri).is_file()

    files = sorted(p for p in docs_dir.rglob("*.md")
                   if not any(part.startswith(".") for part in p.relative_to(docs_dir).parts))
    problems: list[str] = []
    for path in files:
        src_uri = path.relative_to(docs_dir).as_posix()
        label = f"docs/{src_uri}"
        text = path.read_text(encoding="utf-8-sig")
        meta, body = split_front_matter(text)
        if src_uri.startswith(blog.posts_dir):
            problems += check_post(label, text, blog.categories, blog.authors)
            if not _published(meta, blog):
                continue
        problems += check_markdown_links(src_uri, _strip_templates(body), exists)
    return len(files), problems


def _strip_templates(markdown: str) -> str:
    """Macros ({{ ... }}, {% ... %}) render their own links; the coach's literal links are what is checked."""
    return _JINJA_TAG.sub("", markdown)


def main(argv: list[str] | None = None) -> int:
    """`python -m site_config.checks DOCS_DIR` or `--built SITE_DIR`: exit 1 with the problems in Dutch."""
    parser = argparse.ArgumentParser(prog="python -m site_config.checks", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the docs folder, or with --built a built site")
    parser.add_argument("--built", action="store_true", help="check the finished pages of a built folder")
    parser.add_argument("--config", type=Path, help="the blog's settings (default: mkdocs.yml beside DOCS_DIR)")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder}: die map bestaat niet.", file=sys.stderr)
        return 2
    config = args.config or args.folder.resolve().parent / "mkdocs.yml"
    if args.built:
        count, problems = len(list(args.folder.rglob("*.html"))), check_built(args.folder)
    elif not config.is_file():
        print(f"{config}: dat instellingenbestand bestaat niet. Geef het mee met --config.", file=sys.stderr)
        return 2
    else:
        try:
            count, problems = check_sources(args.folder, config)
        except yaml.YAMLError as exc:
            print(f"{config} is niet leesbaar: {exc}", file=sys.stderr)
            return 2
    if problems:
        print(failure(problems), file=sys.stderr)
        return 1
    print(f"{args.folder}: {count} bestanden gecontroleerd, geen problemen.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
