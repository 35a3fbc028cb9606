"""Lighthouse (mobile preset) on the home page, a post, a checklist and the contact page.

Why: the issue "Performance" asks for 100 in performance, accessibility, best practices and SEO
on those four pages, with the site served as in production. The site is built into a temp dir
and served as `make run` serves it: gunicorn (deploy/gunicorn.conf.py) on `leadform.wsgi:with_site()`,
WhiteNoise with the build's .gz copies and a year's cache for fingerprinted assets, the app on the
same origin, so the forms' /api/csrf call is real. Lighthouse 12.2.3 comes from bench/package.json
(`npm ci` in bench/) and drives the system Chromium; mobile is its default form factor, with
simulated throttling (slow 4G, 4x CPU slowdown).

Scores move by a point or two between runs on a busy 2-core machine (total blocking time is the
observed main-thread work x4), so each page runs `--runs` times and the median run counts.

    python bench/lighthouse.py                       # build the real site, 3 runs per page
    python bench/lighthouse.py --site-dir /tmp/site  # an already built site
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import CHROMIUM, ROOT, compress_site, make_run_server, mkdocs_build

BENCH = ROOT / "bench"
PAGES = {
    "home": "/",
    "post": "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/",
    "checklist": "/checklists/teams/",
    "checklist-leiderschap": "/checklists/leiderschap/",
    "contact": "/contact/",
}
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
METRICS = ("first-contentful-paint", "largest-contentful-paint", "speed-index", "total-blocking-time",
           "cumulative-layout-shift")
CHROME_FLAGS = ("--headless --no-sandbox --disable-gpu --disable-background-networking "
                "--disable-component-update --disable-sync --no-first-run")


def lighthouse_bin() -> Path:
    """bench/node_modules/.bin/lighthouse, installed from the lock file on first use."""
    binary = BENCH / "node_modules" / ".bin" / "lighthouse"
    if not binary.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, check=True,
                       stdout=subprocess.DEVNULL)
    return binary


@contextmanager
def one_origin_server(site_dir: Path, instance: Path) -> Iterator[str]:
    """`make run`'s server on a free port for the given site: gunicorn with deploy/gunicorn.conf.py on
    `leadform.wsgi:with_site()`, one worker with four threads. The site gets its .gz copies first, as
    `make build` writes them (WhiteNoise serves those; without them text would go out uncompressed)."""
    if not (site_dir / "index.html.gz").exists():
        compress_site(site_dir)
    with make_run_server(site_dir, instance) as url:
        yield url


def run_lighthouse(url: str, out: Path) -> dict[str, Any]:
    """One Lighthouse run; returns the raw JSON report (also kept in `out`)."""
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    proc = subprocess.run(
        [str(lighthouse_bin()), url, f"--chrome-flags={CHROME_FLAGS}", "--output=json", f"--output-path={out}",
         "--quiet", "--max-wait-for-load=60000"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode or not out.exists():
        raise RuntimeError(f"lighthouse failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The four scores (0-100), the metrics, and every audit that costs points, with what it names."""
    scores = {cid: round((report["categories"][cid]["score"] or 0) * 100) for cid in CATEGORIES}
    failing = []
    for cid in CATEGORIES:
        for ref in report["categories"][cid]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref["weight"] <= 0 or audit["score"] is None or audit["score"] >= 1:
                continue
            items = (audit.get("details") or {}).get("items") or []
            what = []
            for item in items[:5]:
                node = item.get("node") or {}
                what.append((node.get("snippet") or item.get("url") or item.get("href") or "")[:160])
            failing.append({"category": cid, "id": ref["id"], "score": audit["score"],
                            "value": audit.get("displayValue", ""), "items": what})
    metrics = {m: report["audits"][m].get("numericValue") for m in METRICS}
    return {"scores": scores, "metrics": metrics, "failing": failing,
            "benchmark_index": report.get("environment", {}).get("benchmarkIndex")}


def audit_site(site_dir: Path, work: Path, runs: int = 3) -> dict[str, Any]:
    """Every page `runs` times on one server; per page the run with the median performance score."""
    instance = work / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Any] = {}
    with one_origin_server(site_dir, instance) as base:
        for name, path in PAGES.items():
            results: list[dict[str, Any]] = []
            attempt = 0
            # Lighthouse 12.2 on a newer Chromium now and then loses the trace (NO_NAVSTART): try again,
            # at most twice per page, and say so in the report.
            while sum("scores" in r for r in results) < runs and attempt < runs + 2:
                try:
                    results.append(summarize(run_lighthouse(base + path, work / f"{name}-{attempt}.json")))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:  # a benchmark reports, it does not stop
                    results.append({"error": str(exc)[:500]})
                attempt += 1
            good = sorted((r for r in results if "scores" in r), key=lambda r: r["scores"]["performance"])
            if not good:
                pages[name] = {"path": path, "error": results[-1]["error"]}
                continue
            median = good[(len(good) - 1) // 2]
            median["path"] = path
            median["failed_runs"] = [r["error"] for r in results if "error" in r]
            median["performance_runs"] = [r["scores"]["performance"] for r in good]
            median["tbt_runs_ms"] = [round(r["metrics"]["total-blocking-time"]) for r in good]
            pages[name] = median
    return {"runs": runs, "version": lighthouse_version(), "pages": pages}


def lighthouse_version() -> str:
    return subprocess.run([str(lighthouse_bin()), "--version"], capture_output=True, text=True,
                          check=False).stdout.strip()


def build_site(work: Path, config: Path = ROOT / "mkdocs.yml") -> Path:
    build = mkdocs_build(config, work / "site", "lighthouse")
    if build.returncode:
        raise RuntimeError("build failed:\n" + build.stderr_tail)
    compress_site(Path(build.site_dir))  # as `make build` does
    return Path(build.site_dir)


def markdown(result: dict[str, Any]) -> str:
    """Scores per page, then the audits that cost points (none when every score is 100)."""
    lines = [f"Lighthouse {result['version']}, mobile preset (simulated slow 4G, 4x CPU), system Chromium, "
             f"site served as `make run` does (gunicorn + WhiteNoise, `leadform.wsgi:with_site()`); "
             f"median of {result['runs']} runs per page.", "",
             "| Page | Performance | Accessibility | Best practices | SEO | FCP | LCP | TBT | CLS | Perf. runs |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    failing = []
    for name, page in result["pages"].items():
        if "error" in page:
            lines.append(f"| {name} `{page['path']}` | error: {page['error'][:80]} | | | | | | | | |")
            continue
        s, m = page["scores"], page["metrics"]
        lines.append(f"| {name} `{page['path']}` | {s['performance']} | {s['accessibility']} | "
                     f"{s['best-practices']} | {s['seo']} | {m['first-contentful-paint'] / 1000:.1f} s | "
                     f"{m['largest-contentful-paint'] / 1000:.1f} s | {m['total-blocking-time']:.0f} ms | "
                     f"{m['cumulative-layout-shift']:.3f} | {', '.join(map(str, page['performance_runs']))}"
                     f"{' (+' + str(len(page['failed_runs'])) + ' failed)' if page.get('failed_runs') else ''} |")
        failing += [(name, f) for f in page["failing"]]
    if failing:
        lines += ["", "Audits below 100 (median run):", ""]
        for name, f in failing:
            where = "; ".join(i for i in f["items"] if i)
            lines.append(f"- {name}: {f['category']} `{f['id']}` {f['value']}".rstrip()
                         + (f" — {where[:200]}" if where else ""))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-dir", type=Path, help="an already built site (default: build the real one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="copy the raw Lighthouse reports here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lh-") as tmp:
        work = Path(tmp)
        site_dir = args.site_dir or build_site(work)
        result = audit_site(site_dir, work, args.runs)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for report in work.glob("*.json"):
                shutil.copy(report, args.keep / report.name)
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
