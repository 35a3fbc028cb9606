"""`make serve` (mkdocs serve): a saved post shows at once, and the blog lists stay right.

What a visitor of the preview sees must be current after each kind of save: the edited post, the
blog's list pages with it and the other posts beside it, a new post moving the lists along.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

POSTS = 24  # three list pages of 10


def post(n: int, title: str, excerpt: str, category: str = "Teamcoaching") -> str:
    return (f"---\ntitle: \"{title}\"\ndescription: \"Beschrijving van bericht {n}.\"\ndate:\n"
            f"  created: 2024-01-{1 + n % 28:02d}T{n % 24:02d}:00:00+01:00\nauthors:\n  - coach\n"
            f"categories:\n  - {category}\nslug: bericht-{n}\n---\n\n{excerpt}\n\n<!-- more -->\n\n"
            f"De rest van bericht {n}.\n")


ROOT = Path(__file__).resolve().parent.parent


def make_serve_environment() -> dict[str, str]:
    """The variables the Makefile sets for `make serve` (exported ones and the recipe's own)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile[makefile.index("\nserve:"):].split("\n\n")[0]
    found = dict(re.findall(r"export (\w+) := (\S+)", makefile) + re.findall(r"\b([A-Z_]+)=(\S+) \$\(BIN\)", recipe))
    assert "PYTHONWARNINGS" in found and "NO_MKDOCS_2_WARNING" in found, found
    # --dirty leaves unchanged pages unread: their titles are None, the menu read "Blog | None | None"
    assert "--dirty" not in recipe.split("mkdocs serve", 1)[1], recipe
    return found


class Serve:
    """`mkdocs serve` as `make serve` runs it, on a free loopback port."""

    def __init__(self, project: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", self.url.removeprefix("http://")],
            cwd=project, env={**os.environ, **make_serve_environment()},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout or []), daemon=True).start()

    def wait_for(self, path: str, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(self.url + path, timeout=5).read().decode()
                if text in body:
                    return body
            except OSError:
                pass
            time.sleep(0.2)
        tail = "".join(line for line in self.log if "GET /" not in line)[-3000:]
        raise AssertionError(f"{path} never showed {text!r}; log without requests: {tail}")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def test_saved_posts_show_on_their_own_pages_and_on_the_blog_lists(project_copy: Path) -> None:
    posts = project_copy / "docs" / "blog" / "posts"
    for n in range(POSTS):
        (posts / f"bericht-{n}.md").write_text(post(n, f"Bericht {n}", f"Inleiding van bericht {n}."))
    newest = max(range(POSTS), key=lambda n: (1 + n % 28, n % 24))
    server = Serve(project_copy)
    try:
        server.wait_for("/blog/", f"Inleiding van bericht {newest}.")

        # An edited excerpt: its post and its list pages show it, next to the other posts of those pages.
        (posts / f"bericht-{newest}.md").write_text(post(newest, f"Bericht {newest}", "Een nieuwe inleiding."))
        first_page = server.wait_for("/blog/", "Een nieuwe inleiding.")
        assert first_page.count("Inleiding van bericht") == 9
        # Every rebuilt page keeps the whole menu (an unread page's title was "None" under --dirty).
        about = server.wait_for("/over/", "Over mij")
        tabs = re.findall(r'class="md-tabs__link[^"]*">\s*([^<]*?)\s*<', about)
        assert tabs == ["Home", "Diensten", "Checklists", "Blog", "Over mij", "Contact"], tabs
        server.wait_for(f"/blog/bericht-{newest}/", "Een nieuwe inleiding.")
        category = server.wait_for("/blog/category/teamcoaching/", "Een nieuwe inleiding.")
        assert category.count("Inleiding van bericht") == 9

        # A new post moves every list page along: page 3 shows the post that page 2 ended with before.
        page2_before = server.wait_for("/blog/page/2/", "Bericht")
        last_on_page2 = re.findall(r"<h2[^>]*>\s*<a[^>]*>(Bericht \d+)</a>", page2_before)[-1]
        (posts / "bericht-99.md").write_text(
            post(99, "Het nieuwste bericht", "Inleiding van het nieuwste bericht.").replace("2024-01-", "2025-01-"))
        first_page = server.wait_for("/blog/", "Het nieuwste bericht")
        assert first_page.count("Inleiding van bericht") == 8  # and the edited one, then eight more
        server.wait_for("/blog/page/3/", f">{last_on_page2}<")

        # A mistake saved while serving is reported at the next rebuild, and the corrected post shows.
        (posts / "bericht-3.md").write_text(post(3, "Bericht 3", "Kapot.").replace("description:", "beschrijving:"))
        deadline = time.monotonic() + 60
        while not any("bericht-3.md: de korte beschrijving ontbreekt" in line for line in server.log):
            assert time.monotonic() < deadline, "the broken post was not reported while serving"
            time.sleep(0.2)
        # ... and in the browser, in Dutch, at once: not a page that keeps loading.
        started = time.monotonic()
        broken = server.wait_for("/blog/", "Er is iets mis met je laatste wijziging", timeout=10)
        assert time.monotonic() - started < 10
        assert "bericht-3.md: de korte beschrijving ontbreekt" in broken and 'lang="nl"' in broken
        (posts / "bericht-3.md").write_text(post(3, "Bericht 3", "Hersteld na de fout."))
        server.wait_for("/blog/bericht-3/", "Hersteld na de fout.")
        server.wait_for("/blog/", "Een nieuwe inleiding.")
    finally:
        server.stop()
    # The terminal: MkDocs' lines and our Dutch ones, no library warnings or tracebacks.
    terminal = "".join(line for line in server.log if "GET /" not in line)
    for noise in ("Warning", "Traceback", "[macros]", "The server will appear stuck"):
        assert noise not in terminal, (noise, terminal[-3000:])
