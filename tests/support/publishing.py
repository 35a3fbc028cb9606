"""What visitors see while the site is published: a watcher that keeps asking servers for pages and
checks each answer (status, security headers, and that the page's inline code is allowed by the CSP
it came with). Used by tests/test_publish.py and bench/publish.py."""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from site_config import csp
from support.headers import COMMON

# Pages every release has, and one asset; the new post's pages are checked after the build.
PATHS = ["/", "/blog/", "/contact/", "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/",
         "/assets/stylesheets/coach.css"]


@dataclass(frozen=True)
class Target:
    """A server to ask: `make run`'s gunicorn (http) or nginx (https, with its test CA and host name)."""
    name: str
    port: int
    https: bool = False
    ca: Path | None = None
    host: str = "127.0.0.1"

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.https:
            context = ssl.create_default_context(cafile=str(self.ca))
            context.check_hostname = False
            conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                                                           context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        # A new connection per request, as a new visitor opens one. The timeout is generous: on a loaded
        # machine an answer can take seconds (the slowest is reported), and the bar is what it answers.
        try:
            conn.request("GET", path, headers={"Host": self.host})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def problems(target: Target, path: str, status: int, headers: dict[str, str], body: bytes) -> list[str]:
    """What is wrong with one answer: not a 200, a missing header, inline code its CSP would block."""
    found = [] if status == 200 else [f"status {status}"]
    found += [f"{name} missing" for name, value in COMMON.items() if headers.get(name) != value]
    if target.https and "max-age" not in headers.get("Strict-Transport-Security", ""):
        found.append("HSTS missing")
    policy = headers.get("Content-Security-Policy", "")
    if "default-src 'none'" not in policy:
        found.append("CSP missing")
    elif headers.get("Content-Type", "").startswith("text/html"):
        allowed = policy.split(";")
        for code in csp.scan(body.decode("utf-8", "replace")).code:
            directive = next((d for d in allowed if d.strip().startswith(f"{code.kind}-src ")), "")
            if code.source not in directive.split():
                found.append(f"inline {code.kind} {code.source} not allowed by the CSP sent")
    return [f"{target.name} {path}: {p}" for p in found]


@dataclass
class Phase:
    statuses: Counter = field(default_factory=Counter)
    by_target: Counter = field(default_factory=Counter)   # (target, status) -> answers
    slowest: dict[str, float] = field(default_factory=dict)   # target -> longest wait for an answer, s
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # per answer of an HTML page: (target, path, whether it showed MARKER, the CSP it carried)
    pages: list[tuple[str, str, bool, str]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> dict[str, object]:
        return {"requests": self.requests, "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "non_200": self.requests - self.statuses[200], "header_or_csp_problems": len(self.problems),
                "seconds": round(self.seconds, 1), "first_problems": self.problems[:5],
                "per_server": {f"{name} {status}": n for (name, status), n in sorted(self.by_target.items())},
                "slowest_answer_s": {name: round(s, 2) for name, s in sorted(self.slowest.items())}}


class Watch:
    """One thread per target asks for PATHS in turn until stopped; answers are counted per phase."""

    def __init__(self, targets: list[Target], paths: list[str] = PATHS, pause: float = 0.005) -> None:
        self.targets, self.paths, self.pause = targets, paths, pause
        self.phases: dict[str, Phase] = {}
        self.current: Phase | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in targets]

    def _run(self, target: Target) -> None:
        n = 0
        while not self.stopping.is_set():
            path = self.paths[n % len(self.paths)]
            n += 1
            page = None
            asked = time.monotonic()
            try:
                status, headers, body = target.get(path)
                found = problems(target, path, status, headers, body)
                if headers.get("Content-Type", "").startswith("text/html"):
                    page = (target.name, path, MARKER in body, headers.get("Content-Security-Policy", ""))
            except OSError as exc:
                status, found = 0, [f"{target.name} {path}: {type(exc).__name__} {exc}"]
            with self.lock:
                if self.current is not None:
                    self.current.statuses[status] += 1
                    self.current.by_target[target.name, status] += 1
                    waited = time.monotonic() - asked
                    self.current.slowest[target.name] = max(waited, self.current.slowest.get(target.name, 0.0))
                    self.current.problems += found
                    if page:
                        self.current.pages.append(page)
            time.sleep(self.pause)

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        phase = self.phases[name] = Phase()
        started = time.monotonic()
        with self.lock:
            self.current = phase
        try:
            yield phase
        finally:
            with self.lock:
                self.current = None
            phase.seconds = time.monotonic() - started

    def __enter__(self) -> Watch:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)


def publish(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m site_config.publish ARGS` in the project folder, as the Makefile and the deploy script run it."""
    return subprocess.run([sys.executable, "-m", "site_config.publish", *args], cwd=project, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})})


NEW_CATEGORY = "Publiceren"
NEW_POST = """---
title: {title}
description: Een bericht in een nieuwe categorie, zodat de build nieuwe lijstpagina's maakt.
date:
  created: 2024-03-0{day} 10:00:00
authors: [coach]
categories: [{category}]
---

Eerste alinea.

<!-- more -->

{body}
"""
MARKER = b"nieuw-bericht/"   # a link to one of the new posts (home page, blog index) once they are online


def one_post_per_list_page(project: Path) -> None:
    """As a blog with ten posts per list page and an eleventh post: the next post opens list pages
    one level deeper (…/page/2/), whose inline scripts have hashes no earlier page had."""
    config = project / "mkdocs.yml"
    config.write_text(config.read_text(encoding="utf-8").replace("pagination_per_page: 10", "pagination_per_page: 1"),
                      encoding="utf-8")


def write_posts(project: Path, body: str = "Tekst.") -> list[Path]:
    """Two posts in a category the site did not have (added to mkdocs.yml): new list pages, among them
    /blog/category/publiceren/page/2/."""
    config = project / "mkdocs.yml"
    text = config.read_text(encoding="utf-8")
    if f"- {NEW_CATEGORY}\n" not in text:
        config.write_text(text.replace("        - Verandering\n", f"        - Verandering\n        - {NEW_CATEGORY}\n"),
                          encoding="utf-8")
    posts = []
    for day, title in ((1, "Een nieuw bericht"), (2, "Nog een nieuw bericht")):
        posts.append(project / "docs" / "blog" / "posts" / f"nieuw-bericht-{day}.md")
        posts[-1].write_text(NEW_POST.format(title=title, day=day, category=NEW_CATEGORY, body=body), encoding="utf-8")
    return posts
