"""What the project's own build adds to a bare Material blog of the same 500 posts, with Hugo as reference.

Why: the issue "Performance" allows the project's hooks, macros, PDF generation and CSP hashes
at most +20% over a bare Material blog build of the same posts, measured side by side.

- bare: a minimal mkdocs.yml, Material with its blog, search and tags plugins and the RSS
  plugin (a blog without a feed is not a blog; the project uses the same plugin with the same
  options), the same blog options and Markdown extensions, over the same posts. No hooks, no
  macros, no theme overrides, no extra CSS/JS, no other pages.
- ours: the project's real mkdocs.yml and docs/ with the same posts (`mkdocs build --strict`),
  with the checklist PDFs (`python -m leadform.pdf DIR`) made at the same time, i.e. what
  `make build` runs.
- hugo: the same posts as Markdown with front matter in a minimal Hugo site (Debian's hugo,
  a ten-line layout of our own, no theme), taxonomies, RSS and sitemap on as by default.

The three run in turn, `--reps` times, on the same machine in the same run; medians count, and the
fastest run of each is reported too (this shared machine's speed varies by a fifth between runs).

    python bench/build_cost.py [--posts 500] [--reps 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, as_dict, mkdocs_build
from generate_posts import POSTS, make_project

BARE_PLUGINS = ("search", "tags", "blog", "rss")
BARE_KEYS = ("site_name", "site_url", "site_description", "copyright", "use_directory_urls", "strict",
             "markdown_extensions", "validation")
HUGO_LAYOUT = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{{ .Title }} · {{ .Site.Title }}</title>
<meta name="description" content="{{ with .Description }}{{ . }}{{ else }}{{ .Site.Params.description }}{{ end }}">
</head><body><header><a href="{{ "/" | relURL }}">{{ .Site.Title }}</a></header><main>
<h1>{{ .Title }}</h1>{{ if .IsPage }}<time>{{ .Date.Format "2 January 2006" }}</time>{{ .Content }}
{{ else }}{{ .Content }}{{ range .Paginator.Pages }}<article><h2><a href="{{ .RelPermalink }}">{{ .Title }}</a></h2>
{{ .Summary }}</article>{{ end }}{{ end }}</main></body></html>
"""


def _load_config(path: Path) -> dict[str, Any]:
    """The real mkdocs.yml, !!python/name tags included (our own file, so the full loader is fine)."""
    return yaml.unsafe_load(path.read_text(encoding="utf-8"))  # noqa: S506


def make_bare(project: Path, dest: Path) -> Path:
    """A bare Material blog over the posts of `project`: same blog/RSS/search options, nothing of ours."""
    if dest.exists():
        shutil.rmtree(dest)
    real = _load_config(project / "mkdocs.yml")
    blog_src = project / "docs" / "blog"
    shutil.copytree(blog_src, dest / "docs" / "blog")
    (dest / "docs" / "assets").mkdir(parents=True)
    for asset in ("avatar.svg", "logo.svg"):  # named by .authors.yml and the theme's logo
        shutil.copy(project / "docs" / "assets" / asset, dest / "docs" / "assets" / asset)
    (dest / "docs" / "index.md").write_text("# Blog\n\nDe artikels staan in de [blog](blog/index.md).\n",
                                            encoding="utf-8")
    config = {key: real[key] for key in BARE_KEYS if key in real}
    theme = {k: v for k, v in real["theme"].items() if k != "custom_dir"}
    plugins = []
    for entry in real["plugins"]:
        name = next(iter(entry)) if isinstance(entry, dict) else entry
        if name in BARE_PLUGINS:
            plugins.append(entry)
    config.update(theme=theme, plugins=plugins, extra={"generator": False})
    path = dest / "mkdocs.yml"
    path.write_text(yaml.dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def make_hugo(project: Path, dest: Path) -> Path:
    """The same posts as a minimal Hugo site: front matter kept, Material's date.created as date."""
    if dest.exists():
        shutil.rmtree(dest)
    content = dest / "content" / "posts"
    content.mkdir(parents=True)
    for post in sorted((project / POSTS).glob("*.md")):
        text = post.read_text(encoding="utf-8")
        _, front, body = text.split("---\n", 2)
        meta = yaml.safe_load(front)
        created = meta["date"]["created"] if isinstance(meta.get("date"), dict) else meta.get("date")
        meta["date"] = created.isoformat() if isinstance(created, dt.datetime) else str(created)
        meta.pop("authors", None)
        body = body.replace("<!-- more -->", "<!--more-->")
        (content / post.name).write_text("---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
                                         + "---\n" + body, encoding="utf-8")
    (dest / "content" / "_index.md").write_text("---\ntitle: Blog\n---\n", encoding="utf-8")
    layouts = dest / "layouts" / "_default"
    layouts.mkdir(parents=True)
    for name in ("single.html", "list.html"):
        (layouts / name).write_text(HUGO_LAYOUT, encoding="utf-8")
    (dest / "hugo.toml").write_text(
        'baseURL = "https://www.voorbeeld-coaching.be/"\nlanguageCode = "nl-BE"\ntitle = "Voorbeeld Coaching"\n'
        "paginate = 10\n[params]\ndescription = \"Teamcoaching en leiderschap\"\n"
        "[taxonomies]\ntag = \"tags\"\ncategory = \"categories\"\n", encoding="utf-8")
    return dest


def hugo_build(site: Path, out: Path) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    start = time.perf_counter()
    proc = subprocess.Popen(["hugo", "--quiet", "-s", str(site), "-d", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    pages = sum(1 for _ in out.rglob("index.html")) if out.exists() else 0
    return {"seconds": round(seconds, 3), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "returncode": os.waitstatus_to_exitcode(status),
            "pages": pages, "stderr_tail": err[-1000:]}


def ours_build(config: Path, site_dir: Path, pdf_dir: Path) -> tuple[dict[str, Any], dict[str, Any], float]:
    """What `make build` runs: the checklist PDFs in the background while MkDocs builds the site.
    Returns the MkDocs build, the PDF build (each with its own time and CPU) and the wall time of both."""
    if pdf_dir.exists():
        shutil.rmtree(pdf_dir)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "leadform.pdf", str(pdf_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    site = as_dict(mkdocs_build(config, site_dir, "ours"))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    pdf = {"seconds": round(wall, 3), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
           "returncode": os.waitstatus_to_exitcode(status), "stderr_tail": err[-1000:]}
    return site, pdf, round(wall, 3)


def _pages(site_dir: Path) -> int:
    return sum(1 for _ in site_dir.rglob("*.html")) if site_dir.exists() else 0


def measure(work: Path, posts: int = 500, reps: int = 3, project: Path | None = None) -> dict[str, Any]:
    """bare, ours (mkdocs + PDFs) and hugo, in turn, `reps` times; medians and the ratio ours/bare."""
    project = project or make_project(work / f"posts-{posts}", posts)
    bare_cfg = make_bare(project, work / "bare")
    hugo_src = make_hugo(project, work / "hugo")
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "ours_mkdocs": [], "ours_pdf": [], "ours": [], "hugo": []}
    for _ in range(reps):
        b = as_dict(mkdocs_build(bare_cfg, work / "bare-site", "bare"))
        b["pages"] = _pages(work / "bare-site")
        runs["bare"].append(b)
        o, pdf, wall = ours_build(project / "mkdocs.yml", work / "ours-site", work / "pdfs")
        o["pages"] = _pages(work / "ours-site")
        runs["ours_mkdocs"].append(o)
        runs["ours_pdf"].append(pdf)
        runs["ours"].append({"seconds": wall, "cpu_seconds": round(o["cpu_seconds"] + pdf["cpu_seconds"], 3),
                             "returncode": o["returncode"] or pdf["returncode"]})
        runs["hugo"].append(hugo_build(hugo_src, work / "hugo-site"))
        for name in ("bare-site", "ours-site", "hugo-site"):
            shutil.rmtree(work / name, ignore_errors=True)

    def med(key: str, field: str = "seconds") -> float:
        return round(statistics.median(r[field] for r in runs[key]), 2)

    def best(key: str, field: str = "seconds") -> float:
        return round(min(r[field] for r in runs[key]), 2)

    bare, ours_mkdocs, pdf, ours, hugo = med("bare"), med("ours_mkdocs"), med("ours_pdf"), med("ours"), med("hugo")
    cpu = {"bare": med("bare", "cpu_seconds"), "ours_mkdocs": med("ours_mkdocs", "cpu_seconds"),
           "ours_pdf": med("ours_pdf", "cpu_seconds"), "ours": med("ours", "cpu_seconds"),
           "hugo": med("hugo", "cpu_seconds")}
    # The fastest run of each is the least disturbed by whatever else this shared machine does (timeit's rule).
    fastest = {"bare": best("bare"), "ours": best("ours")}
    failed = [f"{k}: {r.get('stderr_tail', '')[-300:]}" for k, rs in runs.items() for r in rs if r["returncode"]]
    for rs in runs.values():
        for r in rs:
            r.pop("site_dir", None)
            if not r["returncode"]:
                r.pop("stderr_tail", None)
    return {"posts": posts, "reps": reps, "bare_s": bare, "ours_mkdocs_s": ours_mkdocs, "ours_pdf_s": pdf,
            "ours_s": ours, "hugo_s": hugo, "overhead": round(ours / bare - 1, 3) if bare else None,
            "cpu_s": cpu, "cpu_overhead": round(cpu["ours"] / cpu["bare"] - 1, 3) if cpu["bare"] else None,
            "fastest_s": fastest,
            "fastest_overhead": round(fastest["ours"] / fastest["bare"] - 1, 3) if fastest["bare"] else None,
            "bare_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["bare"]),
            "ours_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["ours_mkdocs"]),
            "hugo_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["hugo"]),
            "pages": {"bare": runs["bare"][-1]["pages"], "ours": runs["ours_mkdocs"][-1]["pages"],
                      "hugo": runs["hugo"][-1]["pages"]},
            "failed": failed, "runs": runs}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"{r['posts']} generated posts, median of {r['reps']} runs each, run in turn on this machine.", "",
             "| Build | Wall time (median) | Wall runs | CPU time (median) | Peak RSS | HTML pages |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]

    def runs(key: str) -> str:
        return ", ".join(f"{x['seconds']:.1f}" for x in r["runs"][key])

    cpu = r["cpu_s"]
    lines += [
        f"| bare Material blog (blog, search, tags, rss) | {r['bare_s']:.1f} s | {runs('bare')} | "
        f"{cpu['bare']:.1f} s | {r['bare_peak_rss_mb']:.0f} MB | {r['pages']['bare']} |",
        f"| ours: `mkdocs build --strict` (hooks, checks, macros, CSP) | {r['ours_mkdocs_s']:.1f} s | "
        f"{runs('ours_mkdocs')} | {cpu['ours_mkdocs']:.1f} s | {r['ours_peak_rss_mb']:.0f} MB | {r['pages']['ours']} |",
        f"| ours: checklist PDFs (`python -m leadform.pdf`, beside MkDocs) | | | {cpu['ours_pdf']:.1f} s | | |",
        f"| **ours total** (what `make build` runs: both at once) | **{r['ours_s']:.1f} s** | {runs('ours')} | "
        f"**{cpu['ours']:.1f} s** | | |",
        f"| Hugo {hugo_version()} (same posts, minimal layout) | {r['hugo_s']:.2f} s | {runs('hugo')} | "
        f"{cpu['hugo']:.2f} s | {r['hugo_peak_rss_mb']:.0f} MB | {r['pages']['hugo']} |",
        "", f"Project overhead over the bare blog: **{r['overhead'] * 100:+.0f}%** wall time (median), "
        f"{r['fastest_overhead'] * 100:+.0f}% fastest run against fastest run, "
        f"{r['cpu_overhead'] * 100:+.0f}% CPU time (target ≤ +20% wall). The PDFs are made beside the "
        "MkDocs build, as `make build` does, so CPU time grows more than wall time."]
    if r["failed"]:
        lines += ["", "Failed builds: " + "; ".join(r["failed"])]
    return "\n".join(lines) + "\n"


def hugo_version() -> str:
    """Hugo's version, or "not installed" (Debian package `hugo`; only the build-cost step needs it)."""
    try:
        out = subprocess.run(["hugo", "version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not installed"
    return out.split()[1].split("+")[0] if out else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        result = measure(Path(tmp), args.posts, args.reps)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
