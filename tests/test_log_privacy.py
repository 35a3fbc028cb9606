"""The logs never name a visitor: the main flows run with canary values while everything the process
logs (root logger at DEBUG: leadform, werkzeug, flask-limiter, alembic, ...) and everything written
to stdout/stderr is captured, then searched for the canaries and for the visitor's IP address.

Also: one line per event, timestamps in UTC.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
import uuid

import pytest
from conftest import smtp_config
from flask import session
from sqlalchemy import select, update

from leadform import LOG_FORMAT, UTCFormatter, db, outbox
from leadform.consent import example_payload
from leadform.forms import issue_started
from leadform.models import OutboxMail

TOKEN = re.compile(r"/download/(\S+)")
# The test's own SMTP server (aiosmtpd) and asyncio log peers and envelopes; they are not the app.
NOT_THE_APP = ("mail.log", "asyncio")


class Capture(logging.Handler):
    """Every record that reaches the root logger, formatted the way the app formats its own."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(UTCFormatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(NOT_THE_APP):
            return
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def captured_logs():
    root = logging.getLogger()
    handler = Capture()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def canary() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"name": f"Kanarie{tag} Vogelaar", "email": f"kanarie.{tag}@example.be",
            "message": f"Geheim bericht {tag} over ons team", "phone": f"+32 9 {tag[:3].translate(DIGITS)} 77 12"}


DIGITS = str.maketrans("abcdef", "123456")


def deliver(app) -> dict[str, int]:
    with app.app_context():
        return outbox.deliver_due()


def run_main_flows(app, canary: dict[str, str], smtp) -> None:
    """What visitors and the coach do, including what goes wrong, with the canary's data."""
    client = app.test_client()
    form = {"name": canary["name"], "email": canary["email"], "privacy": "y", "newsletter": "y"}

    # Checklist: no token (shown again), invalid, valid; the mail goes out over SMTP; download confirms.
    assert client.post("/api/checklists/teams", data=form).status_code == 400
    token = client.get("/api/csrf").get_json()["csrf_token"]
    assert client.post("/api/checklists/teams", data={**form, "email": canary["name"], "csrf_token": token}
                       ).status_code == 400
    assert client.post("/api/checklists/teams", data={**form, "csrf_token": token}).status_code == 303
    assert deliver(app)["sent"] == 1
    link = TOKEN.search(smtp.messages[-1][1].get_body(("plain",)).get_content()).group(1)
    assert client.get(f"/download/{link}").status_code == 200
    assert client.post("/download/renew", data={"token": link, "csrf_token": token}).status_code == 303
    assert client.get("/download/not-a-link").status_code == 404

    # SMTP trouble, with the address in the server's reply as real servers often do.
    smtp.reply = f"451 4.7.1 <{canary['email']}>: greylisted, {canary['name']} try again later"
    assert deliver(app)["retry"] >= 1
    smtp.reply = f"550 5.1.1 <{canary['email']}>: no such user {canary['name']}"
    with app.app_context(), db.transaction() as s:
        s.execute(update(OutboxMail).where(OutboxMail.status == "queued").values(next_attempt_at=OutboxMail.created_at))
    assert deliver(app)["failed"] >= 1
    smtp.reply = None
    deliver(app)

    # Contact: valid, a bot, too fast, too long, not a form. The start time is bound to the session:
    # this client's, issued a minute ago.
    with client.session_transaction() as visitor_session:
        secret = visitor_session["csrf_token"]
    with app.test_request_context():
        session["csrf_token"] = secret
        started = issue_started(backdate=60)
    contact = {"name": canary["name"], "email": canary["email"], "phone": canary["phone"], "subject": "andere",
               "message": canary["message"], "privacy": "y", "started": started, "csrf_token": token}
    assert client.post("/api/contact", data={**contact, "message": canary["message"] * 1000}).status_code == 400
    assert client.post("/api/contact", data={**contact, "message": "x" * 70_000}).status_code == 413
    assert client.post("/api/contact", json=contact).status_code in (400, 415)
    assert client.get("/api/contact").status_code == 405
    assert client.post("/api/contact", data=contact).status_code == 303
    assert client.post("/api/contact", data={**contact, "website": canary["name"]}).status_code == 303
    fast = {**contact, "started": client.get("/api/csrf").get_json()["started"]}
    assert client.post("/api/contact", data=fast).status_code == 400  # shown again, to send once more
    assert client.post("/api/contact", data=contact).status_code == 303
    assert client.post("/api/contact", data=contact).status_code == 429
    deliver(app)

    # Consent and analytics.
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    assert client.post("/api/consent", json={**example_payload(), "event": canary["name"]}).status_code == 400
    assert client.post("/api/analytics", data="/blog/", content_type="text/plain").status_code == 204

    # Rate limits: per address (3 a day), then per IP (10 per 10 minutes).
    for i in range(12):
        email = canary["email"] if i < 5 else f"{i}{canary['email']}"
        client.post("/api/checklists/leiderschap", data={**form, "csrf_token": token, "email": email})
    assert client.post("/api/checklists/leiderschap", data={**form, "csrf_token": token}).status_code == 429

    # The coach's commands.
    runner = app.test_cli_runner()
    for args in (["leads", "list"], ["messages", "list"], ["outbox", "list"], ["leads", "export"],
                 ["gdpr", "export", canary["email"]], ["gdpr", "erase", canary["email"], "--yes"],
                 ["gdpr", "purge"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)


def test_no_log_line_names_a_visitor(make_app, smtp_server, captured_logs, canary, capfd) -> None:
    app = make_app(LOG_LEVEL="DEBUG", RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   **smtp_config(smtp_server.port))
    run_main_flows(app, canary, smtp_server)
    out, err = capfd.readouterr()
    everything = "\n".join([*captured_logs.lines, out, err])
    assert len(captured_logs.lines) > 30, "the flows were logged"
    assert any("checklist requested" in line for line in captured_logs.lines)
    assert any("ratelimit" in line for line in captured_logs.lines), "flask-limiter's lines are captured too"
    for label, value in [*canary.items(), ("email local part", canary["email"].split("@")[0]),
                         ("name tag", canary["name"].split()[0]), ("IP address", "127.0.0.1")]:
        hits = [line for line in everything.splitlines() if value.lower() in line.lower()]
        loggers = sorted({r.name for r, line in zip(captured_logs.records, captured_logs.lines, strict=True)
                          if value.lower() in line.lower()})
        if hits and not loggers:  # written to stdout/stderr directly: show where it came from
            text = out + err
            at = text.lower().find(value.lower())
            hits.append(text[max(0, at - 1500):at + 200])
        assert hits == [], f"the log names the visitor's {label}: {hits[:3]} {hits[-1:]} (loggers: {loggers})"


def test_one_line_per_event_in_utc(make_app, captured_logs, canary) -> None:
    app = make_app(LOG_LEVEL="DEBUG", WTF_CSRF_ENABLED=False)
    client = app.test_client()
    # Line breaks in what a visitor sends must not split or forge a log line.
    client.post("/api/checklists/teams\r\nFAKE", data={"name": "a\nFAKE b", "email": "x\r\nFAKE"})
    client.post("/api/checklists/teams", data={"name": canary["name"], "email": canary["email"], "privacy": "y"})
    app_lines = [line for line, record in zip(captured_logs.lines, captured_logs.records, strict=True)
                 if record.name.startswith("leadform")]
    assert app_lines
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) leadform[.\w]* \S")
    for line in captured_logs.lines:
        assert "\n" not in line and "\r" not in line, f"one event spans lines: {line!r}"
    for line in app_lines:
        assert stamp.match(line), line
    # The app's own handler writes UTC: its timestamp is the UTC time, whatever the machine's zone.
    handler = next(h for h in logging.getLogger("leadform").handlers if isinstance(h.formatter, UTCFormatter))
    record = logging.LogRecord("leadform.test", logging.INFO, __file__, 1, "probe", None, None)
    formatted = handler.format(record)
    assert formatted.startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(record.created))), formatted


def test_the_embedded_server_logs_no_visitor_ip(site_dir, tmp_path, pdf_dir) -> None:
    """`make run` (gunicorn with deploy/gunicorn.conf.py): no access log, and an error line about a
    malformed request names no client either."""
    import urllib.request

    from conftest import free_port

    from deploy import local

    port, log = free_port(), tmp_path / "server.log"
    env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_INSTANCE_PATH": str(tmp_path / "instance"),
           "LEADFORM_SITE_DIR": str(site_dir), "LEADFORM_PDF_DIR": str(pdf_dir), "GUNICORN_THREADS": "4"}
    with local.gunicorn(env, port, log=log, wsgi="leadform.wsgi:with_site()"):
        url = f"http://127.0.0.1:{port}"
        for path in ("/", "/api/csrf", "/bestaat-niet/"):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + path, timeout=10).read()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # a malformed request line
            sock.sendall(b"GARBAGE / HTTP/9.9\r\n\r\n")
            sock.recv(1024)
        time.sleep(0.2)
    output = log.read_text()
    assert "GET" not in output, "no access log"
    assert "127.0.0.1" not in output, output[:500]


def test_outbox_rows_keep_what_the_logs_leave_out(make_app, smtp_server, canary) -> None:
    """Sanity for the canary test: the canary really went through the app (it is in the database)."""
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    app.test_client().post("/api/checklists/teams", data={"name": canary["name"], "email": canary["email"],
                                                          "privacy": "y"})
    with app.app_context(), db.transaction() as s:
        assert s.scalars(select(OutboxMail.to_addr)).one() == canary["email"]
