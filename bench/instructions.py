"""Instructions per request, counted by valgrind's callgrind: the endpoints' cost without the noise.

Why: on this shared machine the same code gave 1.4 to 2.6 ms of worker CPU per checklist request
from one 5-second slice to the next (bench/endpoints.py), so a change worth a few percent cannot be
seen there. Callgrind counts the instructions a process executes: the same count for the same code
and input, whatever else the machine is doing. Each flow is called in-process on the WSGI app (no
gunicorn, no sockets), as endpoints.py sends it, in two runs: SMALL and LARGE requests after the same
start-up and warm-up. The difference over LARGE - SMALL is one request. User space only: the
kernel's part (a lead's WAL writes and disk sync) is not counted, and neither is gunicorn's own work
per request, which is the same for every route, so the ratios under gunicorn come out higher.
valgrind is Debian's package `valgrind`.

    python bench/instructions.py                   # the four flows, two valgrind runs at a time
    python bench/instructions.py --only checklist  # the trivial route and the checklist
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import in_process_app_env

ROOT = Path(__file__).resolve().parent.parent
SMALL, LARGE, WARM_UP = 20, 420, 50
TRIVIAL = "trivial GET /api/health"


def _flows(app: Any) -> dict[str, tuple[str, str, dict[str, str], str, int]]:
    """The trivial route and endpoints.py's POST flows, with a CSRF token and cookie from the app."""
    from endpoints import post_flows

    client = app.test_client()
    token = client.get("/api/csrf").get_json()
    name = app.config["SESSION_COOKIE_NAME"]
    flows = {TRIVIAL: ("GET", "/api/health", {}, "", 200)}
    cookie = f"{name}={client.get_cookie(name).value}"
    for flow, (method, path, headers, body, ok, _table) in post_flows(token, cookie).items():
        flows[flow] = (method, path, headers, body, ok)
    return flows


def child(flow: str, requests: int) -> None:
    """Under valgrind: start the app, warm up, then `requests` requests of `flow`; exit 1 on a wrong answer."""
    in_process_app_env(tempfile.mkdtemp(prefix="bench-instructions-"))
    sys.path.insert(0, str(ROOT))
    from werkzeug.test import EnvironBuilder

    from leadform import create_app

    app = create_app()
    method, path, headers, body, ok = _flows(app)[flow]
    time.sleep(3.2)  # the contact form's minimum time since the form was shown
    headers = dict(headers)
    base = EnvironBuilder(path=path, method=method, content_type=headers.pop("Content-Type", None),
                          headers=headers).get_environ()
    statuses: list[str] = []

    def call(uid: int) -> None:
        data = body.replace("{round}", "0").replace("{uid}", str(uid)).encode()
        environ = {**base, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))}
        response = app(environ, lambda status, _headers, _exc=None: statuses.append(status))
        for _ in response:
            pass
        response.close()
        if not statuses[-1].startswith(str(ok)):
            raise SystemExit(f"{flow}: answered {statuses[-1]}, expected {ok}")

    for uid in range(WARM_UP):
        call(uid)
    # Everything loaded so far out of the collector's sight: a full collection over the start-up's
    # objects, landing in one run and not the other, would otherwise add its cost to a few requests.
    gc.freeze()
    for uid in range(WARM_UP, WARM_UP + requests):
        call(uid)


def count(flow: str, requests: int) -> int:
    """Instructions of one valgrind run of the child."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out",
                              sys.executable, __file__, "--child", flow, str(requests)],
                             capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONHASHSEED": "0"})  # the same dict layouts in every run
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode or not found:
        raise RuntimeError(f"{flow}: valgrind run failed: {run.stderr[-600:]}")
    return int(found.group(1))


def measure(only: str = "") -> dict[str, Any]:
    flows = [TRIVIAL] + [f for f in ("checklist POST", "contact POST", "consent POST") if only in f]
    runs = [(flow, n) for flow in flows for n in (SMALL, LARGE)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # instruction counts do not depend on the neighbour
        totals = dict(zip(runs, pool.map(lambda run: count(*run), runs), strict=True))
    per_request = {flow: (totals[flow, LARGE] - totals[flow, SMALL]) / (LARGE - SMALL) for flow in flows}
    return {"requests": LARGE - SMALL, "flows": {
        flow: {"instructions": round(n), "ratio": per_request[TRIVIAL] / n} for flow, n in per_request.items()}}


def markdown(result: dict[str, Any]) -> str:
    lines = ["Instructions per request (valgrind callgrind, user space), the app called in-process: the "
             f"difference between runs of {SMALL} and {LARGE} requests after the same start-up. The same count "
             "for the same code whatever else this machine does; gunicorn's own work per request and the "
             "kernel's (a lead's disk sync) are not in it.", "",
             "| Flow | Instructions per request | Ratio to trivial |", "| --- | ---: | ---: |"]
    if result.get("note"):
        lines[1:1] = ["", result["note"]]
    for flow, r in result["flows"].items():
        lines.append(f"| {flow} | {r['instructions']:,} | {r['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="only the POST flows whose name contains this")
    parser.add_argument("--child", nargs=2, metavar=("FLOW", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    result = measure(args.only)
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
