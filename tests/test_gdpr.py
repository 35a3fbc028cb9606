"""GDPR on one command each: `gdpr export EMAIL`, `gdpr erase EMAIL`, `gdpr purge` (cron).

Real rows of every kind, made through the app's own flows (checklist requests, a download
that confirms, a contact message, a mail the server refused, a consent record a form linked
to the address), with ages moved by updating their timestamps.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, smtp_config
from sqlalchemy import func, select, update
from support import database
from support.mail import link_in

from leadform import db, outbox
from leadform.forms import issue_started
from leadform.gdpr import years_before
from leadform.models import ConsentRecord, ContactMessage, Download, Lead, OutboxMail, new_id, utcnow
from site_config import load_settings

TARGET = "an@example.be"
BYSTANDER = "jan@example.be"  # contains the target's address: a substring match would erase Jan too
WHOLE_TARGET = re.compile(r"(?<![\w.+-])an@example\.be(?![\w.-])", re.IGNORECASE)


def contact(client, app, email: str, name: str, message: str) -> None:
    with app.test_request_context():
        started = issue_started(backdate=60)
    response = client.post("/api/contact", data={"name": name, "email": email, "subject": "teamcoaching",
                                                 "message": message, "privacy": "y", "started": started})
    assert response.status_code == 303


def consent_record(app, email: str | None, created_at: dt.datetime | None = None) -> str:
    now = created_at or utcnow()
    record = ConsentRecord(id=new_id(), subject_id=new_id(), event="given", created_at=now,
                           choices={"necessary": True, "analytics": True}, button="accept_all", policy_version=1,
                           banner_hash="0123456789abcdef", expires_at=now + dt.timedelta(days=182),
                           site_build="test", email=email)
    with app.app_context(), db.transaction() as s:
        s.add(record)
    return record.id


def deliver(app) -> dict[str, int]:
    with app.app_context():
        return outbox.deliver_due()


def link_for(app, lead_email: str, slug: str) -> str:
    with app.app_context(), db.transaction() as s:
        lead = s.scalars(select(Lead).where(Lead.email == lead_email, Lead.checklist == slug)).one()
        mail = s.scalars(select(OutboxMail).where(OutboxMail.lead_id == lead.id)).first()
    return link_in(app, mail)


@pytest.fixture
def people(make_app, smtp_server):
    """An (the person asking) and Jan (a bystander), with data of every kind."""
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    client.post("/api/checklists/teams", data={"name": "An Peeters", "email": "An@Example.be", "privacy": "y",
                                               "newsletter": "y"})
    client.post("/api/checklists/teams", data={"name": "Jan Claes", "email": BYSTANDER, "privacy": "y"})
    assert client.get(f"/download/{link_for(app, TARGET, 'teams')}").status_code == 200  # confirms: coach mailed
    contact(client, app, TARGET, "An Peeters", "Bel me gerust.")
    contact(client, app, BYSTANDER, "Jan Claes", "Graag een offerte voor ons team.")
    consent_record(app, TARGET)
    consent_record(app, None)
    assert deliver(app)["failed"] == 0
    # One mail the server refuses: it is marked failed and the coach gets a report naming An.
    smtp_server.refuse[TARGET] = "550 5.1.1 No such user"
    client.post("/api/checklists/leiderschap", data={"name": "An Peeters", "email": TARGET, "privacy": "y"})
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 1}
    return app


def export(app, email: str) -> dict:
    result = app.test_cli_runner().invoke(args=["gdpr", "export", email])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def dump(app) -> str:
    with app.app_context():
        return database.dump(db.engine())


def test_export_has_everything_about_the_address_and_nothing_else(people) -> None:
    data = export(people, "  AN@example.BE ")
    assert data["email"] == TARGET
    assert sorted(lead["checklist"] for lead in data["leads"]) == ["leiderschap", "teams"]
    teams = next(lead for lead in data["leads"] if lead["checklist"] == "teams")
    assert teams["name"] == "An Peeters" and teams["confirmed_at"] and teams["newsletter_consent_at"]
    assert len(teams["downloads"]) == 1 and teams["downloads"][0]["use_count"] == 1
    assert "token_hash" not in json.dumps(data)
    assert [c["email"] for c in data["consent_records"]] == [TARGET]
    assert [m["message"] for m in data["contact_messages"]] == ["Bel me gerust."]
    kinds = sorted(m["kind"] for m in data["outbox"])
    assert kinds == ["checklist_link", "checklist_link", "coach_mail_failed", "coach_new_lead",
                     "contact_confirmation", "contact_to_coach"]
    about = [m for m in data["outbox"] if m["kind"] == "contact_to_coach"]
    assert about[0]["headers"]["Reply-To"] == TARGET
    assert "Jan Claes" not in json.dumps(data), "the bystander's data is not exported"


def test_export_of_an_unknown_address_says_so(people) -> None:
    result = people.test_cli_runner().invoke(args=["gdpr", "export", "niemand@example.be"])
    data = json.loads(result.stdout)
    assert [data[k] for k in ("leads", "consent_records", "contact_messages", "outbox")] == [[], [], [], []]
    assert "nothing stored about this address" in result.stderr


def test_export_to_a_file_is_readable_by_the_coach_only(people, tmp_path) -> None:
    target = tmp_path / "an.json"
    result = people.test_cli_runner().invoke(args=["gdpr", "export", TARGET, "--output", str(target)])
    assert result.exit_code == 0
    assert json.loads(target.read_text())["email"] == TARGET
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_erase_removes_the_address_everywhere_and_shows_what(people) -> None:
    def jan_rows() -> dict:
        with people.app_context(), db.transaction() as s:
            return {"leads": s.scalar(select(func.count()).select_from(Lead).where(Lead.email == BYSTANDER)),
                    "messages": s.scalar(select(func.count()).select_from(ContactMessage)
                                         .where(ContactMessage.email == BYSTANDER)),
                    "mails": s.scalar(select(func.count()).select_from(OutboxMail).where(
                        (OutboxMail.to_addr == BYSTANDER) | OutboxMail.body_text.contains(BYSTANDER))),
                    "consent": s.scalar(select(func.count()).select_from(ConsentRecord))}

    jan_before = jan_rows()
    assert WHOLE_TARGET.search(dump(people))
    result = people.test_cli_runner().invoke(args=["gdpr", "erase", "An@Example.be"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "Erase everything stored about An@Example.be?" in result.output
    shown = dict(re.findall(r"^(\w+): (\d+) erased", result.output, re.MULTILINE))
    assert shown == {"leads": "2", "downloads": "2", "contact_messages": "1", "consent_records": "1", "outbox": "6"}

    assert not WHOLE_TARGET.search(dump(people)), "the address is still somewhere in the database"
    again = export(people, TARGET)
    assert again["leads"] == again["consent_records"] == again["contact_messages"] == again["outbox"] == []
    assert jan_rows() == {**jan_before, "consent": jan_before["consent"] - 1}  # Jan keeps everything


def test_leads_erase_is_the_same_command(people) -> None:
    result = people.test_cli_runner().invoke(args=["leads", "erase", BYSTANDER, "--yes"])
    assert "leads: 1 erased" in result.output and "contact_messages: 1 erased" in result.output
    assert "outbox: 3 erased" in result.output  # the link, the message to the coach, the confirmation
    assert len(export(people, TARGET)["leads"]) == 2


def test_erase_also_removes_the_mail_files_of_the_file_backend(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)  # MAIL_BACKEND=file: each mail is kept as <id>.eml
    client = app.test_client()
    client.post("/api/checklists/teams", data={"name": "An", "email": TARGET, "privacy": "y"})
    client.post("/api/checklists/teams", data={"name": "Jan", "email": BYSTANDER, "privacy": "y"})
    assert deliver(app)["sent"] == 2
    folder = Path(app.config["MAIL_DIR"])
    assert len(list(folder.glob("*.eml"))) == 2
    result = app.test_cli_runner().invoke(args=["gdpr", "erase", TARGET, "--yes"])
    assert "mail files: 1 erased" in result.output
    (left,) = folder.glob("*.eml")
    assert BYSTANDER in left.read_text() and not WHOLE_TARGET.search(left.read_text())



def test_an_erased_address_is_in_no_file_under_instance_and_those_files_are_private(make_app) -> None:
    """Erasure that erases: SQLite's WAL held 123 copies of an erased address before secure_delete and
    the checkpoint after the erase; database and .eml files (with live download links) were 0644."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    for n in range(40):
        client.post(f"/api/checklists/{('teams', 'leiderschap')[n % 2]}",
                    data={"name": "An Peeters", "email": TARGET, "privacy": "y"})
    contact(client, app, TARGET, "An Peeters", "Geheim bericht van An over haar team.")
    contact(client, app, BYSTANDER, "Jan Claes", "Graag een offerte voor ons team.")
    assert deliver(app)["sent"] >= 3
    instance = Path(app.instance_path)
    files = [p for p in instance.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o077 == 0 for p in files), [oct(p.stat().st_mode) for p in files]
    assert instance.stat().st_mode & 0o077 == 0

    result = app.test_cli_runner().invoke(args=["gdpr", "erase", TARGET, "--yes"])
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    left = [p.name for p in instance.rglob("*") if p.is_file()
            and (WHOLE_TARGET.search(text := p.read_bytes().decode("latin-1")) or "Geheim bericht" in text)]
    assert left == []
    assert BYSTANDER in dump(app), "the bystander is still there"


# -- retention purge ---------------------------------------------------------------------------------------

def set_times(app, model, where, **values) -> None:
    with app.app_context(), db.transaction() as s:
        s.execute(update(model).where(where).values(**values))


def test_purge_removes_what_is_past_its_retention_and_only_that(make_app, tmp_path) -> None:
    keep = load_settings().retention
    now = utcnow()
    day = dt.timedelta(days=1)
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    for who in ("old", "recent", "confirmed"):
        client.post("/api/checklists/teams", data={"name": who, "email": f"{who}@example.be", "privacy": "y"})
    client.get(f"/download/{link_for(app, 'confirmed@example.be', 'teams')}")
    contact(client, app, "oldmsg@example.be", "Oud", "Een oud bericht.")
    contact(client, app, "newmsg@example.be", "Nieuw", "Een recent bericht.")
    old_consent = consent_record(app, "c1@example.be", years_before(now, keep.consent_record_years) - day)
    new_consent = consent_record(app, "c2@example.be", years_before(now, keep.consent_record_years) + day)
    assert deliver(app)["sent"] == 8  # 3 links, 1 coach note, 2 x 2 contact mails

    unconfirmed_age = now - (keep.unconfirmed_lead_days + 1) * day
    set_times(app, Lead, Lead.email == "old@example.be", created_at=unconfirmed_age, updated_at=unconfirmed_age)
    recent_age = now - (keep.unconfirmed_lead_days - 1) * day
    set_times(app, Lead, Lead.email == "recent@example.be", created_at=recent_age, updated_at=recent_age)
    set_times(app, Lead, Lead.email == "confirmed@example.be", created_at=now - 400 * day,
              updated_at=now - 400 * day)
    old_message = years_before(now, keep.contact_message_years) - day
    set_times(app, ContactMessage, ContactMessage.email == "oldmsg@example.be", created_at=old_message)
    set_times(app, OutboxMail, OutboxMail.body_text.contains("Een oud bericht.") |
              (OutboxMail.to_addr == "oldmsg@example.be"), created_at=old_message, sent_at=old_message)
    # Delivered mail: the links to 'recent' and 'confirmed' went out 8 days ago, the coach's note 6 days ago.
    set_times(app, OutboxMail, OutboxMail.to_addr.in_(["recent@example.be", "confirmed@example.be"]),
              sent_at=now - (keep.delivered_mail_body_days + 1) * day)
    set_times(app, OutboxMail, OutboxMail.kind == "coach_new_lead",
              sent_at=now - (keep.delivered_mail_body_days - 1) * day)
    set_times(app, OutboxMail, OutboxMail.to_addr == "newmsg@example.be", status="failed",
              sent_at=None, created_at=now - 30 * day)

    runner = app.test_cli_runner()
    dry = runner.invoke(args=["gdpr", "purge", "--dry-run"])
    assert "unconfirmed_leads: 1 would be purged" in dry.output
    before = dump(app)
    assert dump(app) == before and "old@example.be" in before

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")},
           "LEADFORM_SECRET_KEY": "cron", "LEADFORM_INSTANCE_PATH": app.instance_path,
           "LEADFORM_DATABASE_URL": app.config["DATABASE_URL"], "LEADFORM_MAIL_DIR": app.config["MAIL_DIR"]}
    cron = subprocess.run([sys.executable, "-m", "flask", "--app", "leadform", "gdpr", "purge"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert cron.returncode == 0, cron.stderr
    purged = dict(re.findall(r"^(\w+): (\d+) purged", cron.stdout, re.MULTILINE))
    assert purged == {"unconfirmed_leads": "1", "downloads": "1", "contact_messages": "1", "consent_records": "1",
                      "outbox_deleted": "3", "outbox_bodies_blanked": "2"}

    with app.app_context(), db.transaction() as s:
        assert sorted(s.scalars(select(Lead.email))) == ["confirmed@example.be", "recent@example.be"]
        assert s.scalar(select(func.count()).select_from(Download)) == 2
        assert list(s.scalars(select(ContactMessage.email))) == ["newmsg@example.be"]
        assert list(s.scalars(select(ConsentRecord.id))) == [new_consent] != [old_consent]
        mails = {(m.kind, m.to_addr): m for m in s.scalars(select(OutboxMail))}
    assert not any("old" in to for _, to in mails), "the purged people's mail is gone"
    for to in ("recent@example.be", "confirmed@example.be"):
        blanked = mails["checklist_link", to]
        assert blanked.status == "sent" and blanked.body_text is None and blanked.body_html is None
        assert blanked.headers == {} and blanked.subject  # what was sent when stays, not what it said
    assert mails["coach_new_lead", load_settings().coach.email].body_text  # 6 days: kept
    assert mails["contact_confirmation", "newmsg@example.be"].body_text  # failed: kept for a retry
    assert len(list(Path(app.config["MAIL_DIR"]).glob("*.eml"))) == 8 - 3 - 2

    second = runner.invoke(args=["gdpr", "purge"])
    assert set(re.findall(r": (\d+) purged", second.output)) == {"0"}, "a second run finds nothing"


def test_privacy_page_states_the_periods_the_purge_uses() -> None:
    from site_config.components import retention_table

    table = retention_table(None)()
    keep = load_settings().retention
    for expected in (f"{keep.unconfirmed_lead_days} dagen", f"{keep.contact_message_years} jaar",
                     f"{keep.delivered_mail_body_days} dagen", f"{keep.consent_record_years} jaar"):
        assert expected in table


def test_erase_finds_a_mail_about_the_person_that_is_not_sent_yet(make_app) -> None:
    """A queued notice to the coach names the person only in its context: it is rendered at delivery."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    client.post("/api/checklists/teams", data={"name": "An Peeters", "email": TARGET, "privacy": "y"})
    assert client.get(f"/download/{link_for(app, TARGET, 'teams')}").status_code == 200
    with app.app_context(), db.transaction() as s:
        notice = s.scalars(select(OutboxMail).where(OutboxMail.kind == "coach_new_lead")).one()
        assert notice.status == "queued" and notice.lead_id is None and notice.body_text is None
        assert notice.context["lead"]["email"] == TARGET
    result = app.test_cli_runner().invoke(args=["gdpr", "erase", TARGET], input="y\n")
    assert result.exit_code == 0, result.output
    assert not WHOLE_TARGET.search(dump(app))
