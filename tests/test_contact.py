"""A prospect writes to the coach: stored first, mailed through the outbox, bots ignored."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from conftest import smtp_config
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from leadform import db, outbox
from leadform.forms import issue_started, static_form_html, subject_choices
from leadform.models import ContactMessage, Lead, OutboxMail
from site_config import load_settings

FORM = {"name": "Jan De Smet", "email": "jan@example.be", "phone": "+32 9 123 45 67",
        "subject": "teamcoaching", "message": "Kunnen we eens praten over ons team?", "privacy": "y"}


OPTION = r'<option\b[^>]*\bvalue="([^"]*)"[^>]*>([^<]*)</option>'
SUBJECT_OPTIONS = [("", "Kies een onderwerp"), ("teamcoaching", "Teamcoaching"),
                   ("leiderschapscoaching", "Leiderschapscoaching"),
                   ("opleiding-klantgerichtheid", "Opleiding klantgerichtheid"),
                   ("samenwerking-tussen-teams", "Samenwerking tussen teams"), ("andere", "Iets anders")]


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


def test_a_form_sent_just_under_the_minimum_after_the_static_page_got_its_start_time_is_too_fast(
        make_app, monkeypatch) -> None:
    """The start time forms.js fetches (/api/csrf) is the moment of that request, not a second earlier:
    a bot that sends half a second before contact_min_seconds is asked to confirm, nothing is stored."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    start = client.get("/api/csrf").get_json()["started"]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + load_settings().limits.contact_min_seconds - 0.5)
    response = client.post("/api/contact", data={**FORM, "started": start})
    assert response.status_code == 400 and "klik nog eens op verzenden" in response.get_data(as_text=True)
    assert messages(app) == 0


def test_a_form_open_exactly_two_hours_still_counts(make_app, monkeypatch) -> None:
    """A start time lasts two hours: a visitor who sends at that very second is not asked to send again."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    clock = [1_800_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    start = client.get("/api/csrf").get_json()["started"]
    clock[0] += 2 * 3600
    assert client.post("/api/contact", data={**FORM, "started": start}).status_code == 303
    assert messages(app) == 1


def old_release_start(app, client, **salt: str | None) -> str:
    """A start time as the releases so far wrote it: [issued at, first 16 hex digits of the SHA-256 of the
    session's CSRF secret], signed with the app's key and the salt given (none: itsdangerous' default)."""
    with client.session_transaction() as sess:
        tag = hashlib.sha256(sess["csrf_token"].encode()).hexdigest()[:16]
    return URLSafeSerializer(app.config["SECRET_KEY"], **salt).dumps([time.time() - 60, tag])


def test_a_start_time_from_the_release_before_a_deploy_still_counts(make_app) -> None:
    """A visitor who opened the form before a deploy and sends it after must not be asked to send it again:
    the token's format (salt "form-started", the session tag) is shared by every release."""
    app = make_app()  # CSRF on, as in production
    client = app.test_client()
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    start = old_release_start(app, client, salt="form-started")
    assert client.post("/api/contact", data={**FORM, "csrf_token": csrf, "started": start}).status_code == 303
    assert messages(app) == 1


@pytest.mark.parametrize("salt", [{}, {"salt": None}], ids=["serializer-default", "signer-default"])
def test_a_start_time_signed_with_the_key_for_no_purpose_of_its_own_does_not_count(make_app, salt) -> None:
    """The start time has its own salt: a value the app's key signed with one of itsdangerous' default salts
    (as any unsalted use of the key would) is no start time, and the visitor is asked to send it once more."""
    app = make_app()
    client = app.test_client()
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    start = old_release_start(app, client, **salt)
    response = client.post("/api/contact", data={**FORM, "csrf_token": csrf, "started": start})
    assert response.status_code == 400 and "verstuur het opnieuw" in response.get_data(as_text=True)
    assert messages(app) == 0


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
    assert re.findall(OPTION, html) == SUBJECT_OPTIONS


def test_the_static_contact_form_and_the_choices_it_is_built_from_offer_the_same_subjects() -> None:
    """The site build embeds the contact form (static_form_html) with the subjects of subject_choices():
    the prompt first, with an empty value so that choosing nothing is refused, then the five subjects."""
    assert re.findall(OPTION, static_form_html("contact")) == SUBJECT_OPTIONS
    assert [(choice.value, choice.label) for choice in subject_choices()] == SUBJECT_OPTIONS


def test_the_static_contact_form_leaves_its_token_and_start_time_empty_for_forms_js() -> None:
    """forms.js fetches a token only while the hidden csrf_token field is empty: a build that wrote any
    text there ("None") would send every form with a token that fails, and a start time that never counts."""
    html = static_form_html("contact")
    assert re.findall(r'<input type="hidden" name="(csrf_token|started)" value="([^"]*)">', html) == [
        ("csrf_token", ""), ("started", "")]


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
