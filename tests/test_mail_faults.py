"""A mail server that hangs: the outbox gives up at SMTP_TIMEOUT and tries again later, the
visitor never waits for it, and every mail still arrives exactly once (or is marked failed
and reported to the coach).

Down, 451-then-250 and 550 are in tests/test_checklist_flow.py; this file adds the server
that hangs longer than the timeout, at its greeting (accepts the connection, never speaks)
and after the message (never answers the end of DATA), and measures the checklist POST's
p99 on real gunicorn while the server hangs against while it answers.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter

import pytest
from conftest import ENGINE, free_port, smtp_config
from sqlalchemy import func, select, update
from support.load import Browser, Gunicorn, Store, Task, app_env, percentile

from leadform import db, outbox
from leadform.models import OutboxMail
from site_config import load_settings

FORM = {"name": "Sofie Peeters", "email": "sofie@example.be", "privacy": "y"}
TIMEOUT = 0.5   # SMTP_TIMEOUT in these tests
HANG = 4.0      # how long a hanging server keeps the client waiting, far beyond the timeout


class SilentServer:
    """Accepts TCP connections and never says a word: a mail server hanging at its greeting."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


class DataHang:
    """aiosmtpd handler that, while `hanging`, sits on the end of DATA longer than the client's
    timeout and then refuses (451): the message was transmitted but never accepted."""

    def __init__(self) -> None:
        self.hanging = False
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        from email import message_from_bytes
        from email.policy import default

        if self.hanging:  # decided when the mail arrives, so switching back cannot accept a hung one
            await asyncio.sleep(HANG)
            return "451 4.3.0 Still busy"
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def hanging_smtp():
    from aiosmtpd.controller import Controller

    handler = DataHang()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def deliver(app) -> tuple[dict[str, int], float]:
    started = time.perf_counter()
    with app.app_context():
        counts = outbox.deliver_due()
    return counts, time.perf_counter() - started


def make_due(app) -> None:
    with app.app_context(), db.transaction() as s:
        s.execute(update(OutboxMail).values(next_attempt_at=OutboxMail.created_at))


def statuses(app) -> Counter:
    with app.app_context(), db.transaction() as s:
        return Counter(dict(s.execute(select(OutboxMail.kind + ":" + OutboxMail.status, func.count())
                                      .group_by(OutboxMail.kind, OutboxMail.status)).all()))


@pytest.mark.parametrize("where", ["greeting", "data"])
def test_hanging_server_is_given_up_on_and_the_mail_arrives_once_after_recovery(
        make_app, smtp_server, silent_server, hanging_smtp, where) -> None:
    hung_port = silent_server.port if where == "greeting" else hanging_smtp.port
    hanging_smtp.hanging = True
    app = make_app(WTF_CSRF_ENABLED=False, **{**smtp_config(hung_port), "SMTP_TIMEOUT": TIMEOUT})
    assert app.test_client().post("/api/checklists/teams", data=FORM).status_code == 303

    counts, seconds = deliver(app)
    assert counts == {"sent": 0, "retry": 1, "failed": 0}
    assert seconds < HANG - 1, "the outbox gave up at SMTP_TIMEOUT instead of waiting for the server"
    with app.app_context(), db.transaction() as s:
        mail = s.scalars(select(OutboxMail)).one()
        assert mail.status == "queued" and mail.attempts == 1 and "timed out" in mail.last_error

    app.config["SMTP_PORT"] = smtp_server.port  # the mail server is back
    make_due(app)
    assert deliver(app)[0] == {"sent": 1, "retry": 0, "failed": 0}
    make_due(app)
    assert deliver(app)[0]["sent"] == 0
    time.sleep(0.2)
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["sofie@example.be"]]
    assert hanging_smtp.messages == []


def test_hanging_until_the_last_attempt_marks_failed_and_tells_the_coach_once(
        make_app, smtp_server, silent_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **{**smtp_config(silent_server.port), "SMTP_TIMEOUT": TIMEOUT},
                   OUTBOX_MAX_ATTEMPTS=2)
    runner = app.test_cli_runner()
    app.test_client().post("/api/checklists/teams", data=FORM)
    assert deliver(app)[0] == {"sent": 0, "retry": 1, "failed": 0}
    make_due(app)
    counts, _ = deliver(app)
    assert counts["failed"] == 1  # the visitor's mail; the report to the coach is queued (and hangs too)
    assert statuses(app)["checklist_link:failed"] == 1
    assert statuses(app)["coach_mail_failed:queued"] == 1

    app.config["SMTP_PORT"] = smtp_server.port
    make_due(app)
    assert deliver(app)[0] == {"sent": 1, "retry": 0, "failed": 0}
    (rcpt, report), = smtp_server.messages
    assert rcpt == [load_settings().coach.email]
    assert "kon niet verstuurd worden" in report["Subject"]
    assert "sofie@example.be" in report.get_body(("plain",)).get_content()

    # The coach retries once the server works: the visitor gets the mail, once; the report is not repeated.
    result = runner.invoke(args=["outbox", "retry"])
    assert "1 mislukte e-mail(s) opnieuw in de wachtrij" in result.output and "1 verstuurd" in result.output
    assert runner.invoke(args=["outbox", "send"]).output.strip() == "sent=0 retry=0 failed=0"
    assert [r for r, _ in smtp_server.messages] == [[load_settings().coach.email], ["sofie@example.be"]]
    assert statuses(app) == {"checklist_link:sent": 1, "coach_mail_failed:sent": 1}


def _timed_posts(port: int, clients: int, per_client: int, tag: str) -> list[float]:
    """`clients` visitors at once, each posting `per_client` checklist requests; latency of each."""
    browsers = [Browser(port) for _ in range(clients)]
    latencies: list[float] = []

    def visitor(index: int) -> None:
        for i in range(per_client):
            started = time.perf_counter()
            status = browsers[index].submit(Task("checklist", f"{tag}-{index}-{i}@example.be"))
            latencies.append(time.perf_counter() - started)
            assert status == 303

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(latencies) == clients * per_client
    return latencies


def test_a_hanging_mail_server_does_not_slow_the_visitor(tmp_path, pdf_dir, hanging_smtp, capsys) -> None:
    """p99 of the checklist POST on gunicorn (production config, outbox threads on) while the SMTP server
    hangs stays within 2x of the p99 while it answers (the bound the issue sets). Hanging and
    normal rounds alternate, so a slow moment of the machine falls on both; a normal round starts once
    the mail held back by the hang before it is sent. Four rounds give 400
    requests per condition, so p99 is the 4th slowest: with 200 it was the 2nd slowest, and one
    stall of the machine (242 ms while p50 was 19 ms) once decided it in a full run."""
    port = free_port()
    env = app_env(tmp_path / "instance", pdf_dir, port, hanging_smtp.port, SMTP_TIMEOUT=1)
    server = Gunicorn(env, port, tmp_path / "gunicorn.log").start()
    store = Store.of(tmp_path / "instance")
    normal, hanging = [], []
    try:
        _timed_posts(port, 4, 10, "warm-up")
        for round_ in range(4):
            for is_hanging, latencies in ((False, normal), (True, hanging)):
                hanging_smtp.hanging = is_hanging
                if is_hanging:  # the workers' delivery threads are now stuck in SMTP
                    time.sleep(0.5)
                else:  # the mail the last hang held back is out first: "normal" carries only its own
                    assert set(store.wait_all_sent(timeout=60)) <= {"sent"}
                latencies += _timed_posts(port, 4, 25, f"r{round_}-{'hang' if is_hanging else 'ok'}")
        assert store.mails_by_status()["queued"] > 0, "mail was held up by the hanging server"
        hanging_smtp.hanging = False
        final = store.wait_all_sent(timeout=60)
    finally:
        server.stop()
    delivered = Counter(message["Message-ID"] for _, message in hanging_smtp.messages)
    posts = 40 + len(normal) + len(hanging)
    assert final == {"sent": posts}
    assert set(delivered) == set(store.message_ids()) and set(delivered.values()) == {1}
    p99_normal, p99_hanging = percentile(normal, 0.99), percentile(hanging, 0.99)
    with capsys.disabled():
        print(f"\n[mail hang] checklist POST on gunicorn (4 workers, production config) on {ENGINE}, 4 clients, "
              f"{len(normal)} requests "
              "per condition: "
              f"SMTP answering p50 {percentile(normal, 0.5) * 1000:.0f} ms p99 {p99_normal * 1000:.0f} ms; "
              f"SMTP hanging ({HANG:.0f}s > timeout 1s) p50 {percentile(hanging, 0.5) * 1000:.0f} ms "
              f"p99 {p99_hanging * 1000:.0f} ms; {posts} mails each delivered once after recovery")
    assert p99_hanging <= 2 * p99_normal
