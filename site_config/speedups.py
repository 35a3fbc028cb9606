"""Speed-ups for the build and above all for `mkdocs serve`'s rebuild after each save (bench/live_reload.py).

Each changes how fast, never what a full build produces: the same templates and the same front matter
give the same pages. The list-page skip applies to `--dirty` rebuilds only, which MkDocs already
documents as possibly leaving other pages stale.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml
from jinja2.bccache import Bucket, BytecodeCache


class CompiledTemplates(BytecodeCache):
    """Compiled theme templates, kept in memory for the life of the process (Jinja's bytecode cache).

    Why: `mkdocs serve` makes a new Jinja environment for every rebuild, which compiled Material's
    templates again each time: a tenth of a live-reload rebuild. Jinja checks each entry against the
    template's source, so an edited template is compiled afresh."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self._compiled:
            bucket.bytecode_from_string(self._compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CACHE = CompiledTemplates()


def fast_blog_front_matter() -> None:
    """Let Material's blog read front matter with libyaml (C), as MkDocs itself does for every other page
    (mkdocs/utils/meta.py); its pure-Python loader took about a tenth of a live-reload rebuild with 500 posts,
    which re-reads every post. The posts were already checked with the same C loader (check_post)."""
    from material.plugins.blog import structure

    if getattr(structure, "SafeLoader", None) is yaml.SafeLoader and hasattr(yaml, "CSafeLoader"):
        structure.SafeLoader = yaml.CSafeLoader


EXCERPTS = {"whole": 0, "quick": 0}  # this build's excerpt conversions, logged by hooks.on_post_build


def quick_excerpts() -> None:
    """Material's blog: after a post's first excerpt, convert only its Markdown before the separator.

    Why: every time a list page shows a post (the blog index, its archive year, each of its
    categories), Material's blog converts the post's whole Markdown and then cuts the HTML at the
    separator: with 500 posts that was about a third of the build. Here the first excerpt of each
    post is Material's own rendering, and the part before the separator is converted beside it;
    when both give the same HTML, the post's later excerpts convert only that part and take the
    table of contents (Material's lists the whole post's headings) and the "Verder lezen" link from
    the first. When they differ (the separator written inside a code block, say), every excerpt of
    that post is converted whole, as before. Links and abbreviations defined after the separator
    still work: the excerpt's Markdown converter keeps them from the first, whole conversion.
    SITE_QUICK_EXCERPTS=0 turns this off (tests/test_speedups.py compares both builds).
    """
    from material.plugins.blog.structure import Excerpt
    from mkdocs.structure.toc import get_toc

    if os.environ.get("SITE_QUICK_EXCERPTS") == "0" or getattr(Excerpt.render, "quick", False):
        return
    material_render = Excerpt.render

    def render(self: Excerpt, page, separator: str) -> None:
        memo = getattr(self, "_quick_memo", None)
        if memo is None or memo["source"] is not self.post.markdown:
            material_render(self, page, separator)
            EXCERPTS["whole"] += 1
            content, toc_tokens = self.content, getattr(self.md, "toc_tokens", [])  # the whole post's
            _convert_head(self, page, separator)  # sets only content: Material's toc and more stay
            self._quick_memo = {"source": self.post.markdown, "toc_tokens": toc_tokens, "more": self.more,
                                "quick": self.content == content and self.more is not None}
            self.content = content
            return
        if not memo["quick"]:
            material_render(self, page, separator)
            EXCERPTS["whole"] += 1
            return
        _convert_head(self, page, separator)
        EXCERPTS["quick"] += 1
        self.toc, self.more = get_toc(memo["toc_tokens"]), memo["more"]

    render.quick = True  # type: ignore[attr-defined]
    Excerpt.render = render


def _convert_head(excerpt, page, separator: str) -> None:
    """What Excerpt.render does, on the Markdown before the separator only (HTML in excerpt.content)."""
    excerpt.file.url = page.url
    processor = excerpt.md.treeprocessors[excerpt.md.treeprocessors.get_index_for_name("excerpt")]
    processor.base = page
    head = excerpt.post.markdown.split(separator, 1)[0]
    if not excerpt.post._title_from_render:
        head = "\n\n".join([f"# {excerpt.post.title}", head])
    excerpt.content = excerpt.md.convert(head) + "\n"
    excerpt.file.url = excerpt.post.url


class UnchangedBlogLists:
    """`--dirty` rebuilds (`make serve`): leave the blog's list pages alone when what they show is unchanged.

    Why: MkDocs' --dirty decides per file whether a page changed, which fits the blog's list pages
    badly both ways. The pages it generates (archive, categories, pagination: 180-odd with 500 posts)
    count as changed on every rebuild, and rendering them was most of the two and a half seconds
    after each save; the blog's own index (docs/blog/index.md) counts as unchanged, so an edited
    excerpt never reached it in the preview. Here a list page is rendered again exactly when what it
    shows may have changed: its own Markdown, the posts on it (in order), the number of posts behind
    it or its sub-lists differ from the previous build of this process, a post on it was edited since
    it was written, or it is not in the output yet; and then the posts on it are rendered too, because
    a --dirty build gives the list only the excerpts of the posts it rendered (with plain --dirty, a
    list page showed just the edited post).
    """

    def __init__(self) -> None:
        self._previous: dict[str, tuple] = {}
        self._borrowed: list = []  # unchanged posts read again for the excerpts on a list page

    def skip_unchanged(self, files, blog) -> int:
        """Mark each list page as modified or not; returns how many are not."""
        from material.plugins.blog.structure import View

        skipped = 0
        current: dict[str, tuple] = {}
        refresh: list = []
        for file in files.documentation_pages():
            view = file.page
            if not isinstance(view, View):
                continue
            shown = self._shown(view, blog)
            try:
                source = Path(file.abs_src_path).read_bytes()
            except OSError:
                continue
            signature = (hashlib.blake2b(source, digest_size=16).digest(), view.name,
                         tuple(post.file.src_uri for post in shown), len(view.posts),
                         tuple(sub.name for sub in view.views))
            current[file.src_uri] = signature
            unchanged = (self._previous.get(file.src_uri) == signature and os.path.isfile(file.abs_dest_path)
                         and not any(post.file.is_modified() for post in shown))
            file.is_modified = _not_modified if unchanged else _modified  # type: ignore[method-assign]
            skipped += unchanged
            if not unchanged:
                refresh += shown
        # A list page shows the excerpts of its posts, and a --dirty build reads only modified posts:
        # without this, a list page rendered again would show only the edited post.
        unique = {id(post): post for post in refresh}.values()
        self._borrowed = [post for post in unique if not post.file.is_modified()]
        for post in self._borrowed:
            post.file.is_modified = _modified
        self._previous = current
        return skipped

    def pages_read(self) -> None:
        """Call once every page is read (on_env): the posts read only for their excerpts are unchanged,
        so their own pages need not be written again."""
        for post in self._borrowed:
            post.file.is_modified = _not_modified
        self._borrowed = []

    @staticmethod
    def _shown(view, blog) -> list:
        """The posts on this page of the list, as Material's blog slices them for pagination."""
        paginated = getattr(blog, "_config_pagination", lambda v: blog.config.pagination)(view)
        if not paginated or view not in view.pages:
            return list(view.posts)
        step = getattr(blog, "_config_pagination_per_page", lambda v: blog.config.pagination_per_page)(view)
        at = view.pages.index(view)
        return view.posts[at * step:(at + 1) * step]


def _not_modified() -> bool:
    return False


def _modified() -> bool:
    return True


BLOG_LISTS = UnchangedBlogLists()
