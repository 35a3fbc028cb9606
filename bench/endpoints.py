"""Endpoint throughput under gunicorn: each POST flow against a trivial route, in one run, on SQLite
and on PostgreSQL.

Why: the issues asked for req/s and p50/p99 of the checklist, contact and consent POSTs with 2
workers and 16 concurrent clients, as a ratio to a trivial route (/api/health) on the same server,
and that stored rows equal accepted requests. The ratios are reported, no longer targets. wrk
(Debian package `wrk`) makes the load from its own process; a Lua script counts status codes per
flow. Each engine gets a throwaway database: SQLite in a temp instance folder, PostgreSQL a new
database on BENCH_POSTGRES_URL's server (default postgres@127.0.0.1:5432), dropped afterwards.

    python bench/endpoints.py                 # both engines, 40 s per flow in 8 slices of 5 s each
    python bench/endpoints.py --engine postgresql --seconds 8 --rounds 2    # quicker, one engine
    python bench/endpoints.py --database-url postgresql+psycopg://user@host/db   # an existing database
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import ENGINES, count_rows, database_label, throwaway_database

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  responses = 0
  statuses = {}
end
request = function()
  counter = counter + 1
  local uid = tid .. "-" .. counter
  local body = string.gsub(BODY, "{uid}", uid)
  return wrk.format(METHOD, PATH, HEADERS, body)
end
response = function(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  local sent, answered = 0, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do total[code] = (total[code] or 0) + n end
    sent = sent + t:get("counter")
    answered = answered + t:get("responses")
  end
  io.write(string.format("INFLIGHT %d\n", sent - answered))
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, '"' .. code .. '":' .. n) end
  io.write("STATUSES {" .. table.concat(parts, ",") .. "}\n")
  io.write(string.format("LATENCY %d %d %d\n", latency:percentile(50), latency:percentile(99), latency.max))
  io.write(string.format("TOTAL %d %f\n", summary.requests, summary.duration))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII


def start_server(instance: Path, workers: int, threads: int | None, database_url: str
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "LEADFORM_SECRET_KEY": "bench-" + os.urandom(8).hex(),
           "LEADFORM_INSTANCE_PATH": str(instance), "LEADFORM_RATELIMIT_ENABLED": "false",
           "LEADFORM_DATABASE_URL": database_url,
           "LEADFORM_PUBLIC_URL": f"http://127.0.0.1:{port}/", "LEADFORM_LOG_LEVEL": "WARNING"}
    # The production settings (deploy/gunicorn.conf.py: gthread, outbox thread per worker, ...) with
    # the worker count and address of this run; `threads` overrides the file's only when given.
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers))
    # --max-requests 0: no worker recycling mid-run (a restart would show up as latency of whichever flow
    # runs then, and reset the worker's peak memory).
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--max-requests", "0"]
    if threads:
        cmd += ["--threads", str(threads)]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # two workers migrating a fresh database, one after the other
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1).read()
            return server, url
        except OSError:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("gunicorn did not start")


def session_token(url: str) -> tuple[dict, str]:
    """A CSRF token and the session cookie it belongs to, as a visitor's browser would hold them."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    data = json.loads(opener.open(url + "/api/csrf").read())
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return data, cookie


def run_wrk(url: str, method: str, path: str, headers: dict[str, str], body: str, seconds: int,
            connections: int, master: int) -> dict[str, Any]:
    script = LUA.replace("BODY", lua_string(body)).replace("METHOD", lua_string(method)) \
        .replace("PATH", lua_string(path))
    header_lua = "{" + ",".join(f"[{lua_string(k)}]={lua_string(v)}" for k, v in headers.items()) + "}"
    script = script.replace("HEADERS", header_lua)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cpu_before = worker_cpu(master)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
                          "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    cpu = worker_cpu(master) - cpu_before
    os.unlink(f.name)
    statuses = {int(k): v for k, v in json.loads(re.search(r"STATUSES (\{.*\})", out).group(1)).items()}
    p50, p99, worst = (int(x) for x in re.search(r"LATENCY (\d+) (\d+) (\d+)", out).groups())
    total, duration = re.search(r"TOTAL (\d+) ([\d.]+)", out).groups()
    errors = re.search(r"Socket errors: (.*)", out)
    in_flight = re.search(r"INFLIGHT (-?\d+)", out)
    return {"requests": int(total), "rps": int(total) / (float(duration) / 1e6), "p50_ms": p50 / 1000,
            "cpu_ms": 1000 * cpu / int(total) if int(total) else 0.0,
            "p99_ms": p99 / 1000, "max_ms": worst / 1000, "statuses": statuses,
            "socket_errors": errors.group(1) if errors else "none",
            # sent when wrk's time was up, never answered to wrk (the server may still have stored them)
            "in_flight_at_end": int(in_flight.group(1)) if in_flight else 0}


def _workers(master: int) -> Iterator[tuple[Path, list[str]]]:
    """Each gunicorn worker's /proc folder and the fields of its /proc/PID/stat after the command name
    (fields[1] is field 4, the parent's pid)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                yield stat.parent, fields
        except (OSError, IndexError, ValueError):
            continue


def worker_memory(master: int) -> list[dict[str, Any]]:
    """Peak and current resident memory (VmHWM, VmRSS) of each gunicorn worker, from /proc."""
    workers = []
    for proc, _fields in _workers(master):
        try:
            status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        workers.append({"pid": int(proc.name), "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
                        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1)})
    return sorted(workers, key=lambda w: w["pid"])


def worker_cpu(master: int) -> float:
    """CPU seconds (user + system) the gunicorn workers have used so far, from /proc. Per request, it
    shows what a flow costs the server, without the time spent waiting for a CPU."""
    # fields 14 and 15 of /proc/PID/stat: utime, stime
    ticks = sum(int(fields[11]) + int(fields[12]) for _proc, fields in _workers(master))
    return ticks / os.sysconf("SC_CLK_TCK")


def count(url: str, table: str) -> int:
    return count_rows(url, f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names


def wait_for_outbox(url: str, limit: float = 120) -> float:
    """Seconds spent waiting until the outbox threads have sent what the previous flow queued, so that
    each flow is measured on a server with nothing else to do (the mail of 3,000 leads takes a while)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not count_rows(url, "SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')"):
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def configured_threads() -> int:
    """gthread threads per worker in deploy/gunicorn.conf.py (GUNICORN_THREADS or the file's default)."""
    import runpy

    return int(runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))["threads"])


def bench_engines(engines: tuple[str, ...] = ENGINES, **kwargs: Any) -> dict[str, Any]:
    """`bench` on each engine in turn, each on a throwaway database: {"engines": {name: result}}."""
    results: dict[str, Any] = {}
    for engine in engines:
        print(f"endpoints on {engine} …", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp, throwaway_database(engine, Path(tmp)) as url:
            try:
                results[engine] = bench(database_url=url, instance=Path(tmp), **kwargs)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports; the other engine still runs
                results[engine] = {"error": f"{type(exc).__name__}: {exc}"[:800]}
    return {"engines": results}


def bench(seconds: int = 40, workers: int = 2, threads: int | None = None, connections: int = 16,
          rounds: int = 8, only: str = "", database_url: str | None = None,
          instance: Path | None = None) -> dict[str, Any]:
    """Each POST flow for `seconds`, in `rounds` slices, each slice right after a slice of the trivial
    route: this shared machine's speed drifts by half within a minute, so a flow is compared with the
    trivial route measured just before it, and the ratio is the median over the rounds. Eight slices,
    not four: a slice that something else on the machine slowed (a third of one route's throughput
    gone, at the same CPU per request) then moves the median less than a target's margin."""
    per_slice = max(1, seconds // rounds)
    with tempfile.TemporaryDirectory() as tmp:
        instance = instance or Path(tmp)
        database = database_url or f"sqlite:///{instance / 'leadform.sqlite3'}"
        server, url = start_server(instance, workers, threads, database)
        try:
            token, cookie = session_token(url)
            time.sleep(3.2)  # the contact form's minimum time since the form was shown
            trivial = ("GET", "/api/health", {}, "")
            flows = {name: flow for name, flow in post_flows(token, cookie).items() if only in name}
            slices: dict[str, list[dict[str, Any]]] = {"trivial GET /api/health": [], **{name: [] for name in flows}}
            for n in range(rounds):
                for name, (method, path, headers, body, ok, table) in flows.items():
                    base = run_wrk(url, *trivial, per_slice, connections, server.pid)
                    before = count(database, table)
                    result = run_wrk(url, method, path, headers, body.replace("{round}", str(n)), per_slice,
                                     connections, server.pid)
                    time.sleep(0.5)
                    result.update(accepted=result["statuses"].get(ok, 0), stored=count(database, table) - before,
                                  ratio=result["rps"] / base["rps"] if base["rps"] else 0.0)
                    result["outbox_drain_s"] = wait_for_outbox(database)  # this slice's mail, before the next
                    slices["trivial GET /api/health"].append(base)
                    slices[name].append(result)
            memory = worker_memory(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    return {"database": database_label(database), "load_after": os.getloadavg(),
            "workers": workers, "threads": threads or configured_threads(), "connections": connections,
            "seconds": per_slice * rounds, "rounds": rounds, "config": "deploy/gunicorn.conf.py",
            "flows": {name: combine(runs) for name, runs in slices.items()}, "worker_memory": memory}


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One flow's slices as one figure: totals for counts and req/s, medians over the slices for the
    latencies and the ratio to the trivial route (the trivial route's own ratio is 1)."""
    seconds = sum(r["requests"] / r["rps"] for r in runs if r["rps"])
    statuses: dict[int, int] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    combined = {"requests": sum(r["requests"] for r in runs), "statuses": statuses,
                "rps": sum(r["requests"] for r in runs) / seconds if seconds else 0.0,
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "p99_worst_slice_ms": max(r["p99_ms"] for r in runs),
                "cpu_ms": statistics.median(r.get("cpu_ms", 0.0) for r in runs),
                "max_ms": max(r["max_ms"] for r in runs),
                "ratio": statistics.median(r.get("ratio", 1.0) for r in runs),
                "ratio_slices": [round(r.get("ratio", 1.0), 3) for r in runs],
                # Per slice, to tell the machine's drift from the app's: the trivial route's slices are
                # the ones measured right before each flow's.
                "rps_slices": [round(r["rps"]) for r in runs],
                "cpu_ms_slices": [round(r.get("cpu_ms", 0.0), 2) for r in runs],
                "socket_errors": "; ".join(sorted({r["socket_errors"] for r in runs} - {"none"})) or "none",
                "in_flight_at_end": sum(r["in_flight_at_end"] for r in runs)}
    if "stored" in runs[0]:
        combined.update(accepted=sum(r["accepted"] for r in runs), stored=sum(r["stored"] for r in runs),
                        outbox_drain_s=max(r["outbox_drain_s"] for r in runs))
    return combined


def post_flows(token: dict[str, str], cookie: str) -> dict[str, tuple[str, str, dict[str, str], str, int, str]]:
    """Each POST flow as a visitor's browser sends it: method, path, headers, body (`{round}` and
    `{uid}` are filled in per request), the status that means accepted, and the table it adds to.
    `token` and `cookie` come from GET /api/csrf (`session_token`)."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    csrf = urllib.parse.quote(token["csrf_token"])
    started = urllib.parse.quote(token["started"])
    return {
        "checklist POST": ("POST", "/api/checklists/teams", form,
                           f"csrf_token={csrf}&name=Bench&email=b{{round}}-{{uid}}%40example.be&privacy=y",
                           303, "leads"),
        "contact POST": ("POST", "/api/contact", form,
                         f"csrf_token={csrf}&started={started}&name=Bench&email=c{{round}}-{{uid}}%40example.be"
                         "&subject=teamcoaching&message=Hallo%20daar&privacy=y", 303, "contact_messages"),
        "consent POST": ("POST", "/api/consent", {"Content-Type": "application/json"},
                         consent_body(), 201, "consent_records"),
    }


def consent_body() -> str:
    """One consent choice as the banner sends it (see leadform/consent.py)."""
    from leadform.consent import example_payload

    return json.dumps(example_payload())


def _drain(flow: dict[str, Any]) -> str:
    """How long after the slice's end its last queued mail was sent (0 when the outbox kept up)."""
    return f"{flow['outbox_drain_s']:.1f} s" if "outbox_drain_s" in flow else "-"


def markdown(result: dict[str, Any]) -> str:
    """One engine's table, or each engine's in turn with the ratios side by side first."""
    if "engines" in result:
        return markdown_engines(result["engines"])
    rounds = result.get("rounds", 1)
    lines = [f"{result.get('database', 'SQLite')}, rate limits off. "
             f"gunicorn -c {result.get('config', 'command line')}: {result['workers']} workers × "
             f"{result['threads']} threads (gthread), {result['connections']} concurrent clients (wrk), "
             f"{result['seconds']} s per flow in {rounds} slices, each right after a slice of the trivial route\n",
             "| Flow | req/s | ratio to trivial (median; per slice) | p50 ms | p99 ms (median; worst slice) | "
             "worker CPU ms per request | accepted | stored | in flight at end | mail sent within (worst slice) | "
             "errors |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, r in result["flows"].items():
        slices = "" if name.startswith("trivial") else \
            " (" + ", ".join(f"{x:.2f}" for x in r.get("ratio_slices", [])) + ")"
        lines.append(f"| {name} | {r['rps']:.0f} | {r['ratio']:.2f}{slices} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} ({r.get('p99_worst_slice_ms', r['p99_ms']):.1f}) | "
                     f"{r.get('cpu_ms', 0.0):.2f} | {r.get('accepted', '-')} | {r.get('stored', '-')} | "
                     f"{r.get('in_flight_at_end', 0)} | {_drain(r)} | {r['socket_errors']} |")
    lines += ["", "accepted = 2xx answers wrk received; stored = new rows; a request still in flight when wrk "
              "stopped may be stored without being counted as accepted, so stored = accepted + (at most) "
              "in flight is the no-loss condition. The mail a flow queued is sent (outbox drained) before the "
              "next slice starts. Worker CPU per request: the workers' user + system time during the slice "
              "(their outbox threads included) over the requests answered, median over the slices. It leaves "
              "out the time the workers waited for a CPU, so it moves less than req/s with what else this "
              "shared machine runs."]
    memory = result.get("worker_memory") or []
    if memory:
        lines += ["", "Worker memory after the run (VmHWM = peak RSS): " + ", ".join(
            f"pid {w['pid']}: peak {w['peak_rss_mb']:.0f} MB (now {w['rss_mb']:.0f} MB)" for w in memory)]
    return "\n".join(lines) + "\n"


def markdown_engines(engines: dict[str, Any]) -> str:
    ok = {name: r for name, r in engines.items() if "flows" in r}
    lines = []
    if ok:
        names = [n for n in next(iter(ok.values()))["flows"] if not n.startswith("trivial")]
        lines += ["Ratio to the trivial route `/api/health` (median over the slices; reported, not a target), "
                  "with req/s and p99:", "",
                  "| Flow | " + " | ".join(r["database"] for r in ok.values()) + " |",
                  "| --- |" + " ---: |" * len(ok)]
        trivial = "trivial GET /api/health"
        lines.append(f"| {trivial} | " + " | ".join(
            f"{r['flows'][trivial]['rps']:.0f} req/s, p99 {r['flows'][trivial]['p99_ms']:.1f} ms" for r in ok.values())
            + " |")
        for name in names:
            lines.append(f"| {name} | " + " | ".join(
                f"{r['flows'][name]['ratio']:.2f} × ({r['flows'][name]['rps']:.0f} req/s, "
                f"p99 {r['flows'][name]['p99_ms']:.1f} ms)" if name in r["flows"] else "-" for r in ok.values())
                + " |")
        lines.append("")
    for name, r in engines.items():
        lines += [f"### {r.get('database', name)}", ""]
        lines.append(f"error: {r['error']}\n" if "error" in r else markdown(r))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8, help="slices per flow, each after a trivial slice")
    parser.add_argument("--only", default="", help="only the flows whose name contains this, e.g. consent")
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both",
                        help="database(s), each a throwaway one (default: both, one after the other)")
    parser.add_argument("--database-url", help="an existing, empty database instead (SQLAlchemy URL, "
                        "e.g. postgresql+psycopg://postgres@127.0.0.1/bench_x); its rows are left in place")
    args = parser.parse_args()
    options = {"seconds": args.seconds, "workers": args.workers, "rounds": args.rounds, "only": args.only}
    if args.database_url:
        result = bench(database_url=args.database_url, **options)
    else:
        result = bench_engines(ENGINES if args.engine == "both" else (args.engine,), **options)
    print(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
