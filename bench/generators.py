"""Build the site with MkDocs and with ProperDocs and time both; time the build's own steps; try Zensical.

Why: issue 20 ("The generator is a replaceable part"). Material for MkDocs reaches end of life on
May 5, 2027 and MkDocs 1.x is unmaintained; ProperDocs is MkDocs' maintained fork (same mkdocs.yml,
hooks and plugins), Zensical is Material's successor. tests/test_generators.py checks that ProperDocs
builds the same site; this reports what each costs, and how far Zensical gets with our site today.

    python bench/generators.py [--posts 10 200] [--rounds 3] [--zensical /tmp/zensical-venv/bin/zensical]

Zensical is no dependency of the project. Its macros extension imports site_config/macros.py (and
through it site_config and leadform), so its throwaway venv holds the project too:

    python3 -m venv /tmp/zensical-venv && /tmp/zensical-venv/bin/pip install zensical -e .

The Zensical trial builds three copies of the site: as it is; "adapted" with the least edits that let
Zensical finish (the theme's hook-provided globals `settings` and `fingerprint` turned into `extra`
data and a constant, a Jinja filter argument minijinja lacks, the home page's `latest_posts` macro,
which needs the MkDocs blog plugin, left out); and adapted with a broken post (a script from another
host, an image without alt text, a missing image). After each, the build's own steps run over the
output: `python -m site_config.checks --built` and `python -m site_config.csp`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import yaml
from common import ROOT, Build, mkdocs_build
from generate_posts import make_project

from site_config import load_settings

GENERATORS = ("mkdocs", "properdocs")
BROKEN_POST = """---
title: Een fout bericht
description: Een bericht met fouten die de build moet tegenhouden.
date:
  created: 2024-03-01 10:00:00
authors: [coach]
categories: [Leiderschap]
---

Eerste alinea.

<!-- more -->

![](../../assets/logo.svg) ![Een foto van het team](team.jpg)

<script src="https://cdn.example.com/x.js"></script>
"""


def step(project: Path, out: Path, label: str, *args: str) -> Build:
    """One of the build's own steps (`python -m site_config.…`) in `project`, timed like a build; its
    stderr goes to `out`."""
    return mkdocs_build(project / "mkdocs.yml", out / "step", label, command=[sys.executable, "-m", *args])


def problems(out: Path) -> list[str]:
    """The Dutch problems the last step into `out` printed (all of them: Build keeps only a tail)."""
    stderr = (out / ".step.stderr").read_text(encoding="utf-8")
    return [line[4:] for line in stderr.splitlines() if line.startswith("  - ")]


def time_generators(work: Path, post_counts: list[int], rounds: int) -> tuple[list[Build], dict[str, Path]]:
    """Each subject built by each generator `rounds` times, alternating which goes first."""
    subjects = {"real site": ROOT}
    for count in post_counts:
        subjects[f"{count} posts"] = make_project(work / f"posts-{count}", count)
    builds = []
    for label, project in subjects.items():
        for n in range(rounds):
            for generator in (GENERATORS if n % 2 == 0 else GENERATORS[::-1]):
                out = work / f"{label.replace(' ', '-')}-{generator}" / "site"
                builds.append(mkdocs_build(project / "mkdocs.yml", out, f"{label} / {generator}",
                                           generator=generator))
    return builds, subjects


def time_steps(work: Path, subjects: dict[str, Path]) -> list[Build]:
    """The steps a build without hooks runs itself, over each subject's sources and its MkDocs output."""
    builds = []
    for label, project in subjects.items():
        site = work / f"{label.replace(' ', '-')}-mkdocs" / "site"
        out = site.parent
        builds.append(step(project, out, f"{label} / checks docs/", "site_config.checks", str(project / "docs")))
        builds.append(step(project, out, f"{label} / checks --built", "site_config.checks", "--built", str(site)))
        builds.append(step(project, out, f"{label} / csp", "site_config.csp", str(site)))
    return builds


def summary(builds: list[Build]) -> list[dict]:
    """Median wall and CPU seconds and the largest peak RSS per label."""
    rows: dict[str, list[Build]] = {}
    for build in builds:
        rows.setdefault(build.label, []).append(build)
    return [{"label": label, "runs": len(runs), "failed": sum(b.returncode != 0 for b in runs),
             "seconds_median": round(statistics.median(b.seconds for b in runs), 2),
             "cpu_seconds_median": round(statistics.median(b.cpu_seconds for b in runs), 2),
             "peak_rss_mb_max": max(b.peak_rss_mb for b in runs)} for label, runs in rows.items()]


# -- Zensical --------------------------------------------------------------------------------------------------

def adapt_for_zensical(project: Path, fingerprint: str) -> Path:
    """The least edits that let Zensical build the site (see the module's docstring); returns its config."""
    overrides = project / "zensical-overrides"
    shutil.copytree(ROOT / "site_config" / "overrides", overrides)
    for path in overrides.rglob("*.html"):
        text = re.sub(r"\bsettings\.", "config.extra.settings.", path.read_text(encoding="utf-8"))
        text = text.replace("fingerprint(banner | striptags)", repr(fingerprint))
        text = text.replace("'<script defer src=', 1)", "'<script defer src=')")  # minijinja: no count
        text = text.replace('page.file.src_uri.startswith("blog/posts/")', "page.meta and page.meta.date")
        path.write_text(text, encoding="utf-8")
    index = project / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8").replace("{{ latest_posts(3) }}", ""), encoding="utf-8")
    config = (project / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.replace("custom_dir: site_config/overrides", "custom_dir: zensical-overrides")
    settings = yaml.safe_dump({"settings": asdict(load_settings())}, allow_unicode=True)
    config = config.replace("extra:\n", "extra:\n" + "".join(f"  {line}\n" for line in settings.splitlines()), 1)
    (project / "zensical.yml").write_text(config, encoding="utf-8")
    return project / "zensical.yml"


def zensical_build(zensical: str, config: Path, label: str, clean: bool) -> Build:
    """`zensical build` writes to the config's site_dir (site/ beside it); --clean drops its cache first."""
    command = [zensical, "build", "-f", str(config), *(["--clean"] if clean else [])]
    return mkdocs_build(config, config.parent / "site", label, env={"NO_COLOR": "1"}, command=command)


def zensical_trial(zensical: str, work: Path, mkdocs_site: Path, rounds: int, post_counts: list[int]) -> dict:
    report: dict = {}
    as_is = make_project(work / "zensical-as-is", 0)
    build = zensical_build(zensical, as_is / "mkdocs.yml", "zensical, site as it is", clean=True)
    errors = [line for line in build.stderr_tail.splitlines() if re.match(r"[A-Za-z]*Error: ", line)]
    report["as it is"] = {"returncode": build.returncode, "error": errors[-1:]}

    fingerprint = re.search(r'data-consent-hash="([0-9a-f]+)"', (mkdocs_site / "index.html").read_text())[1]
    adapted = make_project(work / "zensical-adapted", 0)
    config = adapt_for_zensical(adapted, fingerprint)
    builds = [zensical_build(zensical, config, "zensical adapted, cold (--clean)", clean=True) for _ in range(rounds)]
    builds += [zensical_build(zensical, config, "zensical adapted, warm cache", clean=False) for _ in range(rounds)]
    for count in post_counts:
        more = adapt_for_zensical(make_project(work / f"zensical-{count}", count), fingerprint)
        builds += [zensical_build(zensical, more, f"{count} posts / zensical adapted, cold", clean=True)
                   for _ in range(rounds)]
    site = adapted / "site"
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    mkdocs_pages = sorted(p.relative_to(mkdocs_site).as_posix() for p in mkdocs_site.rglob("*.html"))
    built_check = step(adapted, adapted, "checks --built", "site_config.checks", "--built", str(site))
    built_problems = problems(adapted)
    csp_step = step(adapted, adapted, "csp", "site_config.csp", str(site))
    report["adapted"] = {
        "timings": summary(builds),
        "same HTML pages as MkDocs": pages == mkdocs_pages,
        "only in MkDocs": sorted(set(mkdocs_pages) - set(pages)),
        "only in Zensical": sorted(set(pages) - set(mkdocs_pages)),
        "files only in MkDocs' output (not assets)": sorted(
            p.relative_to(mkdocs_site).as_posix() for p in mkdocs_site.rglob("*")
            if p.is_file() and p.suffix != ".gz" and "assets" not in p.parts
            and not (site / p.relative_to(mkdocs_site)).exists()),
        "checks --built": {"returncode": built_check.returncode, "problems": len(built_problems),
                           "first": built_problems[:1]},
        "csp step": {"returncode": csp_step.returncode},
        "sidebar hidden outside the blog (hook)": "hidden" in re.search(
            r'data-md-component="sidebar" data-md-type="navigation"[^>]*', (site / "over/index.html").read_text())[0],
    }
    (adapted / "docs/blog/posts/fout.md").write_text(BROKEN_POST, encoding="utf-8")
    broken = zensical_build(zensical, config, "zensical adapted, broken post", clean=True)
    step(adapted, adapted, "checks --built", "site_config.checks", "--built", str(site))
    built_problems = problems(adapted)
    step(adapted, adapted, "checks docs/", "site_config.checks", str(adapted / "docs"))
    report["broken post"] = {
        "zensical returncode": broken.returncode,
        "post published": (site / "blog/een-fout-bericht/index.html").exists(),
        "checks docs/ problems": problems(adapted),
        "checks --built problems (not about Zensical's own inline script)":
            [p for p in built_problems if "__md_scope" not in p],
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="*", default=[10, 200])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--zensical", help="a zensical executable in a throwaway venv that also holds the project")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-generators-") as tmp:
        work = Path(tmp)
        builds, subjects = time_generators(work, args.posts, args.rounds)
        result = {"builds": summary(builds), "steps": summary(time_steps(work, subjects))}
        if args.zensical:
            result["zensical"] = zensical_trial(args.zensical, work, work / "real-site-mkdocs" / "site", args.rounds,
                                                args.posts)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
