"""How a delivery pass claims, sends and records mail (leadform/outbox.py), against a real SMTP server."""

from __future__ import annotations

import datetime as dt
import threading
import time
from email.utils import parsedate_to_datetime

import pytest
from conftest import free_port, smtp_config
from sqlalchemy import insert, select, update
from support.safety import contact_started

from leadform import db, mail, outbox
from leadform.mail import SMTPBackend
from leadform.models import OutboxMail, utcnow
from site_config import load_settings


def queue(app, count: int) -> None:
    with app.app_context(), db.transaction() as s:
        for n in range(count):
            outbox.queue(s, mail.Mail("checklist_link", f"lead{n}@example.be", "Je checklist", {
                "lead": {"name": f"Lead {n}"}, "checklist": "teams", "link": f"http://site.test/download/{n}",
                "days": 14}))


def rows(app) -> list[OutboxMail]:
    with app.app_context(), db.transaction() as s:
        return list(s.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def deliver(app, limit: int = outbox.PASS_SIZE) -> dict[str, int]:
    with app.app_context():
        return outbox.deliver_due(limit)


def test_a_pass_sends_every_due_mail_once_over_several_batches(make_app, smtp_server) -> None:
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 2 * outbox.CLAIM_BATCH + 3)
    assert deliver(app) == {"sent": 23, "retry": 0, "failed": 0}
    recipients = sorted(rcpt[0] for rcpt, _ in smtp_server.messages)
    assert recipients == sorted(f"lead{n}@example.be" for n in range(23))
    assert {(m.status, m.attempts) for m in rows(app)} == {("sent", 1)}
    assert deliver(app) == {"sent": 0, "retry": 0, "failed": 0}


def test_a_burst_of_mail_goes_over_one_smtp_connection_per_pass(make_app, smtp_server) -> None:
    """The mail server sees one login for a pass, not one per mail (providers limit connections)."""
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 2 * outbox.CLAIM_BATCH + 3)
    assert deliver(app)["sent"] == 23
    assert len(set(smtp_server.connections)) == 1
    queue(app, 2)
    assert deliver(app)["sent"] == 2
    assert len(set(smtp_server.connections)) == 2, "the next pass opens its own connection"


def test_a_server_that_ends_the_connection_after_some_mails_gets_them_all(make_app, smtp_server) -> None:
    """A "421" to the next MAIL FROM on a kept connection is a reason to reconnect, not to defer the mail."""
    app = make_app(**smtp_config(smtp_server.port))
    smtp_server.per_connection = 3
    queue(app, 7)
    assert deliver(app) == {"sent": 7, "retry": 0, "failed": 0}
    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == sorted(f"lead{n}@example.be" for n in range(7))
    assert len(set(smtp_server.connections)) == 3


def test_a_first_refusal_on_a_new_connection_defers_the_mail(make_app, smtp_server) -> None:
    """A "421" on a fresh connection is the server's answer, not a stale connection: no loop of retries."""
    app = make_app(**smtp_config(smtp_server.port))
    smtp_server.per_connection = 0  # every MAIL FROM refused with 421
    queue(app, 1)
    assert deliver(app) == {"sent": 0, "retry": 1, "failed": 0}
    assert [m.status for m in rows(app)] == ["queued"]
    assert smtp_server.refused_mail == 1


def test_mail_a_crash_left_in_sending_goes_out_after_its_lease_and_only_then(make_app, smtp_server) -> None:
    app = make_app(OUTBOX_LEASE_SECONDS=60, **smtp_config(smtp_server.port))
    queue(app, 2)
    with app.app_context(), db.engine().begin() as conn:  # as a worker killed mid-send leaves them
        conn.execute(update(OutboxMail).where(OutboxMail.id == 1).values(
            status="sending", attempts=1, claimed_at=utcnow() - dt.timedelta(seconds=61)))
        conn.execute(update(OutboxMail).where(OutboxMail.id == 2).values(
            status="sending", attempts=1, claimed_at=utcnow() - dt.timedelta(seconds=30)))
    assert deliver(app)["sent"] == 1
    assert [(m.id, m.status, m.attempts) for m in rows(app)] == [(1, "sent", 2), (2, "sending", 1)]


def test_a_slow_server_never_makes_a_mail_outlive_its_lease(make_app, smtp_server, monkeypatch) -> None:
    """Ten mails are claimed together; past half the lease the rest goes back to the queue and is
    claimed again, so no mail is sent on a lease another process may already have taken over."""
    app = make_app(OUTBOX_LEASE_SECONDS=2, **smtp_config(smtp_server.port))
    queue(app, 5)
    send = SMTPBackend.send
    sent_on_lease: list[float] = []

    def slow_send(self, message, outbox_id):
        time.sleep(0.45)
        with app.app_context(), db.transaction() as s:
            claimed_at = s.scalar(select(OutboxMail.claimed_at).where(OutboxMail.id == outbox_id))
        sent_on_lease.append((utcnow() - claimed_at).total_seconds())
        send(self, message, outbox_id)

    monkeypatch.setattr(SMTPBackend, "send", slow_send)
    assert deliver(app) == {"sent": 5, "retry": 0, "failed": 0}
    assert len(smtp_server.messages) == 5
    assert max(sent_on_lease) < 2, sent_on_lease
    assert max(sent_on_lease) > 0.8, "the first batch ran into half the lease, as the test means"
    assert {(m.status, m.attempts) for m in rows(app)} == {("sent", 1)}, "a released mail was not tried"


def test_an_unforeseen_error_defers_that_mail_and_the_others_go_out(make_app, smtp_server, monkeypatch) -> None:
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 4)
    send = SMTPBackend.send

    def broken_for_mail_2(self, message, outbox_id):
        if outbox_id == 2:
            raise ValueError("a bug")
        send(self, message, outbox_id)

    monkeypatch.setattr(SMTPBackend, "send", broken_for_mail_2)
    assert deliver(app) == {"sent": 3, "retry": 1, "failed": 0}
    state = {m.id: (m.status, m.last_error) for m in rows(app)}
    assert state[2] == ("queued", "a bug")
    assert {state[n][0] for n in (1, 3, 4)} == {"sent"}
    monkeypatch.setattr(SMTPBackend, "send", send)
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 0}, "tried again on the next pass"


def test_a_failure_report_leaves_in_the_pass_that_found_the_failure(make_app, smtp_server) -> None:
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 1)
    smtp_server.refuse["lead0@example.be"] = "550 5.1.1 No such user"
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 1}
    assert [m.kind for m in rows(app)] == ["checklist_link", "coach_mail_failed"]
    assert "kon niet verstuurd worden" in smtp_server.messages[-1][1]["Subject"]


def test_a_mail_is_rendered_when_it_is_sent_and_then_keeps_what_it_said(make_app, smtp_server) -> None:
    """The request stores the facts (leadform/mail.py); the bodies exist from delivery on, for the
    coach's records and the retention purge, in place of those facts."""
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 1)
    [queued] = rows(app)
    assert queued.body_text is None and queued.context["lead"] == {"name": "Lead 0"}
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 0}
    [(_rcpt, message)] = smtp_server.messages
    text = message.get_body(("plain",)).get_content()
    assert "Dag," in text and "http://site.test/download/0" in text and "14 dagen" in text
    assert "checklist teams" in message.get_body(("html",)).get_content()
    [sent] = rows(app)
    assert sent.context is None and "http://site.test/download/0" in sent.body_text \
        and "http://site.test/download/0" in sent.body_html


def test_a_mail_queued_before_the_upgrade_goes_out_with_the_bodies_it_was_stored_with(make_app, smtp_server) -> None:
    app = make_app(**smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        s.execute(insert(OutboxMail), {"kind": "checklist_link", "to_addr": "old@example.be", "subject": "Je checklist",
                                       "body_text": "Een tekst van voor de upgrade.", "headers": {},
                                       "message_id": "<old@voorbeeld-coaching.be>"})
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 0}
    [(rcpt, message)] = smtp_server.messages
    assert rcpt == ["old@example.be"] and message.get_content().strip() == "Een tekst van voor de upgrade."


def gunicorn_until_first_mail(smtp_server, tmp_path, pdf_dir, secret: str) -> tuple[float, str]:
    """The app under gunicorn on this test's database and SMTP server, stopped (SIGTERM, gunicorn's graceful
    stop) once the first mail arrived, or after 20 s; how long the first mail took, and gunicorn's log."""
    from conftest import server_env

    from deploy import local

    env = {**server_env(tmp_path), "LEADFORM_SECRET_KEY": secret, "LEADFORM_PDF_DIR": str(pdf_dir),
           **{f"LEADFORM_{key}": str(value) for key, value in smtp_config(smtp_server.port).items()}}
    started = time.monotonic()
    with local.gunicorn(env, free_port(), log=tmp_path / "gunicorn.log"):
        while not smtp_server.messages and time.monotonic() - started < 20:
            time.sleep(0.05)
        waited = time.monotonic() - started
    return waited, (tmp_path / "gunicorn.log").read_text()


def test_mail_queued_before_a_restart_leaves_at_start_with_no_visitor(make_app, smtp_server, tmp_path, pdf_dir) -> None:
    """The server's outbox thread delivers once at start: mail a crash or a deploy left queued does not
    wait for the next visitor's form (nor for cron)."""
    app = make_app(SECRET_KEY="restart-test-secret", **smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        outbox.queue(s, mail.Mail("contact_confirmation", "wachtend@example.be", "We hebben je bericht goed ontvangen",
                                  {"message": {"name": "An"}}))
    waited, log = gunicorn_until_first_mail(smtp_server, tmp_path, pdf_dir, "restart-test-secret")
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["wachtend@example.be"]], log
    assert waited < 15


def test_a_server_that_stops_puts_the_mail_it_had_claimed_back_in_the_queue(make_app, smtp_server, tmp_path,
                                                                            pdf_dir) -> None:
    """A deploy, or gunicorn recycling a worker, in the middle of a delivery pass: the worker finishes the
    mail in hand and puts the rest it had claimed back in the queue, so the next server sends them at its
    start instead of after the five-minute lease a crash leaves them under."""
    app = make_app(SECRET_KEY="stop-test-secret", **smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        for i in range(8):
            outbox.queue(s, mail.Mail("contact_confirmation", f"wachtend{i}@example.be",
                                      "We hebben je bericht goed ontvangen", {"message": {"name": "An"}}))
    smtp_server.delay = 0.4  # a slow mail server: the pass takes seconds
    _, log = gunicorn_until_first_mail(smtp_server, tmp_path, pdf_dir, "stop-test-secret")
    with app.app_context(), db.transaction() as s:
        rows = s.execute(select(OutboxMail.status, OutboxMail.attempts)).all()
    statuses = [status for status, _ in rows]
    assert 1 <= statuses.count("sent") == len(smtp_server.messages) < 8, (statuses, log)
    assert statuses.count("queued") == 8 - statuses.count("sent"), (statuses, log)
    assert all(attempts == 0 for status, attempts in rows if status == "queued"), "a claim not tried counted"
    smtp_server.delay = 0
    with app.app_context():
        assert outbox.deliver_due() == {"sent": statuses.count("queued"), "retry": 0, "failed": 0}
    assert len(smtp_server.messages) == 8


def test_a_server_slow_to_say_goodbye_after_accepting_gets_the_mail_once(make_app, smtp_server) -> None:
    """The server accepted the mail (250 after DATA), then its answer to QUIT took longer than
    SMTP_TIMEOUT: that is a delivery, not a failure to retry, or the visitor gets the mail twice
    (smtplib's own exit treats a goodbye that never comes as a closed connection)."""
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 1)
    smtp_server.quit_delay = 3.0  # SMTP_TIMEOUT is 2 s
    with app.app_context():
        assert outbox.deliver_due() == {"sent": 1, "retry": 0, "failed": 0}
        assert outbox.deliver_due() == {"sent": 0, "retry": 0, "failed": 0}
    assert len(smtp_server.messages) == 1
# -- retries, what a sent mail carries, and failure reports --------------------------------------------------
# Mail made by the app's own flows (a checklist request, a contact message) rather than composed here.

VISITOR = {"name": "Sofie Peeters", "email": "sofie@example.be", "privacy": "y"}


def smtp_app(make_app, smtp_server, **config):
    return make_app(WTF_CSRF_ENABLED=False, **{**smtp_config(smtp_server.port), **config})


def request_checklist(app, **extra: str) -> None:
    assert app.test_client().post("/api/checklists/teams", data={**VISITOR, **extra}).status_code == 303


def make_due(app) -> None:
    """As if the retry's time had come: the queued mail's next attempt moved to a second ago."""
    with app.app_context(), db.transaction() as s:
        s.execute(update(OutboxMail).where(OutboxMail.status == "queued")
                  .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))


def fail_once(app) -> tuple[dt.datetime, dt.datetime, OutboxMail]:
    before = utcnow()
    assert deliver(app) == {"sent": 0, "retry": 1, "failed": 0}
    after = utcnow()
    [mail] = rows(app)
    return before, after, mail


NOTHING_DUE = {"sent": 0, "retry": 0, "failed": 0}


def test_a_mail_the_server_defers_is_retried_after_a_doubling_delay(make_app, smtp_server) -> None:
    app = smtp_app(make_app, smtp_server, OUTBOX_BACKOFF_SECONDS=60)
    request_checklist(app)
    smtp_server.reply = "451 4.3.0 try later"
    for attempt, delay in ((1, 60), (2, 120), (3, 240)):
        if attempt > 1:
            make_due(app)
        before, after, mail = fail_once(app)
        assert (mail.status, mail.attempts, mail.sent_at) == ("queued", attempt, None)
        assert mail.last_error.startswith("451")
        wait = dt.timedelta(seconds=delay)
        assert before + wait <= mail.next_attempt_at <= after + wait, (attempt, mail.next_attempt_at - before)
        assert deliver(app) == NOTHING_DUE, "a deferred mail is not tried again before its time"
    smtp_server.reply = None
    make_due(app)
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 0}
    assert [rcpt for rcpt, _ in smtp_server.messages] == [[VISITOR["email"]]]


def test_the_retry_delay_stops_growing_at_an_hour(make_app, smtp_server) -> None:
    app = smtp_app(make_app, smtp_server, OUTBOX_BACKOFF_SECONDS=1000)
    request_checklist(app)
    smtp_server.reply = "451 4.3.0 try later"
    delays = []
    for attempt in range(1, 5):
        if attempt > 1:
            make_due(app)
        before, after, mail = fail_once(app)
        assert mail.attempts == attempt
        delays.append((mail.next_attempt_at - before).total_seconds())
        assert (mail.next_attempt_at - after).total_seconds() <= delays[-1]
    assert [round(d) for d in delays] == [1000, 2000, 3600, 3600]


def test_a_mail_from_a_closed_port_waits_too(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **{**smtp_config(free_port()), "OUTBOX_BACKOFF_SECONDS": 45})
    request_checklist(app)
    before, after, mail = fail_once(app)
    assert before + dt.timedelta(seconds=45) <= mail.next_attempt_at <= after + dt.timedelta(seconds=45)
    assert deliver(app) == NOTHING_DUE


def test_sent_mail_says_who_sent_it_when_and_where_to_reply(make_app, smtp_server) -> None:
    app = smtp_app(make_app, smtp_server)
    client = app.test_client()
    request_checklist(app, newsletter="y")
    response = client.post("/api/contact", data={
        "name": "Jan De Smet", "email": "jan@example.be", "subject": "teamcoaching", "privacy": "y",
        "message": "Kunnen we eens praten?", "started": contact_started(app)})
    assert response.status_code == 303
    before = utcnow()
    assert deliver(app) == {"sent": 3, "retry": 0, "failed": 0}
    after = utcnow()
    received = {rcpt[0]: message for rcpt, message in smtp_server.messages}
    coach = load_settings().coach.email
    sent = {row.kind: row for row in rows(app)}
    assert set(sent) == {"checklist_link", "contact_to_coach", "contact_confirmation"}
    assert set(received) == {VISITOR["email"], "jan@example.be", coach}
    domain = app.config["MAIL_FROM"].rsplit("@", 1)[1]
    message_ids = set()
    for row in sent.values():
        message = received[row.to_addr]
        assert row.status == "sent" and row.last_error is None
        assert before <= row.sent_at <= after, "the time it left is kept"
        assert message["From"] == app.config["MAIL_FROM"]
        # the source a mail program shows spells the headers the usual way (keys() keeps the sent case)
        assert {"From", "To", "Subject", "Message-ID", "Date"} <= set(message.keys())
        assert message["To"] == row.to_addr and message["Subject"] == row.subject
        assert message["Message-ID"] == row.message_id and row.message_id.endswith(f"@{domain}>")
        message_ids.add(row.message_id)
        date = parsedate_to_datetime(message["Date"])
        assert date.utcoffset() == dt.timedelta(0)
        assert date.replace(tzinfo=None) == row.created_at.replace(microsecond=0)
    assert len(message_ids) == 3
    assert received[coach]["Reply-To"] == "jan@example.be", "the coach answers the visitor, not no-reply"
    # the visitor's mails say "Antwoord gerust": an answer reaches the coach, not no-reply@
    assert received["jan@example.be"]["Reply-To"] == coach and received[VISITOR["email"]]["Reply-To"] == coach
    assert received[VISITOR["email"]]["List-Unsubscribe"] == f"<mailto:{coach}?subject=uitschrijven>"
    assert received[coach]["List-Unsubscribe"] is None


@pytest.mark.parametrize("failure", ["refused", "gave-up"])
def test_a_report_to_the_coach_that_fails_is_not_reported_again(make_app, smtp_server, failure) -> None:
    """The coach hears once that a mail failed; if that report fails too, no report about the report
    is queued (it would fail the same way, forever)."""
    coach = load_settings().coach.email
    if failure == "refused":
        app = smtp_app(make_app, smtp_server)
        smtp_server.refuse.update({VISITOR["email"]: "550 5.1.1 No such user", coach: "550 5.7.1 Mailbox full"})
    else:
        app = smtp_app(make_app, smtp_server, OUTBOX_MAX_ATTEMPTS=1)
        smtp_server.reply = "451 4.3.0 try later"
    request_checklist(app)
    assert deliver(app) == {"sent": 0, "retry": 0, "failed": 2}
    assert [(m.kind, m.to_addr, m.status) for m in rows(app)] == [
        ("checklist_link", VISITOR["email"], "failed"), ("coach_mail_failed", coach, "failed")]
    assert deliver(app) == NOTHING_DUE
    assert len(rows(app)) == 2 and smtp_server.messages == []


def test_the_background_thread_retries_when_due_without_a_new_request(make_app, smtp_server) -> None:
    """A deferred mail leaves once the server takes mail again, with no visitor to trigger a pass:
    the thread wakes up every OUTBOX_POLL_SECONDS."""
    app = smtp_app(make_app, smtp_server, OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=0.2)
    smtp_server.reply = "451 4.3.0 try later"
    request_checklist(app)  # wakes the thread once
    deadline = time.monotonic() + 10
    while not any(m.last_error for m in rows(app)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows(app)[0].last_error.startswith("451"), "tried and deferred"
    smtp_server.reply = None
    try:
        deadline = time.monotonic() + 10
        while not smtp_server.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(smtp_server.messages) == 1
    finally:
        app.config["OUTBOX_POLL_SECONDS"] = 3600  # the thread outlives the test: let it sleep


def test_with_the_default_settings_the_thread_sends_after_each_request(make_app, smtp_server) -> None:
    """As deployed (OUTBOX_POLL_SECONDS at its default): mail leaves in the background after the first
    request, and again after the next one, long after the thread's first pass."""
    app = smtp_app(make_app, smtp_server, OUTBOX_THREAD=True)
    assert app.config["OUTBOX_POLL_SECONDS"] >= 5, "the default: not what makes these mails leave"
    for n, email in enumerate(("een@example.be", "twee@example.be"), start=1):
        request_checklist(app, email=email)
        deadline = time.monotonic() + 10
        while len(smtp_server.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [rcpt[0] for rcpt, _ in smtp_server.messages][n - 1:] == [email]
        time.sleep(0.5)  # the thread's pass is over: it is waiting for the next request


# -- what the coach and the operator see of a failure, and the thread's life -----------------------------------

def wait_until(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def queue_to(app, address: str, checklist: str = "teams") -> None:
    with app.app_context(), db.transaction() as s:
        outbox.queue(s, mail.Mail("checklist_link", address, "Je checklist", {
            "lead": {"name": "An"}, "checklist": checklist, "link": "http://site.test/download/x", "days": 14}))


def messages(caplog, start: str) -> list[str]:
    return [m for m in caplog.messages if m.startswith(start)]


def test_a_mailbox_at_its_daily_limit_gets_no_more_mail_and_the_log_names_only_the_kind(make_app, caplog) -> None:
    """The operator sees why a visitor got no mail (the form still thanks them), without the address."""
    app = make_app(WTF_CSRF_ENABLED=False)
    per_day = load_settings().limits.mails_per_address_per_day
    for _ in range(per_day + 1):
        request_checklist(app)
    assert [m.kind for m in rows(app)].count("checklist_link") == per_day
    assert messages(caplog, "visitor mail not queued") == [
        "visitor mail not queued kind=checklist_link reason=mailbox-limit"]


@pytest.mark.parametrize(("address", "error", "logged"), [
    ("weg@example.be", "550 5.1.1 No such user", "550"),
    ("=?utf-8?q?x?=@example.be", "recipient address not deliverable as written", "recipient"),
], ids=["refused-by-server", "not-writable-as-header"])
def test_a_mail_that_fails_for_good_is_marked_reported_and_logged_by_its_first_word(
        make_app, smtp_server, caplog, address, error, logged) -> None:
    """The row and the coach's report keep the whole reason; the log line only its first word (a server's
    text may quote the recipient's address)."""
    app = make_app(**smtp_config(smtp_server.port))
    queue_to(app, address)
    smtp_server.refuse[address] = error  # the second address never reaches the server: no To: header for it
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 1}
    failed, report_row = rows(app)
    assert (failed.status, failed.last_error) == ("failed", error)
    assert report_row.kind == "coach_mail_failed" and report_row.status == "sent"
    [(rcpt, report)] = smtp_server.messages
    assert rcpt == [load_settings().coach.email]
    assert f"Reden: {error}" in report.get_content()
    assert messages(caplog, "mail failed") == [f"mail failed outbox_id={failed.id} kind=checklist_link reason={logged}"]


def test_a_long_failure_reason_reaches_the_coach_whole_and_the_row_keeps_500_characters(make_app, smtp_server) -> None:
    """last_error is a column of 500 characters (PostgreSQL refuses more); the report has room for all."""
    app = make_app(**smtp_config(smtp_server.port))
    queue_to(app, "an@example.be", checklist="weg-" + "x" * 600)  # a checklist taken out of site_config
    assert deliver(app)["failed"] == 1
    failed = rows(app)[0]
    [(_rcpt, report)] = smtp_server.messages
    reason = report.get_content().split("Reden: ", 1)[1]
    assert len(reason) > 600 and "x" * 600 in reason
    assert len(failed.last_error) == 500 and reason.startswith(failed.last_error)


@pytest.mark.parametrize("server", ["deferring", "closed-port"])
def test_a_deferred_mail_is_logged_with_the_servers_code_or_the_errors_name_only(
        make_app, smtp_server, caplog, server) -> None:
    """The rest of a server's answer may quote the recipient's address: it stays in the row, out of the log."""
    port = smtp_server.port if server == "deferring" else free_port()
    app = make_app(**smtp_config(port))
    queue_to(app, "an@example.be")
    smtp_server.reply = "451 4.3.0 an@example.be greylisted, try later"
    assert deliver(app) == {"sent": 0, "retry": 1, "failed": 0}
    reason = "451 4.3.0" if server == "deferring" else "ConnectionRefusedError"
    assert rows(app)[0].last_error.startswith(reason)
    assert messages(caplog, "mail deferred") == [f"mail deferred outbox_id=1 attempt=1 retry_in=0s reason={reason}"]


def test_the_servers_thread_polls_for_due_mail_that_no_request_woke_it_for(make_app, smtp_server) -> None:
    """Mail queued by another process (cron, a CLI command) and deferred once leaves when the mail server
    takes mail again: the thread `start` began looks every OUTBOX_POLL_SECONDS, with no kick at all."""
    app = make_app(OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=0.2, **smtp_config(smtp_server.port))
    queue_to(app, "an@example.be")
    smtp_server.reply = "451 4.3.0 try later"
    outbox.start(app)  # as the server does at its start; it delivers once, then polls
    assert wait_until(lambda: rows(app)[0].last_error is not None), "tried at start and deferred"
    smtp_server.reply = None
    assert wait_until(lambda: smtp_server.messages), "sent at a later poll"
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["an@example.be"]]


def test_the_thread_goes_on_while_mail_fails_and_the_reports_reach_the_coach(make_app, smtp_server, caplog) -> None:
    """A first batch of only failures is not an empty queue: the thread goes on with the rest and the
    reports it queued, rather than waiting for the next poll (an hour here) or visitor."""
    app = make_app(OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600, **smtp_config(smtp_server.port))
    addresses = [f"weg{n}@example.be" for n in range(outbox.CLAIM_BATCH + 1)]
    for address in addresses:
        queue_to(app, address)
        smtp_server.refuse[address] = "550 5.1.1 No such user"
    outbox.start(app)
    assert wait_until(lambda: len(smtp_server.messages) == len(addresses))
    assert {rcpt[0] for rcpt, _ in smtp_server.messages} == {load_settings().coach.email}
    assert {m.status for m in rows(app) if m.kind == "checklist_link"} == {"failed"}
    assert messages(caplog, "outbox worker error") == []


def test_an_error_in_the_thread_is_logged_and_the_next_request_still_gets_its_mail(make_app, smtp_server, caplog,
                                                                                   monkeypatch) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600,
                   **smtp_config(smtp_server.port))
    close = SMTPBackend.close
    broken = []

    def close_broken_once(self):
        if not broken:
            broken.append(True)
            raise RuntimeError("a bug")
        close(self)

    monkeypatch.setattr(SMTPBackend, "close", close_broken_once)
    request_checklist(app, email="een@example.be")
    assert wait_until(lambda: messages(caplog, "outbox worker error"))
    [record] = [r for r in caplog.records if r.getMessage() == "outbox worker error"]
    assert record.levelname == "ERROR" and record.exc_info[0] is RuntimeError, "with its traceback"
    request_checklist(app, email="twee@example.be")
    assert wait_until(lambda: len(smtp_server.messages) == 2)
    assert [rcpt[0] for rcpt, _ in smtp_server.messages] == ["een@example.be", "twee@example.be"]


def test_stopping_the_thread_finishes_the_mail_in_hand_and_puts_the_rest_back(make_app, smtp_server) -> None:
    """What a deploy does to a worker (tested under gunicorn above), here in this process: the claimed
    batch is not sent to the end first."""
    app = make_app(OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600, **smtp_config(smtp_server.port))
    queue(app, 8)
    smtp_server.delay = 0.3
    outbox.start(app)
    assert wait_until(lambda: smtp_server.messages)
    outbox.stop(app)
    statuses = [m.status for m in rows(app)]
    assert 1 <= statuses.count("sent") == len(smtp_server.messages) < 8, statuses
    assert {(m.status, m.attempts) for m in rows(app) if m.status != "sent"} == {("queued", 0)}


def test_many_requests_share_one_delivery_thread(make_app, smtp_server) -> None:
    """Each form wakes the process's thread; none starts another (threads would pile up per visitor)."""
    app = make_app(WTF_CSRF_ENABLED=False, OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600,
                   **smtp_config(smtp_server.port))
    before = set(threading.enumerate())
    for n in range(3):
        request_checklist(app, email=f"v{n}@example.be")
    assert wait_until(lambda: len(smtp_server.messages) == 3)
    assert len([t for t in threading.enumerate() if t not in before and t.is_alive()]) == 1


# -- how much a pass takes on, and what it leaves behind when it stops -------------------------------------------

def test_a_pass_sends_no_more_than_its_limit_and_leaves_the_rest_untried(make_app, smtp_server) -> None:
    """cron's pass and the thread's batches ask for a number of mails: the rest waits, its attempts unspent,
    also when a crash left a mail claimed that the pass takes up first."""
    app = make_app(OUTBOX_LEASE_SECONDS=60, **smtp_config(smtp_server.port))
    queue(app, 23)
    assert deliver(app, 15) == {"sent": 15, "retry": 0, "failed": 0}
    assert len(smtp_server.messages) == 15
    assert {(m.status, m.attempts) for m in rows(app) if m.status != "sent"} == {("queued", 0)}
    with app.app_context(), db.engine().begin() as conn:  # as a worker killed mid-send leaves it
        conn.execute(update(OutboxMail).where(OutboxMail.id == 16).values(
            status="sending", attempts=1, claimed_at=utcnow() - dt.timedelta(seconds=61)))
    assert deliver(app, 2) == {"sent": 2, "retry": 0, "failed": 0}
    assert len(smtp_server.messages) == 17 and [m.status for m in rows(app)].count("queued") == 6


def test_a_pass_that_stops_with_one_mail_left_puts_that_one_back(make_app, smtp_server, monkeypatch) -> None:
    """The mail claimed but not tried is due again at once, not after the lease (five minutes as deployed)."""
    app = make_app(**smtp_config(smtp_server.port))
    queue(app, 2)
    stopping = threading.Event()
    send = SMTPBackend.send

    def send_then_stop(self, message, outbox_id):
        send(self, message, outbox_id)
        stopping.set()

    monkeypatch.setattr(SMTPBackend, "send", send_then_stop)
    with app.app_context():
        assert outbox.deliver_due(10, stopping) == {"sent": 1, "retry": 0, "failed": 0}
    assert [(m.status, m.attempts) for m in rows(app)] == [("sent", 1), ("queued", 0)]


def test_mail_a_stopping_pass_cannot_put_back_is_logged_and_goes_out_after_its_lease(make_app, smtp_server,
                                                                                     monkeypatch, caplog) -> None:
    """The database goes away just as the pass stops: the operator reads which mails stay claimed and why
    (not the addresses), and the lease brings them back."""
    from sqlalchemy import create_engine

    app = make_app(OUTBOX_LEASE_SECONDS=60, **smtp_config(smtp_server.port))
    queue(app, 3)
    gone = create_engine("sqlite:////nonexistent-dir/outbox.db")
    engine = db.engine

    class StopWithTheDatabaseGone(threading.Event):
        def is_set(self) -> bool:
            if smtp_server.messages:
                monkeypatch.setattr(db, "engine", lambda: gone)
                return True
            return False

    with app.app_context():
        assert outbox.deliver_due(10, StopWithTheDatabaseGone()) == {"sent": 1, "retry": 0, "failed": 0}
    monkeypatch.setattr(db, "engine", engine)
    [record] = [r for r in caplog.records if r.getMessage().startswith("claimed mail not released")]
    assert (record.levelname, record.getMessage()) == (
        "WARNING", "claimed mail not released outbox_ids=[2, 3] error=OperationalError")
    assert [m.status for m in rows(app)] == ["sent", "sending", "sending"]
    with app.app_context(), db.engine().begin() as conn:
        conn.execute(update(OutboxMail).where(OutboxMail.status == "sending")
                     .values(claimed_at=utcnow() - dt.timedelta(seconds=61)))
    assert deliver(app) == {"sent": 2, "retry": 0, "failed": 0}


def test_with_rate_limits_off_visitor_mail_goes_out_past_the_sites_cap(make_app, smtp_server) -> None:
    """RATELIMIT_ENABLED=false (load tests) lifts the site's caps on visitor mail as it lifts the per-IP limits."""
    app = make_app(RATELIMIT_ENABLED=False, **smtp_config(smtp_server.port))
    now = utcnow()
    with app.app_context(), db.transaction() as s:  # the hour's cap (200 in site.yml) already sent
        s.execute(insert(OutboxMail), [
            {"kind": "checklist_link", "to_addr": f"s{n}@example.be", "mailbox": f"s{n}@example.be", "subject": "x",
             "headers": {}, "message_id": f"<s{n}@t>", "status": "sent", "attempts": 1, "created_at": now,
             "next_attempt_at": now, "sent_at": now} for n in range(load_settings().limits.visitor_mails_per_hour)])
    queue_to(app, "an@example.be")
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 0}
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["an@example.be"]]


def test_an_unforeseen_error_is_kept_to_500_characters_and_logged_by_its_name(make_app, smtp_server, monkeypatch,
                                                                             caplog) -> None:
    """last_error holds 500 characters (PostgreSQL refuses more, and the mail would stay claimed); the log
    names the error's type, never its text."""
    app = make_app(**smtp_config(smtp_server.port))
    queue_to(app, "an@example.be")

    def broken(self, message, outbox_id):
        raise ValueError("a bug " + "x" * 600)

    monkeypatch.setattr(SMTPBackend, "send", broken)
    assert deliver(app) == {"sent": 0, "retry": 1, "failed": 0}
    [deferred] = rows(app)
    assert deferred.status == "queued" and deferred.last_error == ("a bug " + "x" * 600)[:500]
    assert messages(caplog, "mail deferred") == ["mail deferred outbox_id=1 attempt=1 retry_in=0s reason=ValueError"]
