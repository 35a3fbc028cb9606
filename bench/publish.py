"""What visitors get while the site is published: answers and status codes during a failed build, a
good build and a rollback, on `make run`'s server and on nginx from deploy/.

Why: the issue "From commit to live site" found `make build` rebuilding site/ in place: nginx served
39 × 404 and 14 × 403 out of 256 requests during a build, `make run` 500s, and a failed build left every
page answering 500. site_config/publish.py builds into releases/<id> and swaps a symlink; the bar is 0
answers other than 200.

A copy of the site's sources (docs/, mkdocs.yml; site_config shared) in a temp folder, one post per list
page (so new posts open deeper list pages, with inline-script hashes no earlier page had). Served by
gunicorn -c deploy/gunicorn.conf.py 'leadform.wsgi:with_site()' (as `make run`) and by nginx with
deploy/nginx.conf in front of gunicorn (deploy/local.py, loopback ports, a throwaway CA), nginx
reloaded by SITE_RELOAD_COMMAND. One thread per server asks for five pages in turn over a new connection
each (tests/support/publishing.py: status, security headers, every inline script allowed by the CSP it
came with), while:

  failed build   a post with a broken link: `python -m site_config.publish build` exits 1
  good build     two posts in a new category: the build goes live
  rollback       `python -m site_config.publish rollback`, then until nginx serves the old release

For comparison, `--in-place` also runs the old way on a second copy: `mkdocs build --strict` straight into
the served site/ folder (the failed build, then the good one followed by `nginx -s reload`), as the
Makefile and deploy/README.md did before releases.

    python bench/publish.py              # writes bench/results/publish.json and publish.md
    python bench/publish.py --in-place   # and the old way beside it

Reports; never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from common import wait_for_health  # noqa: E402
from support.publishing import Target, Watch, one_post_per_list_page, publish, write_posts  # noqa: E402

from deploy import local  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def project_copy(work: Path) -> Path:
    project = work / "project"
    project.mkdir(parents=True)
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    (project / "site_config").symlink_to(ROOT / "site_config")
    return project


def run(work: Path) -> dict[str, object]:
    project = project_copy(work)
    env = {"LEADFORM_PDF_DIR": str(work / "pdfs")}
    one_post_per_list_page(project)
    first = publish(project, "build", env=env)
    if first.returncode != 0:
        raise RuntimeError(first.stderr)
    run_port = local.free_port()
    run_env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_SITE_DIR": str(project / "site"),
               "LEADFORM_PDF_DIR": str(work / "pdfs"), "LEADFORM_INSTANCE_PATH": str(work / "run"),
               "LEADFORM_OUTBOX_THREAD": "false"}
    app_env = {"LEADFORM_SECRET_KEY": os.urandom(32).hex(), "LEADFORM_ALLOW_FILE_MAIL": "1",
               "LEADFORM_PDF_DIR": str(work / "pdfs"), "LEADFORM_OUTBOX_THREAD": "false"}
    outcome: dict[str, object] = {}
    with local.gunicorn(run_env, run_port, wsgi="leadform.wsgi:with_site()", log=work / "run.log"), \
            local.nginx_and_app(project / "site", work / "deploy", app_env) as nginx:
        wait_for_health(f"http://127.0.0.1:{run_port}")
        env["SITE_RELOAD_COMMAND"] = f"{local.NGINX} -p {nginx.prefix} -c {nginx.prefix / 'nginx.conf'} -s reload"
        targets = [Target("make run", run_port),
                   Target("nginx", nginx.https_port, https=True, ca=nginx.ca, host=local.HOST)]
        with Watch(targets) as watch:
            time.sleep(1)
            with watch.phase("failed build"):
                write_posts(project, body="Zie [de diensten](../../diensten/bestaat-niet.md).")
                outcome["failed build"] = publish(project, "build", env=env).returncode
            with watch.phase("good build"):
                write_posts(project, body="Zie [teamcoaching](../../diensten/teamcoaching.md).")
                outcome["good build"] = publish(project, "build", env=env).returncode
                time.sleep(1)   # nginx's new workers take over after the reload signal
            with watch.phase("rollback"):
                outcome["rollback"] = publish(project, "rollback", env=env).returncode
                time.sleep(1)
    return {"exit codes": outcome, "phases": {name: phase.summary() for name, phase in watch.phases.items()}}


def run_in_place(work: Path) -> dict[str, object]:
    """The old way: mkdocs builds into the folder both servers serve."""
    project = project_copy(work)
    one_post_per_list_page(project)
    site = project / "site"
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)]
    quiet = {"cwd": project, "capture_output": True, "env": {**os.environ, "NO_MKDOCS_2_WARNING": "1"}}
    subprocess.run(mkdocs, check=True, **quiet)
    run_port = local.free_port()
    run_env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_SITE_DIR": str(site), "LEADFORM_INSTANCE_PATH": str(work / "run"),
               "LEADFORM_OUTBOX_THREAD": "false"}
    app_env = {"LEADFORM_SECRET_KEY": os.urandom(32).hex(), "LEADFORM_ALLOW_FILE_MAIL": "1",
               "LEADFORM_OUTBOX_THREAD": "false"}
    outcome: dict[str, object] = {}
    with local.gunicorn(run_env, run_port, wsgi="leadform.wsgi:with_site()", log=work / "run.log"), \
            local.nginx_and_app(site, work / "deploy", app_env) as nginx:
        wait_for_health(f"http://127.0.0.1:{run_port}")
        reload = [local.NGINX, "-p", str(nginx.prefix), "-c", str(nginx.prefix / "nginx.conf"), "-s", "reload"]
        targets = [Target("make run", run_port),
                   Target("nginx", nginx.https_port, https=True, ca=nginx.ca, host=local.HOST)]
        with Watch(targets) as watch:
            time.sleep(1)
            with watch.phase("failed build"):
                write_posts(project, body="Zie [de diensten](../../diensten/bestaat-niet.md).")
                outcome["failed build"] = subprocess.run(mkdocs, **quiet).returncode
            with watch.phase("good build"):
                write_posts(project, body="Zie [teamcoaching](../../diensten/teamcoaching.md).")
                outcome["good build"] = subprocess.run(mkdocs, **quiet).returncode
                subprocess.run(reload, check=True)
                time.sleep(1)
    return {"exit codes": outcome, "phases": {name: phase.summary() for name, phase in watch.phases.items()}}


def markdown(result: dict) -> str:
    lines = [f"# Publishing under load ({result['date']})", "",
             f"Machine: {result['machine']}, load average before {result['load_before']}.", "",
             "| phase | exit code | answers | non-200 | header/CSP problems | seconds | per server | slowest (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, run_result in (("releases", result), ("in place (the old way)", result.get("in_place"))):
        if not run_result:
            continue
        for name, phase in run_result["phases"].items():
            per = ", ".join(f"{k}: {v}" for k, v in phase["per_server"].items())
            slow = ", ".join(f"{k}: {v}" for k, v in phase["slowest_answer_s"].items())
            lines.append(f"| {name}, {label} | {run_result['exit codes'][name]} | {phase['requests']} | "
                         f"{phase['non_200']} | {phase['header_or_csp_problems']} | {phase['seconds']} | {per} | "
                         f"{slow} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--in-place", action="store_true", help="also measure the old way (mkdocs into site/)")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        result = run(Path(tmp) / "releases")
        if args.in_place:
            result["in_place"] = run_in_place(Path(tmp) / "in-place")
    result |= {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
               "load_before": " ".join(f"{x:.1f}" for x in load)}
    text = markdown(result)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "publish.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / "publish.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
