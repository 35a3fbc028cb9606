"""MkDocs hooks: take facts from site_config and stop a build the coach can fix.

MkDocs loads this file by path, so it stays thin and imports the installed
`site_config` package for the real work.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from site_config import ConfigError, csp, fingerprint, load_settings, page_checks, speedups
from site_config.checks import check_markdown_links, check_post_file

log = logging.getLogger("mkdocs.hooks.site_config")


def _fail(problems: list[str]) -> None:
    if problems:
        raise PluginError("De site kan niet gebouwd worden:\n  - " + "\n  - ".join(problems))


_dirty = False
_command = "build"
_written: list[tuple[str, Path]] = []  # the pages this build wrote, checked in on_post_build


def on_startup(command: str, dirty: bool) -> None:
    global _dirty, _command
    _dirty, _command = dirty, command


@event_priority(100)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Take the site's identity from site.yml, the one place the coach edits it."""
    speedups.fast_blog_front_matter()
    speedups.quick_excerpts()
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise PluginError(f"De site kan niet gebouwd worden: {exc}") from None
    config.site_name = settings.site.name
    config.site_url = settings.site.url
    config.site_description = settings.site.description
    config.copyright = f"© {settings.coach.company}"
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


@event_priority(-100)  # after the blog plugin attached its posts to its list pages
def on_nav(nav, config: MkDocsConfig, files: Files):
    """`make serve` (--dirty): render only the blog list pages that changed (site_config/speedups.py)."""
    if _dirty:
        skipped = speedups.BLOG_LISTS.skip_unchanged(files, config.plugins["material/blog"])
        log.debug("blog list pages left as they were: %d", skipped)
    return nav


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
    """Note the page for the checks of every finished page (on_post_build). MkDocs writes no file for
    an empty page, so there is nothing to check then."""
    if output.strip():
        _written.append((f"docs/{page.file.src_uri}", Path(page.file.abs_dest_path)))
    return output


def on_env(env, config: MkDocsConfig, files: Files):
    """Give the theme templates the same settings the pages and the app use."""
    env.globals["settings"] = load_settings()
    env.globals["fingerprint"] = fingerprint  # the consent banner's text hash (partials/consent.html)
    env.bytecode_cache = speedups.TEMPLATE_CACHE  # `mkdocs serve`: compile each template once
    speedups.BLOG_LISTS.pages_read()
    return env


@event_priority(-100)  # last, after every plugin wrote its pages
def on_post_build(config: MkDocsConfig) -> None:
    """Nothing in a finished page may load from another host, break the consent rules or the CSP
    (site_config/page_checks.py); then allow the inline scripts of this build by hash (site_config/csp.py)."""
    log.debug("blog excerpts converted whole: %(whole)d, only before the separator: %(quick)d",
              speedups.EXCERPTS)
    speedups.EXCERPTS.update(whole=0, quick=0)
    categories = tuple(load_settings().consent.optional_ids)
    _fail(page_checks.check_pages(_written, categories, parallel=_command == "build"))
    site_dir = Path(config.site_dir)
    try:
        csp.verify_written(site_dir, csp.write_policy(site_dir))
    except csp.CSPError as exc:
        _fail([str(exc)])
