"""MkDocs hooks: take facts from site_config and stop a build the coach can fix.

MkDocs (and ProperDocs, which runs the same hooks) loads this file by path, so it stays thin and
imports the installed `site_config` package for the real work. The checks and the CSP step are
also commands of their own (`python -m site_config.checks`, `python -m site_config.csp`), so they
can run after a generator that has no hooks.
"""

from __future__ import annotations

import html
import logging
import posixpath
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.commands.build import get_context
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files, InclusionLevel
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page

from site_config import ConfigError, csp, fingerprint, images, load_settings, published
from site_config.checks import check_built, check_markdown_links, check_post_file, failure

log = logging.getLogger("mkdocs.hooks.coach")


def _fail(problems: list[str]) -> None:
    if problems:
        raise PluginError(failure(problems))


_written: list[tuple[str, Path]] = []  # the pages this build wrote, checked in on_post_build
_cards: dict[str, str] = {}  # page URL -> title, for the share cards written in on_post_build

# Pages that sell rather than document: no table of contents beside them (the top tabs are the menu).
MARKETING = ("index.md", "over.md", "contact.md", "diensten/", "checklists/")
# Below this many posts the blog shows no archive and categories tree beside its pages: a tree beside one
# post is noise. The archive and category pages are still made, so their addresses never come and go.
BLOG_TREE_FROM = 6
_blog_tree: list[bool] = [False]  # set per build in on_config
_theme: dict = {}  # this build's template environment, files and nav, for the app's page shell
APP_SHELL = ".app-shell.html"  # leadform/web.py reads it; a dotfile, so no server serves it


@event_priority(100)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Take the site's identity from site.yml, the one place the coach edits it (the feeds' too)."""
    # `make serve` shows the coach our Dutch lines, not the macros plugin's list of what it loaded.
    logging.getLogger("mkdocs.plugins.mkdocs_macros").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise PluginError(f"De site kan niet gebouwd worden: {exc}") from None
    config.site_name = settings.site.name
    config.site_url = settings.site.url
    config.site_description = settings.site.description
    config.copyright = f"© {settings.coach.company}"
    if settings.placeholders:
        lines = ", ".join(map(str, settings.placeholders))
        log.info(f"VOORBEELD: site_config/site.yml heeft nog {len(settings.placeholders)} voorbeeldwaarden "
                 f"(regels {lines}): vervang ze door je eigen gegevens, foto's en getuigenissen.")
    blog = config.plugins["material/blog"].config
    posts = Path(config.docs_dir) / blog.blog_dir / "posts"
    _blog_tree[:] = [len(list(posts.rglob("*.md"))) >= BLOG_TREE_FROM]
    rss = config.plugins.get("rss")
    if rss is not None:  # the feeds' title and description, else they keep mkdocs.yml's example values
        rss.config.feed_title = f"{settings.site.name} — blog"
        rss.config.feed_description = settings.site.description
        if not rss.config.image:  # else the feed says <image><url>None</url>
            rss.config.image = settings.site.url.rstrip("/") + "/assets/logo.png"
    return config


@event_priority(100)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Check every blog post's front matter before the blog plugin reads it."""
    blog = config.plugins["material/blog"]
    settings = load_settings()
    if "coach" in blog.authors:
        blog.authors["coach"].name = settings.coach.name
    posts_dir = blog.config.post_dir.format(blog=blog.config.blog_dir).strip("/") + "/"
    categories, authors = tuple(blog.config.categories_allowed), tuple(blog.authors)
    problems = []
    for file in files.documentation_pages():
        if file.src_uri.startswith(posts_dir):
            problems += check_post_file(file.abs_src_path, f"docs/{file.src_uri}", categories, authors)
    _fail(problems)
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Broken links and missing or undescribed images, named per page.

    Also: the top tabs are the whole navigation, so the doc-style sidebar is hidden, except on the blog
    once it has an archive and categories (BLOG_TREE_FROM posts); the pages that sell and the posts have
    no table of contents. A post's `image:` becomes the picture on its card in the blog's lists.
    """
    src = page.file.src_uri
    blog_tree = _blog_tree[0]
    hide = page.meta.setdefault("hide", [])
    for what, when in (("navigation", not src.startswith("blog/") or not blog_tree),
                       ("toc", src.startswith(MARKETING) or src.startswith("blog/"))):
        if when and what not in hide:
            hide.append(what)
    image = page.meta.get("image")
    if image and src.startswith("blog/"):  # the picture on the post's card in the blog's lists
        picture = files.get_file_from_path(posixpath.normpath(posixpath.join(posixpath.dirname(src), image)))
        if picture is None:
            _fail([f"docs/{src}: de foto '{image}' (bij 'image:') bestaat niet naast het bericht."])
        if not str(page.meta.get("image_alt") or "").strip():
            _fail([f"docs/{src}: schrijf onder 'image:' ook 'image_alt:', kort wat er op de foto staat."])
        page.meta["card_image"] = picture.url
    exists = lambda uri: files.get_file_from_path(uri) is not None  # noqa: E731
    _fail(check_markdown_links(page.file.src_uri, markdown, exists))
    return markdown


@event_priority(-100)  # after the blog plugin attached its archive and categories
def on_nav(nav: Navigation, config: MkDocsConfig, files: Files) -> Navigation:
    """Below BLOG_TREE_FROM posts, no Archief and Categorieën in the menu (the phone's drawer too); their
    pages stay, out of the menu, as the blog plugin keeps its posts. The nav is also kept for the app's
    page shell (write_app_shell)."""
    _theme["nav"] = nav
    if _blog_tree[0]:
        return nav
    blog = config.plugins["material/blog"].config
    names = {blog.archive_name, blog.categories_name}
    hidden: list = []

    def prune(items: list) -> None:
        for item in list(items):
            if item.is_section and item.title in names:
                items.remove(item)
                hidden.extend(p for p in _pages(item.children))
            elif item.children:
                prune(item.children)

    prune(nav.items)
    for page in hidden:
        page.file.inclusion = InclusionLevel.NOT_IN_NAV
    nav.pages = [p for p in nav.pages if p not in hidden]
    return nav


def _pages(items: list) -> list:
    return [p for i in items for p in (_pages(i.children) if i.children else [i]) if p.is_page]


def on_pre_build(config: MkDocsConfig) -> None:
    _written.clear()
    _cards.clear()


def on_page_context(context: dict, page: Page, config: MkDocsConfig, nav) -> dict:
    """Every page gets its own share card (og:image), named after its URL."""
    title = str(page.meta.get("title") or page.title or config.site_name)
    _cards[page.url] = title
    page.meta["og_image"] = f"{images.CARDS}/{images.card_name(page.url)}"
    return context


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    """Note which Markdown file each written page comes from, to name it in on_post_build's problems.
    MkDocs writes no file for an empty page, so there is nothing to check then."""
    if output.strip():
        _written.append((f"docs/{page.file.src_uri}", Path(page.file.abs_dest_path)))
    return output


def on_env(env, config: MkDocsConfig, files: Files):
    """Give the theme templates the same settings the pages and the app use."""
    env.globals["settings"] = load_settings()
    env.globals["fingerprint"] = fingerprint  # the consent banner's text hash (partials/consent.html)
    env.globals["picture_for"] = images.picture_for  # the portrait in the home hero (home.html)
    _theme.update(env=env, files=files)
    return env


def write_app_shell(config: MkDocsConfig) -> Path:
    """The site's page around the app's own pages (overrides/app-shell.html), with absolute links like
    the 404 page's, since the app answers under /api/ and /download/."""
    context = get_context(_theme["nav"], _theme["files"], config, base_url="/")
    path = Path(config.site_dir) / APP_SHELL
    path.write_text(_theme["env"].get_template("app-shell.html").render(context), encoding="utf-8")
    return path


@event_priority(-100)  # last, after every plugin wrote its pages
def on_post_build(config: MkDocsConfig) -> None:
    """Nothing in a finished page may load from another host, break the consent rules or the CSP
    (site_config/checks.py); then allow the inline scripts of this build by hash (site_config/csp.py).
    The same steps as `python -m site_config.checks --built` and `python -m site_config.csp`, with the
    pages named by their Markdown source. First the app's page shell, so it is checked and hashed too."""
    _written.append(("site_config/overrides/app-shell.html", write_app_shell(config)))
    site_dir = Path(config.site_dir)
    write_images(config, site_dir)
    _fail(check_built(site_dir, {path: label for label, path in _written}))
    published.write_published(site_dir, urlsplit(config.site_url or "/").path)
    try:
        csp.build_policy(site_dir)
    except csp.CSPError as exc:
        _fail([str(exc)])


def write_images(config: MkDocsConfig, site_dir: Path) -> None:
    """The coach's photos as AVIF/WebP and a share card per page, from the cache where unchanged."""
    settings = load_settings()
    cache = Path(config.config_file_path).parent / ".cache" / "images"
    for picture in images.site_pictures(settings):
        images.write_picture(picture, site_dir, cache)
    tagline = f"{settings.coach.role} · {settings.site.name}"
    for url, title in _cards.items():
        images.write_card(site_dir, cache, url, title, settings.coach.name, tagline)
# -- `make serve`: a build error shows in the browser, in Dutch ------------------------------------------

_last_error: list[str] = []


def on_build_error(error: Exception) -> None:
    _last_error[:] = [str(error)]


def on_serve(server, config: MkDocsConfig, builder):
    """After a save that breaks the build, MkDocs keeps the browser waiting for a page that never comes
    (its rebuild failed, so it holds every request). Instead, each page of the preview becomes the Dutch
    error; the next good save rebuilds the site and the browser reloads by itself."""

    def build_or_show_error() -> None:
        root = Path(server.root)
        pages = [p.relative_to(root) for p in root.rglob("*.html")]
        _last_error.clear()
        try:
            builder()
        except Exception as exc:  # noqa: BLE001 - whatever broke the build, the coach sees it in the page
            message = _last_error[0] if _last_error else str(exc)
            page = _error_page(message)
            for relative in pages or [Path("index.html")]:
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(page, encoding="utf-8")
            log.info("De fout staat ook in je browser; bewaar het verbeterde bestand en de pagina laadt opnieuw.")

    server.builder = build_or_show_error
    return server


def _error_page(message: str) -> str:
    if not message.startswith("De site kan niet gebouwd worden"):
        message = ("De site kan niet gebouwd worden. De melding hieronder komt van MkDocs (in het Engels); "
                   "de regels erboven in de terminal zeggen welk bestand het is.\n" + message)
    return f"""<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>De site kan niet gebouwd worden</title>
<style>body{{font:1.05rem/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2a2e}}
h1{{color:#b4561d}}pre{{white-space:pre-wrap;background:#f7f3ee;border-left:4px solid #b4561d;padding:1rem}}</style>
</head><body><h1>Er is iets mis met je laatste wijziging</h1>
<pre>{html.escape(message)}</pre>
<p>Verbeter het bestand en bewaar het opnieuw: deze pagina laadt dan vanzelf opnieuw met je site.</p>
</body></html>
"""
