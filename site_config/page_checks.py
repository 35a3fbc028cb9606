"""The checks of a build's finished pages, run once the build has written them all, on every CPU core.

Why: the checks of one page (site_config/checks.py: other hosts, alt texts, the consent rules, inline
code) cost about 1.5 ms. One page after the other inside MkDocs they were a tenth of a 500-post build,
while the machine's other core sat idle. At the end of the build the pages are on disk, so worker
processes read them themselves: only file names go out, and only problems and each page's inline code
(for the CSP hashes, site_config/csp.py) come back. Sending the page texts instead cost what it saved.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

from site_config import csp
from site_config.checks import check_finished_page

# Below this many pages (a `mkdocs serve --dirty` save, the real site) starting workers costs more than it saves.
PARALLEL_FROM = 100

Page = tuple[str, Path]  # (the name the coach knows, docs/…; the written file)
Result = tuple[int, list[str], csp.Remembered]


def check_pages(pages: list[Page], categories: tuple[str, ...], *, parallel: bool) -> list[str]:
    """Every problem of the written `pages`, in page order. `parallel`: only where forking is safe
    (`mkdocs build`, one thread), not inside `mkdocs serve`, whose file watcher runs in threads."""
    workers = min(_cores(), 4)
    numbered = list(enumerate(pages))
    if parallel and workers > 1 and len(pages) >= PARALLEL_FROM and "fork" in multiprocessing.get_all_start_methods():
        chunks = [numbered[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = [result for chunk in pool.map(_check, chunks, repeat(categories)) for result in chunk]
    else:
        results = _check(numbered, categories)
    problems: list[str] = []
    for _, page_problems, remembered in sorted(results, key=lambda result: result[0]):
        problems += page_problems
        csp.remember(*remembered)  # write_policy() then reads no page again
    return problems


def _cores() -> int:
    """The cores this process may run on (a container's CPU set), not all the machine has."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check(pages: list[tuple[int, Page]], categories: tuple[str, ...]) -> list[Result]:
    results = []
    for number, (label, path) in pages:
        file_stamp = csp.stamp(path)  # before reading: a later change then shows as a new stamp
        html = path.read_text(encoding="utf-8")
        key = csp.digest(html)
        problems = check_finished_page(label, html, categories, key)
        results.append((number, problems, (path, file_stamp, key, csp.scan(html, key))))
    return results
