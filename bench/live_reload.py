"""How long `mkdocs serve` takes to rebuild after the coach saves a post, with 500 posts.

Why: the issue "Performance" asks that an edited post is rebuilt by the live-reload server in
under 2 s with 500 posts. The server runs on a generated 500-post copy of the site on a free port;
one post gets a new sentence appended, and the time runs from that write to the server's
"Reloading browsers" log line (the rebuild is done and open pages are told to reload).
Measured for a full rebuild (mkdocs 1.6's default, what `make serve` runs) and, for reference, for
`--dirty --no-strict` (only changed files are rebuilt; mkdocs warns about that, so strict mode has to
be off for it). --dirty is quicker but not correct here: it leaves the blog index with the old excerpt
and renders the other blog list pages with the saved post alone.

    python bench/live_reload.py [--posts 500] [--edits 5]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from generate_posts import POSTS, make_project

READY = "Serving on"
DONE = "Reloading browsers"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`mkdocs serve` in its own process group; its log lines arrive on a queue with their time."""

    def __init__(self, project: Path, dirty: bool) -> None:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "mkdocs", "serve", "--dev-addr", f"127.0.0.1:{self.port}"]
        if dirty:  # mkdocs warns that a dirty build may leave stale links, which --strict would turn fatal
            cmd += ["--dirty", "--no-strict"]
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.log: list[str] = []
        self.proc = subprocess.Popen(cmd, cwd=project, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            self.lines.put((time.perf_counter(), line))

    def wait_for(self, text: str, timeout: float) -> float:
        """Time of the next log line containing `text`; RuntimeError with the log tail on timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return at
            if "Error" in line or "Aborted" in line:
                raise RuntimeError("mkdocs serve failed:\n" + "\n".join(self.log[-15:]))
        raise RuntimeError(f"no '{text}' within {timeout:.0f} s:\n" + "\n".join(self.log[-15:]))

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def measure(project: Path, dirty: bool, edits: int) -> dict[str, Any]:
    """Start the server, then edit one post `edits` times; seconds from each save to the reload."""
    post = sorted((project / POSTS).glob("*.md"))[len(list((project / POSTS).glob("*.md"))) // 2]
    slug = next(line.split(":", 1)[1].strip() for line in post.read_text(encoding="utf-8").splitlines()
                if line.startswith("slug:"))
    server = Server(project, dirty)
    result: dict[str, Any] = {"mode": "--dirty" if dirty else "full rebuild", "edits": [], "error": ""}
    try:
        start = time.perf_counter()
        server.wait_for(READY, timeout=600)
        result["startup_s"] = round(time.perf_counter() - start, 2)
        time.sleep(1.5)  # let the file watcher settle
        for i in range(edits):
            server.drain()
            marker = f"Bewerking {i + 1} van de benchmark {time.time_ns()}."
            saved = time.perf_counter()
            with open(post, "a", encoding="utf-8") as f:
                f.write(f"\n{marker}\n")
            done = server.wait_for(DONE, timeout=300)
            result["edits"].append(round(done - saved, 2))
            page = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/blog/{slug}/", timeout=30).read()
            result.setdefault("edit_visible", []).append(marker.encode() in page)
            time.sleep(1.0)
    except (RuntimeError, OSError) as exc:  # a benchmark reports, it does not stop
        result["error"] = str(exc)[-800:]
    finally:
        server.stop()
    if result["edits"]:
        result["median_s"] = statistics.median(result["edits"])
    return result


def bench(work: Path, posts: int = 500, edits: int = 3, project: Path | None = None) -> dict[str, Any]:
    project = project or make_project(work / f"serve-{posts}", posts)
    return {"posts": posts, "runs": [measure(project, dirty=False, edits=edits),
                                     measure(project, dirty=True, edits=edits)]}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"`mkdocs serve` on {result['posts']} posts: one post saved, time until the server logs "
             "'Reloading browsers' (target < 2 s).", "",
             "| Mode | Rebuild after a save (median) | Each save | Edit visible | Server start |",
             "| --- | ---: | --- | :-: | ---: |"]
    for r in result["runs"]:
        if r["error"] and not r["edits"]:
            lines.append(f"| {r['mode']} | error: {r['error'][:100]} | | | |")
            continue
        visible = "yes" if all(r.get("edit_visible", [])) else "NO"
        lines.append(f"| {r['mode']} | {r['median_s']:.1f} s | {', '.join(f'{s:.1f}' for s in r['edits'])} s "
                     f"| {visible} | {r.get('startup_s', 0):.0f} s |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--edits", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        result = bench(Path(tmp), args.posts, args.edits)
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
