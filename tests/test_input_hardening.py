"""Whatever arrives, the visitor gets a Dutch page with the right status and never a 500 or a traceback.

Size cap (413), field length caps (400), wrong methods (405), wrong body types (415), unknown
and duplicate fields, and a battery of malformed requests.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from leadform import db
from leadform.forms import issue_started
from leadform.models import ContactMessage, Download, Lead, OutboxMail
from site_config import load_settings

CHECKLIST = {"name": "Sofie Peeters", "email": "sofie@example.be", "privacy": "y"}
CONTACT = {"name": "Jan De Smet", "email": "jan@example.be", "phone": "+32 9 123 45 67",
           "subject": "teamcoaching", "message": "Kunnen we eens praten?", "privacy": "y"}
FORM_ROUTES = ["/api/checklists/teams", "/api/contact", "/download/renew"]
URLENCODED = "application/x-www-form-urlencoded"


@pytest.fixture
def started(app) -> str:
    with app.test_request_context():
        return issue_started(backdate=60)


def stored(app) -> dict[str, int]:
    with app.app_context(), db.transaction() as s:
        return {model.__name__: s.scalar(select(func.count()).select_from(model))
                for model in (Lead, Download, ContactMessage, OutboxMail)}


NOTHING = {"Lead": 0, "Download": 0, "ContactMessage": 0, "OutboxMail": 0}


def assert_dutch_page(response, status: int, *texts: str) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:500]
    assert response.mimetype == "text/html"
    assert '<html lang="nl"' in html
    for text in texts:
        assert text in html
    assert "Traceback" not in html and "Werkzeug" not in html
    return html


@pytest.fixture
def no_unhandled_errors(caplog):
    """Fails the test if the app logged an unexpected exception (what a 500 would come from)."""
    caplog.set_level(logging.DEBUG)
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage()]
    assert bad == [], [r.getMessage() for r in bad]


# -- size ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORM_ROUTES)
def test_a_body_over_the_cap_gets_a_dutch_413_and_stores_nothing(app, client, path, no_unhandled_errors) -> None:
    cap = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(path, data={**CONTACT, "message": "x" * cap})
    assert_dutch_page(response, 413, "Te veel tekst", "Maak het korter")
    assert stored(app) == NOTHING


def test_the_cap_is_enforced_on_multipart_bodies_too(app, client) -> None:
    cap = app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/api/contact", data={**CONTACT, "message": "x" * cap}, content_type="multipart/form-data")
    assert_dutch_page(response, 413, "Te veel tekst")


def test_the_longest_allowed_message_in_four_byte_characters_fits_under_the_cap(app, client, started) -> None:
    """The cap must never refuse a message the form allows: 5000 emoji are 60 kB once url-encoded."""
    longest = load_settings().limits.message_max_length
    response = client.post("/api/contact", data={**CONTACT, "message": "\N{GRINNING FACE}" * longest,
                                                  "started": started})
    assert response.status_code == 303
    assert stored(app)["ContactMessage"] == 1


# -- field length caps ---------------------------------------------------------------------------------

def _email_of_length(n: int) -> str:
    """A syntactically valid address of exactly n characters (labels of at most 63, ending in .be)."""
    local = "a" * 64
    remaining = n - len(local) - 1 - len(".be")
    labels = []
    while remaining > 0:
        take = min(63, remaining)
        if remaining - take == 1:
            take -= 1
        labels.append("d" * take)
        remaining -= take
        remaining -= 1 if remaining > 0 else 0
    address = local + "@" + ".".join(labels) + ".be"
    assert len(address) == n
    return address


# The caps as the visitor meets them, written out: a test that read them from leadform.forms would pass
# whatever they became. The message cap is site_config/site.yml's limits.message_max_length (5000).
NAME_MAX, EMAIL_MAX, PHONE_MAX, MESSAGE_MAX = 100, 254, 40, 5000
CAPS = [
    ("/api/checklists/teams", CHECKLIST, "name", "x" * NAME_MAX, "x" * (NAME_MAX + 1), "Je naam is te lang."),
    ("/api/checklists/teams", CHECKLIST, "email", _email_of_length(EMAIL_MAX), _email_of_length(EMAIL_MAX + 1),
     "Dit e-mailadres is te lang."),
    ("/api/contact", CONTACT, "name", "x" * NAME_MAX, "x" * (NAME_MAX + 1), "Je naam is te lang."),
    ("/api/contact", CONTACT, "email", _email_of_length(EMAIL_MAX), _email_of_length(EMAIL_MAX + 1),
     "Dit e-mailadres is te lang."),
    ("/api/contact", CONTACT, "phone", "1" * PHONE_MAX, "1" * (PHONE_MAX + 1), "Dit telefoonnummer is te lang."),
    ("/api/contact", CONTACT, "message", "m" * MESSAGE_MAX, "m" * (MESSAGE_MAX + 1),
     "Je bericht is te lang: hou het onder 5000 tekens."),
]


@pytest.mark.parametrize(("path", "form", "field", "longest", "too_long", "message"), CAPS,
                         ids=[f"{c[0].split('/')[2]}-{c[2]}" for c in CAPS])
def test_field_longer_than_its_cap_is_refused_in_dutch_and_the_longest_allowed_passes(
        app, client, started, path, form, field, longest, too_long, message) -> None:
    assert len(too_long) == len(longest) + 1
    response = client.post(path, data={**form, field: too_long, "started": started})
    assert_dutch_page(response, 400, message)
    assert stored(app)["Lead"] == stored(app)["ContactMessage"] == 0
    response = client.post(path, data={**form, field: longest, "started": started})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]


def test_the_message_cap_comes_from_site_config() -> None:
    site_yml = (Path(__file__).resolve().parent.parent / "site_config" / "site.yml").read_text(encoding="utf-8")
    assert re.search(r"^  message_max_length: 5000$", site_yml, re.MULTILINE)
    assert load_settings().limits.message_max_length == MESSAGE_MAX


# -- methods -------------------------------------------------------------------------------------------

ONLY_POST = ["/api/checklists/teams", "/api/contact", "/api/consent"]


def test_get_on_the_renew_route_is_a_download_link_that_does_not_work(client) -> None:
    """GET /download/renew is GET /download/<token> with the token 'renew': a Dutch 404, not a 405."""
    assert_dutch_page(client.get("/download/renew"), 404, "Deze link werkt niet")
    assert client.head("/download/renew").status_code == 404


@pytest.mark.parametrize("path", ONLY_POST)
def test_get_on_a_post_route_is_405_with_a_dutch_page_or_json(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"]
    if path == "/api/consent":
        assert response.get_json() == {"error": 405}
    else:
        assert_dutch_page(response, 405, "Dat kan zo niet", "alleen om een formulier te versturen")


@pytest.mark.parametrize("path", ONLY_POST)
def test_head_on_a_post_route_is_405_without_a_body(client, path) -> None:
    response = client.head(path)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.data == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/download/some-token", "/api/csrf"])
def test_writing_to_a_get_route_is_405(client, method, path) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"].startswith(("GET", "HEAD", "OPTIONS")) and "GET" in response.headers["Allow"]
    assert "Traceback" not in response.get_data(as_text=True)


# -- what the body holds -------------------------------------------------------------------------------

def test_unknown_fields_are_ignored_and_cannot_set_stored_columns(app, client) -> None:
    extra = {"id": "999", "confirmed_at": "2020-01-01", "request_count": "50", "newsletter_consent_at": "2020-01-01",
             "email_verified": "1", "admin": "true", "checklist": "leiderschap", "__class__": "x"}
    response = client.post("/api/checklists/teams", data={**CHECKLIST, **extra})
    assert response.status_code == 303
    with app.app_context(), db.transaction() as s:
        lead = s.scalars(select(Lead)).one()
        assert (lead.id, lead.checklist, lead.request_count) == (1, "teams", 1)
        assert lead.confirmed_at is None and lead.newsletter_consent_at is None


def test_unknown_fields_in_the_contact_form_are_ignored(app, client, started) -> None:
    response = client.post("/api/contact", data={**CONTACT, "started": started, "bcc": "x@example.org",
                                                  "to": "y@example.org", "cc": "z@example.org"})
    assert response.status_code == 303
    with app.app_context(), db.transaction() as s:
        recipients = {m.to_addr for m in s.scalars(select(OutboxMail))}
    assert recipients == {load_settings().coach.email, "jan@example.be"}


def test_duplicate_parameters_take_the_first_value(app, client, started) -> None:
    body = ("name=Eerste&name=Tweede&email=eerste%40example.be&email=tweede%40example.be"
            "&privacy=y&privacy=n&newsletter=&newsletter=y")
    assert client.post("/api/checklists/teams", data=body, content_type=URLENCODED).status_code == 303
    with app.app_context(), db.transaction() as s:
        lead = s.scalars(select(Lead)).one()
    assert (lead.name, lead.email) == ("Eerste", "eerste@example.be")

    body = ("name=Jan&email=jan%40example.be&subject=andere&subject=teamcoaching&message=een&message=twee"
            f"&privacy=y&started={started}&started=forged")
    assert client.post("/api/contact", data=body, content_type=URLENCODED).status_code == 303
    with app.app_context(), db.transaction() as s:
        message = s.scalars(select(ContactMessage)).one()
    assert (message.subject, message.message) == ("andere", "een")


@pytest.mark.parametrize("path", FORM_ROUTES)
@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"name": {"a": 1}, "email": 5, "privacy": true}'),
    ("application/json", b"[1, 2, 3]"),
    ("text/plain", b"name=Sofie\r\nemail=sofie@example.be"),
    ("application/xml", b"<form><name>Sofie</name></form>"),
])
def test_a_body_that_is_not_a_form_gets_a_dutch_415(app, client, path, content_type, body,
                                                     no_unhandled_errors) -> None:
    response = client.post(path, data=body, content_type=content_type)
    assert_dutch_page(response, 415, "Dit formulier kon niet gelezen worden")
    assert stored(app) == NOTHING


@pytest.mark.parametrize("field", ["name", "email", "privacy"])
def test_a_file_where_a_checklist_field_belongs_is_ignored(app, client, field, no_unhandled_errors) -> None:
    data = {**CHECKLIST, field: (io.BytesIO(b"%PDF-1.4 junk"), "cv.pdf")}
    response = client.post("/api/checklists/teams", data=data, content_type="multipart/form-data")
    assert_dutch_page(response, 400, "Vraag de")
    assert stored(app) == NOTHING


@pytest.mark.parametrize("field", ["name", "email", "phone", "message", "subject", "started", "website"])
def test_a_file_where_a_contact_field_belongs_never_breaks_the_page(app, client, started, field,
                                                                    no_unhandled_errors) -> None:
    data = {**CONTACT, "started": started, field: (io.BytesIO(b"junk"), "junk.txt")}
    response = client.post("/api/contact", data=data, content_type="multipart/form-data")
    assert response.status_code in (303, 400)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_file_under_an_unknown_name_is_ignored(app, client) -> None:
    data = {**CHECKLIST, "attachment": (io.BytesIO(b"junk"), "junk.txt")}
    assert client.post("/api/checklists/teams", data=data, content_type="multipart/form-data").status_code == 303


ODD_REQUESTS = [
    ("invalid-utf8", "POST", "/api/checklists/teams", {"data": b"name=\xff\xfe&email=a%40example.be&privacy=y",
                                                       "content_type": URLENCODED}),
    ("invalid-utf8-escaped", "POST", "/api/contact", {"data": b"name=%ff%fe&message=%c3%28&email=a%40b.be",
                                                      "content_type": URLENCODED}),
    ("bad-percent", "POST", "/api/checklists/teams", {"data": b"name=%zz%&email=%%40&privacy=%",
                                                      "content_type": URLENCODED}),
    ("nul-bytes", "POST", "/api/contact", {"data": {k: "\x00" for k in (*CONTACT, "started", "website")}}),
    ("only-separators", "POST", "/api/checklists/teams", {"data": b"&&&===&=&", "content_type": URLENCODED}),
    ("no-content-type", "POST", "/api/contact", {"data": b"name=Jan"}),
    ("broken-multipart", "POST", "/api/checklists/teams", {"data": b"--xx\r\ngarbage",
                                                           "content_type": "multipart/form-data; boundary=xx"}),
    ("multipart-no-boundary", "POST", "/api/contact", {"data": b"garbage", "content_type": "multipart/form-data"}),
    ("too-many-parts", "POST", "/api/contact", {"data": {f"f{i}": "1" for i in range(1500)},
                                                "content_type": "multipart/form-data"}),
    ("many-urlencoded-fields", "POST", "/api/checklists/teams", {
        "data": "&".join(f"f{i}=1" for i in range(3000)), "content_type": URLENCODED}),
    ("gzip-claimed", "POST", "/api/checklists/teams", {"data": b"\x1f\x8bjunk", "content_type": URLENCODED,
                                                       "headers": {"Content-Encoding": "gzip"}}),
    ("utf16-charset", "POST", "/api/checklists/teams", {"data": b"name=A",
                                                        "content_type": URLENCODED + "; charset=utf-16"}),
    ("long-slug", "POST", "/api/checklists/" + "a" * 5000, {"data": CHECKLIST}),
    ("slug-traversal", "POST", "/api/checklists/..%2F..%2Fetc%2Fpasswd", {"data": CHECKLIST}),
    ("long-token", "GET", "/download/" + "a" * 8000, {}),
    ("odd-token", "GET", "/download/%F0%9F%98%80%00%0d%0a<script>", {}),
    ("renew-long-token", "POST", "/download/renew", {"data": {"token": "x." * 5000}}),
    ("renew-no-token", "POST", "/download/renew", {}),
    ("query-junk", "POST", "/api/contact?email=a@b.be&%zz=%&name[]=x", {"data": CONTACT}),
    ("csrf-junk-header", "GET", "/api/csrf", {"headers": {"Cookie": "session=%%%; session=\x7f"}}),
    ("accept-json", "POST", "/api/checklists/teams", {"data": {"name": ""}, "headers": {"Accept": "application/json"}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), [r[1:] for r in ODD_REQUESTS], ids=[r[0] for r in ODD_REQUESTS])
def test_odd_requests_never_get_a_500_or_a_traceback(client, method, path, kwargs, no_unhandled_errors) -> None:
    response = client.open(path, method=method, **kwargs)
    body = response.get_data(as_text=True)
    assert 200 <= response.status_code < 500, (response.status_code, body[:300])
    assert "Traceback" not in body and 'File "' not in body


def test_odd_requests_with_csrf_on_never_get_a_500(make_app, no_unhandled_errors) -> None:
    client = make_app().test_client()
    for _, method, path, kwargs in ODD_REQUESTS:
        response = client.open(path, method=method, **kwargs)
        assert 200 <= response.status_code < 500, (path, response.status_code)
        assert "Traceback" not in response.get_data(as_text=True)


# -- a POST without Content-Type -------------------------------------------------------------------------
# A form post without the header (a script, a broken proxy): its body cannot be read as a form, so the
# visitor gets the form back with "fill in your name" (the body is not guessed at), or for the renew
# route the page for a link that does not work. The JSON endpoints answer 415 (tests/test_consent.py).

@pytest.mark.parametrize(("path", "status", "texts"), [
    ("/api/checklists/teams", 400, ["Vraag de", "Vul je naam in.", "Vul je e-mailadres in."]),
    ("/api/contact", 400, ["Stuur een bericht", "Vul je naam in.", "Schrijf je bericht."]),
    ("/download/renew", 404, ["Deze link werkt niet"]),
], ids=["checklist", "contact", "renew"])
def test_a_form_post_without_content_type_is_answered_as_an_empty_form(app, client, started, path, status, texts,
                                                                      no_unhandled_errors) -> None:
    body = "&".join(f"{k}={v}" for k, v in {**CONTACT, "email": "jan%40example.be", "started": started,
                                            "token": "x"}.items())
    response = client.post(path, data=body.encode())
    assert "Content-Type" not in response.request.headers
    html = assert_dutch_page(response, status, *texts)
    assert "Jan De Smet" not in html, "nothing was read from the body"
    assert stored(app) == NOTHING
