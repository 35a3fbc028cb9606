"""A prospect writes to the coach: stored first, mailed through the outbox, bots ignored."""

from __future__ import annotations

import re
import time

import pytest
from conftest import smtp_config
from sqlalchemy import func, select

from leadform import db, outbox
from leadform.forms import issue_started
from leadform.models import ContactMessage, Lead, OutboxMail
from site_config import load_settings

FORM = {"name": "Jan De Smet", "email": "jan@example.be", "phone": "+32 9 123 45 67",
        "subject": "teamcoaching", "message": "Kunnen we eens praten over ons team?", "privacy": "y"}


def started(app, seconds_ago: float) -> str:
    with app.test_request_context():
        real = time.time
        try:
            time.time = lambda: real() - seconds_ago  # type: ignore[assignment]
            return issue_started()
        finally:
            time.time = real  # type: ignore[assignment]


def messages(app) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(ContactMessage))


def test_message_is_stored_then_mailed_to_coach_with_reply_to(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    response = client.post("/api/contact", data={**FORM, "started": started(app, 10)})
    assert response.status_code == 303 and response.headers["Location"] == "/contact/bedankt/"
    assert messages(app) == 1
    with app.app_context():
        assert outbox.deliver_due()["sent"] == 2
    by_rcpt = {tuple(rcpt): msg for rcpt, msg in smtp_server.messages}
    to_coach = by_rcpt[(load_settings().coach.email,)]
    assert to_coach["Reply-To"] == "jan@example.be"
    assert "Kunnen we eens praten over ons team?" in to_coach.get_body(("plain",)).get_content()
    confirmation = by_rcpt[("jan@example.be",)]
    assert "binnen twee werkdagen" in confirmation.get_body(("plain",)).get_content()


def test_confirmation_mail_can_be_switched_off(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, CONTACT_CONFIRMATION=False)
    app.test_client().post("/api/contact", data={**FORM, "started": started(app, 10)})
    with app.app_context(), db.transaction() as s:
        assert [m.kind for m in s.scalars(select(OutboxMail))] == ["contact_to_coach"]


def test_html_in_the_message_arrives_escaped(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    evil = '<script>alert("x")</script><b>vet</b>'
    app.test_client().post("/api/contact", data={**FORM, "message": evil, "name": "<i>Jan</i>",
                                                  "started": started(app, 10)})
    with app.app_context():
        outbox.deliver_due()
    to_coach = next(m for r, m in smtp_server.messages if r == [load_settings().coach.email])
    html = to_coach.get_body(("html",)).get_content()
    assert "<script>" not in html and "<b>vet</b>" not in html and "<i>Jan</i>" not in html
    assert "&lt;script&gt;" in html and "&lt;i&gt;Jan&lt;/i&gt;" in html


@pytest.mark.parametrize("field", ["name", "email"])
def test_header_injection_is_refused_with_no_extra_recipient(make_app, smtp_server, field) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    value = FORM[field] + "\r\nBcc: victim@example.org"
    response = app.test_client().post("/api/contact", data={**FORM, field: value, "started": started(app, 10)})
    assert response.status_code == 400
    assert messages(app) == 0
    with app.app_context():
        outbox.deliver_due()
    assert all("victim@example.org" not in rcpt for rcpt, _ in smtp_server.messages)
    assert smtp_server.messages == []


def test_honeypot_stores_nothing_but_looks_the_same(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    trap = app.test_client().post("/api/contact", data={**FORM, "website": "http://spam.example",
                                                        "started": started(app, 10)})
    assert trap.status_code == 303 and trap.headers["Location"] == "/contact/bedankt/"
    assert messages(app) == 0
    with app.app_context(), db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_a_contact_sent_too_fast_comes_back_filled_in_and_goes_through_when_sent_again(make_app) -> None:
    """An autofill user can send within the minimum seconds: before, the message was thrown away while
    the visitor was told it arrived. Now the form comes back, filled in, and asks to send it again."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    fast = client.post("/api/contact", data={**FORM, "started": started(app, 1)})
    html = fast.get_data(as_text=True)
    assert fast.status_code == 400 and messages(app) == 0
    assert "klik nog eens op verzenden" in html and "Kunnen we eens praten over ons team?" in html
    start = re.search(r'name="started" value="([^"]+)"', html).group(1)
    assert client.post("/api/contact", data={**FORM, "started": start}).status_code == 303
    assert messages(app) == 1


def test_a_start_time_from_another_session_or_hours_old_does_not_count(make_app) -> None:
    """The time-trap token could be replayed across sessions and never expired: a bot fetched one and
    reused it forever. Now it is bound to the session's CSRF secret and lasts two hours."""
    app = make_app()  # CSRF on, as in production
    bot, victim = app.test_client(), app.test_client()
    token = bot.get("/api/csrf").get_json()
    other = victim.get("/api/csrf").get_json()
    real = time.time
    try:  # the visitor's own token, three hours later
        time.time = lambda: real() + 3 * 3600  # type: ignore[assignment]
        old = victim.post("/api/contact", data={**FORM, "csrf_token": other["csrf_token"],
                                                "started": other["started"]})
    finally:
        time.time = real  # type: ignore[assignment]
    time.sleep(load_settings().limits.contact_min_seconds + 0.1)
    replayed = victim.post("/api/contact", data={**FORM, "csrf_token": other["csrf_token"],
                                                 "started": token["started"]})
    for response in (old, replayed):
        assert response.status_code == 400 and "verstuur het opnieuw" in response.get_data(as_text=True)
    assert messages(app) == 0
    own = victim.post("/api/contact", data={**FORM, "csrf_token": other["csrf_token"], "started": other["started"]})
    assert own.status_code == 303 and messages(app) == 1


def test_without_javascript_the_form_comes_back_filled_in_and_then_goes_through(make_app) -> None:
    app = make_app()
    client = app.test_client()
    response = client.post("/api/contact", data=FORM)  # static page, no token, no start time
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and messages(app) == 0
    assert "Kunnen we eens praten over ons team?" in html and 'value="Jan De Smet"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    start = re.search(r'name="started" value="([^"]+)"', html).group(1)
    assert client.post("/api/contact", data={**FORM, "csrf_token": token, "started": start}).status_code == 303
    assert messages(app) == 1, "one more click, right away, and the message is stored"


@pytest.mark.parametrize(("data", "message"), [
    ({**FORM, "subject": "koffie"}, "Kies een onderwerp."),
    ({**FORM, "message": "x" * 5001}, "Je bericht is te lang"),
    ({**FORM, "phone": "bel me"}, "Gebruik alleen cijfers"),
    ({**FORM, "message": "Hallo\x00daar"}, "onzichtbaar teken"),  # PostgreSQL cannot store NUL: never a 503
    ({**FORM, "message": "Hallo\x1b[31mdaar"}, "onzichtbaar teken"),
])
def test_invalid_contact_input_gets_a_dutch_message(make_app, data, message) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    response = app.test_client().post("/api/contact", data={**data, "started": started(app, 10)})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert messages(app) == 0


def test_line_breaks_and_tabs_in_a_message_are_kept(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    text = "Dag,\r\n\tik heb een vraag.\n\nGroet"
    response = app.test_client().post("/api/contact", data={**FORM, "message": text, "started": started(app, 10)})
    assert response.status_code == 303
    with app.app_context(), db.transaction() as s:
        assert s.scalar(select(ContactMessage.message)) == text
def test_the_subject_list_starts_with_a_prompt_and_offers_the_five_subjects(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    response = app.test_client().post("/api/contact", data={**FORM, "subject": "", "started": started(app, 10)})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Kies een onderwerp." in html
    options = re.findall(r'<option\b[^>]*\bvalue="([^"]*)"[^>]*>([^<]*)</option>', html)
    assert options == [("", "Kies een onderwerp"), ("teamcoaching", "Teamcoaching"),
                       ("leiderschapscoaching", "Leiderschapscoaching"),
                       ("opleiding-klantgerichtheid", "Opleiding klantgerichtheid"),
                       ("samenwerking-tussen-teams", "Samenwerking tussen teams"), ("andere", "Iets anders")]


@pytest.mark.parametrize("subject", ["", "koffie"])
def test_a_missing_or_unknown_subject_gets_exactly_one_dutch_error(make_app, subject) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    response = app.test_client().post("/api/contact", data={**FORM, "subject": subject,
                                                            "started": started(app, 10)})
    errors = re.findall(r'role="alert">([^<]*)</p>', response.get_data(as_text=True))
    assert response.status_code == 400 and errors == ["Kies een onderwerp."]
    assert messages(app) == 0


def test_spaces_around_what_was_typed_are_not_stored(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    padded = {"name": "  Jan De Smet\t", "email": " Jan@Example.be ", "phone": " +32 9 123 45 67 ",
              "message": "\n  Kunnen we eens praten?  \n"}
    assert client.post("/api/contact", data={**FORM, **padded, "started": started(app, 10)}).status_code == 303
    assert client.post("/api/checklists/teams", data={"name": " Sofie ", "email": " Sofie@Example.be ",
                                                      "privacy": "y"}).status_code == 303
    with app.app_context(), db.transaction() as s:
        message = s.scalars(select(ContactMessage)).one()
        lead = s.scalars(select(Lead)).one()
    assert (message.name, message.email, message.phone, message.message) == (
        "Jan De Smet", "jan@example.be", "+32 9 123 45 67", "Kunnen we eens praten?")
    assert (lead.name, lead.email) == ("Sofie", "sofie@example.be")
