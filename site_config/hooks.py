"""MkDocs hooks: take facts from site_config and stop a build the coach can fix.

MkDocs (and ProperDocs, which runs the same hooks) loads this file by path, so it stays thin and
imports the installed `site_config` package for the real work. The checks and the CSP step are
also commands of their own (`python -m site_config.checks`, `python -m site_config.csp`), so they
can run after a generator that has no hooks.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from site_config import ConfigError, csp, fingerprint, load_settings, published
from site_config.checks import check_built, check_markdown_links, check_post_file, failure


def _fail(problems: list[str]) -> None:
    if problems:
        raise PluginError(failure(problems))


_written: list[tuple[str, Path]] = []  # the pages this build wrote, checked in on_post_build


@event_priority(100)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Take the site's identity from site.yml, the one place the coach edits it."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise PluginError(f"De site kan niet gebouwd worden: {exc}") from None
    config.site_name = settings.site.name
    config.site_url = settings.site.url
    config.site_description = settings.site.description
    config.copyright = f"© {settings.coach.company}"
    rss = config.plugins.get("rss")
    if rss is not None and not rss.config.image:  # else the feed says <image><url>None</url>
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

    Also: outside the blog the top tabs are the whole navigation, so the doc-style
    sidebar is hidden; the blog keeps it for its archive and categories.
    """
    if not page.file.src_uri.startswith("blog/"):
        hide = page.meta.setdefault("hide", [])
        if "navigation" not in hide:
            hide.append("navigation")
    exists = lambda uri: files.get_file_from_path(uri) is not None  # noqa: E731
    _fail(check_markdown_links(page.file.src_uri, markdown, exists))
    return markdown


def on_pre_build(config: MkDocsConfig) -> None:
    _written.clear()


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
    return env


@event_priority(-100)  # last, after every plugin wrote its pages
def on_post_build(config: MkDocsConfig) -> None:
    """Nothing in a finished page may load from another host, break the consent rules or the CSP
    (site_config/checks.py); then allow the inline scripts of this build by hash (site_config/csp.py).
    The same steps as `python -m site_config.checks --built` and `python -m site_config.csp`, with the
    pages named by their Markdown source."""
    site_dir = Path(config.site_dir)
    _fail(check_built(site_dir, {path: label for label, path in _written}))
    published.write_published(site_dir, urlsplit(config.site_url or "/").path)
    try:
        csp.build_policy(site_dir)
    except csp.CSPError as exc:
        _fail([str(exc)])
