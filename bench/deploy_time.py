"""Time from `make deploy` (deploy/deploy.sh) starting to a new post answering 200 on the server.

The server is a folder on this machine behind a private sshd on a loopback port (deploy/local.py's
`sshd`, a throwaway key), served by a static HTTP server that follows its `site` link per request.
Each round adds one published post to a copy of the repository, starts the script and asks for the
post's page every 20 ms until it answers 200. Rounds of posts only (no restart), then one with a
change in leadform/ (migrations, PDFs, restart: here a no-op command). Not included: CI's own run of
the tests before the deploy (`.ci/run`, the whole suite twice), which a push through CI adds.

    .venv/bin/python bench/deploy_time.py [--rounds 3]      # -> bench/results/deploy_time.{json,md}

Reports, never asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common import RESULTS, ROOT

from deploy.local import sshd
from site_config.new_post import create

REPOSITORY = ["docs", "leadform", "site_config", "deploy", "mkdocs.yml", "pyproject.toml", "Makefile"]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def timed_deploy(local: Path, env: dict[str, str], url: str) -> dict[str, object]:
    """Seconds from the script's start until `url` answers 200 and until the script ends, and when its
    phases began: the copy to the server ("deploy: release ...") and the server's part ("release: ...")."""
    started = time.monotonic()
    proc = subprocess.Popen(["deploy/deploy.sh"], cwd=local, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line))

    reader = threading.Thread(target=read)
    reader.start()
    live = None
    while live is None and proc.poll() is None:
        if status(url) == 200:
            live = time.monotonic() - started
        else:
            time.sleep(0.02)
    proc.wait()
    reader.join()
    ended = time.monotonic() - started
    output = "".join(line for _, line in lines)
    if proc.returncode != 0:
        raise SystemExit(f"deploy failed:\n{output}")
    if live is None and status(url) == 200:
        live = ended
    copy_at = next(at for at, line in lines if line.startswith("deploy: release"))
    server_at = next(at for at, line in lines if line.startswith("release:"))
    return {"live_s": round(live, 2) if live is not None else None, "script_s": round(ended, 2),
            "build_s": round(copy_at, 2), "copy_s": round(server_at - copy_at, 2),
            "server_s": round(ended - server_at, 2), "restarted": "restarting the app" in output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    local, server = work / "repository", work / "server"
    local.mkdir()
    server.mkdir()
    for name in REPOSITORY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, local / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, local / name)
    env_file = work / "leadform.env"
    env_file.write_text(f"LEADFORM_SECRET_KEY={'b' * 64}\nLEADFORM_DATABASE_URL=sqlite:///{work / 'db.sqlite3'}\n"
                        f"LEADFORM_INSTANCE_PATH={server / 'instance'}\nLEADFORM_MIGRATE_ON_START=false\n"
                        f"COACH_PYTHON={sys.executable}\nCOACH_RESTART=true\n")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(server / "site")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    load_before = os.getloadavg()[0]
    rows = []
    try:
        with sshd(work / "ssh") as ssh:
            env = {**os.environ, "DEPLOY_HOST": ssh.host, "DEPLOY_SSH": ssh.ssh, "DEPLOY_DIR": str(server),
                   "DEPLOY_ENV_FILE": str(env_file), "PYTHON": sys.executable, "NO_MKDOCS_2_WARNING": "1"}
            first = timed_deploy(local, env, f"{base}/")
            rows.append({"round": "first deploy (empty server)", **first})
            build_started = time.monotonic()
            subprocess.run([sys.executable, "-m", "site_config.publish", "build"], cwd=local, env=env, check=True,
                           capture_output=True)
            build_s = round(time.monotonic() - build_started, 2)
            for n in range(1, args.rounds + 1):
                title = f"Meetronde {n} {int(time.time())}"
                post = create(title, posts=local / "docs" / "blog" / "posts", now=dt.datetime(2024, 1, 1, 9, n))
                post.write_text(post.read_text(encoding="utf-8").replace("draft: true", "draft: false"),
                                encoding="utf-8")
                slug = post.stem.split("-", 3)[-1]
                rows.append({"round": f"new post {n}", **timed_deploy(local, env, f"{base}/blog/{slug}/")})
            with (local / "leadform" / "__init__.py").open("a") as module:
                module.write("\n# bench: a change in the app\n")
            title = f"Meetronde app {int(time.time())}"
            post = create(title, posts=local / "docs" / "blog" / "posts", now=dt.datetime(2024, 1, 2, 9, 0))
            post.write_text(post.read_text(encoding="utf-8").replace("draft: true", "draft: false"), encoding="utf-8")
            slug = post.stem.split("-", 3)[-1]
            rows.append({"round": "new post + leadform/ change", **timed_deploy(local, env, f"{base}/blog/{slug}/")})
    finally:
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "load_before": round(load_before, 1),
              "load_after": round(os.getloadavg()[0], 1), "build_alone_s": build_s, "rounds": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "deploy_time.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| Round | Post live after (s) | Script done (s) | of which build | copy (rsync, ssh) | on the server | "
             "App restarted |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['round']} | {r['live_s']} | {r['script_s']} | {r['build_s']} | {r['copy_s']} | {r['server_s']} | "
              f"{'yes' if r['restarted'] else 'no'} |" for r in rows]
    text = (f"# make deploy: script start to new post live ({result['date']})\n\n" + "\n".join(lines) +
            f"\n\n`site_config.publish build` alone: {build_s} s. Load average (1 min) {result['load_before']} before, "
            f"{result['load_after']} after, on {os.cpu_count()} CPUs.\n")
    (RESULTS / "deploy_time.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
