"""The MDN HTTP Observatory's own scoring, run against this machine (it reports; it never asserts).

Why: the issue "Hardening" targets A+ on the Observatory apart from the TLS-only tests. The
scanner is the Observatory's npm package (bench/observatory-cli, `npm ci --ignore-scripts`: its
install script downloads the HSTS preload list, so an empty `conf/hsts-preload.json` is written
instead). Three targets:

  http    `make run`'s server (gunicorn -c deploy/gunicorn.conf.py 'leadform.wsgi:with_site()', one
          worker, four threads) over plain HTTP, as a newcomer runs it.
          HSTS and the redirection test cannot pass without TLS.
  https   the same server with LEADFORM_PUBLIC_HTTPS=true, gunicorn itself serving TLS (a throwaway
          CA that the scanner trusts): HSTS is sent and verified. Nothing listens for plain HTTP on that
          port, so "redirection" passes as "no HTTP to redirect".
  nginx   production: deploy/nginx.conf on ports 80 and 443 in front of gunicorn
          (deploy/gunicorn.conf.py), scanned as www.voorbeeld-coaching.be. Runs in a private
          network and mount namespace (`unshare`, root) where that name points to 127.0.0.1;
          the real HTTP to HTTPS redirect and HSTS are scored.

    python bench/observatory.py                 # all three, writes bench/results/observatory.md
    python bench/observatory.py --target http   # one of them
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "bench" / "observatory-cli"
PACKAGE = CLI / "node_modules" / "@mdn" / "mdn-http-observatory"
RESULTS = ROOT / "bench" / "results"
TARGETS = ("http", "https", "nginx")
sys.path.insert(0, str(ROOT))

from deploy import local  # noqa: E402


def scanner() -> Path:
    """The scan script, installed from the lock file on first use."""
    if not PACKAGE.exists():
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=CLI, check=True,
                       stdout=subprocess.DEVNULL)
    preload = PACKAGE / "conf" / "hsts-preload.json"
    if not preload.exists():
        preload.write_text("{}\n")
    return PACKAGE / "src" / "scan.js"


def scan(hostname: str, ca: Path | None = None) -> dict[str, Any]:
    """Run the scanner; src/scan.js directly, because bin/wrapper.js overrides NODE_EXTRA_CA_CERTS."""
    env = {**os.environ, **({"NODE_EXTRA_CA_CERTS": str(ca)} if ca else {})}
    done = subprocess.run(["node", str(scanner()), hostname], env=env, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"error": (done.stdout + done.stderr).strip()[-2000:]}


def build_site(folder: Path) -> Path:
    """The real site, with the .gz copies `make build` adds (WhiteNoise serves those)."""
    site = folder / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "whitenoise.compress", "--quiet", "--no-brotli", str(site)], check=True)
    return site


def app_env(site: Path, work: Path, https: bool) -> dict[str, str]:
    env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_SITE_DIR": str(site), "LEADFORM_INSTANCE_PATH": str(work / "inst"),
           "LEADFORM_OUTBOX_THREAD": "false", "LEADFORM_PUBLIC_HTTPS": "true" if https else "false"}
    if https:  # a public site refuses the development key and, unless allowed, mail in files
        env |= {"LEADFORM_SECRET_KEY": os.urandom(32).hex(), "LEADFORM_ALLOW_FILE_MAIL": "1"}
    return env


@contextmanager
def embedded(site: Path, work: Path, tls: tuple[Path, Path] | None) -> Iterator[int]:
    """`make run`'s server: gunicorn -c deploy/gunicorn.conf.py 'leadform.wsgi:with_site()' with one worker
    and four threads; with `tls` (cert, key) gunicorn serves HTTPS itself (GUNICORN_CMD_ARGS, which
    gunicorn reads after the config file)."""
    port = local.free_port()
    env = {**app_env(site, work, https=tls is not None), "GUNICORN_THREADS": "4"}
    if tls is not None:
        env["GUNICORN_CMD_ARGS"] = f"--certfile={tls[0]} --keyfile={tls[1]}"
    with local.gunicorn(env, port, workers=1, log=work / "gunicorn.log", wsgi="leadform.wsgi:with_site()"):
        # gunicorn listens before its worker has imported the app: wait until the app answers
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/api/health"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2, context=ssl._create_unverified_context()).read()  # noqa: S323
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield port


def run_target(target: str, site: Path, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    if target == "http":
        with embedded(site, work, None) as port:
            return scan(f"127.0.0.1:{port}")
    if target == "https":
        ca, cert, key = local.self_signed(work / "tls")
        with embedded(site, work, (cert, key)) as port:
            return scan(f"127.0.0.1:{port}", ca)
    return nginx_in_namespace(site, work)


def nginx_in_namespace(site: Path, work: Path) -> dict[str, Any]:
    """Re-run this script inside `unshare --net --mount`, where ports 80/443 and the host name are private."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return {"error": "needs root and unshare (util-linux) for a private network namespace"}
    out = work / "nginx-scan.json"
    inner = f"ip link set lo up && exec {sys.executable} {Path(__file__)} --inside-namespace {site} {work} {out}"
    done = subprocess.run(["unshare", "--net", "--mount", "--fork", "sh", "-c", inner], capture_output=True,
                          text=True, timeout=300)
    if not out.exists():
        return {"error": (done.stdout + done.stderr).strip()[-2000:]}
    return json.loads(out.read_text())


def inside_namespace(site: Path, work: Path, out: Path) -> None:
    """In the private namespace: www.voorbeeld-coaching.be is 127.0.0.1, nginx listens on 80 and 443."""
    hosts = work / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {local.HOST}\n")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)
    env = {k: v for k, v in app_env(site, work, https=True).items() if k != "LEADFORM_DEV_SECRET"}
    with local.nginx_and_app(site, work / "nginx-run", env, standard_ports=True) as deployment:
        out.write_text(json.dumps(scan(local.HOST, deployment.ca)))


TLS_ONLY = ("redirection", "strict-transport-security")


def without_tls_tests(result: dict[str, Any]) -> int:
    """The Observatory's score formula (base 100, bonuses only once the penalties leave 90 or more),
    leaving out the two tests that cannot pass without TLS."""
    modifiers = [t["scoreModifier"] for name, t in result["tests"].items() if name not in TLS_ONLY]
    penalties = 100 + sum(m for m in modifiers if m < 0)
    return 100 + sum(modifiers) if penalties >= 90 else penalties


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| target | grade | score | tests passed | score without the TLS-only tests |",
             "| --- | --- | --- | --- | --- |"]
    for target, result in results.items():
        s = result.get("scan", {})
        lines.append(f"| {target} | {s.get('grade', '—')} | {s.get('score', '—')} | "
                     f"{s.get('testsPassed', '—')}/{s.get('testsQuantity', '—')} | {without_tls_tests(result)} |"
                     if "scan" in result else f"| {target} | error: {result.get('error', '?')[:200]} | | | |")
    names = sorted({name for r in results.values() for name in r.get("tests", {})})
    lines += ["", "| test | " + " | ".join(results) + " |", "| --- |" + " --- |" * len(results)]
    for name in names:
        cells = []
        for result in results.values():
            test = result.get("tests", {}).get(name)
            cells.append("—" if test is None else
                         f"{'pass' if test['pass'] else 'FAIL'} `{test['result']}` ({test['scoreModifier']:+d})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=TARGETS, action="append", help="default: all three")
    parser.add_argument("--site-dir", type=Path, help="an already built site (default: build into a temp dir)")
    parser.add_argument("--inside-namespace", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside_namespace:
        inside_namespace(*args.inside_namespace)
        return
    with tempfile.TemporaryDirectory(prefix="observatory-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        site = args.site_dir.resolve() if args.site_dir else build_site(work)
        results = {}
        for target in args.target or TARGETS:
            started = time.monotonic()
            results[target] = run_target(target, site, work / target)
            print(f"{target}: {results[target].get('scan', results[target])}  ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr)
    report = ("# MDN HTTP Observatory (bench/observatory.py)\n\n"
              f"Scanner @mdn/mdn-http-observatory {json.loads((PACKAGE / 'package.json').read_text())['version']}, "
              f"{time.strftime('%Y-%m-%d')}.\n\n" + table(results))
    print(report)
    if not args.target:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "observatory.md").write_text(report)
        (RESULTS / "observatory.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
