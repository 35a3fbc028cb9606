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
from support.teams import mail_link, open_round, path_of, theme_scores

from leadform import db, outbox
from leadform.forms import issue_started
from leadform.gdpr import purge, years_before
from leadform.models import (
    Assessment,
    ConsentRecord,
    ContactMessage,
    Download,
    Lead,
    OutboxMail,
    PageView,
    TeamAnswer,
    new_id,
    utcnow,
)
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
    assert shown == {"leads": "2", "downloads": "2", "assessments": "0", "contact_messages": "1",
                     "consent_records": "1", "team_rounds": "0", "team_answers": "0", "outbox": "6"}

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
    assert purged == {"unconfirmed_leads": "1", "downloads": "1", "assessments": "0", "contact_messages": "1",
                      "consent_records": "1", "page_views": "0", "team_rounds": "0", "team_answers": "0",
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


# -- purge of headers, 29 February, and erasing one address among look-alikes -------------------------------

def test_purge_blanks_the_headers_of_delivered_mail_too(make_app) -> None:
    """Reply-To (the visitor's address, on mail to the coach) and List-Unsubscribe go with the bodies."""
    keep = load_settings().retention
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    client.post("/api/checklists/teams", data={"name": "An Peeters", "email": TARGET, "privacy": "y",
                                               "newsletter": "y"})
    contact(client, app, BYSTANDER, "Jan Claes", "Bel me gerust.")
    assert deliver(app)["sent"] == 3
    with app.app_context(), db.transaction() as s:
        sent = {m.kind: m for m in s.scalars(select(OutboxMail))}
    assert "List-Unsubscribe" in sent["checklist_link"].headers
    assert sent["contact_to_coach"].headers == {"Reply-To": BYSTANDER}
    now = utcnow()
    old, recent = now - dt.timedelta(days=keep.delivered_mail_body_days + 1), now - dt.timedelta(days=1)
    set_times(app, OutboxMail, OutboxMail.kind.in_(["checklist_link", "contact_to_coach"]), sent_at=old)
    set_times(app, OutboxMail, OutboxMail.kind == "contact_confirmation", sent_at=recent)

    result = app.test_cli_runner().invoke(args=["gdpr", "purge"])
    assert result.exit_code == 0, result.output
    assert "outbox_bodies_blanked: 2 purged" in result.output
    with app.app_context(), db.transaction() as s:
        after = {m.kind: m for m in s.scalars(select(OutboxMail))}
    for kind in ("checklist_link", "contact_to_coach"):
        mail = after[kind]
        assert (mail.headers, mail.body_text, mail.body_html, mail.context) == ({}, None, None, None), kind
        assert mail.subject == sent[kind].subject and mail.sent_at == old
    assert after["contact_confirmation"].body_text == sent["contact_confirmation"].body_text, "a day old: kept"
    assert not WHOLE_TARGET.search(json.dumps([after["checklist_link"].headers]))
    assert "mail files: 2 purged" in result.output


@pytest.mark.parametrize(("moment", "years", "expected"), [
    (dt.datetime(2028, 2, 29, 12, 30), 1, dt.datetime(2027, 2, 28, 12, 30)),
    (dt.datetime(2028, 2, 29, 12, 30), 2, dt.datetime(2026, 2, 28, 12, 30)),
    (dt.datetime(2028, 2, 29, 12, 30), 4, dt.datetime(2024, 2, 29, 12, 30)),
    (dt.datetime(2027, 3, 1), 1, dt.datetime(2026, 3, 1)),
    (dt.datetime(2026, 12, 2, 5, 59, 7, 123), 5, dt.datetime(2021, 12, 2, 5, 59, 7, 123)),
], ids=["leap-day-1", "leap-day-2", "leap-day-to-leap-day", "1-march", "any-day"])
def test_years_before_keeps_the_time_and_takes_28_february_for_a_leap_day(moment, years, expected) -> None:
    assert years_before(moment, years) == expected


def test_the_purge_on_29_february_counts_back_to_28_february(make_app) -> None:
    """Run on 29 February 2028, the purge keeps contact messages from after 28 February 2026 at the
    same hour (two years) and consent records from after 28 February 2023 (five years)."""
    keep = load_settings().retention
    assert (keep.contact_message_years, keep.consent_record_years) == (2, 5)
    now = dt.datetime(2028, 2, 29, 12, 0)
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    for who in ("older", "younger"):
        contact(client, app, f"{who}@example.be", who.title(), f"Bericht van {who}.")
    set_times(app, ContactMessage, ContactMessage.email == "older@example.be", created_at=dt.datetime(2026, 2, 28, 11))
    set_times(app, ContactMessage, ContactMessage.email == "younger@example.be",
              created_at=dt.datetime(2026, 2, 28, 13))
    older = consent_record(app, "c1@example.be", dt.datetime(2023, 2, 28, 11))
    younger = consent_record(app, "c2@example.be", dt.datetime(2023, 2, 28, 13))
    with app.app_context(), db.transaction() as s:
        purged = purge(s, now=now)
    assert len(purged["contact_messages"]) == 1 and purged["consent_records"] == [older]
    with app.app_context(), db.transaction() as s:
        assert list(s.scalars(select(ContactMessage.email))) == ["younger@example.be"]
        assert list(s.scalars(select(ConsentRecord.id))) == [younger]


SHORT = "a@example.be"
# Addresses that contain SHORT, or that SHORT is the start of: none of them is the same person.
LOOK_ALIKES = ["ba@example.be", "b.a@example.be", "b+a@example.be", "b-a@example.be", "a@example.bee",
               "a@example.be.eu"]
WHOLE_SHORT = re.compile(r"(?<![\w.+-])a@example\.be(?![\w.-])", re.IGNORECASE)


def test_erase_leaves_the_mail_about_look_alike_addresses(make_app, smtp_server) -> None:
    """Erasing a@example.be takes its own mail and the coach's mail about it, nothing about ba@example.be
    and the like: not their mail, not the coach's messages, notices or failure reports about them."""
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    for email in (SHORT, "ba@example.be"):
        client.post("/api/checklists/teams", data={"name": "Iemand", "email": email, "privacy": "y"})
    for email in (SHORT, *LOOK_ALIKES):
        contact(client, app, email, "Iemand", f"Een vraag van {email}.")
    assert client.get(f"/download/{link_for(app, SHORT, 'teams')}").status_code == 200
    assert deliver(app) == {"sent": 2 + 2 * 7 + 1, "retry": 0, "failed": 0}
    smtp_server.refuse["b.a@example.be"] = "550 5.1.1 No such user"  # the coach is told, naming b.a@
    client.post("/api/checklists/leiderschap", data={"name": "Iemand", "email": "b.a@example.be", "privacy": "y"})
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 1}
    assert client.get(f"/download/{link_for(app, 'ba@example.be', 'teams')}").status_code == 200  # queued notice

    with app.app_context(), db.transaction() as s:
        before = {m.id: (m.kind, m.to_addr, m.status) for m in s.scalars(select(OutboxMail))}
    own = export(app, SHORT)["outbox"]
    assert sorted(m["kind"] for m in own) == ["checklist_link", "coach_new_lead", "contact_confirmation",
                                               "contact_to_coach"]
    with app.app_context(), db.transaction() as s:
        own_download = s.scalar(select(Download.id).join(Lead).where(Lead.email == SHORT))
    result = app.test_cli_runner().invoke(args=["gdpr", "erase", SHORT, "--yes"])
    assert result.exit_code == 0, result.output
    assert "outbox: 4 erased" in result.output and "contact_messages: 1 erased" in result.output
    assert f"downloads: 1 erased (ids: {own_download})" in result.output
    with app.app_context(), db.transaction() as s:
        after = {m.id: (m.kind, m.to_addr, m.status) for m in s.scalars(select(OutboxMail))}
    assert after == {i: row for i, row in before.items() if i not in {m["id"] for m in own}}
    kinds_left = sorted(kind for kind, _, _ in after.values())
    assert kinds_left.count("contact_to_coach") == len(LOOK_ALIKES)
    assert kinds_left.count("coach_new_lead") == kinds_left.count("coach_mail_failed") == 1
    left = dump(app)
    assert not WHOLE_SHORT.search(left)
    for email in LOOK_ALIKES:
        assert email in left and len(export(app, email)["contact_messages"]) == 1, email


def test_erase_finds_the_address_written_in_capitals_in_a_mail_to_the_coach(make_app) -> None:
    """Jan's message names An as she wrote it; the coach's copy of it names An, so it goes with An."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    contact(client, app, BYSTANDER, "Jan Claes", "Mijn collega AN@Example.BE belt je nog.")
    assert deliver(app)["sent"] == 2
    result = app.test_cli_runner().invoke(args=["gdpr", "erase", TARGET, "--yes"])
    assert result.exit_code == 0, result.output
    assert "outbox: 1 erased" in result.output
    with app.app_context(), db.transaction() as s:
        assert [m.kind for m in s.scalars(select(OutboxMail))] == ["contact_confirmation"]
        assert s.scalar(select(func.count()).select_from(ContactMessage)) == 1, "Jan's own message stays"


def test_export_is_dated_and_lists_consent_in_the_order_it_was_given(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    now = utcnow()
    later = consent_record(app, TARGET, now - dt.timedelta(days=1))
    earlier = consent_record(app, TARGET, now - dt.timedelta(days=30))  # stored second, given first
    before = utcnow().replace(microsecond=0)
    data = export(app, TARGET)
    assert [c["id"] for c in data["consent_records"]] == [earlier, later]
    assert data["exported_at"].endswith("Z")
    assert before <= dt.datetime.fromisoformat(data["exported_at"][:-1]) <= utcnow()


def test_purge_keeps_what_is_exactly_as_old_as_its_retention_and_blanks_text_only_mail(make_app) -> None:
    """'Kept for N days' means a row of exactly that age is still there; a mail without an HTML part
    (the coach's notices) is blanked like any other once past its retention."""
    keep = load_settings().retention
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    for who in ("exact", "older"):
        client.post("/api/checklists/teams", data={"name": who, "email": f"{who}@example.be", "privacy": "y"})
        contact(client, app, f"{who}msg@example.be", who, f"Bericht {who}.")
    client.get(f"/download/{link_for(app, 'exact@example.be', 'teams')}")  # confirmed: the coach gets a notice
    client.post("/api/checklists/teams", data={"name": "Edge", "email": "edge@example.be", "privacy": "y"})
    assert deliver(app)["sent"] == 8
    now = utcnow()
    day = dt.timedelta(days=1)
    lead_age, body_age = now - keep.unconfirmed_lead_days * day, now - keep.delivered_mail_body_days * day
    contact_age = years_before(now, keep.contact_message_years)
    consent_age = years_before(now, keep.consent_record_years)
    set_times(app, Lead, Lead.email == "older@example.be", updated_at=lead_age - day)
    set_times(app, Lead, Lead.email == "edge@example.be", updated_at=lead_age)  # unconfirmed, exactly 30 days
    set_times(app, ContactMessage, ContactMessage.email == "exactmsg@example.be", created_at=contact_age)
    set_times(app, OutboxMail, OutboxMail.to_addr == "exactmsg@example.be", created_at=contact_age)
    set_times(app, OutboxMail, OutboxMail.kind == "checklist_link", sent_at=body_age)
    set_times(app, OutboxMail, OutboxMail.kind == "coach_new_lead", sent_at=body_age - day)
    exact_consent = consent_record(app, "c@example.be", consent_age)
    with app.app_context(), db.transaction() as s:
        older_download = s.scalar(select(Download.id).join(Lead).where(Lead.email == "older@example.be"))
        older_link = s.scalar(select(OutboxMail.id).where(OutboxMail.to_addr == "older@example.be"))
        older_lead = s.scalar(select(Lead.id).where(Lead.email == "older@example.be"))
        purged = purge(s, now=now)
        mails = {m.kind + ":" + m.to_addr: m for m in s.scalars(select(OutboxMail))}
        assert list(s.scalars(select(ConsentRecord.id))) == [exact_consent]
        assert sorted(s.scalars(select(ContactMessage.email))) == ["exactmsg@example.be", "oldermsg@example.be"]
    assert purged["unconfirmed_leads"] == [older_lead] and purged["downloads"] == [older_download]
    assert purged["contact_messages"] == purged["consent_records"] == []
    assert purged["outbox_deleted"] == [older_link], "the contact mail of exactly two years is kept"
    coach = load_settings().coach.email
    notice = mails["coach_new_lead:" + coach]
    assert purged["outbox_bodies_blanked"] == [notice.id] and notice.body_text is None, "text-only mail too"
    assert mails["checklist_link:exact@example.be"].body_text, "sent exactly 7 days ago: kept"
    assert "contact_confirmation:exactmsg@example.be" in mails


def test_purge_shows_at_most_twenty_ids_per_table(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    old = years_before(utcnow(), load_settings().retention.consent_record_years) - dt.timedelta(days=1)
    runner = app.test_cli_runner()

    def consent_line(count: int) -> tuple[str, list[str]]:
        made = {consent_record(app, None, old) for _ in range(count)}
        output = runner.invoke(args=["gdpr", "purge"]).output
        line = next(line for line in output.splitlines() if line.startswith("consent_records:"))
        assert "downloads: 0 purged\n" in output, "a table with nothing purged shows no id list"
        ids = re.fullmatch(rf"consent_records: {count} purged \(ids: (.*)\)", line).group(1).split(", ")
        assert set(ids) - {"…"} <= made
        return line, ids

    _, twenty = consent_line(20)
    assert len(twenty) == 20 and "…" not in twenty
    _, more = consent_line(21)
    assert len(more) == 21 and more[-1] == "…" and len(set(more[:20])) == 20


def test_an_address_at_the_end_of_a_sentence_is_found(make_app) -> None:
    """'…mail gerust naar an@example.be.': the full stop ends the sentence, not the address."""
    app = make_app(WTF_CSRF_ENABLED=False)
    contact(app.test_client(), app, BYSTANDER, "Jan Claes", f"Mijn collega wil ook meedoen, mail gerust naar {TARGET}.")
    mails = export(app, TARGET)["outbox"]
    assert [m["kind"] for m in mails] == ["contact_to_coach"]


# -- team rounds, personal reports and page counts -----------------------------------------------------------

def request_report(client, email: str, name: str) -> None:
    response = client.post("/api/scorecard/teams/rapport",
                           data={**theme_scores("teams", 4, 2), "name": name, "email": email, "privacy": "y"})
    assert response.status_code == 303


def test_export_and_erase_include_the_coachs_notice_of_a_round_after_the_purge_blanked_it(make_app) -> None:
    """A week after it went out, the coach's notice of An's round no longer names her (its content is
    blanked), but it is still the mail about her round: her export lists it and her erasure counts it."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/team/teams/", data={"name": "An Peeters", "email": TARGET, "privacy": "y"}).status_code == 303
    assert client.get(path_of(mail_link(app, "team_round_link"))).status_code == 200  # confirms: coach notified
    assert deliver(app)["sent"] == 2
    week_ago = utcnow() - dt.timedelta(days=load_settings().retention.delivered_mail_body_days + 1)
    set_times(app, OutboxMail, OutboxMail.status == "sent", sent_at=week_ago)
    purged = app.test_cli_runner().invoke(args=["gdpr", "purge"])
    assert "outbox_bodies_blanked: 2 purged" in purged.output and "team_rounds: 0 purged" in purged.output

    outbox_export = export(app, TARGET)["outbox"]
    assert sorted((m["kind"], m["body_text"]) for m in outbox_export) == [("coach_team_round", None),
                                                                          ("team_round_link", None)]
    result = app.test_cli_runner().invoke(args=["gdpr", "erase", TARGET, "--yes"])
    assert "team_rounds: 1 erased" in result.output and "outbox: 2 erased" in result.output
    with app.app_context(), db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_export_lists_the_team_rounds_a_person_leads_oldest_first(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    now = utcnow()
    open_round(app, confirmed_at=now - dt.timedelta(days=2), email=TARGET)  # stored first, started later
    open_round(app, confirmed_at=now - dt.timedelta(days=20), email=TARGET)
    rounds = export(app, TARGET)["team_rounds"]
    assert [r["created_at"] for r in rounds] == [(now - dt.timedelta(days=d)).isoformat() for d in (20, 2)]


def test_erase_shows_the_ids_of_the_report_answers_and_team_answers_it_removes(make_app) -> None:
    """The coach's record of an erasure names the rows that went: An's personal report answers and the
    answers of the round she led; Jan's report answers stay."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    request_report(client, TARGET, "An Peeters")
    request_report(client, BYSTANDER, "Jan Claes")
    open_round(app, answers=2, email=TARGET)
    with app.app_context(), db.transaction() as s:
        own = s.scalar(select(Assessment.id).join(Lead).where(Lead.email == TARGET))
        jans = s.scalar(select(Assessment.id).join(Lead).where(Lead.email == BYSTANDER))
        answers = sorted(s.scalars(select(TeamAnswer.id)))
    result = app.test_cli_runner().invoke(args=["gdpr", "erase", TARGET, "--yes"])
    assert result.exit_code == 0, result.output
    assert f"assessments: 1 erased (ids: {own})" in result.output
    shown = re.search(r"^team_answers: 2 erased \(ids: (.*)\)$", result.output, re.MULTILINE).group(1)
    assert sorted(shown.split(", ")) == answers
    with app.app_context(), db.transaction() as s:
        assert list(s.scalars(select(Assessment.id))) == [jans]
        assert s.scalar(select(func.count()).select_from(TeamAnswer)) == 0


def test_purge_shows_the_report_answers_of_an_unconfirmed_lead_it_removes(make_app) -> None:
    keep = load_settings().retention
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    request_report(client, "old@example.be", "Oud")
    request_report(client, "recent@example.be", "Recent")
    now = utcnow()
    old_age = now - (keep.unconfirmed_lead_days + 1) * dt.timedelta(days=1)
    set_times(app, Lead, Lead.email == "old@example.be", updated_at=old_age)
    with app.app_context(), db.transaction() as s:
        old = s.scalar(select(Assessment.id).join(Lead).where(Lead.email == "old@example.be"))
        recent = s.scalar(select(Assessment.id).join(Lead).where(Lead.email == "recent@example.be"))
    result = app.test_cli_runner().invoke(args=["gdpr", "purge"])
    assert f"assessments: 1 purged (ids: {old})" in result.output, result.output
    with app.app_context(), db.transaction() as s:
        assert list(s.scalars(select(Assessment.id))) == [recent]


def test_purge_keeps_page_counts_of_exactly_the_retention_in_days(make_app) -> None:
    """Kept 395 days: the count of the day exactly 395 days ago is still there, the day before goes."""
    app = make_app(WTF_CSRF_ENABLED=False)
    now = utcnow()
    with app.app_context(), db.transaction() as s:
        for days in (394, 395, 396):
            s.add(PageView(day=(now - dt.timedelta(days=days)).date(), path=f"/{days}/", count=3))
    with app.app_context(), db.transaction() as s:
        purged = purge(s, now=now)
        kept = sorted(s.scalars(select(PageView.path)))
    assert kept == ["/394/", "/395/"] and len(purged["page_views"]) == 1
