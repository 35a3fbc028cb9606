"""A checklist request's latency at a steady, open-loop rate, on SQLite and on PostgreSQL, mails included.

Why: the issue "One simple core on real engines" sets the bar p99 < 100 ms per engine for a checklist
request at 100 requests per second. wrk keeps a fixed number of connections busy (a closed loop): when
the server slows down, wrk sends less and the slow period hardly shows in its percentiles ("coordinated
omission"). Here request i leaves at start + i / rate whether or not the earlier ones have been answered,
and its latency runs from that scheduled time to the end of the answer, so a request that had to wait
for the load generator itself is counted as late too.

The server is production's: gunicorn -c deploy/gunicorn.conf.py (`leadform.wsgi:application()`, gthread,
the file's threads, worker recycling as configured) with 2 workers, on a throwaway database per engine
(SQLite in a temp instance folder on disk, `synchronous=FULL`; PostgreSQL a new database on
BENCH_POSTGRES_URL's server, dropped afterwards). Mail goes out for real: the outbox threads deliver over
SMTP (LEADFORM_MAIL_BACKEND=smtp) to an aiosmtpd server in a subprocess on a free loopback port, which
counts what it receives. Rate limits are off (LEADFORM_RATELIMIT_ENABLED=false), as in the earlier
benchmarks: 100 requests per second from one address would otherwise be refused by design.

Each request is a real visitor's: its own CSRF token and session cookie from GET /api/csrf (a pool is
fetched before the timed run), then POST /api/checklists/teams with name, a distinct email, privacy=y and
csrf_token on a new connection; 303 is success. A few requests before the timed run warm the workers
up (templates, the SMTP path); they are left out of every figure.

    python bench/open_loop.py                          # 100 req/s for 60 s, SQLite then PostgreSQL
    python bench/open_loop.py --rate 50 --seconds 20 --engine postgresql
    python bench/open_loop.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_x

Writes bench/results/open_loop.json and open_loop.md (--output NAME: NAME.json and NAME.md; --no-write:
neither). Reports; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ENGINES, RESULTS, ROOT, count_rows, database_label, throwaway_database

from deploy import local

VENV_BIN = Path(sys.executable).parent
PATH = "/api/checklists/teams"
BAR_P99_MS = 100.0
REQUEST_TIMEOUT = 30.0      # a request not answered by then counts as an error, with this latency
DRAIN_SECONDS = 30.0        # how long the outbox may take to deliver the run's mail after the last answer
WARMUP_REQUESTS = 20
SERVER_LIFETIME = 1800      # seconds: the servers this script starts stop by themselves after this


@dataclass
class Visitor:
    csrf_token: str
    cookie: str


# -- the SMTP server ----------------------------------------------------------------------------------------

def smtp_sink(port: int, out: Path, lifetime: float) -> None:
    """Run as a subprocess (`--smtp-sink`): accept every mail on 127.0.0.1:port and append one line per
    message (its recipients) to `out`, until SIGTERM or `lifetime` seconds."""
    from aiosmtpd.controller import Controller

    handle = open(out, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the process's life

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
            handle.write(",".join(envelope.rcpt_tos) + "\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    deadline = time.monotonic() + lifetime
    try:
        while not stop["now"] and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        controller.stop()
        handle.close()


def mails_received(out: Path) -> int:
    try:
        with open(out, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


# -- the server ---------------------------------------------------------------------------------------------

def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group we started (gunicorn's master and workers), SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def worker_pids(master: int) -> set[int]:
    """The gunicorn workers of `master` (children; the `timeout` wrapper's child is the master)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds these processes have used so far (fields 14 and 15 of /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def gunicorn_master(wrapper: int) -> int:
    """`timeout` runs gunicorn as its child: the master is the wrapper's only child."""
    for _ in range(100):
        children = worker_pids(wrapper)
        if children:
            return min(children)
        time.sleep(0.05)
    return wrapper


def start_gunicorn(instance: Path, database_url: str, smtp_port: int, workers: int, threads: int | None,
                   recycle: bool) -> tuple[subprocess.Popen, str]:
    port = local.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADFORM_", "GUNICORN_"))}
    env.update(LEADFORM_SECRET_KEY="bench-" + os.urandom(16).hex(), LEADFORM_INSTANCE_PATH=str(instance),
               LEADFORM_DATABASE_URL=database_url, LEADFORM_RATELIMIT_ENABLED="false",
               LEADFORM_PUBLIC_URL=f"http://127.0.0.1:{port}/", LEADFORM_LOG_LEVEL="WARNING",
               LEADFORM_MAIL_BACKEND="smtp", LEADFORM_SMTP_HOST="127.0.0.1", LEADFORM_SMTP_PORT=str(smtp_port),
               GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers))
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    cmd = ["timeout", str(SERVER_LIFETIME), str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    if not recycle:
        cmd += ["--max-requests", "0"]
    log = open(instance / "gunicorn.log", "wb")  # noqa: SIM115 - the child holds it; closed with the run
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # two workers migrating a fresh database, one after the other
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_group(proc)
            raise RuntimeError("gunicorn did not start:\n"
                               + (instance / "gunicorn.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)


# -- visitors -----------------------------------------------------------------------------------------------

def new_visitor(port: int) -> Visitor:
    """GET /api/csrf as the forms' script does: a token and the session cookie it belongs to."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/csrf", headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET /api/csrf answered {response.status}")
        cookies = [h.split(";", 1)[0] for h in response.headers.get_all("Set-Cookie") or []]
        return Visitor(json.loads(body)["csrf_token"], "; ".join(cookies))
    finally:
        conn.close()


def visitors(port: int, n: int, threads: int = 4) -> list[Visitor]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: new_visitor(port), range(n)))


def request_bytes(port: int, visitor: Visitor, email: str) -> bytes:
    body = urllib.parse.urlencode({"csrf_token": visitor.csrf_token, "name": "Open Loop", "email": email,
                                   "privacy": "y"}).encode()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Referer: http://127.0.0.1:{port}/checklists/teams/\r\nSec-Fetch-Site: same-origin\r\n"
            f"Cookie: {visitor.cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


# -- the open loop ------------------------------------------------------------------------------------------

async def one_request(port: int, payload: bytes, scheduled: float, loop: asyncio.AbstractEventLoop
                      ) -> tuple[float, int | str]:
    """Send one request on a new connection; (seconds from the scheduled send to the full answer, status
    or error name)."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT - max(0.0, loop.time() - scheduled)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(payload)
                await writer.drain()
                status_line = await reader.readline()
                await reader.read()  # Connection: close, so the answer ends with the connection
            finally:
                writer.close()
        status: int | str = int(status_line.split()[1])
    except TimeoutError:
        status = "timeout"
    except (OSError, ValueError, IndexError) as exc:
        status = type(exc).__name__
    return loop.time() - scheduled, status


async def open_loop(port: int, payloads: list[bytes], rate: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    tasks = []
    lags = []
    for i, payload in enumerate(payloads):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(loop.time() - scheduled)  # how late the generator itself was; counted in the latency
        tasks.append(asyncio.create_task(one_request(port, payload, scheduled, loop)))
    sent_over = loop.time() - start
    results = await asyncio.gather(*tasks)
    return {"results": results, "lags": lags, "send_seconds": sent_over, "wall_seconds": loop.time() - start}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (the value at or below which q% of the samples lie)."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


# -- one engine ---------------------------------------------------------------------------------------------

def outbox_status(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status"))
            return {row[0]: int(row[1]) for row in rows}
    finally:
        engine.dispose()


def run_engine(database_url: str, instance: Path, rate: float, seconds: float, workers: int, threads: int | None,
               recycle: bool) -> dict[str, Any]:
    n = round(rate * seconds)
    sink_file = instance / "smtp-received.txt"
    smtp_port = local.free_port()
    sink = subprocess.Popen(["timeout", str(SERVER_LIFETIME), sys.executable, str(Path(__file__)), "--smtp-sink",
                             str(smtp_port), str(sink_file)], cwd=ROOT, start_new_session=True)
    try:
        local.wait_for_port(smtp_port, sink, "the SMTP server", 30)
        server, url = start_gunicorn(instance, database_url, smtp_port, workers, threads, recycle)
        port = int(url.rsplit(":", 1)[1])
        try:
            master = gunicorn_master(server.pid)
            print(f"  fetching {n + WARMUP_REQUESTS} visitors' CSRF tokens …", file=sys.stderr)
            pool = visitors(port, n + WARMUP_REQUESTS)
            run_id = os.urandom(3).hex()
            warm = asyncio.run(open_loop(port, [request_bytes(port, v, f"warm-{run_id}-{i}@example.be")
                                                for i, v in enumerate(pool[:WARMUP_REQUESTS])], 20))
            warm_ok = sum(1 for _, s in warm["results"] if s == 303)
            for _ in range(100):  # the warm-up's mail, before the baseline is taken
                if mails_received(sink_file) >= warm_ok:
                    break
                time.sleep(0.1)
            leads_before, mails_before = count_rows(database_url, "SELECT count(*) FROM leads"), \
                mails_received(sink_file)
            payloads = [request_bytes(port, v, f"ol-{run_id}-{i}@example.be")
                        for i, v in enumerate(pool[WARMUP_REQUESTS:])]
            workers_before = worker_pids(master)
            cpu_before, own_before = cpu_seconds(workers_before), time.process_time()
            load_before = os.getloadavg()
            print(f"  {n} requests at {rate:g}/s …", file=sys.stderr)
            run = asyncio.run(open_loop(port, payloads, rate))
            load_after = os.getloadavg()
            workers_after = worker_pids(master)
            # the workers' CPU during the run (their outbox threads' mail delivery included); a worker
            # recycled meanwhile takes its share with it, so this is then a lower bound
            worker_cpu = cpu_seconds(workers_before | workers_after) - cpu_before
            own_cpu = time.process_time() - own_before
            answered_at = time.monotonic()
            leads = count_rows(database_url, "SELECT count(*) FROM leads") - leads_before
            while time.monotonic() - answered_at < DRAIN_SECONDS:
                leads = count_rows(database_url, "SELECT count(*) FROM leads") - leads_before
                if mails_received(sink_file) - mails_before >= leads:
                    break
                time.sleep(0.25)
            drain = time.monotonic() - answered_at
            mails = mails_received(sink_file) - mails_before
            outbox = outbox_status(database_url)
        finally:
            stop_group(server)
        log_tail = (instance / "gunicorn.log").read_text(errors="replace")[-1500:]
    finally:
        stop_group(sink)

    latencies = sorted(1000 * t for t, _ in run["results"])
    statuses: dict[str, int] = {}
    for _, status in run["results"]:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    lags = sorted(1000 * x for x in run["lags"])
    p99 = percentile(latencies, 99)
    return {
        "database": database_label(database_url), "rate": rate, "seconds": seconds, "sent": n,
        "ok_303": statuses.get("303", 0),
        "other": {k: v for k, v in statuses.items() if k != "303"},
        "p50_ms": round(percentile(latencies, 50), 1), "p90_ms": round(percentile(latencies, 90), 1),
        "p99_ms": round(p99, 1), "max_ms": round(latencies[-1], 1) if latencies else None,
        "mean_ms": round(sum(latencies) / len(latencies), 1) if latencies else None,
        "p99_under_bar": bool(p99 < BAR_P99_MS),
        "leads_stored": leads, "mails_received": mails, "drain_seconds": round(drain, 1),
        "outbox_after": outbox,
        "generator_lag_ms": {"p50": round(percentile(lags, 50), 2), "p99": round(percentile(lags, 99), 2),
                             "max": round(lags[-1], 2) if lags else None},
        "send_seconds": round(run["send_seconds"], 2), "wall_seconds": round(run["wall_seconds"], 2),
        "worker_restarts": len(workers_after - workers_before),
        "worker_cpu_ms_per_request": round(1000 * worker_cpu / n, 2) if n else None,
        "generator_cpu_ms_per_request": round(1000 * own_cpu / n, 2) if n else None,
        "warmup": {"sent": WARMUP_REQUESTS, "ok_303": warm_ok},
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
        "gunicorn_log_tail": log_tail if "Traceback" in log_tail or "ERROR" in log_tail.upper() else "",
    }


def bench(engines: tuple[str, ...], rate: float, seconds: float, workers: int, threads: int | None, recycle: bool,
          database_url: str | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    targets = [("custom", database_url)] if database_url else [(e, None) for e in engines]
    for name, url in targets:
        print(f"open loop on {name} …", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="bench-open-loop-", dir="/var/tmp") as tmp:
            instance = Path(tmp)
            try:
                if url:
                    results[name] = run_engine(url, instance, rate, seconds, workers, threads, recycle)
                else:
                    with throwaway_database(name, instance) as fresh:
                        results[name] = run_engine(fresh, instance, rate, seconds, workers, threads, recycle)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports; the other engine still runs
                results[name] = {"error": f"{type(exc).__name__}: {exc}"[:1500]}
    return {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "rate": rate, "seconds": seconds, "workers": workers, "threads": threads or configured_threads(),
            "recycle_workers": recycle, "path": PATH, "bar_p99_ms": BAR_P99_MS, "engines": results,
            "command": "python " + " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])}


def configured_threads() -> int:
    import runpy

    return int(runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))["threads"])


def markdown(report: dict[str, Any]) -> str:
    return f"# Open-loop checklist requests — {report['date']}\n\n" + table(report)


def table(report: dict[str, Any]) -> str:
    """The run's description, one row per engine, and notes (bench/run.py shows this part)."""
    lines = [f"`{report['command']}`: POST {report['path']} at {report['rate']:g} requests/s for "
             f"{report['seconds']:g} s, each sent at its scheduled time on a new connection (open loop), "
             f"latency from that time to the end of the answer. gunicorn -c deploy/gunicorn.conf.py "
             f"(`leadform.wsgi:application()`), {report['workers']} workers × {report['threads']} threads, "
             f"worker recycling {'as configured' if report['recycle_workers'] else 'off (--max-requests 0)'}; "
             "mail delivered over SMTP to an aiosmtpd server on loopback; rate limits off "
             f"(LEADFORM_RATELIMIT_ENABLED=false). Bar: p99 < {report['bar_p99_ms']:g} ms per engine. "
             f"{report['cpus']} CPUs, shared with other work (load average beside each row).", "",
             "| Engine | sent | 303 | other / errors | p50 ms | p90 ms | p99 ms | max ms | p99 < bar | leads stored "
             "| mails received | drained in | load 1 min before → after |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | :-: | ---: | ---: | ---: | --- |"]
    notes = []
    for name, r in report["engines"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][:200]} | | | | | | | | | | | |")
            continue
        other = ", ".join(f"{k}: {v}" for k, v in r["other"].items()) or "none"
        lines.append(f"| {r['database']} | {r['sent']} | {r['ok_303']} | {other} | {r['p50_ms']:.1f} | "
                     f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{'yes' if r['p99_under_bar'] else '**NO**'} | {r['leads_stored']} | {r['mails_received']} | "
                     f"{r['drain_seconds']:.1f} s | {r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |")
        notes.append(f"- {r['database']}: the generator sent the {r['sent']} requests over {r['send_seconds']:.1f} s "
                     f"(its own lateness p99 {r['generator_lag_ms']['p99']:.1f} ms, max "
                     f"{r['generator_lag_ms']['max']:.1f} ms, included in the latencies); the gunicorn workers used "
                     f"{r['worker_cpu_ms_per_request']:.1f} ms of CPU per request (outbox delivery included), "
                     f"the generator {r['generator_cpu_ms_per_request']:.1f} ms; worker restarts "
                     f"during the run: {r['worker_restarts']}; outbox afterwards: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(r["outbox_after"].items())) + ".")
    lines += ["", "drained in: from the last answer until the SMTP server had received a mail for every lead "
              f"stored (at most {DRAIN_SECONDS:g} s). {WARMUP_REQUESTS} warm-up requests before each run are "
              "left out.", "", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run (default 60)")
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--database-url", help="an existing, empty database instead of a throwaway one")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, help="gthread threads per worker (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--no-recycle", action="store_true",
                        help="--max-requests 0: no worker restart during the run (production recycles)")
    parser.add_argument("--output", default="open_loop", help="bench/results/NAME.json and .md (default open_loop)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results/ alone")
    parser.add_argument("--smtp-sink", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smtp_sink:
        smtp_sink(int(args.smtp_sink[0]), Path(args.smtp_sink[1]), SERVER_LIFETIME)
        return
    if args.rate * (args.seconds + REQUEST_TIMEOUT) > 20000 or args.seconds > 600:
        raise SystemExit("bounded: at most 600 s and about 20,000 requests per engine")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per request in flight
    engines = ENGINES if args.engine == "both" else (args.engine,)
    report = bench(engines, args.rate, args.seconds, args.workers, args.threads, not args.no_recycle,
                   args.database_url)
    text = markdown(report)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.output}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (RESULTS / f"{args.output}.md").write_text(text, encoding="utf-8")
        print(f"written: bench/results/{args.output}.json, .md", file=sys.stderr)


if __name__ == "__main__":
    main()
