"""The site's Content-Security-Policy: no inline code except the scripts the build can hash.

Material (and the theme overrides) put a few small scripts inline in every page; their text
depends on the page's depth, so a hand-kept list of hashes would go stale with the next theme
update. Instead, after every build, `write_policy()` reads every built page, hashes each inline
script (and <style> element) and writes the policy into the build output, where the servers
read it:

- `<site>/.csp.json`        for the embedded server (`leadform.wsgi.one_origin`, `make run`)
- `<site>/.csp.nginx.conf`  an `add_header` line that deploy/nginx.conf includes

Then `verify_written()` reads both files back and checks they hold that policy, so a file that did not
come out as meant stops the build instead of breaking a page in a visitor's browser. `verify_policy()`
checks every page of a built site against the files again, from scratch: the `check` command below,
for a site that was copied or deployed. Inline code that a
hash cannot allow without 'unsafe-hashes' (style="…" attributes, onclick="…" handlers,
javascript: links) is refused outright. Dotfiles are never served (StaticSite, nginx.conf).

It is a step of its own, so it runs after any generator (the MkDocs hooks call `build_policy()`):

    python -m site_config.csp site/         # hash a built folder's inline code, write and verify the policy
    python -m site_config.csp check site/   # verify a built site again, e.g. before a deploy
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

POLICY_FILE = ".csp.json"
NGINX_FILE = ".csp.nginx.conf"

# Order matters only for readability. default-src 'none' makes every other fetch opt-in.
BASE_DIRECTIVES: dict[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),   # Material's CSS draws its icons from data: SVGs
    "font-src": ("'self'",),
    "connect-src": ("'self'",),       # the search index
    "worker-src": ("'self'",),        # the search worker
    "manifest-src": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
    "object-src": ("'none'",),
}

# Script types a browser executes (HTML "classic" and module scripts, import maps, speculation rules);
# anything else, like Material's <script type="application/json" id="__config">, is a data block.
JS_TYPES = {"", "module", "importmap", "speculationrules", "text/javascript", "application/javascript",
            "application/ecmascript", "application/x-ecmascript", "application/x-javascript", "text/ecmascript",
            "text/jscript", "text/livescript", "text/x-ecmascript", "text/x-javascript",
            *(f"text/javascript1.{n}" for n in range(6))}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data"}
JS_URL = re.compile(r"^\s*javascript:", re.IGNORECASE)


class CSPError(Exception):
    """The policy does not cover a page, or a page has inline code no hash can allow."""


@dataclass(frozen=True)
class InlineCode:
    kind: str   # "script" or "style"
    text: str
    line: int

    @property
    def source(self) -> str:
        """The CSP source expression that allows this element: 'sha256-…'."""
        digest = hashlib.sha256(self.text.encode("utf-8")).digest()
        return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"

    @property
    def excerpt(self) -> str:
        flat = " ".join(self.text.split())
        return flat[:70] + ("…" if len(flat) > 70 else "")


CODE_ELEMENT = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1[\s/>]", re.IGNORECASE | re.DOTALL)
TAG_ATTRIBUTE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
# Cheap test before the (slow, exact) attribute parse: could this page have inline code in attributes?
# Matched against the lower-cased page, each pattern starting with a literal: Python's re then finds
# candidates with a fast scan. Case-insensitive matching, or a leading character class (the space before
# the name), made this search most of the build's CSP work. Before an attribute name: ASCII whitespace,
# or a quote or "/" (<a href="x"onclick=…> and <img/onerror=…> are attributes to a browser too).
SUSPECT_ATTRIBUTES = (re.compile(r"on[a-z]+[ \t\n\r\f]*="), re.compile(r"style[ \t\n\r\f]*="))
SUSPECT_URL = "javascript:"
BEFORE_NAME = frozenset(" \t\n\r\f\"'/")


class _AttributeScanner(HTMLParser):
    """Collects inline code in attributes: style="…", on…="…", javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[tuple[int, str, str, str]] = []   # (line, tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        for name, value in attrs:
            if name == "style" or name.startswith("on") or (name in URL_ATTRIBUTES and JS_URL.match(value or "")):
                self.attributes.append((line, tag, name, value or ""))

    handle_startendtag = handle_starttag


@dataclass(frozen=True)
class Scan:
    code: list[InlineCode]                          # inline scripts (executable types) and <style> elements
    attributes: list[tuple[int, str, str, str]]     # inline code in attributes, which no hash can allow


def scan(html: str) -> Scan:
    """Inline code of one page, as a browser sees it.

    The script text is taken the way the HTML tokenizer does (up to the first `</script`), after the
    newline normalisation browsers apply before hashing (CRLF and CR become LF). A regex rather than
    a full parse: a build scans every page twice (the page checks, then write_policy), and html.parser
    reads about 1 MB/s.
    """
    html = html.replace("\r\n", "\n").replace("\r", "\n")
    code = []
    texts: list[tuple[int, int]] = []  # where script and style text is: not attributes ("var onTarget = …")
    line, counted = 1, 0
    for match in CODE_ELEMENT.finditer(html):
        texts.append(match.span(3))
        kind = match[1].lower()
        attrs = {m[1].lower(): next((v for v in m.groups()[1:] if v is not None), "")
                 for m in TAG_ATTRIBUTE.finditer(match[2])}
        if kind == "script" and ("src" in attrs or attrs.get("type", "").strip().lower() not in JS_TYPES):
            continue  # an external script (its text is ignored) or a data block such as Material's __config
        line += html.count("\n", counted, match.start())
        counted = match.start()
        code.append(InlineCode(kind, match[3], line))
    attributes: list[tuple[int, str, str, str]] = []
    if _suspect(html, texts):
        parser = _AttributeScanner()
        parser.feed(html)
        parser.close()
        attributes = parser.attributes
    return Scan(code, attributes)


def _suspect(html: str, texts: list[tuple[int, int]]) -> bool:
    """Whether anything outside script and style text looks like inline code in an attribute."""
    lowered = html.lower()
    if len(lowered) != len(html):  # a rare letter lower-cases to two: positions differ, let the parse decide
        return True

    def outside(at: int) -> bool:
        return not any(start <= at < end for start, end in texts)

    for pattern in SUSPECT_ATTRIBUTES:
        for match in pattern.finditer(lowered):
            at = match.start()
            if at and lowered[at - 1] in BEFORE_NAME and outside(at):
                return True
    at = lowered.find(SUSPECT_URL)
    while at != -1:
        if outside(at):
            return True
        at = lowered.find(SUSPECT_URL, at + 1)
    return False


def attribute_problems(label: str, found: Scan) -> list[str]:
    """Inline code that no hash can allow, in Dutch for the coach: fix the page, not the policy."""
    problems = []
    for line, tag, name, value in found.attributes:
        what = ("een style-attribuut" if name == "style"
                else "een javascript:-link" if JS_URL.match(value) else f"een {name}-attribuut")
        problems.append(
            f"{label}: <{tag} {name}=\"{value[:40]}\"> (regel {line} van de pagina) is {what}. De "
            "beveiligingsregels van de site (Content-Security-Policy) blokkeren inline stijl en code, dus de "
            "browser zou het negeren. Gebruik een klasse uit docs/assets/stylesheets/coach.css of een script "
            "in docs/assets/javascripts/.")
    return problems


def policy(script_sources: Iterable[str] = (), style_sources: Iterable[str] = ()) -> str:
    """The header value; without arguments, the policy of pages without inline code (the app's)."""
    extra = {"script-src": sorted(set(script_sources)), "style-src": sorted(set(style_sources))}
    return "; ".join(" ".join((name, *values, *extra.get(name, ()))) for name, values in BASE_DIRECTIVES.items())


def _documents(site_dir: Path) -> Iterator[tuple[Path, Scan]]:
    """Every built page with its scan. (The RSS plugin's rss.xsl browser preview of the feed is left
    unstyled: an XSLT result is re-serialised, so its <style> text cannot be hashed ahead, and browsers
    drop XSLT.)"""
    for path in sorted(site_dir.rglob("*.html")):
        yield path, scan(path.read_text(encoding="utf-8"))


def write_policy(site_dir: Path) -> str:
    """Hash every inline script and style of the built site; write the policy files. Returns the policy."""
    scripts: set[str] = set()
    styles: set[str] = set()
    problems: list[str] = []
    pages = 0
    for path, found in _documents(site_dir):
        pages += 1
        problems += attribute_problems(f"site/{path.relative_to(site_dir).as_posix()}", found)
        for code in found.code:
            (scripts if code.kind == "script" else styles).add(code.source)
    if problems:
        raise CSPError("\n".join(problems))
    value = policy(scripts, styles)
    record = {"content-security-policy": value, "pages": pages,
              "script-src hashes": sorted(scripts), "style-src hashes": sorted(styles)}
    (site_dir / POLICY_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (site_dir / NGINX_FILE).write_text(
        "# Generated by site_config/csp.py at build time; included by deploy/nginx.conf. Do not edit.\n"
        f'add_header Content-Security-Policy "{value}" always;\n', encoding="utf-8")
    return value


def build_policy(site_dir: Path) -> str:
    """The CSP step of a build: write the policy files of a built folder and read them back."""
    value = write_policy(site_dir)
    verify_written(site_dir, value)
    return value


def read_policy(site_dir: Path) -> str:
    """The policy a build wrote; CSPError when it is missing or unreadable."""
    try:
        value = json.loads((site_dir / POLICY_FILE).read_text(encoding="utf-8"))["content-security-policy"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CSPError(f"{site_dir / POLICY_FILE}: geen leesbaar beleid ({exc}). Bouw de site opnieuw.") from None
    if not isinstance(value, str) or "default-src" not in value:
        raise CSPError(f"{site_dir / POLICY_FILE}: geen geldig beleid. Bouw de site opnieuw.")
    return value


def _sources(value: str) -> dict[str, set[str]]:
    directives: dict[str, set[str]] = {}
    for part in value.split(";"):
        if not part.split():
            continue
        name, *sources = part.split()
        directives.setdefault(name.lower(), set(sources))   # a browser uses the first of duplicates
    return directives


def verify_written(site_dir: Path, value: str) -> None:
    """The policy files of this build hold `value`, the policy write_policy() made from every page's
    inline code, and it allows no 'unsafe-inline'. (Every page is covered by construction; reading
    every page again here cost a tenth of a 500-post build.)"""
    problems = []
    if read_policy(site_dir) != value:
        problems.append(f"{site_dir / POLICY_FILE} bevat niet het beleid dat de build maakte.")
    _raise_if(problems + _policy_problems(site_dir, value))


def _policy_problems(site_dir: Path, value: str) -> list[str]:
    """The nginx include holds the same policy as the JSON file, and the policy allows no 'unsafe-inline'."""
    problems = []
    nginx = (site_dir / NGINX_FILE).read_text(encoding="utf-8") if (site_dir / NGINX_FILE).is_file() else ""
    if f'"{value}"' not in nginx:
        problems.append(f"{site_dir / NGINX_FILE} hoort bij een andere build dan {site_dir / POLICY_FILE}.")
    directives = _sources(value)
    if "'unsafe-inline'" in directives.get("script-src", set()) | directives.get("style-src", set()):
        problems.append("het beleid laat 'unsafe-inline' toe.")
    return problems


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise CSPError("Content-Security-Policy klopt niet met de gebouwde pagina's:\n  - " + "\n  - ".join(problems))


def verify_policy(site_dir: Path) -> None:
    """Check every page against the policy files as written: a hash that is missing or stale fails."""
    value = read_policy(site_dir)
    problems = _policy_problems(site_dir, value)
    directives = _sources(value)
    for path, found in _documents(site_dir):
        label = f"site/{path.relative_to(site_dir).as_posix()}"
        problems += attribute_problems(label, found)
        for code in found.code:
            if code.source not in directives.get(f"{code.kind}-src", set()):
                problems.append(f"{label}, regel {code.line}: inline {code.kind} {code.source} staat niet in het "
                                f"beleid van {POLICY_FILE}, dus de browser zou het blokkeren: «{code.excerpt}»")
    _raise_if(problems)


def main(argv: list[str] | None = None) -> int:
    """`python -m site_config.csp SITE_DIR` writes the policy of a built folder; `check SITE_DIR` verifies
    it again. Exit 1 with the problems, else print the policy."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and not args[0].startswith("-"):
        step, site_dir = build_policy, Path(args[0])
    elif len(args) == 2 and args[0] == "check":
        step, site_dir = verify_policy, Path(args[1])
    else:
        print("usage: python -m site_config.csp SITE_DIR | check SITE_DIR", file=sys.stderr)
        return 2
    if not site_dir.is_dir():
        print(f"{site_dir}: die map bestaat niet.", file=sys.stderr)
        return 2
    try:
        step(site_dir)
    except CSPError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(read_policy(site_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
