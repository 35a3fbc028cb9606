"""What each mail says, rendered at delivery from the facts its request stored (leadform/mail.py)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from conftest import smtp_config
from sqlalchemy import select

from leadform import db, mail, outbox
from leadform.models import OutboxMail
from site_config import load_settings

WHEN = dt.datetime(2026, 11, 27, 9, 5)


def stored(composed: mail.Mail) -> tuple[str, str | None]:
    """The mail rendered from its context after a trip through the database's JSON column."""
    return mail.render(composed.kind, json.loads(json.dumps(composed.context)))


def test_every_kind_renders_the_facts_its_request_stored(app) -> None:
    settings = load_settings()
    teams = settings.checklist("teams")
    lead = SimpleNamespace(name="Sofie <b>Peeters</b>", email="sofie@example.be", created_at=WHEN,
                           newsletter_consent_at=WHEN)
    message = SimpleNamespace(name="Jan", email="jan@example.be", phone=None, message="Bel me <morgen>.")
    failed = SimpleNamespace(kind="checklist_link", to_addr="weg@example.be", subject="Je checklist",
                             created_at=WHEN, attempts=8)
    with app.app_context():
        text, html = stored(mail.checklist_link(lead, teams, "http://site.test/download/abc"))
        assert text.startswith("Dag,\n") and "http://site.test/download/abc" in text
        assert f"{settings.limits.link_valid_days} dagen" in text and teams.title in text
        assert "Sofie" not in text + html and 'href="http://site.test/download/abc"' in html
        text, html = stored(mail.coach_new_lead(lead, teams))
        assert html is None and "Naam: Sofie <b>Peeters</b>" in text and "E-mail: sofie@example.be" in text
        assert "Nieuwsbrief: ja" in text
        assert "Aangevraagd op: 27/11/2026 10:05 (Belgische tijd)" in text
        text, html = stored(mail.contact_to_coach(message, "Teamcoaching"))
        assert "Telefoon: niet opgegeven" in text and "Onderwerp: Teamcoaching" in text
        assert "Bel me <morgen>." in text and "Bel me &lt;morgen&gt;." in html
        text, html = stored(mail.contact_confirmation(message))
        assert text.startswith("Dag,\n") and "Jan" not in text + html and "morgen" not in text + html
        text, html = stored(mail.failure_report(failed, "550 5.1.1 No such user"))
        assert html is None and "Aan: weg@example.be" in text
        assert "Gemaakt op: 27/11/2026 10:05 (Belgische tijd)" in text
        assert "Pogingen: 8" in text and "Reden: 550 5.1.1 No such user" in text


@pytest.mark.parametrize(("utc", "gent"), [(dt.datetime(2026, 1, 15, 3, 0), "15/01/2026 04:00"),
                                           (dt.datetime(2026, 7, 15, 3, 0), "15/07/2026 05:00")])
def test_the_coach_reads_belgian_time_in_mails_winter_and_summer(app, utc: dt.datetime, gent: str) -> None:
    lead = SimpleNamespace(name="An", email="an@example.be", created_at=utc, newsletter_consent_at=None)
    failed = SimpleNamespace(kind="checklist_link", to_addr="an@example.be", subject="Je checklist",
                             created_at=utc, attempts=8)
    with app.app_context():
        text, _ = stored(mail.coach_new_lead(lead, load_settings().checklist("teams")))
        assert f"Aangevraagd op: {gent} (Belgische tijd)" in text and "UTC" not in text
        text, _ = stored(mail.failure_report(failed, "550"))
        assert f"Gemaakt op: {gent} (Belgische tijd)" in text and "UTC" not in text


def test_every_mail_to_a_visitor_can_be_answered_and_reaches_the_coach(make_app, smtp_server) -> None:
    """The mails say 'Antwoord gerust': Reply-To is the coach's address from site.yml on every mail to a
    visitor, whatever the visitor typed; the coach's own mail about a message answers the visitor."""
    from support.mail import link_in

    from leadform.forms import issue_started

    coach = load_settings().coach.email
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    visitor = {"name": "Sofie", "email": "sofie@example.be", "privacy": "y", "newsletter": "y"}
    assert client.post("/api/checklists/teams", data=visitor).status_code == 303
    with app.test_request_context():
        started = issue_started(backdate=10)
    assert client.post("/api/contact", data={**visitor, "subject": "andere", "message": "Dag",
                                             "started": started}).status_code == 303
    with app.app_context():
        outbox.deliver_due()
        link = link_in(app, db.session().scalars(select(OutboxMail).where(OutboxMail.kind == "checklist_link")).one())
    assert client.get(f"/download/{link}").status_code == 200
    with app.app_context():
        outbox.deliver_due()
    received = {message["Subject"]: (rcpt, message) for rcpt, message in smtp_server.messages}
    to_visitor = [m for rcpt, m in received.values() if rcpt == ["sofie@example.be"]]
    to_coach = [m for rcpt, m in received.values() if rcpt == [coach]]
    assert len(to_visitor) == 2 and len(to_coach) == 2, sorted(received)
    for message in to_visitor:
        assert message["Reply-To"] == coach, message["Subject"]
        assert message["From"] != message["Reply-To"]
    [about_message] = [m for m in to_coach if m["Subject"].startswith("Nieuw bericht")]
    assert about_message["Reply-To"] == "sofie@example.be"


def test_a_field_the_context_lacks_is_an_error_not_a_blank(app) -> None:
    with app.app_context(), pytest.raises(mail.RenderError, match="checklist_link"):
        mail.render("checklist_link", {"checklist": "teams", "days": 14})


def test_a_mail_that_cannot_be_rendered_fails_at_once_and_the_coach_is_told(make_app, smtp_server) -> None:
    """A checklist taken out of site_config while its mail waited: retrying cannot help."""
    app = make_app(**smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        outbox.queue(s, mail.Mail("checklist_link", "an@example.be", "Je checklist", {
            "lead": {"name": "An"}, "checklist": "bestaat-niet", "link": "http://site.test/download/x", "days": 14}))
    with app.app_context():
        assert outbox.deliver_due() == {"sent": 1, "retry": 0, "failed": 1}
        with db.transaction() as s:
            row = s.scalars(select(OutboxMail).where(OutboxMail.kind == "checklist_link")).one()
            assert row.status == "failed" and row.attempts == 1 and "cannot render" in row.last_error
            assert row.context["checklist"] == "bestaat-niet", "kept for a retry once the checklist is back"
    [(rcpt, report)] = smtp_server.messages
    assert rcpt == [load_settings().coach.email] and "kon niet verstuurd worden" in report["Subject"]
