"""A prospect asks for a checklist, gets a mail with a personal link, and downloads the PDF."""

from __future__ import annotations

import io
import re
import time

import pytest
from conftest import free_port, smtp_config
from pypdf import PdfReader
from sqlalchemy import func, select
from support.mail import LINK, link_in

from leadform import db, mail, outbox
from leadform.models import Download, Lead, OutboxMail
from site_config import load_settings

FORM = {"name": "Sofie Peeters", "email": "Sofie.Peeters@Example.be", "privacy": "y"}


def count(app, model, *where) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def lead(app, email: str = "sofie.peeters@example.be", slug: str = "teams") -> Lead:
    with app.app_context(), db.transaction() as s:
        return s.scalars(select(Lead).where(Lead.email == email, Lead.checklist == slug)).one()


def deliver(app) -> dict[str, int]:
    with app.app_context():
        return outbox.deliver_due()


def test_request_stores_lead_and_queues_mail_then_redirects(client, app) -> None:
    response = client.post("/api/checklists/teams", data={**FORM, "newsletter": "y"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/checklists/bedankt/"
    stored = lead(app)
    assert stored.name == "Sofie Peeters" and stored.email == "sofie.peeters@example.be"
    assert stored.newsletter_requested and stored.newsletter_consent_at is None and stored.confirmed_at is None
    assert count(app, OutboxMail, OutboxMail.kind == "checklist_link", OutboxMail.status == "queued") == 1
    with app.app_context(), db.transaction() as s:
        download = s.scalars(select(Download)).one()
        mail = s.scalars(select(OutboxMail)).one()
    token = link_in(app, mail)
    assert download.token_hash not in str(mail.context) and token not in download.token_hash
    assert mail.body_text is None  # rendered when it is sent
    assert "List-Unsubscribe" in mail.headers


def test_asking_again_updates_the_same_lead_within_a_daily_mail_limit(client, app) -> None:
    for email in ("sofie.peeters@example.be", "SOFIE.PEETERS@example.be", " Sofie.Peeters@example.be "):
        assert client.post("/api/checklists/teams", data={**FORM, "email": email}).status_code == 303
    assert count(app, Lead) == 1
    assert lead(app).request_count == 3
    assert count(app, OutboxMail) == 3
    assert client.post("/api/checklists/teams", data=FORM).status_code == 303
    assert count(app, OutboxMail) == load_settings().limits.mails_per_address_per_day == 3
    assert client.post("/api/checklists/leiderschap", data=FORM).status_code == 303
    assert count(app, Lead) == 2


@pytest.mark.parametrize(("data", "message"), [
    ({**FORM, "email": "sofie@"}, "Dit lijkt geen geldig e-mailadres"),
    ({**FORM, "name": ""}, "Vul je naam in."),
    ({k: v for k, v in FORM.items() if k != "privacy"}, "Duid aan dat je de privacyverklaring gelezen hebt."),
    ({**FORM, "name": "x" * 101}, "Je naam is te lang."),
])
def test_invalid_input_gets_a_dutch_message_and_keeps_what_was_typed(client, app, data, message) -> None:
    response = client.post("/api/checklists/teams", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in html
    assert f'value="{data["email"].strip().lower()}"' in html
    assert count(app, Lead) == 0 and count(app, OutboxMail) == 0


def test_unknown_checklist_is_404(client) -> None:
    assert client.post("/api/checklists/koken", data=FORM).status_code == 404


def test_csrf_token_missing_stores_nothing_and_offers_the_filled_in_form(make_app) -> None:
    app = make_app()
    client = app.test_client()
    response = client.post("/api/checklists/teams", data=FORM)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert count(app, Lead) == 0
    assert 'value="Sofie Peeters"' in html and "nog één keer" in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/api/checklists/teams", data={**FORM, "csrf_token": token})
    assert response.status_code == 303 and count(app, Lead) == 1


def test_static_page_token_endpoint_gives_a_working_token(make_app) -> None:
    app = make_app()
    client = app.test_client()
    token = client.get("/api/csrf").get_json()["csrf_token"]
    assert client.post("/api/checklists/teams", data={**FORM, "csrf_token": "forged"}).status_code == 400
    assert count(app, Lead) == 0
    assert client.post("/api/checklists/teams", data={**FORM, "csrf_token": token}).status_code == 303


def test_a_session_cookie_signed_before_a_key_rotation_still_passes_the_csrf_check(make_app) -> None:
    """A visitor with a form open while the coach rotates LEADFORM_SECRET_KEY, the old key kept in
    LEADFORM_SECRET_KEY_FALLBACKS: Flask reads their session cookie with the old key, and signs new
    cookies with the new one. A cookie under a key the app does not know is no session at all."""
    from itsdangerous import BadSignature

    app = make_app()
    name = app.config["SESSION_COOKIE_NAME"]
    client = app.test_client()
    client.get("/api/csrf")
    old_cookie = client.get_cookie(name).value

    rotated = make_app(SECRET_KEY="a new secret", SECRET_KEY_FALLBACKS=[app.config["SECRET_KEY"]])
    signer = rotated.session_interface.get_signing_serializer(rotated)
    assert "csrf_token" in signer.loads(old_cookie)
    only_new = make_app(SECRET_KEY="a new secret")
    only_new_signer = only_new.session_interface.get_signing_serializer(only_new)
    assert only_new_signer.loads(signer.dumps({"x": 1})) == {"x": 1}  # new cookies: signed with the new key
    with pytest.raises(BadSignature):
        only_new_signer.loads(old_cookie)
    # A cookie under another key is no session: the token the new key gives that visitor goes with a
    # new cookie, and the old cookie sent back with it fails the check.
    forged = only_new.test_client()
    forged.set_cookie(name, old_cookie)
    new_token = forged.get("/api/csrf").get_json()["csrf_token"]
    assert forged.post("/api/checklists/teams", data={**FORM, "csrf_token": new_token}).status_code == 303
    forged.set_cookie(name, old_cookie)
    assert forged.post("/api/checklists/teams", data={**FORM, "csrf_token": new_token}).status_code == 400


def test_mail_arrives_over_smtp_and_the_link_downloads_the_pdf(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    client.post("/api/checklists/leiderschap", data={**FORM, "newsletter": "y"})
    assert deliver(app)["sent"] == 1
    (rcpt, message), = smtp_server.messages
    assert rcpt == ["sofie.peeters@example.be"]
    assert message["Subject"] == "Je checklist leiderschap: je persoonlijke downloadlink"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    token = LINK.search(text).group(1)
    assert token in html

    response = client.get(f"/download/{token}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert 'filename=checklist-leiderschap.pdf' in response.headers["Content-Disposition"]
    pdf_text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    pdf_text = re.sub(r"\s+", " ", pdf_text)
    for statement in load_settings().checklist("leiderschap").statements:
        assert re.sub(r"\s+", " ", statement) in pdf_text

    confirmed = lead(app, slug="leiderschap")
    assert confirmed.confirmed_at is not None and confirmed.newsletter_consent_at is not None
    assert deliver(app)["sent"] == 1  # the coach's notification
    rcpt, note = smtp_server.messages[-1]
    assert rcpt == [load_settings().coach.email] and "Sofie Peeters" in note.get_body(("plain",)).get_content()
    assert client.get(f"/download/{token}").status_code == 200
    assert deliver(app)["sent"] == 0, "the coach hears about a lead once"


def test_coach_notification_can_be_switched_off(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, NOTIFY_COACH=False)
    client = app.test_client()
    client.post("/api/checklists/teams", data=FORM)
    with app.app_context(), db.transaction() as s:
        token = link_in(app, s.scalars(select(OutboxMail)).one())
    client.get(f"/download/{token}")
    assert count(app, OutboxMail) == 1


def test_tampered_link_shows_a_friendly_page(client) -> None:
    response = client.get("/download/abc.def.ghi")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Deze link werkt niet" in html and "/checklists/teams/" in html


def test_expired_link_offers_a_new_one(client, app, monkeypatch) -> None:
    import itsdangerous.timed

    fifteen_days_ago = time.time() - 15 * 86400
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: fifteen_days_ago)
    client.post("/api/checklists/teams", data=FORM)
    monkeypatch.undo()
    with app.app_context(), db.transaction() as s:
        token = link_in(app, s.scalars(select(OutboxMail)).one())
    response = client.get(f"/download/{token}")
    assert response.status_code == 410
    assert "Deze link is verlopen" in response.get_data(as_text=True)
    assert lead(app).confirmed_at is None
    response = client.post("/download/renew", data={"token": token})
    assert response.status_code == 303
    assert count(app, OutboxMail, OutboxMail.kind == "checklist_link") == 2
    with app.app_context(), db.transaction() as s:
        fresh = link_in(app, s.scalars(select(OutboxMail).order_by(OutboxMail.id.desc())).first())
    assert client.get(f"/download/{fresh}").status_code == 200


def test_links_are_itsdangerous_tokens_that_an_older_release_made_and_reads(client, app) -> None:
    """Links mailed by earlier releases (plain URLSafeTimedSerializer tokens) still download, and the
    stored hash is the SHA-256 of the secret inside the token, never the token itself."""
    import hashlib

    from itsdangerous import URLSafeTimedSerializer

    client.post("/api/checklists/teams", data=FORM)
    with app.app_context(), db.transaction() as s:
        token = link_in(app, s.scalars(select(OutboxMail)).one())
        stored_hash = s.scalars(select(Download.token_hash)).one()
    plain = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="download-link")
    secret = plain.loads(token, max_age=60)
    assert hashlib.sha256(secret.encode()).hexdigest() == stored_hash
    assert client.get(f"/download/{plain.dumps(secret)}").status_code == 200


def test_links_mailed_before_a_key_rotation_download_while_the_old_key_is_a_fallback(make_app) -> None:
    """The coach (or a leak) may force a new LEADFORM_SECRET_KEY: links are valid for 14 days, so the
    old key stays in LEADFORM_SECRET_KEY_FALLBACKS that long (deploy/README.md) and they keep working."""
    app = make_app(WTF_CSRF_ENABLED=False)
    app.test_client().post("/api/checklists/teams", data=FORM)
    with app.app_context(), db.transaction() as s:
        token = link_in(app, s.scalars(select(OutboxMail)).one())
    old_key = app.config["SECRET_KEY"]
    assert make_app(SECRET_KEY="a new secret").test_client().get(f"/download/{token}").status_code == 404
    rotated = make_app(SECRET_KEY="a new secret", SECRET_KEY_FALLBACKS=old_key,  # one key, as a plain string
                       WTF_CSRF_ENABLED=False)
    response = rotated.test_client().get(f"/download/{token}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    rotated.test_client().post("/api/checklists/teams", data={**FORM, "email": "ander@example.be"})
    with rotated.app_context(), db.transaction() as s:  # new links are signed with the new key only
        queued = s.scalars(select(OutboxMail).where(OutboxMail.to_addr == "ander@example.be")).one()
        new_token = link_in(rotated, queued)
    URLSafeTimedSerializer("a new secret", salt="download-link").loads(new_token)
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer(old_key, salt="download-link").loads(new_token)


def test_smtp_down_then_up_delivers_exactly_once(make_app, smtp_server) -> None:
    dead = free_port()
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(dead))
    client = app.test_client()
    started = time.perf_counter()
    assert client.post("/api/checklists/teams", data=FORM).status_code == 303
    assert time.perf_counter() - started < 2
    assert count(app, Lead) == 1
    assert deliver(app) == {"sent": 0, "retry": 1, "failed": 0}
    app.config["SMTP_PORT"] = smtp_server.port
    with app.app_context(), db.transaction() as s:
        s.execute(OutboxMail.__table__.update().values(next_attempt_at=OutboxMail.created_at))
    assert deliver(app)["sent"] == 1
    assert deliver(app)["sent"] == 0
    assert len(smtp_server.messages) == 1


def test_451_is_retried_and_550_marks_failed_and_tells_the_coach(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    client.post("/api/checklists/teams", data=FORM)
    smtp_server.reply = "451 4.3.0 Try again later"
    assert deliver(app) == {"sent": 0, "retry": 1, "failed": 0}
    smtp_server.reply = None
    assert deliver(app)["sent"] == 1
    assert len(smtp_server.messages) == 1

    client.post("/api/checklists/leiderschap", data=FORM)
    smtp_server.refuse["sofie.peeters@example.be"] = "550 5.1.1 No such user"
    assert deliver(app) == {"sent": 1, "retry": 0, "failed": 1}
    assert count(app, OutboxMail, OutboxMail.status == "failed", OutboxMail.kind == "checklist_link") == 1
    rcpt, report = smtp_server.messages[-1]
    assert rcpt == [load_settings().coach.email]
    assert "kon niet verstuurd worden" in report["Subject"]


def test_no_secret_outside_testing_refuses_to_start(tmp_path) -> None:
    from leadform import create_app
    from leadform.config import ConfigError

    with pytest.raises(ConfigError, match="LEADFORM_SECRET_KEY is not set"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_a_burst_larger_than_one_delivery_batch_leaves_without_waiting_for_the_poll(make_app, smtp_server) -> None:
    """After a burst (a newsletter mention), the background thread goes on batch after batch until
    the queue is empty, instead of leaving the rest for its next wake-up half a minute later."""
    app = make_app(WTF_CSRF_ENABLED=False, OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600,
                   **smtp_config(smtp_server.port))
    burst = 13 * outbox.CLAIM_BATCH + 3
    with app.app_context(), db.transaction() as s:
        for n in range(burst):
            outbox.queue(s, mail.Mail("checklist_link", f"lead{n}@example.be", "Je checklist", {
                "lead": {"name": f"Lead {n}"}, "checklist": "teams", "link": f"http://site.test/download/{n}",
                "days": 14}))
    with app.app_context():
        outbox.kick()  # one wake-up, as after the last request of the burst
    deadline = time.monotonic() + 60
    sent = 0
    while (len(smtp_server.messages) < burst or sent < burst) and time.monotonic() < deadline:
        time.sleep(0.1)  # the last mail is marked sent just after the SMTP server has it
        sent = count(app, OutboxMail, OutboxMail.status == "sent")
    assert len(smtp_server.messages) == burst
    assert sent == burst


def test_twelve_requests_for_one_address_at_the_same_moment_all_succeed(make_app) -> None:
    """A visitor double-clicking, or a form sent from two tabs: one lead, counted twelve times, never a 5xx
    (the lead is an upsert; a plain INSERT gave IntegrityError 503s on PostgreSQL)."""
    import threading

    app = make_app(WTF_CSRF_ENABLED=False)
    start = threading.Barrier(12)
    statuses: list[int] = []

    def visitor() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(client.post("/api/checklists/teams", data=FORM).status_code)

    threads = [threading.Thread(target=visitor) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [303] * 12
    assert lead(app).request_count == 12 and count(app, Lead) == 1
    assert count(app, OutboxMail) == load_settings().limits.mails_per_address_per_day


def test_a_head_request_on_a_link_answers_like_get_and_confirms_nothing(make_app) -> None:
    """Mail scanners and link previews send HEAD: only the visitor's GET, which delivers the PDF,
    confirms the lead, records the newsletter consent and tells the coach."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    client.post("/api/checklists/teams", data={**FORM, "newsletter": "y"})
    with app.app_context(), db.transaction() as s:
        token = link_in(app, s.scalars(select(OutboxMail)).one())
    head = client.head(f"/download/{token}")
    assert head.status_code == 200 and head.mimetype == "application/pdf" and head.data == b""
    stored = lead(app)
    assert stored.confirmed_at is None and stored.newsletter_consent_at is None
    assert count(app, OutboxMail, OutboxMail.kind == "coach_new_lead") == 0
    assert count(app, Download, Download.use_count > 0) == 0
    assert client.get(f"/download/{token}").status_code == 200
    stored = lead(app)
    assert stored.confirmed_at is not None and stored.newsletter_consent_at is not None
    assert count(app, OutboxMail, OutboxMail.kind == "coach_new_lead") == 1


def test_a_link_whose_pdf_is_missing_says_try_later_and_confirms_nothing(make_app, pdf_dir, tmp_path) -> None:
    import shutil

    pdfs = tmp_path / "pdfs"
    shutil.copytree(pdf_dir, pdfs)
    app = make_app(WTF_CSRF_ENABLED=False, PDF_DIR=str(pdfs))
    client = app.test_client()
    client.post("/api/checklists/teams", data=FORM)
    with app.app_context(), db.transaction() as s:
        token = link_in(app, s.scalars(select(OutboxMail)).one())
    teams = load_settings().checklist("teams")
    (pdfs / teams.filename).rename(tmp_path / "away.pdf")
    response = client.get(f"/download/{token}")
    assert response.status_code == 503 and "Je link blijft geldig" in response.get_data(as_text=True)
    assert lead(app).confirmed_at is None
    assert count(app, OutboxMail, OutboxMail.kind == "coach_new_lead") == 0
    (tmp_path / "away.pdf").rename(pdfs / teams.filename)
    assert client.get(f"/download/{token}").status_code == 200 and lead(app).confirmed_at is not None
# -- the newsletter is opt-in ----------------------------------------------------------------------------

NEWSLETTER_BOX = re.compile(r"<input\b[^>]*\bname=\"newsletter\"[^>]*>")


def test_the_newsletter_box_is_never_ticked_beforehand(client, site_pages) -> None:
    """Consent must be an act of the visitor (GDPR art. 4(11), recital 32): not on the site's form,
    and not on the form the app shows again when a request arrives empty or incomplete."""
    for page in ("checklists/teams/index.html", "checklists/leiderschap/index.html"):
        [box] = NEWSLETTER_BOX.findall(site_pages[page])
        assert 'type="checkbox"' in box and "checked" not in box, box
    for data in ({}, {"name": "Sofie Peeters"}, {**FORM, "email": "sofie@"}):
        response = client.post("/api/checklists/teams", data=data)
        assert response.status_code == 400
        [box] = NEWSLETTER_BOX.findall(response.get_data(as_text=True))
        assert "checked" not in box, (data, box)
    ticked = client.post("/api/checklists/teams", data={**FORM, "email": "sofie@", "newsletter": "y"})
    [box] = NEWSLETTER_BOX.findall(ticked.get_data(as_text=True))
    assert "checked" in box, "what the visitor ticked stays ticked"


def test_a_request_without_the_box_records_no_newsletter_wish(client, app) -> None:
    assert client.post("/api/checklists/teams", data=FORM).status_code == 303
    stored = lead(app)
    assert stored.newsletter_requested is False
    with app.app_context(), db.transaction() as s:
        mail = s.scalars(select(OutboxMail)).one()
    assert "List-Unsubscribe" not in (mail.headers or {})
    assert client.get(f"/download/{link_in(app, mail)}").status_code == 200  # confirmed: no consent to record
    confirmed = lead(app)
    assert confirmed.confirmed_at is not None and confirmed.newsletter_consent_at is None
    with app.app_context(), db.transaction() as s:
        notice = s.scalars(select(OutboxMail).where(OutboxMail.kind == "coach_new_lead")).one()
    assert notice.context["lead"]["newsletter"] is False
