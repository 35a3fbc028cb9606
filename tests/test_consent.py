"""Cookie consent without a browser: the proof endpoint, the page counter, the coach's commands,
the build checks on the banner and the scripts, and the banner in the built site."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import PUBLIC_HTTPS, ROOT, mkdocs_build
from markupsafe import Markup
from sqlalchemy import func, inspect, select
from support.html import parse

from leadform import db
from leadform.consent import SUBJECT_COOKIE, example_payload
from leadform.models import ConsentRecord, PageView, utcnow
from site_config import fingerprint, load_settings
from site_config.checks import allowed_inline_scripts, check_consent, template_script_pattern
from site_config.published import write_published

CONSENT = load_settings().consent
UA = "Mozilla/5.0 (X11; Linux x86_64) ConsentTest/1.0"


def records(app) -> list[ConsentRecord]:
    with app.app_context(), db.transaction() as s:
        return list(s.scalars(select(ConsentRecord).order_by(ConsentRecord.created_at, ConsentRecord.id)))


def post(client, payload: object, **headers: str):
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post("/api/consent", data=body, content_type="application/json", headers=headers)


# -- POST /api/consent ----------------------------------------------------------------------------------------

def test_a_choice_is_stored_with_everything_the_proof_needs_and_nothing_more(make_app) -> None:
    app = make_app(SITE_BUILD="build-2026-11-27")
    client = app.test_client()
    payload = example_payload()
    unseen = fingerprint("een tekst die de site nooit toonde")
    assert post(client, {**payload, "banner_hash": unseen}).status_code == 400
    before = utcnow()
    response = post(client, payload, **{"User-Agent": UA, "Referer": "http://localhost/blog/"})
    assert response.status_code == 201
    [record] = records(app)
    assert response.get_json()["id"] == record.id
    assert re.fullmatch(r"[0-9a-f]{32}", record.id) and re.fullmatch(r"[0-9a-f]{32}", record.subject_id)
    assert record.event == "given" and record.button == "accept_all"
    assert record.choices == {cid: True for cid in CONSENT.category_ids}
    assert record.policy_version == CONSENT.policy_version
    assert record.banner_hash == payload["banner_hash"]
    assert record.site_build == "build-2026-11-27"
    assert before <= record.created_at <= utcnow()
    assert record.expires_at - record.created_at == dt.timedelta(days=CONSENT.max_age_days)

    # No IP address, no user agent, no URL: not as a column, not inside a value.
    columns = {c.name for c in inspect(ConsentRecord).columns}
    assert columns == {"id", "subject_id", "event", "created_at", "choices", "button", "policy_version",
                       "banner_hash", "expires_at", "site_build", "email"}
    stored = json.dumps({c: str(getattr(record, c)) for c in columns})
    for leak in ("127.0.0.1", "ConsentTest", "/blog/", "localhost"):
        assert leak not in stored


def test_the_subject_cookie_is_signed_scoped_to_the_endpoint_and_kept_while_something_is_allowed(client, app) -> None:
    first = post(client, example_payload())
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{SUBJECT_COOKIE}=")
    assert f"Max-Age={CONSENT.max_age_days * 86400}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/consent" in cookie
    assert "Secure" not in cookie
    [given] = records(app)
    value = cookie.split(";")[0].split("=", 1)[1]
    assert value.startswith(given.subject_id + "."), "the id and the server's signature"

    refusal = {**example_payload(), "event": "withdrawn", "button": "reject_all",
               "choices": {cid: cid == "necessary" for cid in CONSENT.category_ids}}
    response = post(client, refusal)
    assert response.status_code == 201
    assert "Max-Age=0" in response.headers["Set-Cookie"], "nothing allowed: the browser keeps no id"
    given, withdrawn = records(app)
    assert given.subject_id == withdrawn.subject_id and given.id != withdrawn.id
    assert (given.event, withdrawn.event) == ("given", "withdrawn")
    assert given.choices["analytics"] is True  # append-only: the first record is unchanged


def test_the_subject_cookie_is_secure_over_https(make_app) -> None:
    client = make_app(**PUBLIC_HTTPS).test_client()
    response = post(client, example_payload())
    assert "Secure" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("forged", ["../../etc/passwd", "a" * 32 + ".bm90LXNpZ25lZA", "a" * 32 + "."])
def test_a_subject_cookie_the_server_did_not_sign_is_refused(client, app, forged: str) -> None:
    client.set_cookie(SUBJECT_COOKIE, forged, path="/api/consent")
    assert post(client, example_payload()).status_code == 400
    assert records(app) == []


def test_an_unsigned_id_from_before_is_never_used_and_its_site_wide_cookie_removed(client, app) -> None:
    client.set_cookie(SUBJECT_COOKIE, "a" * 32)  # Path=/, as the app set it before ids were signed
    response = post(client, example_payload())
    assert response.status_code == 201
    [record] = records(app)
    assert record.subject_id != "a" * 32
    assert any("Path=/;" in c and "Max-Age=0" in c for c in response.headers.getlist("Set-Cookie"))


# A cookie as this app issued it under KEY (the id, ".", the signature); written out literally because
# it stands for one already in a visitor's browser, which the next deploy must still recognise.
KEY = "test-" + "0" * 40
ISSUED_ID = "4f1c2b7a9e0d3c5b8a6f7e1d2c3b4a59"
ISSUED_COOKIE = ISSUED_ID + ".NCaPeUhGBJZt5_cSvNtGDjdWqZ8"


def test_a_subject_cookie_issued_before_a_deploy_still_holds_so_a_withdrawal_joins_the_earlier_records(
        make_app) -> None:
    """The cookie lives for months: were its signature made differently after an upgrade, every visitor's
    withdrawal would be refused as forged."""
    app = make_app(SECRET_KEY=KEY)
    client = app.test_client()
    client.set_cookie(SUBJECT_COOKIE, ISSUED_COOKIE, path="/api/consent")
    withdrawal = {**example_payload(), "event": "withdrawn", "button": "reject_all", "choices": _choices()}
    assert post(client, withdrawal).status_code == 201
    [record] = records(app)
    assert record.subject_id == ISSUED_ID


def test_a_signed_value_that_holds_no_id_of_the_servers_form_is_refused(make_app, caplog) -> None:
    """Only ids the server itself issues (32 lowercase hex) end up in the proof, even under a valid signature."""
    caplog.set_level("INFO", logger="leadform.consent")
    app = make_app(SECRET_KEY=KEY)
    client = app.test_client()
    client.set_cookie(SUBJECT_COOKIE, "4F1C2B7A9E0D3C5B8A6F7E1D2C3B4A59.H6_h9m-3V1dWQBbHJk-ZiUsp1w0",
                      path="/api/consent")
    assert post(client, example_payload()).status_code == 400
    assert records(app) == []
    assert [r.getMessage() for r in caplog.records if r.name == "leadform.consent"] == [
        "consent payload rejected reason=subject not signed by this server"]


def _choices(**values: bool) -> dict[str, bool]:
    return {"necessary": True, "analytics": False, **values}


@pytest.mark.parametrize("change", [
    {"choices": {**_choices(), "marketing": True}},                        # unknown category
    {"choices": {"necessary": True}},                                      # a category missing
    {"choices": _choices(necessary=False)},                                # necessary refused
    {"choices": {"necessary": True, "analytics": "yes"}},                  # not a boolean
    {"policy_version": CONSENT.policy_version + 1},                        # wrong version
    {"policy_version": str(CONSENT.policy_version)},
    {"policy_version": True},
    {"event": "maybe"},
    {"button": "close"},
    {"banner_hash": "not-a-hash"},
    {"banner_hash": None},
    {"url": "/blog/"},                                                     # unknown field
    {"button": "reject_all"},                                              # reject_all with analytics on
    {"event": "refused"},                                                  # refused with analytics on
    {"event": "given", "button": "reject_all", "choices": _choices()},     # given with nothing allowed
], ids=["unknown-category", "missing-category", "necessary-refused", "not-boolean", "wrong-version",
        "version-as-text", "version-as-bool", "unknown-event", "unknown-button", "bad-hash", "no-hash",
        "unknown-field", "reject-button-accepts", "refused-accepts", "given-refuses"])
def test_invalid_choices_are_refused_with_400(client, app, change: dict) -> None:
    response = post(client, {**example_payload(), **change})
    assert response.status_code == 400
    assert response.get_json() == {"error": 400}
    assert records(app) == []
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("body", [
    "not json", "[]", '{"event": "given"}', json.dumps(example_payload())[:-1],
    json.dumps(example_payload())[:-1] + ', "event": "given"}',             # duplicate key
    json.dumps(example_payload()).replace('"0123456789abcdef"', "NaN"),
    json.dumps({**example_payload(), "banner_hash": "a" * 2000}),           # oversized body
], ids=["text", "array", "partial", "truncated", "duplicate-key", "nan", "oversized"])
def test_malformed_or_oversized_bodies_are_refused_with_400(client, app, body: str) -> None:
    assert post(client, body).status_code == 400
    assert records(app) == []


def test_only_json_from_this_site_is_accepted(client, app) -> None:
    body = json.dumps(example_payload())
    assert client.post("/api/consent", data=body, content_type="text/plain").status_code == 415
    assert client.post("/api/consent", data={"event": "given"}).status_code == 415
    assert post(client, example_payload(), Origin="https://elders.example").status_code == 403
    assert post(client, example_payload(), Origin="null").status_code == 403
    assert post(client, example_payload(), **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert post(client, example_payload(), **{"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert records(app) == []
    same = post(client, example_payload(), Origin="http://localhost", **{"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 201
    assert client.get("/api/consent").status_code == 405


def test_no_csrf_token_is_needed(make_app) -> None:
    app = make_app()  # CSRF protection on, as in production
    assert post(app.test_client(), example_payload()).status_code == 201


def test_the_endpoint_is_rate_limited_per_ip(make_app) -> None:
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    client = app.test_client()
    allowed = int(load_settings().limits.consent_per_ip.split()[0])
    statuses = [post(client, {**example_payload(), "button": "x"}).status_code for _ in range(allowed + 1)]
    assert statuses[:allowed] == [400] * allowed
    assert statuses[-1] == 429
    assert records(app) == []


# -- POST /api/analytics ----------------------------------------------------------------------------------------

def views(app) -> dict[tuple[dt.date, str], int]:
    with app.app_context(), db.transaction() as s:
        return {(v.day, v.path): v.count for v in s.scalars(select(PageView))}


def test_page_views_are_counted_per_day_and_path_and_nothing_else(client, app) -> None:
    for path in ("/", "/", "/blog/", "/diensten/teamcoaching/"):
        response = client.post("/api/analytics", data=path, content_type="text/plain;charset=UTF-8",
                               headers={"User-Agent": UA})
        assert response.status_code == 204
        assert "Set-Cookie" not in response.headers
    today = utcnow().date()
    assert views(app) == {(today, "/"): 2, (today, "/blog/"): 1, (today, "/diensten/teamcoaching/"): 1}
    assert {c.name for c in inspect(PageView).columns} == {"id", "day", "path", "count"}


@pytest.mark.parametrize("path", ["", "blog/", "/blog/?q=1", "/blog/#top", "//evil.example/", "/a/../b",
                                  "/" + "a" * 200, "/café/", "/a b/"])
def test_only_plain_site_paths_are_counted(client, app, path: str) -> None:
    assert client.post("/api/analytics", data=path.encode(), content_type="text/plain").status_code == 400
    assert views(app) == {}


def test_page_views_only_from_this_site(client, app) -> None:
    assert client.post("/api/analytics", data="/", content_type="application/json").status_code == 415
    assert client.post("/api/analytics", data="/", content_type="text/plain",
                       headers={"Origin": "https://elders.example"}).status_code == 403
    assert views(app) == {}


# -- what the build published ---------------------------------------------------------------------------------

def build(folder: Path, banner_hash: str, pages: tuple[str, ...] = ("index.html",)) -> Path:
    """A tiny built site: pages showing a banner with this hash, and the .published.json a build writes."""
    for page in pages:
        (folder / page).parent.mkdir(parents=True, exist_ok=True)
        (folder / page).write_text(f'<div id="__consent" hidden data-consent-hash="{banner_hash}"></div>',
                                   encoding="utf-8")
    write_published(folder)
    return folder / ".published.json"


def test_a_rebuild_is_picked_up_without_restarting_the_app(make_app, tmp_path) -> None:
    """After the coach changes the banner text and rebuilds, the running app accepts choices made on the new
    banner (and no longer on the old one) and counts the new page."""
    old, new = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"
    site = tmp_path / "site"
    published_file = build(site, old)
    app = make_app(SITE_DIR=str(site))
    client = app.test_client()
    assert post(client, {**example_payload(), "banner_hash": old}).status_code == 201
    assert post(client, {**example_payload(), "banner_hash": new}).status_code == 400
    assert client.post("/api/analytics", data="/nieuw/", content_type="text/plain").status_code == 400

    later = published_file.stat().st_mtime + 60  # the rebuild, a minute later
    build(site, new, pages=("index.html", "nieuw/index.html"))
    os.utime(published_file, (later, later))
    assert post(client, {**example_payload(), "banner_hash": new}).status_code == 201
    assert post(client, {**example_payload(), "banner_hash": old}).status_code == 400
    assert client.post("/api/analytics", data="/nieuw/", content_type="text/plain").status_code == 204
    assert [r.banner_hash for r in records(app)] == [old, new]


def test_the_example_payload_in_an_app_carries_the_banner_hash_its_build_published(make_app, tmp_path) -> None:
    """bench/endpoints.py posts example_payload() to an app on the real build and expects 201, not 400."""
    app = make_app(SITE_DIR=str(build(tmp_path / "site", "fedcba9876543210").parent))
    with app.app_context():
        payload = example_payload()
    assert payload["banner_hash"] == "fedcba9876543210"
    assert post(app.test_client(), payload).status_code == 201


def test_before_the_site_is_built_choices_and_page_views_get_503_and_the_operator_is_told_to_build(
        make_app, tmp_path, caplog) -> None:
    caplog.set_level("INFO", logger="leadform.consent")
    empty = tmp_path / "not-built"
    empty.mkdir()
    client = make_app(SITE_DIR=str(empty)).test_client()
    for response in (post(client, example_payload()),
                     client.post("/api/analytics", data="/", content_type="text/plain")):
        assert response.status_code == 503 and response.get_json() == {"error": 503}
    errors = [r.getMessage() for r in caplog.records if r.name == "leadform.consent" and r.levelname == "ERROR"]
    assert errors == ["site not published: no .published.json in SITE_DIR; run the build"] * 2


@pytest.mark.parametrize("path", ["//evil.example/", "/a/../b", "/a/..", "blog/"])
def test_a_malformed_page_path_is_the_senders_error_even_before_the_site_is_built(make_app, tmp_path, caplog,
                                                                                  path: str) -> None:
    """A made-up path is refused as the sender's mistake (400) before the app looks at the build, so junk
    sent to the counter never shows as an outage (503) or fills the operator's error log."""
    caplog.set_level("INFO", logger="leadform.consent")
    empty = tmp_path / "not-built"
    empty.mkdir()
    client = make_app(SITE_DIR=str(empty)).test_client()
    assert client.post("/api/analytics", data=path, content_type="text/plain").status_code == 400
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


# -- the coach's commands ---------------------------------------------------------------------------------------

def add_record(app, subject: str, button: str, when: dt.datetime, event: str = "given") -> None:
    allowed = button == "accept_all"
    with app.app_context(), db.transaction() as s:
        s.add(ConsentRecord(subject_id=subject, event=event, created_at=when, choices=_choices(analytics=allowed),
                            button=button, policy_version=CONSENT.policy_version, banner_hash="ab" * 8,
                            expires_at=when + dt.timedelta(days=CONSENT.max_age_days), site_build="test"))


def test_stats_count_accept_reject_and_custom_per_week(app, runner) -> None:
    now = utcnow()
    monday = dt.datetime.combine(now.date() - dt.timedelta(days=now.weekday()), dt.time(9))
    for subject, button in (("a", "accept_all"), ("b", "accept_all"), ("c", "reject_all"), ("d", "save")):
        add_record(app, subject * 32, button, monday)
    for minute, button in enumerate(("reject_all", "accept_all", "accept_all")):  # one visitor, three times:
        add_record(app, "f" * 32, button, monday - dt.timedelta(days=3, minutes=-minute))  # its last choice, once
    add_record(app, "b" * 32, "reject_all", monday - dt.timedelta(weeks=1))
    add_record(app, "c" * 32, "accept_all", monday - dt.timedelta(weeks=30))  # outside the 12 weeks
    result = runner.invoke(args=["consent", "stats"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["week", "vanaf", "aanvaard", "geweigerd", "eigen", "totaal", "%aanvaard"]
    assert len(lines) == 13
    assert lines[-1].split()[2:] == ["2", "1", "1", "4", "50%"]
    assert lines[-2].split()[2:] == ["1", "1", "0", "2", "50%"]
    assert lines[-3].split()[2:] == ["0", "0", "0", "0", "-"]


def test_proof_exports_one_subjects_records_as_json(app, runner) -> None:
    subject, other = "d" * 32, "e" * 32
    start = utcnow() - dt.timedelta(days=3)
    add_record(app, subject, "accept_all", start)
    add_record(app, other, "reject_all", start, event="refused")
    add_record(app, subject, "reject_all", start + dt.timedelta(days=1), event="withdrawn")
    result = runner.invoke(args=["consent", "proof", subject.upper()])
    assert result.exit_code == 0, result.output
    proof = json.loads(result.output)
    assert proof["subject_id"] == subject
    assert [r["event"] for r in proof["records"]] == ["given", "withdrawn"]
    assert {r["subject_id"] for r in proof["records"]} == {subject}
    first = proof["records"][0]
    assert set(first) == {"id", "subject_id", "event", "time_utc", "choices", "button", "policy_version",
                          "banner_hash", "expires_utc", "site_build", "email"}
    assert first["time_utc"].endswith("Z") and first["choices"] == _choices(analytics=True)
    assert proof["in_force"]["choices"] == _choices()


def test_proof_of_an_unknown_or_malformed_subject(runner) -> None:
    unknown = runner.invoke(args=["consent", "proof", "f" * 32])
    assert unknown.exit_code == 1 and "no consent records" in unknown.output
    assert runner.invoke(args=["consent", "proof", "'; drop table"]).exit_code == 2


def test_page_counts_for_the_coach(client, runner) -> None:
    for path in ("/", "/blog/", "/"):
        client.post("/api/analytics", data=path, content_type="text/plain")
    result = runner.invoke(args=["analytics", "pages", "--days", "7"])
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == ["       2  /", "       1  /blog/"]


# -- the build checks ---------------------------------------------------------------------------------------------

BUTTONS = ('<button type="button" class="md-button md-button--primary" data-consent-action="accept_all">'
           'Alles accepteren</button>'
           '<button type="button" class="md-button md-button--primary" data-consent-action="reject_all">'
           'Alles weigeren</button>')


def page(banner: str = BUTTONS, scripts: str = "", box: str = '<input type="checkbox" name="analytics">',
         hash_: str = "0123456789abcdef") -> str:
    return (f'<html><body><div class="md-consent" id="__consent" hidden data-consent-hash="{hash_}"><form>'
            f'<p>Deze website maakt gebruik van cookies.</p><label>{box} Statistieken</label><br/>{banner}'
            f'</form></div><main><p>Tekst</p></main>'
            '<script id="__config" type="application/json">{"base": "."}</script>'
            '<script src="../assets/javascripts/bundle.a5f9d56c.min.js"></script>'
            '<script src="../assets/javascripts/consent.js" defer></script>'
            f'{scripts}</body></html>')


def problems(html: str) -> list[str]:
    return check_consent("docs/test.md", html, CONSENT.optional_ids)


def test_a_correct_page_passes() -> None:
    marked = ('<script type="text/plain" data-consent="analytics" '
              'data-src="../assets/javascripts/analytics.js"></script>')
    assert problems(page(scripts=marked)) == []


@pytest.mark.parametrize(("html", "words"), [
    (page(banner=BUTTONS.split("</button>")[0] + "</button>"), ["geen knop 'Alles weigeren'", "reject_all"]),
    (page(banner=BUTTONS.replace('data-consent-action="reject_all">Alles weigeren',
                                 'data-consent-action="reject_all">')), ["geen knop 'Alles weigeren'"]),
    (page(banner=BUTTONS.replace("md-button md-button--primary\" data-consent-action=\"reject_all",
                                 "md-button\" data-consent-action=\"reject_all")), ["verschillend", "class"]),
    (page(box='<input type="checkbox" name="analytics" checked>'), ["'analytics' vooraf aangevinkt"]),
    (page(box='<input type="checkbox" name="analytics" checked="checked"/>'), ["vooraf aangevinkt"]),
    (page(hash_=""), ["data-consent-hash"]),
    ("<html><body><p>Geen banner</p></body></html>", ["de cookiebanner ontbreekt"]),
    (page().replace('id="__consent"', 'id="__consent" data-md-component="consent"'),
     ["Materials eigen cookiebanner", "mkdocs.yml"]),
], ids=["no-reject-button", "empty-reject-button", "unequal-buttons", "pre-ticked", "pre-ticked-xhtml",
        "no-hash", "no-banner", "material-banner"])
def test_a_banner_against_the_rules_fails(html: str, words: list[str]) -> None:
    found = problems(html)
    assert found, "the check should have failed"
    assert all(p.startswith("docs/test.md: ") for p in found)
    for word in words:
        assert any(word in p for p in found), (word, found)


@pytest.mark.parametrize(("script", "words"), [
    ("<script>window.dataLayer = window.dataLayer || [];</script>",
     ["een script ('window.dataLayer", "zonder toestemming"]),
    ('<script src="../assets/javascripts/tracker.js"></script>',
     ["'../assets/javascripts/tracker.js'", "data-consent"]),
    ('<script src="/assets/javascripts/consent.js.evil.js"></script>', ["zonder toestemming"]),
    ('<script type="module" src="x.js"></script>', ["zonder toestemming"]),
    ('<script type="text/plain">tracking()</script>', ["zonder toestemming"]),
    ('<script type="text/plain" data-consent="marketing" data-src="/m.js"></script>', ["'marketing'", "analytics"]),
    ('<script data-consent="analytics" data-src="/a.js"></script>', ['type="text/plain"']),
    ('<script type="text/plain" data-consent="analytics" src="/a.js"></script>', ["data-src"]),
    ('<script type="text/plain" data-consent="analytics">track()</script>', ["docs/assets/javascripts/"]),
    ('<script type="text/plain" data-consent="analytics" data-src="https://t.example/a.js"></script>',
     ["andere website"]),
], ids=["inline", "own-file-not-listed", "lookalike-name", "module", "unmarked-text-plain", "unknown-category",
        "marked-but-runs", "marked-with-src", "marked-inline-code", "marked-external"])
def test_a_script_outside_a_consent_category_fails(script: str, words: list[str]) -> None:
    found = problems(page(scripts=script))
    assert found, "the check should have failed"
    for word in words:
        assert any(word in p for p in found), (word, found)


def test_materials_inline_scripts_are_recognised_whatever_the_page_depth() -> None:
    pattern = template_script_pattern('<x>__md_scope=new URL("{{ base }}",location),__md_hash=1')
    assert pattern.fullmatch('<x>__md_scope=new URL("../..",location),__md_hash=1')
    assert not pattern.fullmatch('<x>__md_scope=new URL("..",location),__md_hash=1;track()')
    base = ('__md_scope=new URL("../..",location),__md_hash=e=>[...e].reduce(((e,_)=>(e<<5)-e+_.charCodeAt(0)),0),'
            '__md_get=(e,_=localStorage,t=__md_scope)=>JSON.parse(_.getItem(t.pathname+"."+e)),'
            '__md_set=(e,_,t=localStorage,a=__md_scope)=>{try{t.setItem(a.pathname+"."+e,JSON.stringify(_))}'
            'catch(e){}}')
    assert any(p.fullmatch(base) for p in allowed_inline_scripts())
    materials_consent = 'var consent=__md_get("__consent");if(consent)for(var input of document.forms.consent'
    assert problems(page(scripts=f"<script>{materials_consent}</script>"))


# -- the built site -------------------------------------------------------------------------------------------------

def banner_form(html: str) -> str:
    match = re.search(r'<form class="md-consent__form[^>]*>(.*?)</form>', html, re.DOTALL)
    assert match, "no banner form"
    return match.group(1)


def test_every_page_has_the_banner_and_the_footer_link(site_pages: dict[str, str]) -> None:
    hashes = set()
    for path, html in site_pages.items():
        if path.startswith("assets/"):
            continue
        assert problems(html) == [], path
        assert 'id="__consent" hidden' in html, path
        assert "data-consent-open>Cookie-instellingen</a>" in html, path
        hashes.add(re.search(r'data-consent-hash="([0-9a-f]+)"', html).group(1))
    assert len(hashes) == 1, "every page shows the same banner text"


def test_banner_text_categories_and_hash(site_pages: dict[str, str]) -> None:
    html = site_pages["blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/index.html"]
    form = banner_form(html)
    text = Markup(form).striptags()
    assert "Deze website maakt gebruik van cookies. Lees meer" in text
    assert re.search(r'<a href="\.\./\.\./cookies/">Lees meer</a>', form)
    for label in ("Alles accepteren", "Alles weigeren", "Instellingen", "Keuze opslaan"):
        assert label in text
    for category in CONSENT.categories:
        assert category.title in text and Markup(category.description).striptags() in text
    boxes = re.findall(r"<input[^>]*>", form)
    assert [re.search(r'name="(\w+)"', b).group(1) for b in boxes] == list(CONSENT.optional_ids)
    assert not any("checked" in b for b in boxes)
    assert f'data-consent-hash="{fingerprint(text)}"' in html
    assert f'data-consent-version="{CONSENT.policy_version}"' in html
    assert f'data-consent-max-age="{CONSENT.max_age_days}"' in html
    links = parse(html).links
    assert "../../cookies/#je-keuze-aanpassen" in links


def test_analytics_waits_for_consent_in_the_built_page(site_pages: dict[str, str]) -> None:
    html = site_pages["index.html"]
    assert re.search(r'<script type="text/plain" data-consent="analytics" '
                     r'data-src="assets/javascripts/analytics\.js"></script>', html)
    assert not re.search(r'<script[^>]* src="[^"]*analytics\.js"', html)


# -- a real build that fails --------------------------------------------------------------------------------------

POST = """---
title: Een test
description: Een bericht om de controle op scripts te testen.
date:
  created: 2024-03-01 10:00:00
authors: [coach]
categories: [Leiderschap]
---

Eerste alinea.

<!-- more -->

{body}
"""


def write_post(project: Path, body: str) -> None:
    (project / "docs" / "blog" / "posts" / "test.md").write_text(POST.format(body=body), encoding="utf-8")


def test_a_tracking_snippet_in_a_post_stops_the_build(project_copy: Path) -> None:
    write_post(project_copy, '<script>\n  window.dataLayer = window.dataLayer || [];\n</script>')
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode != 0
    assert "docs/blog/posts/test.md: de pagina bevat een script ('window.dataLayer" in result.stderr
    assert "zonder toestemming van de bezoeker" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_script_that_waits_for_consent_builds(project_copy: Path) -> None:
    write_post(project_copy, '<script type="text/plain" data-consent="analytics" '
                             'data-src="../../assets/javascripts/analytics.js"></script>')
    result = mkdocs_build(project_copy / "mkdocs.yml", project_copy / "site")
    assert result.returncode == 0, result.stderr
    built = (project_copy / "site" / "blog" / "een-test" / "index.html").read_text(encoding="utf-8")
    assert built.count('data-consent="analytics"') == 2


def test_a_banner_without_reject_button_or_with_a_ticked_box_stops_the_build(project_copy: Path) -> None:
    overrides = project_copy / "overrides"
    shutil.copytree(ROOT / "site_config" / "overrides", overrides)
    partial = overrides / "partials" / "consent.html"
    text, removed = re.subn(r'\s*<button[^>]*data-consent-action="reject_all"[^>]*>Alles weigeren</button>', "",
                            partial.read_text(encoding="utf-8"))
    box = '<input type="checkbox" name="{{ category.id }}">'
    assert removed == 1 and box in text
    partial.write_text(text.replace(box, box[:-1] + " checked>"), encoding="utf-8")
    config = project_copy / "mkdocs.yml"
    config.write_text(config.read_text(encoding="utf-8").replace("custom_dir: site_config/overrides",
                                                                 "custom_dir: overrides"), encoding="utf-8")
    result = mkdocs_build(config, project_copy / "site")
    assert result.returncode != 0
    assert re.search(r"docs/\S+: de cookiebanner heeft geen knop 'Alles weigeren'", result.stderr)
    assert "in de cookiebanner staat 'analytics' vooraf aangevinkt" in result.stderr
    assert "site_config/overrides/partials/consent.html" in result.stderr
    assert "Traceback" not in result.stderr


def test_stats_on_an_empty_database(runner) -> None:
    result = runner.invoke(args=["consent", "stats", "--weeks", "2"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == 3


def test_records_are_only_ever_added(client, app) -> None:
    for _ in range(3):
        post(client, example_payload())
    with app.app_context(), db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 3


# -- custom choices, updates and the body limit -------------------------------------------------------------------

@pytest.mark.parametrize(("event", "analytics"), [
    ("given", True),        # first visit: "Instellingen opslaan" with Statistieken ticked
    ("refused", False),     # first visit: saved with nothing optional ticked
    ("updated", True),      # later: saved again, Statistieken still on
    ("withdrawn", False),   # later: Statistieken switched off
])
def test_a_choice_saved_in_the_settings_is_recorded(client, app, runner, event: str, analytics: bool) -> None:
    choices = _choices(analytics=analytics)
    response = post(client, {**example_payload(), "event": event, "button": "save", "choices": choices})
    assert response.status_code == 201, response.get_data(as_text=True)
    [record] = records(app)
    assert (record.event, record.button, record.choices) == (event, "save", choices)
    assert response.get_json()["id"] == record.id
    if analytics:
        assert response.headers["Set-Cookie"].startswith(f"{SUBJECT_COOKIE}={record.subject_id}.")
    else:
        assert "Max-Age=0" in response.headers["Set-Cookie"]
    this_week = runner.invoke(args=["consent", "stats", "--weeks", "1"]).output.splitlines()[-1].split()
    assert this_week[2:6] == ["0", "0", "1", "1"], "counted as custom"


def test_an_update_of_an_earlier_choice_is_recorded_after_it(client, app) -> None:
    assert post(client, example_payload()).status_code == 201
    update = {**example_payload(), "event": "updated"}  # "Alles accepteren" again, e.g. after a new banner text
    assert post(client, update).status_code == 201
    first, second = records(app)
    assert (first.event, second.event) == ("given", "updated")
    assert second.subject_id == first.subject_id and second.choices == _choices(analytics=True)


@pytest.mark.parametrize("change", [
    {"event": "updated", "button": "save", "choices": _choices()},         # an update that allows nothing
    {"event": "updated", "button": "reject_all", "choices": _choices()},
    {"event": "given", "button": "save", "choices": _choices()},           # given, with nothing allowed
    {"event": "refused", "button": "save", "choices": _choices(analytics=True)},
    {"event": "withdrawn", "button": "accept_all"},                        # withdrawn with everything on
], ids=["updated-nothing", "updated-reject", "given-nothing", "refused-something", "withdrawn-all"])
def test_a_custom_choice_that_contradicts_its_event_is_refused(client, app, change: dict) -> None:
    assert post(client, {**example_payload(), **change}).status_code == 400
    assert records(app) == []


def _padded(size: int) -> str:
    """A valid choice of exactly `size` bytes: the banner's JSON with whitespace before its last brace."""
    body = json.dumps(example_payload())
    assert len(body) < size
    return body[:-1] + " " * (size - len(body)) + "}"


def test_a_choice_up_to_1024_bytes_is_accepted_and_a_byte_more_is_refused(client, app) -> None:
    over = post(client, _padded(1025))
    assert over.status_code == 400 and over.get_json() == {"error": 400}
    assert records(app) == [] and "Set-Cookie" not in over.headers
    assert post(client, _padded(1024)).status_code == 201
    assert len(records(app)) == 1


def test_a_post_without_content_type_is_refused_with_415(client, app) -> None:
    """What a script gets that forgets the header: 415 as JSON, nothing stored or counted."""
    for path, body in (("/api/consent", json.dumps(example_payload())), ("/api/analytics", "/")):
        response = client.post(path, data=body.encode())
        assert "Content-Type" not in response.request.headers
        assert response.status_code == 415 and response.get_json() == {"error": 415}, path
        assert "Set-Cookie" not in response.headers
    assert records(app) == [] and views(app) == {}


@pytest.mark.parametrize(("body", "reason"), [
    ("not json", "not JSON: JSONDecodeError"),
    # the hooks' own InvalidChoice is a ValueError, so json.loads's handler names it (today's wording)
    (json.dumps(example_payload())[:-1] + ', "event": "given"}', "not JSON: InvalidChoice"),
    (json.dumps(example_payload()).replace('"0123456789abcdef"', "NaN"), "not JSON: InvalidChoice"),
    (json.dumps({**example_payload(), "url": "/"}), "fields"),
    (json.dumps({**example_payload(), "policy_version": 0}), "policy version"),
    (json.dumps({**example_payload(), "button": "close"}), "event or button"),
    (json.dumps({**example_payload(), "banner_hash": "xyz"}), "banner hash"),
    (json.dumps({**example_payload(), "choices": {"necessary": True}}), "categories"),
    (json.dumps({**example_payload(), "choices": _choices(necessary=False, analytics=True)}),
     "a required category refused"),
    (json.dumps({**example_payload(), "event": "refused"}), "event, button and choices disagree"),
], ids=["not-json", "duplicate", "constant", "fields", "version", "button", "hash", "categories", "required",
        "disagree"])
def test_a_refused_choice_logs_the_rule_it_broke(client, app, caplog, body: str, reason: str) -> None:
    """The coach's log says why a choice was refused, in one line without the payload."""
    caplog.set_level("INFO", logger="leadform.consent")
    assert post(client, body).status_code == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "leadform.consent"]
    assert lines == [f"consent payload rejected reason={reason}"]
