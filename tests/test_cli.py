"""The coach's commands: list, export (spreadsheet-safe), erase one person, outbox."""

from __future__ import annotations

import csv
import io
import json
import time

from sqlalchemy import func, select

from leadform import db
from leadform.forms import issue_started
from leadform.models import ContactMessage, Download, Lead, OutboxMail


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
    assert listing.exit_code == 0 and "2 lead(s)" in listing.output and "b@example.be" in listing.output
    exported = json.loads(runner.invoke(args=["leads", "export", "--format", "json"]).output)
    assert {row["email"] for row in exported} == {"a@example.be", "b@example.be"}


def test_csv_export_cannot_run_formulas(client, app, runner) -> None:
    add_people(client, app)
    rows = list(csv.DictReader(io.StringIO(runner.invoke(args=["leads", "export"]).output)))
    names = {row["email"]: row["name"] for row in rows}
    assert names["a@example.be"] == "'=HYPERLINK(\"http://evil\")"
    assert names["b@example.be"] == "Bert"


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
    assert runner.invoke(args=["outbox", "list"]).output.count(" queued ") == 4
    sent = runner.invoke(args=["outbox", "send"])
    assert "sent=4" in sent.output
    assert total(app, OutboxMail) == 4
    retry = runner.invoke(args=["outbox", "retry"])
    assert "0 mail(s) queued again" in retry.output


def test_messages_export(client, app, runner) -> None:
    add_people(client, app)
    rows = json.loads(runner.invoke(args=["messages", "export", "--format", "json"]).output)
    assert rows[0]["message"] == "Hallo"
