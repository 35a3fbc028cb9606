"""Main-thread work of consent.js at a first view: Lighthouse's bootup-time for that one script.

Why: issue 22 asks consent.js to do less at first view. The home page of one built site is served as
`make run` serves it, with this branch's consent.js and with another version of it (default: main's),
each `--runs` times, alternating; Lighthouse (bench/package.json, mobile preset, 4x CPU slowdown)
reports per script the main-thread time it cost (scripting + parse/compile) and the page's total
blocking time. On a busy shared machine these move by milliseconds from run to run: read the medians.

    python bench/consent_mainthread.py --site-dir /tmp/site [--runs 5] [--against main]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from common import ROOT
from lighthouse import build_site, one_origin_server, run_lighthouse

SCRIPT = "assets/javascripts/consent.js"


def consent_cost(report: dict) -> dict[str, float]:
    items = report["audits"]["bootup-time"].get("details", {}).get("items", [])
    mine = next((i for i in items if i.get("url", "").endswith("/" + SCRIPT)), {})
    return {"consent_total_ms": mine.get("total", 0.0), "consent_scripting_ms": mine.get("scripting", 0.0),
            "tbt_ms": report["audits"]["total-blocking-time"]["numericValue"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", default="main", help="git revision of the other consent.js")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="consent-bench-"))
    site = args.site_dir or build_site(work)
    variants = {"this branch": (ROOT / "docs" / SCRIPT).read_text(encoding="utf-8"),
                args.against: subprocess.run(["git", "show", f"{args.against}:docs/{SCRIPT}"], cwd=ROOT,
                                             capture_output=True, text=True, check=True).stdout}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for name, text in variants.items():
        copy = work / name.replace(" ", "-")
        shutil.copytree(site, copy)
        (copy / SCRIPT).write_text(text, encoding="utf-8")
        gz = copy / (SCRIPT + ".gz")
        if gz.exists():
            gz.unlink()  # served uncompressed rather than the other version's .gz
    with tempfile.TemporaryDirectory() as instance:
        for run in range(args.runs):
            for name in variants:
                with one_origin_server(work / name.replace(" ", "-"), Path(instance)) as base:
                    report = run_lighthouse(base + "/", work / f"{name.replace(' ', '-')}-{run}.json")
                results[name].append(consent_cost(report))
    print(f"consent.js at first view, home page, {args.runs} Lighthouse runs each (median; all runs)")
    for name, runs in results.items():
        line = ", ".join(f"{key} {statistics.median(r[key] for r in runs):.1f} "
                         f"({' '.join(f'{r[key]:.0f}' for r in runs)})" for key in runs[0])
        print(f"  {name:<12} {line}")


if __name__ == "__main__":
    main()
