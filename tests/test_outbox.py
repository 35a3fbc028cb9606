"""How a delivery pass claims, sends and records mail (leadform/outbox.py), against a real SMTP server."""

from __future__ import annotations

import datetime as dt
import time

from conftest import free_port, smtp_config
from sqlalchemy import insert, select, update

from leadform import db, mail, outbox
from leadform.mail import SMTPBackend
from leadform.models import OutboxMail, utcnow


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
    assert "Dag Lead 0," in text and "http://site.test/download/0" in text and "14 dagen" in text
    assert "CHECKLIST TEAMS" in message.get_body(("html",)).get_content()
    [sent] = rows(app)
    assert sent.context is None and "Dag Lead 0," in sent.body_text and "Dag Lead 0" in sent.body_html


def test_a_mail_queued_before_the_upgrade_goes_out_with_the_bodies_it_was_stored_with(make_app, smtp_server) -> None:
    app = make_app(**smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        s.execute(insert(OutboxMail), {"kind": "checklist_link", "to_addr": "old@example.be", "subject": "Je checklist",
                                       "body_text": "Een tekst van voor de upgrade.", "headers": {},
                                       "message_id": "<old@voorbeeld-coaching.be>"})
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 0}
    [(rcpt, message)] = smtp_server.messages
    assert rcpt == ["old@example.be"] and message.get_content().strip() == "Een tekst van voor de upgrade."


def test_mail_queued_before_a_restart_leaves_at_start_with_no_visitor(make_app, smtp_server, tmp_path, pdf_dir) -> None:
    """The server's outbox thread delivers once at start: mail a crash or a deploy left queued does not
    wait for the next visitor's form (nor for cron)."""
    from conftest import server_env

    from deploy import local

    app = make_app(SECRET_KEY="restart-test-secret", **smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        outbox.queue(s, mail.Mail("contact_confirmation", "wachtend@example.be", "We hebben je bericht goed ontvangen",
                                  {"message": {"name": "An"}}))
    env = {**server_env(tmp_path), "LEADFORM_SECRET_KEY": "restart-test-secret", "LEADFORM_PDF_DIR": str(pdf_dir),
           **{f"LEADFORM_{key}": str(value) for key, value in smtp_config(smtp_server.port).items()}}
    started = time.monotonic()
    with local.gunicorn(env, free_port(), log=tmp_path / "gunicorn.log"):
        while not smtp_server.messages and time.monotonic() - started < 20:
            time.sleep(0.05)
        waited = time.monotonic() - started
    log = (tmp_path / "gunicorn.log").read_text()
    assert [rcpt for rcpt, _ in smtp_server.messages] == [["wachtend@example.be"]], log
    assert waited < 15


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
