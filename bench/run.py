"""Run every benchmark and write bench/results/latest.json and latest.md.

Why: one command gives the figures the issue "Performance" asks about: build time and memory,
first-view weight of a post with 10 and 500 posts (before and after the lazy search), Lighthouse
on four pages, the project's build cost over a bare Material blog (and Hugo), the live-reload
rebuild time, the endpoints' throughput and worker memory under gunicorn on SQLite and PostgreSQL, and
a checklist request's latency at a steady 100 requests per second (open loop, mails included) on both.
Benchmarks report; they never fail on a figure.

    python bench/run.py                    # everything: 10 and 500 posts (about 25 minutes)
    python bench/run.py --quick            # 10 and 50 posts, shorter runs
    python bench/run.py --skip lighthouse endpoints
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import build_cost
import endpoints
import lighthouse
import live_reload
import open_loop
from build_time import time_builds
from common import ENGINES, RESULTS, ROOT, Build, as_dict
from page_weight import BUDGET, Weight, weigh

STEPS = ("page-weight", "build-cost", "lighthouse", "endpoints", "open-loop", "live-reload")


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    found = {name: version(name) for name in ("mkdocs", "mkdocs-material", "playwright", "gunicorn")}
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, check=False)
    found["chromium"] = chromium.stdout.strip()
    found["python"] = platform.python_version()
    return found


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} KB"


def _load(report: dict[str, Any]) -> str:
    before, after = report.get("load_before"), report.get("load_after")
    return (f"Load average (1 min) {before[0]:.1f} before, {after[0]:.1f} after, on {os.cpu_count()} CPUs"
            if before and after else "")


def targets(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, reached?) for the summary table."""
    rows: list[tuple[str, str, str]] = []
    lazy = [w for w in report["page_weight"] if w["variant"] == "lazy search" and not w["error"]]
    if lazy:
        worst = max(w["first_view_bytes"] for w in lazy)
        rows.append(("First view of a post ≤ 100 KB compressed, 10 and 500 posts",
                     " / ".join(f"{_kb(w['first_view_bytes'])} ({w['posts']} posts)" for w in lazy),
                     _yes(worst <= BUDGET)))
    lh = report.get("lighthouse")
    if lh:
        pages = [p for p in lh["pages"].values() if "scores" in p]
        low = {c: min((p["scores"][c] for p in pages), default=0) for c in lighthouse.CATEGORIES}
        rows.append(("Lighthouse 100 (mobile) in 4 categories on 4 pages",
                     ", ".join(f"{c} min {v}" for c, v in low.items()),
                     _yes(len(pages) == len(lighthouse.PAGES) and all(v == 100 for v in low.values()))))
    cost = report.get("build_cost")
    if cost:
        rows.append((f"Project build ≤ +20% over a bare Material blog ({cost['posts']} posts)",
                     f"{cost['overhead'] * 100:+.0f}% wall, median ({cost['ours_s']:.1f} s vs {cost['bare_s']:.1f} s); "
                     f"{cost['fastest_overhead'] * 100:+.0f}% fastest vs fastest; "
                     f"{cost['cpu_overhead'] * 100:+.0f}% CPU; Hugo {cost['hugo_s']:.1f} s",
                     _yes(cost["overhead"] <= 0.2)))
    live = report.get("live_reload")
    if live:
        # `make serve` rebuilds in full: --dirty is measured for reference only (its blog lists go stale).
        full = next((r for r in live["runs"] if r["mode"] == "full rebuild" and r.get("median_s") is not None), None)
        rows.append((f"Edited post rebuilt by `mkdocs serve` < 2 s ({live['posts']} posts)",
                     ", ".join(f"{r['mode']} {r['median_s']:.1f} s" for r in live["runs"] if r.get("median_s"))
                     or "error", _yes(full is not None and full["median_s"] < 2)))
    loop = report.get("open_loop")
    if loop and "engines" in loop:
        runs = loop["engines"]
        rows.append((f"Checklist POST at {loop['rate']:g}/s for {loop['seconds']:g} s (open loop, mails included): "
                     f"p99 < {loop['bar_p99_ms']:g} ms on each engine",
                     "; ".join(f"{r['database']}: p99 {r['p99_ms']:.0f} ms (p50 {r['p50_ms']:.0f}), "
                               f"{r['ok_303']}/{r['sent']} 303, mails {r['mails_received']}/{r['leads_stored']} leads"
                               if "error" not in r else f"{name}: error" for name, r in runs.items()),
                     _yes(all("error" not in r and r["p99_under_bar"] for r in runs.values()))))
    ep = report.get("endpoints")
    engines = {name: r for name, r in (ep or {}).get("engines", {}).items() if "flows" in r}
    if engines:
        rows.append(("POST flows / trivial route under gunicorn (reported, no longer targets)", "; ".join(
            f"{r['database']}: " + ", ".join(f"{flow.split()[0]} {f['ratio']:.2f} ×" for flow, f in r["flows"].items()
                                             if not flow.startswith("trivial"))
            for r in engines.values()), "—"))
    build500 = [b for b in report["builds"] if b["label"] != "real site"]
    memory = ", ".join(f"build {b['label']} {b['peak_rss_mb']:.0f} MB" for b in build500)
    for r in engines.values():
        if r.get("worker_memory"):
            memory += f", app worker under load ({r['database']}) " + " / ".join(
                f"{w['peak_rss_mb']:.0f} MB" for w in r["worker_memory"])
    rows.append(("Peak RSS (reported)", memory, "—"))
    return rows


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def to_markdown(report: dict[str, Any]) -> str:
    """The Markdown the README shows; KB = 1000 bytes, sizes are gzip-compressed."""
    lines = [f"# Benchmarks — {report['date']}", "",
             f"Mode: {'quick' if report['quick'] else 'full'}. "
             + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ". " + _load(report), "",
             "## Targets", "", "| Target | Measured | Reached |", "| --- | --- | :-: |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(report)]
    lines += ["", "## Build (`mkdocs build --strict`)", "",
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
    sections = (("build_cost", "Build cost: the project's build against a bare Material blog and Hugo",
                 build_cost.markdown),
                ("lighthouse", "Lighthouse", lighthouse.markdown),
                ("endpoints", "Endpoints under gunicorn", endpoints.markdown),
                ("open_loop", "Checklist requests at a steady rate (open loop)", open_loop.table),
                ("live_reload", "Live reload", live_reload.markdown))
    for key, title, render in sections:
        if report.get(key):
            body = (f"error: {report[key]['error']}\n" if "error" in report[key] and len(report[key]) == 1
                    else render(report[key]))
            lines += ["", f"## {title}", "", body.rstrip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 50 posts instead of 10 and 500")
    parser.add_argument("--no-baseline", action="store_true", help="skip the eager-search comparison")
    parser.add_argument("--skip", nargs="+", choices=STEPS, default=[], metavar="STEP",
                        help=f"leave out steps: {', '.join(STEPS)}")
    args = parser.parse_args()
    skip = set(args.skip)
    counts = [10, 50] if args.quick else [10, 500]
    load_before = os.getloadavg()
    # before the long steps: a tool that is missing must not lose a finished run
    versions = {**_versions(), "lighthouse": lighthouse.lighthouse_version(), "hugo": build_cost.hugo_version()}

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        print(f"building the real site and {counts} posts …", file=sys.stderr)
        builds, projects = time_builds(work, counts)
        failed = [b for b in builds if b.returncode]
        for b in failed:
            print(f"build failed: {b.label}\n{b.stderr_tail}", file=sys.stderr)
        site_dirs = {count: Path(b.site_dir) for count, b in zip(counts, builds[1:], strict=True) if not b.returncode}
        weights: list[Weight] = []
        if "page-weight" not in skip:
            print("measuring page weight in Chromium …", file=sys.stderr)
            weights = weigh({c: p for c, p in projects.items() if c in site_dirs}, site_dirs,
                            not args.no_baseline, work)
        extra: dict[str, Any] = {}
        if "build-cost" not in skip:
            print(f"timing bare, ours and Hugo on {counts[-1]} posts …", file=sys.stderr)
            extra["build_cost"] = _step(lambda: build_cost.measure(work / "cost", counts[-1], 1 if args.quick else 5,
                                                                   project=projects[counts[-1]]))
        if "lighthouse" not in skip and not builds[0].returncode:
            print("running Lighthouse on four pages …", file=sys.stderr)
            extra["lighthouse"] = _step(lambda: lighthouse.audit_site(Path(builds[0].site_dir), work / "lighthouse",
                                                                      1 if args.quick else 3))
        if "endpoints" not in skip:
            print("loading the endpoints under gunicorn …", file=sys.stderr)
            quick = {"seconds": 4, "rounds": 4} if args.quick else {}
            extra["endpoints"] = _step(lambda: endpoints.bench_engines(ENGINES, **quick))
        if "open-loop" not in skip:
            print("checklist requests at 100/s, open loop, on SQLite and PostgreSQL …", file=sys.stderr)
            extra["open_loop"] = _step(lambda: open_loop.bench(ENGINES, 100, 20 if args.quick else 60, 2, None,
                                                               recycle=True))
        if "live-reload" not in skip:  # last: it edits a post of the generated project
            print(f"timing live reload on {counts[-1]} posts …", file=sys.stderr)
            extra["live_reload"] = _step(lambda: live_reload.bench(work / "serve", counts[-1], 5,
                                                                   project=projects[counts[-1]]))

    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "post": "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/",
        "budget_bytes": BUDGET,
        "versions": versions,
        "builds": [_strip(as_dict(b)) for b in builds],
        "page_weight": [as_dict(w) for w in weights],
        **extra,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = to_markdown(report)
    (RESULTS / "latest.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"written: {(RESULTS / 'latest.json').relative_to(ROOT)}, {(RESULTS / 'latest.md').relative_to(ROOT)}",
          file=sys.stderr)


def _step(run: Any) -> dict[str, Any]:
    """One benchmark; an exception becomes its report, the others still run."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
        return {"error": f"{type(exc).__name__}: {exc}"[:800]}


def _strip(build: dict[str, Any]) -> dict[str, Any]:
    """Temp paths mean nothing after the run; stderr only matters when the build failed."""
    build = {k: v for k, v in build.items() if k != "site_dir"}
    if build["returncode"] == 0:
        build.pop("stderr_tail", None)
    return build


__all__ = ["Build", "main"]

if __name__ == "__main__":
    main()
