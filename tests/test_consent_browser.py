"""The cookie banner in a real Chromium, fresh profile each time, against the site and the app on one origin.

What a regulator would try: nothing optional before a choice, refusing as easy as accepting, the
choice recorded as proof, remembered for max_age_days and per policy version, withdrawn from the
footer link of any page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, Route, expect
from sqlalchemy import select

from leadform import db
from leadform.models import ConsentRecord, PageView
from site_config import load_settings

pytestmark = pytest.mark.browser

CONSENT = load_settings().consent
POST = "/blog/klantgerichtheid-begint-bij-samenwerking-tussen-teams/"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


class Visitor:
    """One fresh browser profile that records every request and every script error."""

    def __init__(self, browser: Browser, base: str, **options) -> None:
        self.base = base
        self.context: BrowserContext = browser.new_context(**(options or DESKTOP))
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.new_page()

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        return page

    def open(self, path: str = "/", page: Page | None = None) -> Page:
        page = page or self.page
        page.goto(self.base + path)
        return page

    @property
    def analytics(self) -> list[str]:
        return [url for url in self.requests if "analytics" in url]

    def storage(self, page: Page | None = None) -> dict:
        return (page or self.page).evaluate(
            "() => ({local: {...localStorage}, session: {...sessionStorage}, cookie: document.cookie})")


@pytest.fixture
def visitor(browser: Browser, live_server) -> Iterator[Callable[..., Visitor]]:
    made: list[Visitor] = []

    def make(**options) -> Visitor:
        made.append(Visitor(browser, live_server.url, **options))
        return made[-1]

    yield make
    for v in made:
        v.context.close()


def banner(page: Page):
    """The banner's sheet: its #__consent wrapper has no box of its own (the sheet is position: fixed)."""
    return page.locator("#__consent .md-consent__inner")


def button(page: Page, name: str):
    return banner(page).get_by_role("button", name=name, exact=True)


def is_consent_post(response: Response) -> bool:
    return response.url.endswith("/api/consent") and response.request.method == "POST"


def choose(page: Page, name: str) -> Response:
    """Click a banner button and wait until the app answered the proof request."""
    with page.expect_response(is_consent_post) as answer:
        button(page, name).click()
    return answer.value


def consent_records(app) -> list[ConsentRecord]:
    with app.app_context(), db.transaction() as s:
        return list(s.scalars(select(ConsentRecord).order_by(ConsentRecord.created_at, ConsentRecord.id)))


def page_views(app) -> dict[str, int]:
    with app.app_context(), db.transaction() as s:
        return {v.path: v.count for v in s.scalars(select(PageView))}


def look(locator) -> list[str]:
    return locator.evaluate("e => { const s = getComputedStyle(e); return [s.backgroundColor, s.color, s.fontSize,"
                            " s.fontWeight, s.borderTopWidth, s.borderTopColor, s.paddingTop, s.display]; }")


def assert_equal_weight(page: Page) -> None:
    accept, reject = button(page, "Alles accepteren"), button(page, "Alles weigeren")
    assert look(accept) == look(reject)
    a, r = accept.bounding_box(), reject.bounding_box()
    assert abs(a["width"] - r["width"]) < 1 and abs(a["height"] - r["height"]) < 1, (a, r)


def assert_nothing_optional(v: Visitor, page: Page | None = None) -> None:
    page = page or v.page
    page.wait_for_load_state("networkidle")
    assert v.analytics == [], v.analytics
    assert v.storage(page) == {"local": {}, "session": {}, "cookie": ""}
    assert v.context.cookies() == []


# -- first visit ---------------------------------------------------------------------------------------------

def test_first_visit_shows_the_banner_and_runs_nothing_optional(visitor, artifacts: Path) -> None:
    v = visitor()
    page = v.open(POST)
    expect(banner(page)).to_be_visible()
    expect(banner(page)).to_contain_text("Deze website maakt gebruik van cookies. Lees meer")
    lees_meer = banner(page).get_by_role("link", name="Lees meer")
    assert lees_meer.evaluate("a => new URL(a.href).pathname") == "/cookies/"
    for name in ("Alles accepteren", "Alles weigeren", "Instellingen"):
        expect(button(page, name)).to_be_visible()
    expect(button(page, "Keuze opslaan")).to_be_hidden()
    assert_equal_weight(page)
    assert_nothing_optional(v)
    page.screenshot(path=str(artifacts / "consent-desktop.png"), animations="disabled")

    button(page, "Instellingen").click()
    settings = banner(page).locator(".md-consent__settings")
    expect(settings).to_be_visible()
    for category in CONSENT.categories:
        expect(settings).to_contain_text(category.title)
    expect(settings).to_contain_text("altijd aan")
    boxes = settings.get_by_role("checkbox")
    assert boxes.count() == len(CONSENT.optional_ids)
    for i in range(boxes.count()):
        expect(boxes.nth(i)).not_to_be_checked()
    expect(button(page, "Keuze opslaan")).to_be_visible()
    assert_equal_weight(page)
    page.mouse.move(0, 0)  # Material paints a hovered button like a primary one
    page.screenshot(path=str(artifacts / "consent-desktop-settings.png"), animations="disabled")

    page.keyboard.press("Escape")  # no choice yet: the banner stays
    expect(banner(page)).to_be_visible()
    v.open("/cookies/")  # the banner leaves the cookie policy readable and still asks
    expect(banner(page)).to_be_visible()
    expect(page.get_by_role("heading", name="Hoe lang geldt je keuze?")).to_be_visible()
    assert_nothing_optional(v)
    assert v.errors == []


def test_banner_on_a_phone(visitor, artifacts: Path) -> None:
    v = visitor(**PHONE)
    page = v.open(POST)
    expect(banner(page)).to_be_visible()
    assert_equal_weight(page)
    inner = banner(page).bounding_box()
    assert inner["height"] < 844 * 0.6, "the first layer leaves most of the page visible"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=str(artifacts / "consent-phone.png"), animations="disabled")
    button(page, "Instellingen").click()
    widths = {round(button(page, n).bounding_box()["width"]) for n in ("Alles accepteren", "Alles weigeren",
                                                                      "Keuze opslaan")}
    assert len(widths) == 1
    page.screenshot(path=str(artifacts / "consent-phone-settings.png"), animations="disabled")
    assert_nothing_optional(v)


# -- choices ------------------------------------------------------------------------------------------------

def test_rejecting_all_is_recorded_and_analytics_never_loads(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    answer = choose(page, "Alles weigeren")
    assert answer.status == 201
    expect(banner(page)).to_be_hidden()

    [record] = consent_records(live_server.app)
    assert (record.event, record.button) == ("refused", "reject_all")
    assert record.choices == {cid: cid == "necessary" for cid in CONSENT.category_ids}
    assert record.policy_version == CONSENT.policy_version
    assert record.banner_hash == page.get_attribute("#__consent", "data-consent-hash")

    assert v.context.cookies() == [], "a refusal leaves no lasting id in the browser (the proof is on the server)"
    stored = page.evaluate("JSON.parse(localStorage.getItem('consent'))")
    assert stored["version"] == CONSENT.policy_version and stored["choices"] == record.choices
    kept = dt.datetime.fromisoformat(stored["expires_at"]) - dt.datetime.fromisoformat(stored["given_at"])
    assert kept == dt.timedelta(days=CONSENT.max_age_days)

    for path in ("/", POST, "/contact/"):
        v.open(path)
        expect(banner(page)).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert v.analytics == []
    assert page_views(live_server.app) == {}
    assert len(consent_records(live_server.app)) == 1
    assert v.errors == []


def test_accepting_loads_analytics_and_the_footer_link_withdraws(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    with page.expect_response(lambda r: r.url.endswith("/api/analytics")) as counted:
        answer = choose(page, "Alles accepteren")
    assert answer.status == 201 and counted.value.status == 204
    assert any(url.endswith("/assets/javascripts/analytics.js") for url in v.analytics)
    assert page_views(live_server.app) == {"/": 1}
    [given] = consent_records(live_server.app)
    assert (given.event, given.button, given.choices["analytics"]) == ("given", "accept_all", True)

    with page.expect_response(lambda r: r.url.endswith("/api/analytics")):
        page.reload()
    expect(banner(page)).to_be_hidden()
    assert page_views(live_server.app) == {"/": 2}
    analytics_request = next(r for r in v.requests if r.endswith("/api/analytics"))
    assert analytics_request  # the count carries no cookie: see test_the_count_sends_no_cookie

    # Withdrawing takes one click from the footer of any page, like giving did.
    v.open(POST)
    page.get_by_role("link", name="Cookie-instellingen").click()
    expect(banner(page)).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "__consent-title"
    expect(banner(page).get_by_role("checkbox")).not_to_be_visible()  # first layer again
    with page.expect_navigation():  # the page reloads without the script it already ran
        answer = choose(page, "Alles weigeren")
    assert answer.status == 201
    expect(banner(page)).to_be_hidden()
    given_again, withdrawn = consent_records(live_server.app)
    assert given_again.id == given.id
    assert (withdrawn.event, withdrawn.button, withdrawn.choices["analytics"]) == ("withdrawn", "reject_all", False)
    assert withdrawn.subject_id == given.subject_id

    before = len(v.analytics)
    v.open("/")
    page.wait_for_load_state("networkidle")
    assert len(v.analytics) == before
    assert page.url.endswith("/")
    assert v.errors == []


def test_the_count_sends_no_cookie(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    with page.expect_request(lambda r: r.url.endswith("/api/analytics")) as counted:
        choose(page, "Alles accepteren")
    headers = counted.value.all_headers()
    assert "cookie" not in headers and "referer" not in headers
    assert counted.value.post_data == "/"


def test_a_choice_per_category_in_the_settings(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    button(page, "Instellingen").click()
    banner(page).get_by_label("Statistieken").check()
    with page.expect_response(lambda r: r.url.endswith("/api/analytics")):
        answer = choose(page, "Keuze opslaan")
    assert answer.status == 201
    [record] = consent_records(live_server.app)
    assert (record.event, record.button, record.choices["analytics"]) == ("given", "save", True)

    page.get_by_role("link", name="Cookie-instellingen").click()
    button(page, "Instellingen").click()
    expect(banner(page).get_by_label("Statistieken")).to_be_checked()  # the visitor's own choice, shown back
    banner(page).get_by_label("Statistieken").uncheck()
    with page.expect_navigation():
        choose(page, "Keuze opslaan")
    assert [r.event for r in consent_records(live_server.app)] == ["given", "withdrawn"]
    assert v.errors == []


def test_nothing_is_remembered_when_the_proof_was_not_stored(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    page.route("**/api/consent", lambda route: route.fulfill(status=503, json={"error": 503}))
    button(page, "Alles accepteren").click()
    expect(banner(page)).to_be_hidden()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    assert v.analytics == []
    assert v.storage()["local"] == {}
    page.unroute("**/api/consent")
    v.open("/")
    expect(banner(page)).to_be_visible()


# -- asked again -------------------------------------------------------------------------------------------

def test_a_new_policy_version_asks_everyone_again(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    with page.expect_response(lambda r: r.url.endswith("/api/analytics")):
        choose(page, "Alles accepteren")
    before = len(v.analytics)

    old = f'data-consent-version="{CONSENT.policy_version}"'
    new = f'data-consent-version="{CONSENT.policy_version + 1}"'

    def next_build(route: Route) -> None:  # the same site, built after raising consent.policy_version
        if route.request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch()
        assert old in response.text()
        route.fulfill(status=response.status, content_type="text/html; charset=utf-8",
                      body=response.text().replace(old, new))

    v.context.route("**/*", next_build)
    v.open(POST)
    expect(banner(page)).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert len(v.analytics) == before, "the old version's consent must not load analytics"


@pytest.mark.parametrize("choice", ["Alles accepteren", "Alles weigeren"])
def test_a_choice_is_asked_again_after_max_age_days(visitor, live_server, choice: str) -> None:
    v = visitor()
    page = v.open("/")
    choose(page, choice)
    page.close()
    now = dt.datetime.now(dt.UTC)

    almost = v.new_page()
    almost.clock.set_fixed_time(now + dt.timedelta(days=CONSENT.max_age_days - 1))
    v.open("/", almost)
    expect(banner(almost)).to_be_hidden()
    almost.close()

    later = v.new_page()
    later.clock.set_fixed_time(now + dt.timedelta(days=CONSENT.max_age_days, hours=1))
    before = len(v.analytics)
    v.open(POST, later)
    expect(banner(later)).to_be_visible()
    later.wait_for_load_state("networkidle")
    assert len(v.analytics) == before, "an expired consent must not load analytics"
    assert v.errors == []


# -- what is stored before and after a choice (the EDPS website evidence collector's findings) -------------

PAGE_TYPES = ["/", "/diensten/", "/diensten/teamcoaching/", "/checklists/teams/", "/contact/",
              "/blog/", POST, "/over/", "/cookies/", "/privacy/"]


def listed_cookie_names(page: Page) -> str:
    """The cookie policy's table, as the visitor reads it (site.yml consent categories)."""
    return page.locator("article table").all_inner_texts()[0]


def test_reading_every_page_type_and_refusing_stores_only_what_the_cookie_page_lists(visitor, live_server) -> None:
    """The collector found a CSRF session cookie on every page with a form, set at page load, and after
    "Alles weigeren" a unique id for 182 days with Path=/. Now a reader gets no cookie at all; a cookie
    appears only when the visitor starts a form or allows something, each one named on the cookie page."""
    v = visitor()
    page = v.open("/")
    choose(page, "Alles weigeren")
    for path in PAGE_TYPES:
        v.open(path)
        page.mouse.wheel(0, 2000)
        page.wait_for_load_state("networkidle")
        assert v.context.cookies() == [], path
    assert [url for url in v.requests if "/api/csrf" in url] == [], "no token fetched for a reader"

    v.open("/cookies/")
    table = listed_cookie_names(page)
    v.open("/contact/")
    with page.expect_response(lambda r: "/api/csrf" in r.url):
        page.get_by_label("Je naam").focus()
    [session] = v.context.cookies()
    assert session["name"] == "session" and session["name"] in table and session["httpOnly"]

    page.get_by_role("link", name="Cookie-instellingen").click()
    choose(page, "Alles accepteren")
    names = {c["name"]: c for c in v.context.cookies()}
    assert set(names) == {"session", "consent_subject"} and all(name in table for name in names)
    subject = names["consent_subject"]
    assert subject["path"] == "/api/consent" and subject["httpOnly"] and subject["sameSite"] == "Strict"
    assert v.errors == []


def test_the_contact_form_still_goes_through_when_sent_before_any_focus(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/contact/")
    choose(page, "Alles weigeren")
    page.evaluate("""() => {
        const f = document.querySelector('form[action="/api/contact"]');
        f.querySelector('[name=name]').value = 'Jan';
        f.querySelector('[name=email]').value = 'jan@example.be';
        f.querySelector('[name=subject]').value = 'teamcoaching';
        f.querySelector('[name=message]').value = 'Hallo';
        f.querySelector('[name=privacy]').checked = true;
        f.requestSubmit();
    }""")
    page.wait_for_load_state("networkidle")
    # Sent within the minimum seconds: the form comes back, filled in, with the request to send again.
    expect(page.locator(".coach-notice")).to_contain_text("klik nog eens op verzenden")
    expect(page.get_by_label("Je bericht")).to_have_value("Hallo")


def test_the_reopened_banner_closes_and_gives_the_focus_back(visitor, live_server) -> None:
    v = visitor()
    page = v.open("/")
    choose(page, "Alles weigeren")
    link = page.get_by_role("link", name="Cookie-instellingen")
    link.focus()
    link.press("Enter")
    close = banner(page).get_by_role("button", name="Sluiten zonder je keuze te wijzigen")
    expect(close).to_be_visible()
    close.click()
    expect(banner(page)).to_be_hidden()
    assert page.evaluate("document.activeElement.hasAttribute('data-consent-open')")
    link.press("Enter")
    page.keyboard.press("Escape")
    expect(banner(page)).to_be_hidden()
    assert page.evaluate("document.activeElement.hasAttribute('data-consent-open')")


def test_the_first_visit_banner_covers_at_most_a_third_of_a_phone(visitor, live_server, artifacts: Path) -> None:
    v = visitor(**PHONE)
    page = v.open("/")
    expect(banner(page)).to_be_visible()
    box = None
    for _ in range(40):  # it slides in: measure once it stands still
        box, previous = banner(page).bounding_box(), box
        if box == previous:
            break
        page.wait_for_timeout(100)
    page.screenshot(path=str(artifacts / "consent-first-visit-390.png"))
    assert box["height"] <= 844 / 3, f"{box['height']:.0f} px of 844"
    # It lies over the bottom of the screen and pushes nothing down (a layout shift Lighthouse counts).
    assert abs(box["y"] + box["height"] - 844) <= 1, box
    assert page.locator("header.md-header").bounding_box()["y"] == 0
    assert_equal_weight(page)
