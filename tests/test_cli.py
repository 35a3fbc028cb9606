"""The coach's commands: Dutch, Belgian time, list, export (Excel in Belgium, spreadsheet-safe), erase
one person, outbox."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import time
from pathlib import Path

from sqlalchemy import func, select

from leadform import db
from leadform.forms import issue_started
from leadform.models import ConsentRecord, ContactMessage, Download, Lead, OutboxMail

ROOT = Path(__file__).resolve().parent.parent
WINTER = dt.datetime(2026, 1, 15, 3, 0)   # UTC; 04:00 in Gent (CET, +1)
SUMMER = dt.datetime(2026, 7, 15, 3, 0)   # UTC; 05:00 in Gent (CEST, +2)


def total(app, model) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model))


def add_people(client, app) -> None:
    client.post("/api/checklists/teams", data={"name": "=HYPERLINK(\"http://evil\")", "email": "a@example.be",
                                               "privacy": "y"})
    client.post("/api/checklists/leiderschap", data={"name": "Bert", "email": "b@example.be", "privacy": "y"})
    with app.test_request_context():
        real = time.time
        time.time = lambda: real() - 10  # type: ignore[assignment]
        started = issue_started()
        time.time = real  # type: ignore[assignment]
    client.post("/api/contact", data={"name": "Ann", "email": "a@example.be", "subject": "andere",
                                      "message": "Hallo", "privacy": "y", "started": started})


def test_leads_list_and_json_export(client, app, runner) -> None:
    add_people(client, app)
    listing = runner.invoke(args=["leads", "list"])
    assert listing.exit_code == 0 and "2 aanvragen" in listing.output and "b@example.be" in listing.output
    assert "niet bevestigd" in listing.output
    exported = json.loads(runner.invoke(args=["leads", "export", "--format", "json"]).output)
    assert {row["email"] for row in exported} == {"a@example.be", "b@example.be"}


def excel_rows(data: bytes) -> list[dict[str, str]]:
    """The CSV as Excel with Belgian settings reads it: UTF-8 after a BOM, ';' between cells."""
    assert data.startswith("\ufeff".encode()), "no UTF-8 BOM: Excel would garble 'Céline'"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_csv_export_cannot_run_formulas(client, app, runner) -> None:
    add_people(client, app)
    rows = excel_rows(runner.invoke(args=["leads", "export"]).stdout_bytes)
    names = {row["e-mailadres"]: row["naam"] for row in rows}
    assert names["a@example.be"] == "'=HYPERLINK(\"http://evil\")"
    assert names["b@example.be"] == "Bert"


def add_lead_at(app, name: str, email: str, moment: dt.datetime, confirmed: bool = True) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(Lead(checklist="teams", email=email, name=name, created_at=moment, updated_at=moment,
                   confirmed_at=moment if confirmed else None, request_count=1))


def test_export_opens_in_excel_in_belgium_with_dutch_headers_and_belgian_time(app, runner) -> None:
    add_lead_at(app, "Céline Dubois", "celine@example.be", WINTER)
    add_lead_at(app, "Jan Peeters", "jan@example.be", SUMMER)
    result = runner.invoke(args=["leads", "export"])
    assert result.exit_code == 0
    assert result.stdout_bytes.count(b"\r\n") == 3, "Excel's line ends, one per row"
    rows = excel_rows(result.stdout_bytes)
    assert list(rows[0]) == ["nr", "checklist", "naam", "e-mailadres", "aangevraagd op", "bevestigd op",
                             "nieuwsbrief sinds", "aantal aanvragen"]
    assert [(r["naam"], r["aangevraagd op"], r["bevestigd op"]) for r in rows] == [
        ("Céline Dubois", "15/01/2026 04:00", "15/01/2026 04:00"),
        ("Jan Peeters", "15/07/2026 05:00", "15/07/2026 05:00")]


def test_the_coach_reads_dutch_and_belgian_time_winter_and_summer(app, runner) -> None:
    add_lead_at(app, "Céline Dubois", "celine@example.be", WINTER)
    add_lead_at(app, "Jan Peeters", "jan@example.be", SUMMER, confirmed=False)
    with app.app_context(), db.transaction() as s:
        for moment, who in ((WINTER, "celine"), (SUMMER, "jan")):
            s.add(ContactMessage(name=who, email=f"{who}@example.be", subject="teamcoaching", message="Hallo",
                                 created_at=moment))
            s.add(OutboxMail(kind="contact_confirmation", to_addr=f"{who}@example.be", subject="Ontvangen",
                             status="sent", attempts=1, created_at=moment, next_attempt_at=moment,
                             message_id=f"<{who}@test>", context={"message": {"name": who}}))
    leads = runner.invoke(args=["leads", "list"]).output
    assert "15/01/2026 04:00" in leads and "15/07/2026 05:00" in leads
    assert "bevestigd" in leads and "niet bevestigd" in leads and "2 aanvragen" in leads
    assert "03:00" not in leads and "lead(s)" not in leads and "confirmed" not in leads
    messages = runner.invoke(args=["messages", "list"]).output
    assert "15/01/2026 04:00  Teamcoaching" in messages and "15/07/2026 05:00  Teamcoaching" in messages
    assert "2 berichten" in messages
    listing = runner.invoke(args=["outbox", "list"]).output
    assert "15/01/2026 04:00 verstuurd" in listing and "15/07/2026 05:00 verstuurd" in listing
    assert "ontvangstbevestiging" in listing and "pogingen=1" in listing and "sent" not in listing


def test_consent_stats_count_weeks_in_belgian_time(app, runner) -> None:
    """Sunday 23:30 UTC is already Monday in Gent (00:30 or 01:30): it counts in the new week."""
    from leadform.models import utcnow

    now = utcnow()
    monday = dt.datetime.combine(now.date() - dt.timedelta(days=now.weekday()), dt.time())
    sunday_night = monday - dt.timedelta(minutes=30)
    with app.app_context(), db.transaction() as s:
        s.add(ConsentRecord(subject_id="d" * 32, event="given", choices={"analytics": True}, button="accept_all",
                            policy_version=1, banner_hash="ab" * 8, expires_at=now + dt.timedelta(days=180),
                            site_build="test", created_at=sunday_night))
    lines = runner.invoke(args=["consent", "stats", "--weeks", "2"]).output.splitlines()
    assert lines[0].split()[:4] == ["week", "vanaf", "aanvaard", "geweigerd"]
    assert lines[-1].split()[1] == f"{monday:%d/%m/%Y}"
    assert lines[-1].split()[2] == "1", "23:30 UTC on Sunday is after midnight in Gent"


def test_make_export_to_a_file_holds_only_the_csv(client, app, tmp_path) -> None:
    """`make export > aanvragen.csv`, exactly as the README says: no make command line in the file."""
    from conftest import server_env

    add_people(client, app)
    env = {**__import__("os").environ, **server_env(tmp_path)}
    with open(tmp_path / "aanvragen.csv", "wb") as out:
        result = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "export"], stdout=out,
                                stderr=subprocess.PIPE, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = excel_rows((tmp_path / "aanvragen.csv").read_bytes())
    assert sorted(r["e-mailadres"] for r in rows) == ["a@example.be", "b@example.be"]


def test_erase_removes_the_person_everywhere(client, app, runner) -> None:
    add_people(client, app)
    result = runner.invoke(args=["leads", "erase", "A@Example.be", "--yes"])
    assert result.exit_code == 0
    assert "leads: 1 erased" in result.output and "contact_messages: 1 erased" in result.output
    with app.app_context(), db.transaction() as s:
        assert s.scalars(select(Lead.email)).all() == ["b@example.be"]
        assert s.scalar(select(func.count()).select_from(ContactMessage)) == 0
        left = [json.dumps([m.to_addr, m.body_text, m.body_html, m.context, m.headers])
                for m in s.scalars(select(OutboxMail))]
        assert left and all("a@example.be" not in mail for mail in left)
        assert s.scalar(select(func.count()).select_from(Download)) == 1


def test_outbox_commands_send_and_retry(client, app, runner) -> None:
    add_people(client, app)
    assert runner.invoke(args=["outbox", "list"]).output.count(" wacht ") == 4
    sent = runner.invoke(args=["outbox", "send"])
    assert "sent=4" in sent.output
    assert total(app, OutboxMail) == 4
    retry = runner.invoke(args=["outbox", "retry"])
    assert "0 mislukte e-mail(s) opnieuw in de wachtrij" in retry.output


def test_messages_export(client, app, runner) -> None:
    add_people(client, app)
    rows = json.loads(runner.invoke(args=["messages", "export", "--format", "json"]).output)
    assert rows[0]["message"] == "Hallo"
