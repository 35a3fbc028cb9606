"""Publish a build atomically: a visitor sees the old site or the new one, never half of either.

A build writes into a new folder, `releases/<id>` (id: UTC time and short git commit), and only when
it passed every check does `site` become a symlink to it, in one rename. The last five releases stay
for `rollback`. What serves the site then picks the new release up:

- `make run` (gunicorn + WhiteNoise, leadform/wsgi.py) resolves the symlink per request: no reload.
- nginx reads the release's `.csp.nginx.conf` at its reload: the policy (CSP hashes) of that build and
  a `root` line naming the release's own folder, which this module adds at activation. Until nginx
  reloads it serves the previous release with the previous policy, so pages and their hashes always
  match. The reload runs SITE_RELOAD_COMMAND (a shell command, e.g. `sudo systemctl reload nginx`);
  when it fails, `site` is switched back and nothing changed.

    python -m site_config.publish build             # strict build, checks, PDFs, swap, prune, reload
    python -m site_config.publish activate FOLDER   # a release copied into releases/ (rsync), swapped in
    python -m site_config.publish rollback          # back to the release before the current one

Run from the project folder (where mkdocs.yml is). Messages are Dutch: the coach reads them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from site_config import csp

RELEASES = "releases"
SITE = "site"
KEEP = 5
BUILDING = ".building-"          # a build in progress (or one that crashed): never a release
RELOAD_ENV = "SITE_RELOAD_COMMAND"
ROOT_LINE = "root "              # the nginx directive this module adds to a release's .csp.nginx.conf


class PublishError(Exception):
    """Why nothing was published, in Dutch."""


# -- releases on disk ----------------------------------------------------------------------------------------

def releases(project: Path) -> list[Path]:
    """The releases, oldest first (their names start with the UTC time)."""
    folder = project / RELEASES
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def current(project: Path) -> Path | None:
    """The release `site` points to, or None (no build yet, or an old-style site/ folder)."""
    link = project / SITE
    if not link.is_symlink():
        return None
    return (link.parent / os.readlink(link)).resolve()


def new_id(project: Path) -> str:
    """UTC time, then the short commit: `20261202T101500Z-a8a4ef6`; unique within releases/."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True,
                             timeout=10).stdout.strip() or "nogit"
    except (OSError, subprocess.SubprocessError):
        sha = "nogit"
    base, n = f"{stamp}-{sha}", 1
    name = base
    while (project / RELEASES / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


@contextmanager
def locked(project: Path) -> Iterator[None]:
    """One publishing step at a time (the daily build and a deploy may meet)."""
    folder = project / RELEASES
    folder.mkdir(exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("Er loopt al een publicatie; even wachten…", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# -- checks and the swap -------------------------------------------------------------------------------------

def check_release(folder: Path) -> None:
    """What a release needs before visitors see it: pages, the 404 page, and a policy that covers
    every inline script (a copied folder is checked again from scratch)."""
    missing = [name for name in ("index.html", "404.html") if not (folder / name).is_file()]
    if missing:
        raise PublishError(f"{folder} is geen volledige build: {', '.join(missing)} ontbreekt.")
    try:
        csp.verify_policy(folder)
    except csp.CSPError as exc:
        raise PublishError(str(exc)) from None


def pin_nginx_root(folder: Path) -> None:
    """Name the release's own folder in its nginx include, so nginx serves exactly this release with
    exactly its policy from its next reload on (and the previous one until then)."""
    conf = folder / csp.NGINX_FILE
    lines = [line for line in conf.read_text(encoding="utf-8").splitlines() if not line.startswith(ROOT_LINE)]
    lines.append(f'{ROOT_LINE}"{folder.resolve()}";')
    tmp = conf.with_name(conf.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, conf)


def adopt_old_site(project: Path) -> None:
    """An old-style site/ folder (from before releases) moves into releases/ once and `site` becomes a
    link to it, so it stays available to roll back to. (For a moment between the two renames there is
    no site/; this happens once per checkout.)"""
    link = project / SITE
    if link.is_dir() and not link.is_symlink():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(link.stat().st_mtime))
        aside = project / RELEASES / f"{stamp}-oude-site"
        link.rename(aside)
        swap(project, aside)
        print(f"De oude map site/ staat nu in {RELEASES}/{aside.name}.", file=sys.stderr)


def swap(project: Path, release: Path) -> None:
    """Point `site` at the release with one rename (a new link replaces the old one)."""
    tmp = project / f".{SITE}.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path(RELEASES) / release.name)   # relative: the checkout may move
    os.replace(tmp, project / SITE)


def reload_servers() -> None:
    """Run SITE_RELOAD_COMMAND, if set (nginx); `make run` needs none."""
    command = os.environ.get(RELOAD_ENV, "").strip()
    if not command:
        return
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120)  # the operator's
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise PublishError(f"de webserver herladen lukte niet ({RELOAD_ENV}={command!r} gaf code "
                           f"{result.returncode}{': ' + detail[-1] if detail else ''}).")


def go_live(project: Path, release: Path) -> Path | None:
    """Swap `site` to the release and reload; if the reload fails, swap back. Returns the previous release."""
    check_release(release)
    pin_nginx_root(release)
    adopt_old_site(project)
    previous = current(project)
    swap(project, release)
    try:
        reload_servers()
    except PublishError:
        if previous is None:
            (project / SITE).unlink()
        else:
            swap(project, previous)
            with suppress(PublishError):
                reload_servers()
        raise
    return previous


def prune(project: Path, keep: int = KEEP) -> list[Path]:
    """Remove all but the newest `keep` releases (never the current one) and leftovers of crashed builds."""
    live = current(project)
    every = releases(project)
    removed = [p for p in every[:-keep] if p != live] if keep else []
    for folder in removed:
        shutil.rmtree(folder)
    for leftover in (project / RELEASES).glob(BUILDING + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return removed


# -- the three commands ----------------------------------------------------------------------------------------

def pdf_dir() -> Path:
    """Where the app reads the checklist PDFs (LEADFORM_PDF_DIR, else <instance>/pdfs), as leadform.config."""
    if os.environ.get("LEADFORM_PDF_DIR"):
        return Path(os.environ["LEADFORM_PDF_DIR"])
    instance = os.environ.get("LEADFORM_INSTANCE_PATH") or Path(__file__).resolve().parent.parent / "instance"
    return Path(instance) / "pdfs"


def build(project: Path) -> Path:
    """mkdocs build --strict into a new folder (the PDFs beside it), .gz copies, checks; then go live."""
    with locked(project):
        prune(project)  # leftovers of a crashed build
        name = new_id(project)
        staging = project / RELEASES / f"{BUILDING}{name}"
        pdfs = pdf_dir()
        pdf_staging = pdfs / f"{BUILDING}{name}"
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        pdf_proc = subprocess.Popen([sys.executable, "-m", "leadform.pdf", str(pdf_staging)], cwd=project, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            site = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(staging)],
                                  cwd=project, env=env)
            _, pdf_errors = pdf_proc.communicate()
            if site.returncode != 0:
                raise PublishError("MkDocs kon de site niet bouwen (de reden staat hierboven).")
            if pdf_proc.returncode != 0:
                raise PublishError(f"de checklist-PDF's konden niet gemaakt worden:\n{pdf_errors.strip()}")
            compress = subprocess.run([sys.executable, "-m", "whitenoise.compress", "--quiet", "--no-brotli",
                                       str(staging)], capture_output=True, text=True)
            if compress.returncode != 0:
                raise PublishError(f"de gecomprimeerde kopieën (.gz) konden niet gemaakt worden:\n{compress.stderr}")
            release = staging.rename(project / RELEASES / name)
            try:
                go_live(project, release)
            except PublishError:
                shutil.rmtree(release, ignore_errors=True)
                raise
            for pdf in sorted(pdf_staging.iterdir()):
                os.replace(pdf, pdfs / pdf.name)
        finally:
            if pdf_proc.poll() is None:
                pdf_proc.kill()
                pdf_proc.wait()
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(pdf_staging, ignore_errors=True)
        prune(project)
        return release


def activate(project: Path, folder: Path) -> Path:
    """Put a release that is already in releases/ (copied there by the deploy script) online."""
    with locked(project):
        folder = folder if folder.is_absolute() else Path.cwd() / folder
        release = project / RELEASES / folder.name
        if not folder.is_dir() or folder.resolve() != release.resolve() or folder.name.startswith("."):
            raise PublishError(f"{folder} is geen map in {project / RELEASES}/.")
        go_live(project, release)
        prune(project)
        return release


def rollback(project: Path) -> Path:
    """Back to the release before the one online now."""
    with locked(project):
        live, every = current(project), releases(project)
        if live not in every or every.index(live) == 0:
            raise PublishError("er is geen oudere versie om naar terug te gaan.")
        release = every[every.index(live) - 1]
        go_live(project, release)
        return release


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    project = Path.cwd()
    if args[:1] in (["build"], ["rollback"]) and len(args) == 1 or args[:1] == ["activate"] and len(args) == 2:
        command = args[0]
    else:
        print("gebruik: python -m site_config.publish build | activate RELEASE-MAP | rollback", file=sys.stderr)
        return 2
    before = current(project)
    try:
        if command == "build":
            release = build(project)
        elif command == "activate":
            release = activate(project, Path(args[1]))
        else:
            release = rollback(project)
    except PublishError as exc:
        online = f"{RELEASES}/{before.name}" if before else ("de oude map site/" if (project / SITE).is_dir()
                                                              else "nog geen enkele versie")
        what = {"build": "De build is mislukt", "activate": "Publiceren is mislukt",
                "rollback": "Terugzetten is mislukt"}[command]
        print(f"\n{what}: {exc}\nEr is niets veranderd aan de site die online staat ({online}).", file=sys.stderr)
        return 1
    print(f"Online: {RELEASES}/{release.name}" + (f" (vorige: {before.name}; terugzetten met make rollback)"
                                                   if before and before != release else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
