"""The load harness: the production gunicorn on a loopback port, many browsers in spawned processes,
and a direct read of what was stored. Used by test_reliability.py, test_crash.py and test_mail_faults.py.

The clients run in spawned processes with threads each, like many browsers: each fetches /api/csrf
once (session cookie, CSRF token, signed form start time) and reuses it, so CSRF stays on, as in
production. The app uses this run's database (conftest.TEST_DATABASE_URL: the PostgreSQL database
under test) or, by default, the SQLite file in its instance folder, as a deployment without a
DATABASE_URL does.
"""

from __future__ import annotations

import http.client
import itertools
import json
import multiprocessing
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ROOT, TEST_DATABASE_URL
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from support.published import stub_site

CONTACT_MIN_SECONDS = 3  # site_config limits.contact_min_seconds; checked in load_settings() by the tests
ACCEPTED = {"checklist": {303}, "contact": {303}, "consent": {201}}


# -- the server -----------------------------------------------------------------------------------------

def app_env(instance: Path, pdf_dir: Path, port: int, smtp_port: int, **extra: object) -> dict[str, str]:
    """The environment a production deployment sets, pointed at temporary files, this run's database
    and a local SMTP server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")}
    settings = {
        "SECRET_KEY": secrets.token_hex(32), "INSTANCE_PATH": str(instance), "PDF_DIR": str(pdf_dir),
        "PUBLIC_URL": f"http://127.0.0.1:{port}/", "RATELIMIT_ENABLED": "false",
        "MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_TIMEOUT": "10",
        "OUTBOX_POLL_SECONDS": "1", "OUTBOX_BACKOFF_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        # the consent endpoint accepts the banner hashes a build published: a stand-in when no site is given
        "SITE_DIR": str(stub_site(instance.parent / "stub-site")),
    }
    if TEST_DATABASE_URL:  # else the app's default, a SQLite file in the instance folder
        settings["DATABASE_URL"] = TEST_DATABASE_URL
    settings.update({k: str(v) for k, v in extra.items()})
    env.update({f"LEADFORM_{k}": v for k, v in settings.items()})
    return env


class Gunicorn:
    """The production gunicorn (deploy/gunicorn.conf.py: gthread) with N workers
    on a loopback port, in its own process group."""

    def __init__(self, env: dict[str, str], port: int, log: Path, workers: int = 4) -> None:
        self.env, self.port, self.log, self.workers = env, port, log, workers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 40) -> Gunicorn:
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
               "--graceful-timeout", "5"]
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(self.workers)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gunicorn exited with {self.proc.returncode}:\n{self.log_text()}"
            if len(self.worker_pids()) == self.workers and _get_ok(self.port):
                return self
            time.sleep(0.1)
        raise AssertionError(f"gunicorn not ready within {timeout}s:\n{self.log_text()}")

    def worker_pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def kill_worker(self) -> int:
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_all(self) -> None:
        """SIGKILL to master and workers at once: a power cut for the app, not for the disk."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""


def _get_ok(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/csrf")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


# -- the clients (run in spawned processes: module-level, picklable) ------------------------------------------

@dataclass(frozen=True)
class Task:
    flow: str       # checklist, contact or consent
    key: str        # the e-mail address (forms), or for consent the record id the answer names


@dataclass
class Outcome:
    task: Task
    status: int | None          # the final HTTP status, None when it never got an answer
    errors: list[str] = field(default_factory=list)   # connection errors on the way (retried or not)
    latency: float = 0.0        # seconds, of the final attempt
    sent_at: float = 0.0        # wall clock (time.time) when the final attempt started


class Browser:
    """One visitor's session: cookie, CSRF token and the contact form's signed start time."""

    def __init__(self, port: int, consent_body: bytes = b"") -> None:
        self.port, self.consent_body = port, consent_body
        self.cookies: dict[str, str] = {}
        response, body = self.request("GET", "/api/csrf")
        data = json.loads(body)
        self.token, self.started = data["csrf_token"], data["started"]
        self.fetched = time.time()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request(method, path, body, {**({"Cookie": cookie} if cookie else {}), **(headers or {})})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response, data

    def submit(self, task: Task) -> int:
        if task.flow == "consent":
            # The banner's JSON from a new visitor (the server issues and signs subject ids, so a client
            # cannot choose one): the row is known by the record id in the answer.
            self.cookies.pop("consent_subject", None)
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            response, body = self.request("POST", "/api/consent", self.consent_body, headers)
            self.consent_id = json.loads(body).get("id", "") if response.status == 201 else ""
            return response.status
        if task.flow == "checklist":
            slug = "teams" if sum(map(ord, task.key)) % 2 else "leiderschap"
            path, form = f"/api/checklists/{slug}", {"name": "Load Test", "email": task.key, "privacy": "y"}
        else:
            path, form = "/api/contact", {"name": "Load Test", "email": task.key, "subject": "andere",
                                          "message": f"Bericht van {task.key}", "privacy": "y",
                                          "started": self.started}
        body = urllib.parse.urlencode({**form, "csrf_token": self.token}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
        return self.request("POST", path, body, headers)[0].status


def _client_thread(port: int, tasks: queue.Queue, results: list, deadline: float, retry: bool,
                   consent_body: bytes) -> None:
    browser = None
    while browser is None:
        try:
            browser = Browser(port, consent_body)
        except OSError:
            if time.time() > deadline:
                return
            time.sleep(0.2)
    # The contact form refuses (as a bot) a submit sooner than contact_min_seconds after the form was shown.
    time.sleep(max(0.0, browser.fetched + CONTACT_MIN_SECONDS + 0.3 - time.time()))
    while True:
        try:
            task = tasks.get_nowait()
        except queue.Empty:
            return
        outcome = Outcome(task, None)
        while time.time() < deadline:
            started, outcome.sent_at = time.perf_counter(), time.time()
            try:
                outcome.status = browser.submit(task)
                if task.flow == "consent" and outcome.status == 201:
                    outcome.task = Task("consent", browser.consent_id)
                outcome.latency = time.perf_counter() - started
                break
            except (OSError, http.client.HTTPException) as exc:
                outcome.errors.append(type(exc).__name__)
                if not retry:
                    break
                time.sleep(0.2)  # a visitor presses again
        results.append(outcome)


def client_process(port: int, tasks: list[Task], threads: int, deadline: float, retry: bool,
                   consent_body: bytes) -> list[Outcome]:
    """One process of browsers: `threads` concurrent sessions working through `tasks`."""
    work: queue.Queue = queue.Queue()
    for task in tasks:
        work.put(task)
    results: list[Outcome] = []
    pool = [threading.Thread(target=_client_thread, args=(port, work, results, deadline, retry, consent_body))
            for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def make_tasks(counts: dict[str, int], tag: str) -> list[Task]:
    """Interleaved tasks with unique keys, so each accepted request maps to exactly one row."""
    lists = [[Task(flow, secrets.token_hex(16) if flow == "consent" else f"{flow}-{tag}-{i}@example.be")
              for i in range(n)] for flow, n in counts.items()]
    return [t for group in itertools.zip_longest(*lists) for t in group if t is not None]


class Load:
    """`processes` × `threads` clients in spawned processes, started now, collected by `wait()`."""

    def __init__(self, port: int, tasks: list[Task], processes: int = 4, threads: int = 12,
                 seconds: float = 60, retry: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = ctx.Pool(processes)
        deadline = time.time() + seconds
        chunks = [tasks[i::processes] for i in range(processes)]
        consent_body = json.dumps(consent_payload()).encode() if any(t.flow == "consent" for t in tasks) else b""
        self.started = time.perf_counter()
        self.async_result = self.pool.starmap_async(
            client_process, [(port, chunk, threads, deadline, retry, consent_body) for chunk in chunks])
        self.seconds = seconds

    def wait(self) -> list[Outcome]:
        try:
            outcomes = [o for chunk in self.async_result.get(timeout=self.seconds + 30) for o in chunk]
        finally:
            self.pool.terminate()
            self.pool.join()
        self.elapsed = time.perf_counter() - self.started
        return outcomes


def throughput(outcomes: list[Outcome]) -> tuple[float, float]:
    """(seconds from the first POST to the last answer, requests per second in that window)."""
    window = max(o.sent_at + o.latency for o in outcomes) - min(o.sent_at for o in outcomes)
    return window, len(outcomes) / window


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def accepted(outcomes: Iterable[Outcome], flow: str) -> set[str]:
    return {o.task.key for o in outcomes if o.task.flow == flow and o.status in ACCEPTED[flow]}


# -- what is stored --------------------------------------------------------------------------------------------

def database_url(instance: Path) -> str:
    """The database of an app started with app_env(instance, ...)."""
    return TEST_DATABASE_URL or f"sqlite:///{instance / 'leadform.sqlite3'}"


class Store:
    """What is stored, read directly as an auditor would: read-only, never through the app, a new
    connection per query. The same plain SQL on SQLite and PostgreSQL; SQLite's own checks of its
    file (integrity_check, foreign_key_check) on SQLite only."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:  # SQLite's URI filename: mode=ro never writes, never creates the file
            parsed = parsed.set(database=f"file:{parsed.database}", query={"mode": "ro", "uri": "true"})
            args = {"timeout": 30}
        else:
            args = {"options": "-c default_transaction_read_only=on"}
        self.engine = create_engine(parsed, poolclass=NullPool, connect_args=args)

    @classmethod
    def of(cls, instance: Path) -> Store:
        """The database of an app started with app_env(instance, ...)."""
        return cls(database_url(instance))

    def query(self, sql: str, **params: object) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params: object) -> object:
        return self.query(sql, **params)[0][0]

    def column(self, sql: str, **params: object) -> list:
        return [row[0] for row in self.query(sql, **params)]

    def orphans(self) -> dict[str, int]:
        """Rows whose foreign key points at no row, per `table.column`: none on either engine."""
        from leadform.models import Base

        found = {}
        for table in Base.metadata.sorted_tables:
            for fk in table.foreign_keys:
                child, parent = fk.parent.name, fk.column
                n = self.scalar(f"SELECT count(*) FROM {table.name} c WHERE c.{child} IS NOT NULL AND NOT EXISTS "
                                f"(SELECT 1 FROM {parent.table.name} p WHERE p.{parent.name} = c.{child})")
                if n:
                    found[f"{table.name}.{child}"] = n
        return found

    def problems(self) -> list[str]:
        """Whatever is broken in the stored data; SQLite's checks of its own file besides. On PostgreSQL
        the integrity of the pages is the server's business, and its foreign keys are always enforced."""
        problems = [f"{n} orphan rows in {where}" for where, n in self.orphans().items()]
        if self.is_sqlite:
            integrity = "; ".join(r[0] for r in self.query("PRAGMA integrity_check"))
            if integrity != "ok":
                problems.append(f"integrity_check: {integrity}")
            problems += [f"foreign_key_check: {row}" for row in self.query("PRAGMA foreign_key_check")]
        return problems

    @property
    def checked(self) -> str:
        """What problems() checks, for the tests' reports."""
        return "integrity_check ok, no orphan rows" if self.is_sqlite else "no orphan rows"

    def mails_by_status(self) -> Counter:
        return Counter(dict(self.query("SELECT status, count(*) FROM outbox GROUP BY status")))

    def wait_all_sent(self, timeout: float) -> Counter:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = self.mails_by_status()
            if set(statuses) <= {"sent"}:
                return statuses
            time.sleep(0.25)
        return self.mails_by_status()

    def message_ids(self) -> dict[str, int]:
        return dict(self.query("SELECT message_id, id FROM outbox"))


def delivered_counts(smtp) -> Counter:
    return Counter(message["Message-ID"] for _, message in list(smtp.messages))


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


STORED_KEYS = {"checklist": "SELECT email FROM leads", "contact": "SELECT email FROM contact_messages",
               "consent": "SELECT id FROM consent_records"}


def assert_nothing_lost(store: Store, outcomes: list[Outcome]) -> dict[str, int]:
    """Every acknowledged request has its row, every row came from a request, nothing is half-written.

    Returns the number of stored rows per flow.
    """
    rows = {}
    for flow in sorted({o.task.flow for o in outcomes}):
        stored = store.column(STORED_KEYS[flow])
        missing = accepted(outcomes, flow) - set(stored)
        assert not missing, f"{len(missing)} acknowledged {flow} requests have no row, e.g. {sorted(missing)[:3]}"
        unexplained = set(stored) - {o.task.key for o in outcomes if o.task.flow == flow}
        if flow == "consent":  # a consent row's key is in its answer: any attempt whose answer a kill lost
            # (the last one, or one retried after it) may have stored a row nobody heard of
            lost_answers = sum(len(o.errors) + (o.status is None) for o in outcomes if o.task.flow == flow)
            assert len(unexplained) <= lost_answers, f"{len(unexplained)} consent rows, {lost_answers} lost answers"
        else:
            assert not unexplained
        rows[flow] = len(stored)
    # One transaction per request: a lead's download link and its mail, a message and its two mails.
    mails = Counter(dict(store.query("SELECT kind, count(*) FROM outbox GROUP BY kind")))
    assert store.scalar("SELECT count(*) FROM downloads") == mails["checklist_link"] >= rows.get("checklist", 0)
    assert store.scalar("SELECT count(*) FROM leads WHERE id NOT IN (SELECT lead_id FROM downloads)") == 0
    assert mails["contact_to_coach"] == mails["contact_confirmation"] == rows.get("contact", 0)
    assert store.problems() == []
    return rows


def assert_each_mail_once(store: Store, smtp, timeout: float, in_flight: set[int] | None = None,
                          killed: int = 0) -> tuple[int, dict[int, int]]:
    """Every queued mail reached the SMTP server, each exactly once.

    The one exception is SMTP's own at-least-once window: a process killed after the
    server accepted a mail and before the outbox recorded it as sent. That mail was in
    'sending' when the process died (`in_flight`, a snapshot taken right after the kill),
    one per killed process at most, and it arrives twice. Returns (mails, duplicates).
    """
    statuses = store.wait_all_sent(timeout)
    message_ids = store.message_ids()
    assert statuses == {"sent": len(message_ids)}, statuses
    delivered = delivered_counts(smtp)
    assert set(delivered) == set(message_ids)
    twice = {message_ids[mid]: n for mid, n in delivered.items() if n > 1}
    assert set(twice.values()) <= {2}, twice
    assert set(twice) <= (in_flight or set()), f"sent twice, not in flight at a kill: {twice}"
    assert len(twice) <= killed
    return len(message_ids), twice


def has_consent_route() -> bool:
    from leadform.consent import bp

    return bool(bp.deferred_functions)


def consent_payload() -> dict:
    from leadform.consent import example_payload

    return example_payload()
