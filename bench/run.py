"""Run every benchmark and write bench/results/latest.json and latest.md.

Why: one command gives the figures the issue "Performance" asks about (build time and memory,
first-view weight of a post with 10 and 500 posts, before and after the lazy search).
Benchmarks report; they never fail on a figure.

    python bench/run.py            # 10 and 500 posts, with the eager-search baseline
    python bench/run.py --quick    # 10 and 50 posts
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from build_time import time_builds
from common import RESULTS, ROOT, Build, as_dict
from page_weight import BUDGET, Weight, weigh


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    found = {name: version(name) for name in ("mkdocs", "mkdocs-material", "playwright")}
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, check=False)
    found["chromium"] = chromium.stdout.strip()
    found["python"] = platform.python_version()
    return found


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} KB"


def to_markdown(report: dict[str, Any]) -> str:
    """The Markdown table the issue thread gets; KB = 1000 bytes, sizes are gzip-compressed."""
    lines = [f"# Benchmarks — {report['date']}", "",
             f"Mode: {'quick' if report['quick'] else 'full'}. "
             + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), "",
             "## Build (`mkdocs build --strict`)", "",
             "| Site | Time | Peak RSS | OK |", "| --- | ---: | ---: | :-: |"]
    for b in report["builds"]:
        lines.append(f"| {b['label']} | {b['seconds']:.1f} s | {b['peak_rss_mb']:.0f} MB | "
                     f"{'yes' if b['returncode'] == 0 else 'NO'} |")
    lines += ["", f"## First view of `{report['post']}` (budget {_kb(BUDGET)} compressed)", "",
              "Fresh Chromium context, gzip level 6 server on 127.0.0.1; bytes are response bodies as sent "
              "(compressed), wire adds HTTP headers.", "",
              "| Blog | Search | First view | Wire | Requests | Index on first view | In budget "
              "| First search adds | Typing → result | Index (raw → gzip) |",
              "| --- | --- | ---: | ---: | ---: | :-: | :-: | ---: | ---: | ---: |"]
    for w in report["page_weight"]:
        if w["error"]:
            lines.append(f"| {w['label']} | {w['variant']} | error: {w['error'][:80]} | | | | | | | |")
            continue
        search = f"{_kb(w['search_bytes'])} / {w['search_requests']} req" if w["search_requests"] else "—"
        if not w["search_found_post"]:
            search += " (post NOT found)"
        lines.append(
            f"| {w['label']} | {w['variant']} | {_kb(w['first_view_bytes'])} | {_kb(w['first_view_wire_bytes'])} "
            f"| {w['first_view_requests']} | {'yes' if w['index_requested_on_first_view'] else 'no'} "
            f"| {'yes' if w['first_view_bytes'] <= BUDGET else 'NO'} | {search} | {w['search_ms']} ms "
            f"| {_kb(w['search_index_raw_bytes'])} → {_kb(w['search_index_gzip_bytes'])} |")
    lines += ["", "First-view responses (lazy search, largest blog):", ""]
    lazy = [w for w in report["page_weight"] if w["variant"] == "lazy search" and not w["error"]]
    if lazy:
        for path, size in lazy[-1]["responses"]:
            lines.append(f"- `{path}`: {_kb(size)}")
    lines += ["", "Typing → result: from the click in the search field to the post in the results, typing "
              "16 characters 20 ms apart (≈0.35 s of it is the typing), on this machine."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 50 posts instead of 10 and 500")
    parser.add_argument("--no-baseline", action="store_true", help="skip the eager-search comparison")
    args = parser.parse_args()
    counts = [10, 50] if args.quick else [10, 500]

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        print(f"building the real site and {counts} posts …", file=sys.stderr)
        builds, projects = time_builds(work, counts)
        failed = [b for b in builds if b.returncode]
        for b in failed:
            print(f"build failed: {b.label}\n{b.stderr_tail}", file=sys.stderr)
        site_dirs = {count: Path(b.site_dir) for count, b in zip(counts, builds[1:], strict=True) if not b.returncode}
        print("measuring page weight in Chromium …", file=sys.stderr)
        weights: list[Weight] = weigh({c: p for c, p in projects.items() if c in site_dirs}, site_dirs,
                                      not args.no_baseline, work)

    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick,
        "post": "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/",
        "budget_bytes": BUDGET,
        "versions": _versions(),
        "builds": [_strip(as_dict(b)) for b in builds],
        "page_weight": [as_dict(w) for w in weights],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = to_markdown(report)
    (RESULTS / "latest.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"written: {(RESULTS / 'latest.json').relative_to(ROOT)}, {(RESULTS / 'latest.md').relative_to(ROOT)}",
          file=sys.stderr)


def _strip(build: dict[str, Any]) -> dict[str, Any]:
    """Temp paths mean nothing after the run; stderr only matters when the build failed."""
    build = {k: v for k, v in build.items() if k != "site_dir"}
    if build["returncode"] == 0:
        build.pop("stderr_tail", None)
    return build


__all__ = ["Build", "main"]

if __name__ == "__main__":
    main()
