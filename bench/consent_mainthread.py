"""Main-thread work of consent.js at a first view: Lighthouse's bootup-time for that one script.

Why: issue 22 asks consent.js to do less at first view. The home page of one built site is served as
`make run` serves it, with this branch's consent.js and with another version of it (default: main's),
each `--runs` times, alternating; Lighthouse (bench/package.json, mobile preset, 4x CPU slowdown)
reports per script the main-thread time it cost (scripting + parse/compile) and the page's total
blocking time. On a busy shared machine these move by milliseconds from run to run: read the medians.

    python bench/consent_mainthread.py --site-dir /tmp/site [--runs 5] [--against main]
    python bench/consent_mainthread.py --site-dir /tmp/site --micro   # the script alone, 500 times each

Lighthouse's bootup-time lists a script only above 50 ms, so at a first view consent.js is usually
absent from it: `--micro` runs each version's first-view path 500 times in one page of the built site
(Chromium, 4x CPU throttling, the banner's HTML reset between runs) and reports microseconds per run.
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


def micro(site: Path, variants: dict[str, str], repeat: int = 500) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from common import CHROMIUM
    from playwright.sync_api import sync_playwright

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    timing = """([sources, repeat]) => {
        const root = document.getElementById("__consent"), html = root.outerHTML, out = {};
        for (const [name, source] of Object.entries(sources)) {
            const run = new Function(source);
            for (let i = 0; i < 20; i++) { localStorage.clear(); run(); }
            const start = performance.now();
            for (let i = 0; i < repeat; i++) {
                localStorage.clear();
                document.getElementById("__consent").outerHTML = html;
                run();
            }
            out[name] = (performance.now() - start) * 1000 / repeat;
        }
        return out;
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        for round_ in range(3):
            result = page.evaluate(timing, [variants, repeat])
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v:.0f} µs/run" for k, v in result.items()))
        browser.close()
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", default="main", help="git revision of the other consent.js")
    parser.add_argument("--micro", action="store_true", help="time the script alone, not the page")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="consent-bench-"))
    site = args.site_dir or build_site(work)
    variants = {"this branch": (ROOT / "docs" / SCRIPT).read_text(encoding="utf-8"),
                args.against: subprocess.run(["git", "show", f"{args.against}:docs/{SCRIPT}"], cwd=ROOT,
                                             capture_output=True, text=True, check=True).stdout}
    if args.micro:
        micro(site, variants)
        return
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
