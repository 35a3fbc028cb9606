"""Nobody can use the coach's forms against a third party or forge the consent proof (issue 21).

Each test replays an attack from the outside test of the running site and shows what stops it now:
mail bombing through spellings of one mailbox, IPv6 addresses and other people's addresses;
attacker text in mail to unconfirmed addresses; encoded-word addresses; forged and flooded consent
records; made-up analytics paths.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from conftest import smtp_config
from itsdangerous import Signer
from sqlalchemy import func, insert, select

from leadform import db, outbox
from leadform.consent import SUBJECT_COOKIE, example_payload
from leadform.forms import issue_started
from leadform.mail import VISITOR_KINDS, mailbox
from leadform.models import ConsentRecord, ContactMessage, Lead, OutboxMail, PageView, utcnow
from site_config import load_settings

LIMITS = load_settings().limits
CONSENT = load_settings().consent
PHISHING = "Je bank: rekening geblokkeerd! Herstel via https://bank-herstel.example"
# Spellings of one Gmail mailbox, and of one mailbox at an IDN domain, as the outside test used them.
GMAIL = ["an.peeters@gmail.com", "AnPeeters@gmail.com", "an.peeters+1@gmail.com", "a.n.p.e.e.t.e.r.s@gmail.com",
         "anpeeters+x@googlemail.com", "An.Peeters+2@GoogleMail.com", "anpeeters+3@GMAIL.COM",
         "a.npeeters+4@gmail.com", "an.pee.ters@googlemail.com", "anpeeters+5@gmail.com"]
IDN = ["an@bücher.be", "an@xn--bcher-kva.be", "AN@BÜCHER.be", "an+1@bücher.be", "An+2@XN--BCHER-KVA.BE",
       "an+3@bücher.be", "an+4@xn--bcher-kva.be", "an+5@bücher.be", "an+6@bücher.be", "an+7@bücher.be"]


def contact_form(app, email: str, name: str = "Jan De Smet", message: str = "Mag ik eens bellen?") -> dict:
    with app.test_request_context():
        started = issue_started(backdate=60)
    return {"name": name, "email": email, "subject": "teamcoaching", "message": message, "privacy": "y",
            "started": started}


def from_ip(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def visitor_mails(app) -> list[OutboxMail]:
    with app.app_context(), db.transaction() as s:
        return list(s.scalars(select(OutboxMail).where(OutboxMail.kind.in_(VISITOR_KINDS))))


# -- 1. mail bombing -------------------------------------------------------------------------------------

def test_normalised_mailbox_is_one_spelling_for_every_variant() -> None:
    assert {mailbox(a) for a in GMAIL} == {"anpeeters@gmail.com"}
    assert {mailbox(a) for a in IDN} == {"an@xn--bcher-kva.be"}
    assert mailbox("an.peeters+x@example.be") == "an.peeters@example.be", "dots count outside Gmail"


@pytest.mark.parametrize("spellings", [GMAIL, IDN], ids=["gmail", "idn"])
def test_one_mailbox_gets_at_most_its_daily_mails_whatever_the_spelling_form_or_ip(make_app, spellings) -> None:
    """The outside test put 20 mails in one inbox in 0.8 s from one IP (10 checklist links, 10 contact
    confirmations), each spelling counted apart. Here each request even comes from another IP, so only
    the mailbox limit stands between the attacker and the inbox."""
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    for n, address in enumerate(spellings):
        checklist = client.post("/api/checklists/teams", data={"name": "An", "email": address, "privacy": "y"},
                                **from_ip(f"203.0.113.{n}"))
        contact = client.post("/api/contact", data=contact_form(app, address), **from_ip(f"198.51.100.{n}"))
        assert (checklist.status_code, contact.status_code) == (303, 303)
    mails = visitor_mails(app)
    assert len(mails) == LIMITS.mails_per_address_per_day == 3
    with app.app_context(), db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ContactMessage)) == len(spellings), "every message kept"
        assert s.scalar(select(func.count()).select_from(OutboxMail).where(
            OutboxMail.kind == "contact_to_coach")) == len(spellings), "the coach hears of every one"
        typed = {lead.email for lead in s.scalars(select(Lead))}
    assert typed == {a.lower() for a in spellings}, "stored as typed (lower case), not normalised"


def test_spellings_sent_at_the_same_moment_still_get_one_mailbox_its_daily_mails(make_app) -> None:
    """Twenty requests at once, each another spelling: the count and the insert happen under one lock
    per mailbox (PostgreSQL) or one writer at a time (SQLite), so none slips past the limit."""
    from concurrent.futures import ThreadPoolExecutor

    app = make_app(WTF_CSRF_ENABLED=False)

    def send(n: int) -> int:
        address = GMAIL[n % len(GMAIL)]
        if n % 2:
            return app.test_client().post("/api/contact", data=contact_form(app, address)).status_code
        return app.test_client().post("/api/checklists/teams", data={"name": "An", "email": address,
                                                                     "privacy": "y"}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(send, range(20))) == {303}
    assert len(visitor_mails(app)) == LIMITS.mails_per_address_per_day


def test_an_ipv6_client_counts_as_its_slash_64(make_app) -> None:
    """One IPv6 connection has 2**64 addresses: per address, the per-IP limit did not exist."""
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   LIMIT_KEY_PREFIX=f"abuse-{uuid.uuid4().hex}")
    client = app.test_client()
    allowed = int(LIMITS.form_per_ip.split()[0])
    statuses = [client.post("/api/checklists/teams", data={"name": "An", "email": f"an{n}@example.be",
                                                          "privacy": "y"},
                            **from_ip(f"2001:db8:1:2::{n + 1:x}")).status_code for n in range(allowed + 1)]
    assert statuses == [303] * allowed + [429]
    other = client.post("/api/checklists/teams", data={"name": "An", "email": "an@example.be", "privacy": "y"},
                        **from_ip("2001:db8:1:3::1"))
    assert other.status_code == 303, "the next /64 is another client"


def test_visitor_mail_past_the_hourly_cap_waits_and_the_coach_is_told_once(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   LIMIT_KEY_PREFIX=f"abuse-{uuid.uuid4().hex}", **smtp_config(smtp_server.port))
    now = utcnow()
    with app.app_context(), db.transaction() as s:  # the hour's cap already sent, to other people
        for n in range(LIMITS.visitor_mails_per_hour):
            s.add(OutboxMail(kind="checklist_link", to_addr=f"v{n}@example.be", mailbox=f"v{n}@example.be",
                             subject="x", headers={}, message_id=f"<{n}@t>", status="sent", attempts=1,
                             created_at=now - dt.timedelta(minutes=30), next_attempt_at=now, sent_at=now))
    client = app.test_client()
    for n in range(2):
        assert client.post("/api/checklists/teams", data={"name": "An", "email": f"wacht{n}@example.be",
                                                          "privacy": "y"}).status_code == 303
    with app.app_context():
        outbox.deliver_due()
        outbox.deliver_due()
    sent_to = [rcpt for rcpt, _ in smtp_server.messages]
    assert sent_to == [[load_settings().coach.email]], "only the one alert to the coach left"
    assert "tegen" in smtp_server.messages[0][1]["Subject"]
    waiting = [m for m in visitor_mails(app) if m.status == "queued"]
    assert len(waiting) == 2 and all(m.next_attempt_at > now for m in waiting) and all(m.attempts == 0 for m in waiting)


def capped_app(make_app, smtp_server):
    """An app with the site's caps on (conftest turns rate limits off) that mails through the test server."""
    return make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                    LIMIT_KEY_PREFIX=f"abuse-{uuid.uuid4().hex}", **smtp_config(smtp_server.port))


def seed_mails(app, count: int, *, kind: str = "checklist_link", status: str = "sent",
               sent_ago: dt.timedelta | None = None, created_ago: dt.timedelta = dt.timedelta(0),
               due_in: dt.timedelta = dt.timedelta(0)) -> None:
    """`count` outbox rows in one INSERT, each to its own mailbox, as the outbox leaves them: only a sent
    mail has a sent_at. Thousands of rows take a moment, so the caps are tested at their real size."""
    now, batch = utcnow(), uuid.uuid4().hex[:8]
    visitor = kind in VISITOR_KINDS
    rows = [{"kind": kind, "to_addr": f"s{batch}{n}@example.be", "subject": "x", "headers": {},
             "mailbox": f"s{batch}{n}@example.be" if visitor else None, "message_id": f"<{batch}.{n}@t>",
             "status": status, "attempts": 1 if status in ("sent", "failed") else 0,
             "created_at": now - (sent_ago or created_ago), "next_attempt_at": now + due_in,
             "sent_at": now - sent_ago if sent_ago is not None else None} for n in range(count)]
    with app.app_context(), db.transaction() as s:
        s.execute(insert(OutboxMail), rows)


def request_links(app, count: int) -> None:
    """`count` checklist requests, each queueing a link to a new visitor address wacht0@, wacht1@, …"""
    client = app.test_client()
    for n in range(count):
        assert client.post("/api/checklists/teams", data={"name": "An", "email": f"wacht{n}@example.be",
                                                          "privacy": "y"}).status_code == 303


def link_status(app) -> dict[str, str]:
    return {m.to_addr: m.status for m in visitor_mails(app) if m.to_addr.startswith("wacht")}


def cap_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("visitor mail held")]


def test_only_visitor_mail_sent_in_the_last_hour_counts_toward_the_hourly_cap(make_app, smtp_server, caplog) -> None:
    """Mail that left 90 minutes ago, the coach's own mail and visitor mail that never left must not
    hold back a visitor's link: one below the cap it goes, the next one at the cap waits."""
    app = capped_app(make_app, smtp_server)
    seed_mails(app, LIMITS.visitor_mails_per_hour - 1, sent_ago=dt.timedelta(minutes=5))
    seed_mails(app, LIMITS.visitor_mails_per_hour, sent_ago=dt.timedelta(minutes=90))
    seed_mails(app, 20, kind="coach_new_lead", sent_ago=dt.timedelta(minutes=5))
    seed_mails(app, 20, status="failed", created_ago=dt.timedelta(minutes=5))
    seed_mails(app, 20, status="queued", created_ago=dt.timedelta(minutes=5), due_in=dt.timedelta(hours=1))
    request_links(app, 2)
    with app.app_context():
        outbox.deliver_due()
    assert link_status(app) == {"wacht0@example.be": "sent", "wacht1@example.be": "queued"}
    assert cap_log(caplog) == [f"visitor mail held reason=cap sent_last_hour={LIMITS.visitor_mails_per_hour} "
                               f"sent_last_day={2 * LIMITS.visitor_mails_per_hour}"]


def test_the_daily_cap_holds_on_its_own_and_counts_only_the_last_day(make_app, smtp_server, caplog) -> None:
    """Far below the hourly cap, the day's cap still holds; mail sent 30 hours ago is yesterday's."""
    app = capped_app(make_app, smtp_server)
    seed_mails(app, LIMITS.visitor_mails_per_day - 1, sent_ago=dt.timedelta(hours=2))
    seed_mails(app, LIMITS.visitor_mails_per_day, sent_ago=dt.timedelta(hours=30))
    request_links(app, 2)
    with app.app_context():
        outbox.deliver_due()
    assert link_status(app) == {"wacht0@example.be": "sent", "wacht1@example.be": "queued"}
    assert cap_log(caplog) == [f"visitor mail held reason=cap sent_last_hour=1 "
                               f"sent_last_day={LIMITS.visitor_mails_per_day}"]


def test_the_coachs_alert_leaves_in_the_same_pass_with_the_numbers_and_the_mail_waits_ten_minutes(
        make_app, smtp_server) -> None:
    """Yesterday's alert does not silence today's; today's leaves with the pass that held the mail and
    tells the coach what was sent and what waits. The held mail is looked at again in 10 minutes, and
    waiting costs it none of its attempts."""
    app = capped_app(make_app, smtp_server)
    seed_mails(app, LIMITS.visitor_mails_per_hour, sent_ago=dt.timedelta(minutes=10))
    seed_mails(app, 50, sent_ago=dt.timedelta(hours=3))
    seed_mails(app, 3, status="queued", created_ago=dt.timedelta(minutes=20), due_in=dt.timedelta(minutes=5))
    seed_mails(app, 2, kind="coach_new_lead", status="queued", due_in=dt.timedelta(minutes=5))
    seed_mails(app, 1, kind="coach_mail_held", sent_ago=dt.timedelta(hours=25))
    request_links(app, 1)
    before = utcnow()
    with app.app_context():
        outbox.deliver_due()
    after = utcnow()
    coach = load_settings().coach.email
    assert [rcpt for rcpt, _ in smtp_server.messages] == [[coach]], "the alert, in this very pass"
    text = smtp_server.messages[0][1].get_body(("plain",)).get_content()
    day = LIMITS.visitor_mails_per_hour + 50
    assert f"{LIMITS.visitor_mails_per_hour} in het laatste uur (maximum {LIMITS.visitor_mails_per_hour}), " \
           f"{day} in de laatste 24 uur (maximum {LIMITS.visitor_mails_per_day})" in text
    assert "de 4 e-mails die nu wachten" in text, "the 3 queued before and the one just held"
    [held] = [m for m in visitor_mails(app) if m.to_addr == "wacht0@example.be"]
    assert held.status == "queued" and held.attempts == 0
    assert before + dt.timedelta(minutes=10) <= held.next_attempt_at <= after + dt.timedelta(minutes=10)


def test_no_attacker_text_reaches_an_unconfirmed_address(make_app, smtp_server) -> None:
    """The free-text name was printed in the checklist mail and the contact confirmation, sent from the
    coach's domain to an address nobody confirmed. The coach's own mail keeps it, escaped."""
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    assert client.post("/api/checklists/teams", data={"name": PHISHING, "email": "slachtoffer@example.be",
                                                      "privacy": "y"}).status_code == 303
    assert client.post("/api/contact", data=contact_form(app, "slachtoffer2@example.be", name=PHISHING,
                                                         message=PHISHING)).status_code == 303
    with app.app_context():
        outbox.deliver_due()
    by_rcpt = {rcpt[0]: message for rcpt, message in smtp_server.messages}
    for victim in ("slachtoffer@example.be", "slachtoffer2@example.be"):
        bodies = "".join(part.get_content() for part in by_rcpt[victim].walk() if part.get_content_maintype() == "text")
        assert "bank" not in bodies and "bank-herstel" not in bodies and "geblokkeerd" not in bodies
    coach = by_rcpt[load_settings().coach.email].get_body(("plain",)).get_content()
    assert PHISHING in coach


@pytest.mark.parametrize("name", ["An\u0085Bcc: x", "An\u2028Van: de bank", "An\u2029x", "\u202eknab eJ",
                                  "An\u2066x\u2069", "An\u200fx"])
def test_line_and_bidi_controls_in_a_name_are_refused_in_dutch(make_app, name: str) -> None:
    app = make_app(WTF_CSRF_ENABLED=False)
    response = app.test_client().post("/api/contact", data=contact_form(app, "an@example.be", name=name))
    assert response.status_code == 400
    assert "Gebruik geen speciale tekens of regeleinden in je naam." in response.get_data(as_text=True)


# -- 2. encoded-word addresses ---------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "message"), [
    ("=?utf-8?q?victim=40elders.example?=@example.com", "Dit lijkt geen geldig e-mailadres"),
    ("=?utf-8?q?a=0d=0aBcc=3a_x=40elders.example?=@example.com", "Dit lijkt geen geldig e-mailadres"),
    ("=?utf-8?b?dmljdGltQGVsZGVycy5leGFtcGxl?=@example.com", "Dit lijkt geen geldig e-mailadres"),
    ("jörg@example.be", "alleen gewone letters, cijfers en leestekens vóór de @"),
])
def test_an_address_a_mail_program_would_read_otherwise_is_refused_in_dutch(make_app, smtp_server, address,
                                                                         message) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    for response in (client.post("/api/checklists/teams", data={"name": "An", "email": address, "privacy": "y"}),
                     client.post("/api/contact", data=contact_form(app, address))):
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        outbox.deliver_due()
    assert smtp_server.messages == [] and visitor_mails(app) == []


@pytest.mark.parametrize(("typed", "on_the_wire"), [
    ("An.Peeters+site@Example.be", "an.peeters+site@example.be"),
    ("an@bücher.be", "an@xn--bcher-kva.be"),
])
def test_the_to_header_and_envelope_are_the_address_stored(make_app, smtp_server, typed, on_the_wire) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    assert app.test_client().post("/api/checklists/teams", data={"name": "An", "email": typed,
                                                                 "privacy": "y"}).status_code == 303
    with app.app_context(), db.transaction() as s:
        stored = s.scalars(select(Lead)).one().email
    with app.app_context():
        assert outbox.deliver_due()["sent"] == 1
    [(rcpt, message)] = smtp_server.messages
    assert stored == typed.lower()
    [to] = message["To"].addresses
    assert to.addr_spec == on_the_wire and rcpt == [on_the_wire]
    assert mailbox(to.addr_spec) == mailbox(stored) and to.username == stored.split("@")[0]
    assert "=?" not in message.as_string().split("\n\n", 1)[0].split("To:", 1)[1].split("\n", 1)[0]


# -- 3. consent proof ------------------------------------------------------------------------------------

def consent(client, payload: dict | None = None, **kwargs):
    return client.post("/api/consent", data=json.dumps(payload or example_payload()),
                       content_type="application/json", **kwargs)


def consent_records(app) -> list[ConsentRecord]:
    with app.app_context(), db.transaction() as s:
        return list(s.scalars(select(ConsentRecord)))


def test_a_forger_cannot_write_records_for_a_subject_id_it_chose(make_app) -> None:
    """The server took any 32-hex id from the cookie: anyone could write a full history for an id of
    their choosing. Now the id must carry the server's signature; 0 records is the bar."""
    app = make_app()
    chosen = "c0ffee" + "0" * 26
    forgeries = [chosen, Signer("another key", salt="consent-subject").sign(chosen).decode(),
                 chosen + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"]
    for value in forgeries:
        client = app.test_client()
        client.set_cookie(SUBJECT_COOKIE, value, path="/api/consent")
        for event, button in (("given", "accept_all"), ("updated", "accept_all")):
            consent(client, {**example_payload(), "event": event, "button": button})
    assert [r for r in consent_records(app) if r.subject_id == chosen] == []


def test_consent_stats_cannot_be_flooded_to_full_acceptance_by_a_few_ips(make_app, runner) -> None:
    """40 IPs wrote 2,400 'accept' records in 16 s and `consent stats` showed 100% accept. Scaled down
    by ten: 4 IPs try 240 acceptances (as new visitors each time, and as one returning visitor) beside
    10 real visitors, 3 of whom accepted."""
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   LIMIT_KEY_PREFIX=f"abuse-{uuid.uuid4().hex}")
    for ip in ("192.0.2.1", "192.0.2.2", "2001:db8:9::1", "2001:db8:9::2"):  # the last two: one /64
        for _ in range(30):  # a new visitor every time (no cookie kept)
            consent(app.test_client(), **from_ip(ip))
        keeper = app.test_client()
        for _ in range(30):  # one visitor, again and again
            consent(keeper, {**example_payload(), "event": "updated"}, **from_ip(ip))
    refusal = {**example_payload(), "event": "refused", "button": "reject_all",
               "choices": {cid: cid == "necessary" for cid in CONSENT.category_ids}}
    for n in range(10):
        response = consent(app.test_client(), example_payload() if n < 3 else refusal, **from_ip(f"198.51.100.{n}"))
        assert response.status_code == 201, "real visitors are recorded"
    records = consent_records(app)
    forged = [r for r in records if r.button == "accept_all"]
    per_ip = int(LIMITS.consent_subjects_per_ip.split()[0])
    assert len({r.subject_id for r in forged}) <= 3 * per_ip + 3, "three clients (one /64), five new ids each"
    this_week = runner.invoke(args=["consent", "stats", "--weeks", "1"]).output.splitlines()[-1].split()
    accept, reject, share = int(this_week[2]), int(this_week[3]), this_week[-1]
    assert reject == 7 and share != "100%" and accept <= 3 * per_ip + 3 + 3


def test_analytics_counts_only_pages_the_build_published_and_forgets_them_after_the_retention(app, client,
                                                                                              runner) -> None:
    for path in ("/made-up/", "/wp-login.php", "/blog/../admin/"):
        assert client.post("/api/analytics", data=path, content_type="text/plain").status_code == 400
    assert client.post("/api/analytics", data="/blog/", content_type="text/plain").status_code == 204
    old = utcnow().date() - dt.timedelta(days=load_settings().retention.page_view_days + 1)
    with app.app_context(), db.transaction() as s:
        s.add(PageView(day=old, path="/", count=5))
    result = runner.invoke(args=["gdpr", "purge"])
    assert result.exit_code == 0 and re.search(r"page_views: 1 purged", result.output), result.output
    with app.app_context(), db.transaction() as s:
        assert [(v.path, v.count) for v in s.scalars(select(PageView))] == [("/blog/", 1)]


# -- 7. the smaller findings ------------------------------------------------------------------------------

def test_make_run_serves_the_sitemap_gz_as_gzip_and_names_no_server_version(site_dir, tmp_path, pdf_dir) -> None:
    """gunicorn as `make run` starts it: sitemap.xml.gz was a 404 page (WhiteNoise keeps .gz files for
    Content-Encoding only); the Server header must name no version."""
    import gzip
    import urllib.request

    from conftest import free_port

    from deploy import local

    port = free_port()
    env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_INSTANCE_PATH": str(tmp_path / "instance"),
           "LEADFORM_SITE_DIR": str(site_dir), "LEADFORM_PDF_DIR": str(pdf_dir), "GUNICORN_THREADS": "2"}
    with local.gunicorn(env, port, log=tmp_path / "server.log", wsgi="leadform.wsgi:with_site()"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sitemap.xml.gz", timeout=10) as response:
            assert response.headers["Content-Type"] == "application/gzip"
            assert gzip.decompress(response.read()).startswith(b"<?xml")
            assert "Content-Security-Policy" in response.headers
        for path in ("/", "/api/health"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                server = response.headers.get("Server", "")
                assert not any(ch.isdigit() for ch in server), server


def test_the_rss_feed_names_a_png_logo_not_none(site_dir) -> None:
    for feed in ("feed_rss_created.xml", "feed_rss_updated.xml"):
        xml = (site_dir / feed).read_text(encoding="utf-8")
        assert "<url>None</url>" not in xml
        url = re.search(r"<image>\s*<url>([^<]+)</url>", xml).group(1)
        assert url == load_settings().site.url.rstrip("/") + "/assets/logo.png"
    assert (site_dir / "assets" / "logo.png").read_bytes().startswith(b"\x89PNG")


def test_an_encoded_word_address_queued_before_the_fix_fails_at_once_and_is_reported(make_app, smtp_server) -> None:
    """Such a mail became a poison mail: 8 failed attempts, then a report. Now it fails at the first."""
    from leadform.mail import Mail

    app = make_app(**smtp_config(smtp_server.port))
    with app.app_context(), db.transaction() as s:
        outbox.queue(s, Mail("contact_confirmation", "=?utf-8?q?a=0d=0aBcc=3a_x=40elders.example?=@example.com",
                             "We hebben je bericht goed ontvangen", {}))
    with app.app_context():
        assert outbox.deliver_due() == {"sent": 1, "retry": 0, "failed": 1}
    [(rcpt, report)] = smtp_server.messages
    assert rcpt == [load_settings().coach.email] and "kon niet verstuurd worden" in report["Subject"]


def test_the_team_round_form_shares_the_mailbox_limit_and_prints_no_name(make_app, smtp_server) -> None:
    """The team round's confirmation link goes to an address nobody confirmed, like the checklist's."""
    app = make_app(WTF_CSRF_ENABLED=False, **smtp_config(smtp_server.port))
    client = app.test_client()
    for address in GMAIL[:2]:
        assert client.post("/api/checklists/teams", data={"name": "An", "email": address,
                                                          "privacy": "y"}).status_code == 303
    for address in GMAIL[2:6]:
        assert client.post("/team/teams/", data={"name": PHISHING, "email": address,
                                                 "privacy": "y"}).status_code == 303
    assert len(visitor_mails(app)) == LIMITS.mails_per_address_per_day
    with app.app_context():
        outbox.deliver_due()
    [team_mail] = [m for _, m in smtp_server.messages if "teamronde" in m["Subject"]]
    text = team_mail.get_body(("plain",)).get_content()
    assert text.startswith("Dag,") and "bank" not in text


def test_a_mailbox_that_had_its_daily_mails_yesterday_gets_todays(make_app) -> None:
    """The per-address limit is a day's: three links 25 hours ago do not stop today's request, three in
    the last day do."""
    app = make_app(WTF_CSRF_ENABLED=False)
    now = utcnow()
    with app.app_context(), db.transaction() as s:
        for n, (address, ago) in enumerate([("gisteren@example.be", 25)] * 3 + [("vandaag@example.be", 23)] * 3):
            s.add(OutboxMail(kind="checklist_link", to_addr=address, mailbox=address, subject="x", headers={},
                             message_id=f"<{n}@t>", status="sent", attempts=1, sent_at=now,
                             created_at=now - dt.timedelta(hours=ago), next_attempt_at=now))
    client = app.test_client()
    for address in ("gisteren@example.be", "vandaag@example.be"):
        assert client.post("/api/checklists/teams", data={"name": "An", "email": address,
                                                          "privacy": "y"}).status_code == 303
    queued = [m.to_addr for m in visitor_mails(app) if m.status == "queued"]
    assert queued == ["gisteren@example.be"]
