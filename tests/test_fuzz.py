"""Hypothesis over every form and the consent payload: never a 500, and what a visitor typed comes
out escaped in every output — the re-rendered form page, both parts of every mail, the CSV export
and the coach's terminal.

The default profile runs FUZZ_EXAMPLES (60) cases per route; `HYPOTHESIS_PROFILE=full` runs
1,000 per route:

    HYPOTHESIS_PROFILE=full .venv/bin/pytest tests/test_fuzz.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from email import message_from_bytes
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from support.published import STUB_BANNER_HASH
from werkzeug.datastructures import MultiDict

from leadform import db, outbox
from leadform.cli import FORMULA_START, safe_cell
from leadform.forms import SUBJECTS, issue_started
from leadform.models import ConsentRecord, ContactMessage, Download, Lead, OutboxMail
from site_config import load_settings

# The default profile is derandomized: the same cases on every CI run, so a red build means a change broke
# something, never a lucky draw. The full profile explores new cases each time.
settings.register_profile("leadform-fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                          derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("leadform-fuzz-full", settings.get_profile("leadform-fuzz"), max_examples=1000,
                          derandomize=False)
FULL = os.environ.get("HYPOTHESIS_PROFILE") == "full"
FUZZ = settings.get_profile("leadform-fuzz-full" if FULL else "leadform-fuzz")
REPORT = Path(__file__).resolve().parent.parent / "test-artifacts" / f"fuzz-cases{'-full' if FULL else ''}.json"

# What attackers try: markup, template syntax for Jinja and others, header and CSV injection, terminal escapes.
PAYLOADS = [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>",
    "<iframe src=javascript:alert(1)>", "javascript:alert(1)", "</textarea><script>alert(1)</script>",
    '" autofocus onfocus="alert(1)', "{{7*7}}", "{{ config }}", "{% for x in range(3) %}x{% endfor %}",
    "{% raw %}", "{#", "${7*7}", "#{7*7}", "<%= 7*7 %>", "\r\nBcc: victim@example.org", "\nSubject: gewonnen",
    "%0d%0aBcc:x@example.org", "=HYPERLINK(\"http://example.org\",\"klik\")", "+cmd|' /C calc'!A0", "-2+3",
    "@SUM(1+1)", "\t=1+1", "\r=1+1", "\x1b[2J\x1b]0;pwned\x07", "\x9b31m", "\x08\x08\x08", "\u202eevil",
    "&amp;&lt;&#x3c;", "<!--", "]]>", "\x00", "' OR 1=1 --", "Robert'); DROP TABLE leads;--",
]
payload = st.sampled_from(PAYLOADS)
short_text = st.text(max_size=30)
mixed = st.lists(st.one_of(payload, short_text, st.sampled_from(["Jan", "Sofie", " ", "\n"])), max_size=5).map("".join)
field_text = st.one_of(payload, mixed, st.text(max_size=120))
# Addresses email-validator accepts can still carry template syntax and formula starts in their local part.
atext_local = st.from_regex(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}", fullmatch=True)
risky_local = st.sampled_from(["{{7*7}}", "{%x%}", "=1+1", "+31", "-x", "a'b", "x{{config}}", "%0d", "_|_"])
email = st.one_of(
    st.builds(lambda local, n: f"{local}{n}@example.be", st.one_of(risky_local, atext_local), st.integers(0, 999)),
    st.emails(),
    field_text,
    st.builds(lambda e, p: e + p, st.emails(), payload),
)
unknown_field = st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=12).filter(
    lambda k: k not in {"name", "email", "phone", "subject", "message", "privacy", "newsletter", "website",
                        "started", "csrf_token"})
# Values the form accepts, each carrying an attack, so most cases get through validation to the mails and
# exports; and anything at all, so the refusal path is fuzzed too.
printable_payload = st.sampled_from([p for p in PAYLOADS if not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in p)])
typed = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
NAME_LIKE = st.builds(lambda a, p, t: f"{a} {p}{t}"[:100], st.sampled_from(["Jan", "An", "Ελένη"]),
                      printable_payload, typed)


def _pairs(fields: dict, extras: list, duplicates: list) -> list[tuple[str, str]]:
    """The body as (field, value) pairs in order: known fields, unknown ones, then repeated ones."""
    pairs = [(k, v) for k, v in fields.items() if v is not None]
    pairs += extras
    pairs += [(k, v) for k, v in duplicates if k in fields]
    return pairs


def usually(good: st.SearchStrategy, times: int, other: st.SearchStrategy) -> st.SearchStrategy:
    """`good` about times in times+1 cases, else `other` (one_of alone leans towards its simplest branch)."""
    return st.integers(0, times).flatmap(lambda i: other if i == times // 2 else good)


checklist_forms = st.builds(
    lambda name, mail, privacy, newsletter, extras, dups: (
        _pairs({"name": name, "email": mail, "privacy": privacy, "newsletter": newsletter}, extras, dups)),
    name=usually(NAME_LIKE, 3, field_text),
    mail=usually(email_ok := st.builds(lambda local, n: f"{local}{n}@example.be",
                                       st.one_of(risky_local, atext_local), st.integers(0, 999)), 3, email),
    privacy=usually(st.just("y"), 8, st.one_of(st.none(), field_text)),
    newsletter=st.one_of(st.none(), st.just("y"), field_text),
    extras=st.lists(st.tuples(unknown_field, field_text), max_size=3),
    dups=st.lists(st.tuples(st.sampled_from(["name", "email", "privacy"]), field_text), max_size=1),
)
contact_forms = st.builds(
    lambda name, mail, phone, subject, message, privacy, website, started, extras, dups: (
        _pairs({"name": name, "email": mail, "phone": phone, "subject": subject, "message": message,
                "privacy": privacy, "website": website, "started": started}, extras, dups)),
    name=usually(NAME_LIKE, 6, field_text), mail=usually(email_ok, 6, email),
    phone=st.one_of(st.none(), st.just("+32 9 123 45 67"), st.from_regex(r"[0-9+()./ -]{0,45}", fullmatch=True),
                    field_text),
    subject=usually(st.sampled_from(sorted(SUBJECTS)), 8, field_text),
    message=usually(st.lists(st.one_of(payload, st.text(max_size=200)), min_size=1, max_size=20).map(
        lambda parts: "Dag,\n" + "\n".join(parts)), 4,
        st.one_of(st.text(min_size=4990, max_size=5010, alphabet="ab<>\"'&{}%\n"), field_text)),
    privacy=usually(st.just("y"), 8, st.one_of(st.none(), field_text)),
    website=usually(st.none(), 8, field_text),
    started=usually(st.just("VALID"), 8, st.one_of(st.none(), field_text)),
    extras=st.lists(st.tuples(unknown_field, field_text), max_size=3),
    dups=st.lists(st.tuples(st.sampled_from(["name", "email", "message", "subject"]), field_text), max_size=1),
)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | field_text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(field_text, inner, max_size=3),
                           max_leaves=8)


# -- reading outputs -----------------------------------------------------------------------------------

class Markup(HTMLParser):
    """What an injection would add to a page: event-handler attributes and active or embedding elements."""

    ACTIVE = {"script", "img", "svg", "iframe", "object", "embed", "base", "math", "frame", "link", "meta", "style"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.handlers: list[str] = []
        self.active: dict[str, int] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]
        self.handlers += [f"{tag} {name}" for name, value in attrs
                          if name in ("href", "src", "action")
                          and (value or "").strip().lower().startswith("javascript:")]
        if tag in self.ACTIVE:
            self.active[tag] = self.active.get(tag, 0) + 1


def assert_no_injected_markup(html: str, baseline: Markup, where: str) -> None:
    seen = Markup(html)
    assert seen.handlers == [], f"{where}: injected handler {seen.handlers}"
    assert seen.active == baseline.active, f"{where}: elements changed from {baseline.active} to {seen.active}"


class FormValues(HTMLParser):
    """The values a browser would show in the form's fields, and all text a reader would see."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self.text: list[str] = []
        self._textarea: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("type") not in ("checkbox", "hidden"):
            self.values.setdefault(a["name"], a.get("value") or "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.values[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._textarea:
            self.values[self._textarea] += data


def shown_in_form(html: str, expected: dict[str, str], where: str) -> None:
    """Each field shows exactly what was typed (after the form's own strip/lower), as text, never as markup."""
    values = FormValues(html).values
    for field, value in expected.items():
        shown = values.get(field)
        if shown is not None and field == "message":
            shown = shown.removeprefix("\r\n").removeprefix("\n")  # WTForms starts a textarea on a new line
        assert shown == value, f"{where}: field {field} shows {shown!r}, typed {value!r}"


def shown_as_text(html: str, value: str, where: str) -> None:
    text = lines("".join(FormValues(html).text))
    assert lines(value) in text, f"{where}: {value!r} is not shown as text"


def lines(text: str) -> str:
    """Mail transport turns every kind of line break into one; compare text modulo that."""
    return "\n".join(text.splitlines())


LINK = re.compile(r"^http://site\.test/download/(\S+)$", re.MULTILINE)  # the link's own line, not a name
TERMINAL_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAIL_HEADERS = {"from", "to", "subject", "message-id", "date", "mime-version", "content-type",
                "content-transfer-encoding", "reply-to", "list-unsubscribe"}


def delivered_mails(app) -> list:
    """Deliver the outbox with the file backend and read back each .eml as a mail program would."""
    with app.app_context():
        counts = outbox.deliver_due(limit=100)
    assert counts["failed"] == 0 and counts["retry"] == 0, counts
    folder = Path(app.config["MAIL_DIR"])
    mails = []
    for path in sorted(folder.glob("*.eml")):
        mails.append(message_from_bytes(path.read_bytes(), policy=default_policy))
        path.unlink()
    return mails


def check_mail(mail, to: str, texts: list[str], html_texts: list[str], where: str,
               baseline: Markup | None = None) -> None:
    names = {k.lower() for k in mail}
    assert names <= MAIL_HEADERS, f"{where}: unexpected headers {names - MAIL_HEADERS}"
    assert mail["To"] == to and mail.get_all("To") == [to]
    assert "bcc" not in names and "cc" not in names
    assert "\n" not in mail["Subject"] and "victim" not in mail["Subject"]
    plain = mail.get_body(("plain",)).get_content()
    for text in texts:
        assert lines(text) in lines(plain), f"{where}: {text!r} not verbatim in the text part"
    html_part = mail.get_body(("html",))
    if html_part is not None:
        html = html_part.get_content()
        assert_no_injected_markup(html, baseline or Markup(""), f"{where} (html)")
        for text in html_texts:
            shown_as_text(html, text, f"{where} (html)")


def csv_rows(app, group: str) -> list[list[str]]:
    result = app.test_cli_runner().invoke(args=[group, "export", "--format", "csv"])
    assert result.exit_code == 0, result.output
    # The bytes as written: click's `output` turns CR LF into LF, which a CR LF inside a quoted cell keeps.
    return list(csv.reader(io.StringIO(result.stdout_bytes.decode("utf-8-sig"), newline=""), delimiter=";"))


def check_csv(rows: list[list[str]], expected: dict[str, object], where: str) -> None:
    header, *body = rows
    assert len(body) == 1, f"{where}: one record must stay one CSV row, got {len(body)}"
    row = dict(zip(header, body[0], strict=True))
    for cell in body[0]:
        assert not cell.startswith(FORMULA_START), f"{where}: {cell!r} would run as a formula"
    for column, value in expected.items():
        assert row[column] == safe_cell(value), f"{where}: {column} {row[column]!r} != {value!r}"


def check_terminal(app, args: list[str], where: str) -> str:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    unsafe = TERMINAL_UNSAFE.findall(result.output)
    assert unsafe == [], f"{where}: control characters {unsafe!r} reach the coach's terminal"
    return result.output


def clear(app) -> None:
    with app.app_context(), db.transaction() as s:
        for model in (Download, OutboxMail, Lead, ContactMessage):
            s.execute(delete(model))


def record(route: str, cases: int, statuses: dict[int, int]) -> None:
    """Write how many cases ran per route (and their answers) to test-artifacts/fuzz-cases[-full].json."""
    REPORT.parent.mkdir(exist_ok=True)
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data[route] = {"cases": cases, "statuses": {str(k): v for k, v in sorted(statuses.items())},
                   "profile": "full" if FULL else "default"}
    REPORT.write_text(json.dumps(data, indent=2))


@pytest.fixture
def fuzz_app(make_app):
    app = make_app(WTF_CSRF_ENABLED=False)
    with app.test_request_context():
        app.config["FUZZ_STARTED"] = issue_started(backdate=60)
    return app


def baseline(client, path: str, data: dict) -> Markup:
    response = client.post(path, data=data)
    assert response.status_code == 400
    return Markup(response.get_data(as_text=True))


# -- the checklist form --------------------------------------------------------------------------------

def post_form(client, url: str, form: MultiDict, statuses: dict[int, int]):
    """POST one fuzzed form: a redirect or a Dutch form page, never a 500 or a traceback."""
    response = client.post(url, data=form)
    html = response.get_data(as_text=True)
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert response.status_code in (303, 400), (response.status_code, html[:300])
    assert "Traceback" not in html
    return response, html


def test_fuzz_checklist_form(fuzz_app) -> None:
    app, client = fuzz_app, fuzz_app.test_client()
    page_baseline = baseline(client, "/api/checklists/teams", {"name": "Jan"})
    client.post("/api/checklists/teams", data={"name": "Jan", "email": "jan@example.be", "privacy": "y"})
    mail_baseline = Markup(delivered_mails(app)[0].get_body(("html",)).get_content())
    slugs = load_settings().checklist_slugs
    cases = []
    statuses: dict[int, int] = {}

    @FUZZ
    @given(pairs=checklist_forms, slug=st.sampled_from(slugs))
    def run(pairs: list[tuple[str, str]], slug: str) -> None:
        cases.append(1)
        form = MultiDict(pairs)
        clear(app)
        response, html = post_form(client, f"/api/checklists/{slug}", form, statuses)
        name = (form.get("name") or "").strip()
        address = (form.get("email") or "").strip().lower()
        if response.status_code == 400:
            assert_no_injected_markup(html, page_baseline, "form page")
            shown_in_form(html, {"name": name, "email": address}, "form page")
            with app.app_context(), db.transaction() as s:
                assert s.scalars(select(Lead)).first() is None
            return

        with app.app_context(), db.transaction() as s:
            lead = s.scalars(select(Lead)).one()
            assert (lead.name, lead.email) == (name, address), "stored verbatim"
        (link_mail,) = delivered_mails(app)
        # No free text in mail to an address nobody confirmed: the name goes to the coach only.
        check_mail(link_mail, address, ["Dag,"], [], "checklist link mail", mail_baseline)
        token = LINK.search(link_mail.get_body(("plain",)).get_content()).group(1)
        assert client.get(f"/download/{token}").status_code == 200
        (coach_mail,) = delivered_mails(app)
        check_mail(coach_mail, load_settings().coach.email, [f"Naam: {name}", f"E-mail: {address}"], [],
                   "coach notification")
        check_csv(csv_rows(app, "leads"), {"naam": name, "e-mailadres": address, "checklist": slug}, "leads csv")
        check_terminal(app, ["leads", "list"], "leads list")

    run()
    record("POST /api/checklists/{slug}", len(cases), statuses)
    assert len(cases) >= FUZZ.max_examples
    assert statuses.get(303) and statuses.get(400), f"both outcomes must be exercised: {statuses}"


# -- the contact form ----------------------------------------------------------------------------------

def test_fuzz_contact_form(fuzz_app) -> None:
    app, client = fuzz_app, fuzz_app.test_client()
    page_baseline = baseline(client, "/api/contact", {"name": "Jan"})
    coach = load_settings().coach.email
    client.post("/api/contact", data={"name": "Jan", "email": "jan@example.be", "subject": "andere", "message": "Dag",
                                      "privacy": "y", "started": app.config["FUZZ_STARTED"]})
    mail_baselines = {m["To"]: Markup(m.get_body(("html",)).get_content()) for m in delivered_mails(app)}
    cases = []
    statuses: dict[int, int] = {}

    @FUZZ
    @given(pairs=contact_forms)
    def run(pairs: list[tuple[str, str]]) -> None:
        cases.append(1)
        form = MultiDict(pairs)
        clear(app)
        if form.get("started") == "VALID":
            form.setlist("started", [app.config["FUZZ_STARTED"]])
        response, html = post_form(client, "/api/contact", form, statuses)
        name = (form.get("name") or "").strip()
        address = (form.get("email") or "").strip().lower()
        phone = (form.get("phone") or "").strip()
        message = (form.get("message") or "").strip()
        if response.status_code == 400:
            assert_no_injected_markup(html, page_baseline, "form page")
            shown_in_form(html, {"name": name, "email": address, "phone": phone, "message": message}, "form page")
            return
        with app.app_context(), db.transaction() as s:
            stored = s.scalars(select(ContactMessage)).all()
        if form.get("website"):
            assert stored == [], "a bot's message is never stored"
            return
        (row,) = stored
        assert (row.name, row.email, row.phone or "", row.message) == (name, address, phone, message)
        mails = {m["To"]: m for m in delivered_mails(app)}
        assert set(mails) == {coach, address}
        check_mail(mails[coach], coach, [f"Naam: {name}", f"E-mail: {address}", message],
                   [name, address, phone, message], "mail to the coach", mail_baselines[coach])
        assert mails[coach]["Reply-To"] == address
        check_mail(mails[address], address, ["Dag,"], [], "confirmation mail", mail_baselines["jan@example.be"])
        check_csv(csv_rows(app, "messages"), {"naam": name, "e-mailadres": address, "telefoon": phone or None,
                                               "bericht": message}, "messages csv")
        check_terminal(app, ["messages", "list"], "messages list")

    run()
    record("POST /api/contact", len(cases), statuses)
    assert len(cases) >= FUZZ.max_examples
    assert statuses.get(303) and statuses.get(400), f"both outcomes must be exercised: {statuses}"


# -- the consent payload (JSON) ------------------------------------------------------------------------

def consistent_choice(consent, allowed: dict[str, bool], how: int) -> dict:
    """A choice the banner can send: button and event agree with the choices."""
    values = list(allowed.values())
    button = "accept_all" if all(values) and how % 2 else "reject_all" if not any(values) and how % 2 else "save"
    events = [e for e, ok in (("given", any(values)), ("updated", any(values)), ("refused", not any(values)),
                              ("withdrawn", not all(values))) if ok]
    return {"event": events[how % len(events)], "button": button, "policy_version": consent.policy_version,
            "choices": {**{c: True for c in consent.category_ids if c not in consent.optional_ids}, **allowed}}


def consent_payloads():
    consent = load_settings().consent
    # The banner hash the app's (stand-in) build published; any other is refused like a broken field.
    valid = st.builds(lambda allowed, how: {**consistent_choice(consent, allowed, how),
                                            "banner_hash": STUB_BANNER_HASH},
                      st.fixed_dictionaries({c: st.booleans() for c in consent.optional_ids}), st.integers(0, 7))
    broken = st.builds(lambda base, key, value: {**base, key: value}, valid,
                       st.sampled_from(["event", "choices", "button", "policy_version", "banner_hash", "extra"]),
                       st.one_of(json_values, payload))
    return st.one_of(valid, valid, broken, st.dictionaries(field_text, json_values, max_size=6), json_values)


def consent_records(app) -> list[ConsentRecord]:
    with app.app_context(), db.transaction() as s:
        return list(s.scalars(select(ConsentRecord)))


def test_fuzz_consent_payload(fuzz_app) -> None:
    app, client = fuzz_app, fuzz_app.test_client()
    cases = []
    statuses: dict[int, int] = {}

    @FUZZ
    @given(payload=consent_payloads(), raw=st.one_of(st.none(), st.none(), st.binary(max_size=300)))
    def run(payload: object, raw: bytes | None) -> None:
        cases.append(1)
        with app.app_context(), db.transaction() as s:
            s.execute(delete(ConsentRecord))
        body = raw if raw is not None else json.dumps(payload)
        response = client.post("/api/consent", data=body, content_type="application/json")
        text = response.get_data(as_text=True)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (201, 400), text[:300]
        assert response.mimetype == "application/json" and "Traceback" not in text
        records = consent_records(app)
        if response.status_code == 400:
            assert records == [] and response.get_json() == {"error": 400}
            return
        (stored,) = records
        assert stored.id == response.get_json()["id"]
        sent = json.loads(body)
        assert (stored.event, stored.choices, stored.button, stored.policy_version, stored.banner_hash) == (
            sent["event"], sent["choices"], sent["button"], sent["policy_version"], sent["banner_hash"])
        result = app.test_cli_runner().invoke(args=["consent", "proof", stored.subject_id])
        assert result.exit_code == 0, result.output
        (proof,) = json.loads(result.output)["records"]
        assert proof["choices"] == sent["choices"] and proof["banner_hash"] == sent["banner_hash"]

    run()
    record("POST /api/consent", len(cases), statuses)
    assert len(cases) >= FUZZ.max_examples
    assert statuses.get(201) and statuses.get(400), f"both outcomes must be exercised: {statuses}"
