"""The generator is a replaceable part.

The Dutch checks and the CSP step run as commands of their own over docs/ and over any built folder,
and ProperDocs (MkDocs' maintained fork) builds the same site as MkDocs: the same files, the same
pages, the same Content-Security-Policy. ProperDocs is in the `test` extra: when it is missing the
tests fail, they never skip.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, mkdocs_build
from support.generators import build, built_files, normalised, problem_lines

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

POST = """---
title: Een test
description: Een bericht om de controles te testen.
date:
  created: {date}
authors: [coach]
categories: [{category}]
{extra}---

Eerste alinea.

<!-- more -->

{body}
"""


def write_post(project: Path, date: str = "2024-03-01 10:00:00", category: str = "Leiderschap",
               body: str = "Tekst.", extra: str = "") -> None:
    text = POST.format(date=date, category=category, body=body, extra=extra)
    (project / "docs" / "blog" / "posts" / "test.md").write_text(text, encoding="utf-8")


def step(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """One of the build's own steps, as a command: `python -m site_config.checks …` or `…csp …`."""
    return subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def properdocs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real site built by ProperDocs from the same mkdocs.yml, with the same hooks and plugins."""
    assert importlib.util.find_spec("properdocs") is not None, \
        "ProperDocs is not installed: it is in the test extra (pip install -e '.[test]')"
    out = tmp_path_factory.mktemp("properdocs") / "site"
    result = build("properdocs", ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr
    return out


# -- ProperDocs against MkDocs --------------------------------------------------------------------------------

def test_properdocs_writes_the_same_files(site_dir: Path, properdocs_site: Path) -> None:
    mkdocs_files, properdocs_files = built_files(site_dir), built_files(properdocs_site)
    assert sorted(mkdocs_files) == sorted(properdocs_files)
    assert "index.html" in mkdocs_files and "blog/index.html" in mkdocs_files and "feed_rss_created.xml" in mkdocs_files


def test_properdocs_writes_the_same_csp(site_dir: Path, properdocs_site: Path) -> None:
    for name in (".csp.json", ".csp.nginx.conf"):
        assert (properdocs_site / name).read_text(encoding="utf-8") == (site_dir / name).read_text(encoding="utf-8")
    assert "'sha256-" in (site_dir / ".csp.json").read_text(encoding="utf-8")


def test_properdocs_pages_say_the_same(site_dir: Path, properdocs_site: Path) -> None:
    """Every page, feed, search index and asset byte for byte, but for the generator's name in each page's
    <meta name="generator"> and the build's own time in the feeds and the sitemap."""
    mkdocs_files, properdocs_files = built_files(site_dir), built_files(properdocs_site)
    differ = [name for name in sorted(mkdocs_files.keys() & properdocs_files.keys())
              if normalised(mkdocs_files[name]) != normalised(properdocs_files[name])]
    assert differ == []
    meta = {name: (properdocs_site / name).read_text(encoding="utf-8").count('content="mkdocs-ProperDocs')
            for name in ("index.html", "blog/index.html")}
    assert meta == {"index.html": 1, "blog/index.html": 1}, "the pages compared were not ProperDocs' own"


def test_properdocs_stops_a_broken_post_with_the_same_dutch_message(project_copy: Path) -> None:
    write_post(project_copy, date="31/02/2024", body="Zie [de diensten](../../diensten/bestaat-niet.md).")
    by_mkdocs = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site-mkdocs")
    by_properdocs = build("properdocs", project_copy / "mkdocs.yml", project_copy / "site-properdocs")
    assert by_mkdocs.returncode != 0 and by_properdocs.returncode != 0
    assert problem_lines(by_properdocs.stderr) == problem_lines(by_mkdocs.stderr)
    assert "docs/blog/posts/test.md: de datum '31/02/2024' is geen geldige datum" in by_properdocs.stderr
    assert "Traceback" not in by_properdocs.stderr


def test_the_steps_pass_on_properdocs_output(properdocs_site: Path) -> None:
    """The checks of finished pages and the CSP verification, run after the generator on its folder."""
    checked = step("site_config.checks", "--built", properdocs_site)
    assert checked.returncode == 0, checked.stderr
    verified = step("site_config.csp", "check", properdocs_site)
    assert verified.returncode == 0, verified.stderr


# -- The checks of the Markdown sources, without a generator -----------------------------------------------

def test_the_source_check_passes_on_the_real_docs() -> None:
    result = step("site_config.checks", ROOT / "docs")
    assert result.returncode == 0, result.stderr
    assert "geen problemen" in result.stdout


@pytest.mark.parametrize(
    "kwargs",
    [
        {"date": "2024-03-01 10:00"},
        {"category": "Koken"},
        {"body": "Zie [de diensten](../../diensten/bestaat-niet.md) en ![Een foto van het team](team.jpg)."},
        {"body": "![](../../assets/logo.svg)"},
    ],
    ids=["date-without-seconds", "unknown-category", "broken-link-and-missing-image", "image-without-alt"],
)
def test_the_source_check_says_what_the_build_says(project_copy: Path, kwargs: dict) -> None:
    """`python -m site_config.checks docs/` stops before any generator runs, with the build's own Dutch lines."""
    write_post(project_copy, **kwargs)
    standalone = step("site_config.checks", project_copy / "docs")
    assert standalone.returncode == 1
    assert standalone.stderr.startswith("De site kan niet gebouwd worden:")
    by_mkdocs = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert by_mkdocs.returncode != 0
    assert problem_lines(standalone.stderr) == problem_lines(by_mkdocs.stderr) != []


def test_a_draft_or_future_post_does_not_block_the_others(project_copy: Path) -> None:
    """Links of a post that is not built yet are checked once it is, as in the MkDocs build; its front
    matter always is."""
    broken = "Zie [de diensten](../../diensten/bestaat-niet.md)."
    write_post(project_copy, body=broken, extra="draft: true\n")
    assert step("site_config.checks", project_copy / "docs").returncode == 0
    write_post(project_copy, date="2999-01-01 09:00:00", body=broken)
    assert step("site_config.checks", project_copy / "docs").returncode == 0
    write_post(project_copy, date="2999-01-01 09:00:00", category="Koken", body=broken)
    result = step("site_config.checks", project_copy / "docs")
    assert problem_lines(result.stderr) == [
        "docs/blog/posts/test.md: de categorie 'Koken' bestaat niet. Kies uit: Klantgerichtheid, Samenwerking, "
        "Leiderschap, Teamcoaching, Verandering."]


# -- The checks of finished pages and the CSP, over any built folder -------------------------------------------

def test_the_built_check_finds_a_script_from_another_host(properdocs_site: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(properdocs_site, site)
    page = site / "over" / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace(
        "</body>", '<script src="https://cdn.example.com/x.js"></script></body>'), encoding="utf-8")
    result = step("site_config.checks", "--built", site)
    assert result.returncode == 1
    assert ("site/over/index.html: de pagina laadt 'https://cdn.example.com/x.js' van een andere website"
            in result.stderr)


def test_the_csp_step_writes_the_policy_the_hook_wrote(site_dir: Path, tmp_path: Path) -> None:
    """Run over a built folder without policy files, the step writes the hook's files; a page with a new
    inline script gets its hash allowed, one with inline code no hash allows stops it in Dutch."""
    site = tmp_path / "site"
    shutil.copytree(site_dir, site)
    for name in (".csp.json", ".csp.nginx.conf"):
        (site / name).unlink()
    result = step("site_config.csp", site)
    assert result.returncode == 0, result.stderr
    for name in (".csp.json", ".csp.nginx.conf"):
        assert (site / name).read_text(encoding="utf-8") == (site_dir / name).read_text(encoding="utf-8")

    page = site / "over" / "index.html"
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", "<script>console.log('nieuw')</script></body>"), encoding="utf-8")
    assert step("site_config.csp", "check", site).returncode == 1  # the old policy does not allow it
    assert step("site_config.csp", site).returncode == 0
    assert step("site_config.csp", "check", site).returncode == 0

    page.write_text(html.replace("<h1", '<h1 style="color: red"', 1), encoding="utf-8")
    refused = step("site_config.csp", site)
    assert refused.returncode == 1
    assert "site/over/index.html: <h1 style=\"color: red\">" in refused.stderr and "style-attribuut" in refused.stderr
