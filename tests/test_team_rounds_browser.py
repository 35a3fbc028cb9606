"""A team round in a real Chromium, with JavaScript on and off: a leader starts a round from the checklist
page and finds the mail, three members answer on the share link and see their own result, the leader sees
nothing below three answers and then the report; a round past its 30 days says so; a full round refuses.

Screenshots of every step at phone and desktop width go to test-artifacts/teamround/.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import smtp_config
from playwright.sync_api import expect
from support.axe import serious_violations
from support.teams import LEADER_LINK, open_round

from leadform import db
from leadform.gdpr import purge
from leadform.models import utcnow
from site_config import load_settings

pytestmark = pytest.mark.browser
TEAMS = load_settings().checklist("teams")
WIDTHS = (390, 1366)


@pytest.fixture
def live_config(smtp_server) -> dict:
    return {**smtp_config(smtp_server.port), "OUTBOX_POLL_SECONDS": 0.5}


@pytest.fixture
def shots(artifacts: Path) -> Path:
    folder = artifacts / "teamround"
    folder.mkdir(exist_ok=True)
    return folder


def shoot(page, folder: Path, name: str) -> None:
    """The page at phone and desktop width, whole."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate("window.scrollTo(0, 0)")   # else the sticky header is drawn where the page was scrolled to
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)


def wait_for_mail(smtp_server, subject: str, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        for rcpt, message in smtp_server.messages:
            if subject in message["Subject"]:
                return rcpt, message
        assert time.monotonic() < deadline, f"no mail with {subject!r} reached the SMTP server"
        time.sleep(0.05)


def watch(page, origin: str) -> list[str]:
    """Console errors (a CSP refusal among them) and requests to any other host, collected as they come."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.text} {m.location.get('url')}") if m.type == "error" else None)
    host = urlsplit(origin).netloc
    page.on("request", lambda r: problems.append(r.url) if urlsplit(r.url).netloc not in (host, "") and
            not r.url.startswith("data:") else None)
    return problems


def answer_as_member(page, per_theme: list[int], js: bool) -> None:
    """Click the labels as a member does: theme by theme with JavaScript, one long form without."""
    for index, dimension in enumerate(TEAMS.dimensions):
        value = per_theme[min(index, len(per_theme) - 1)]
        for n in range(1, len(dimension.statements) + 1):
            page.locator(f"#teams-{dimension.id}-{n} label").nth(value - 1).click()
        if js and index < len(TEAMS.dimensions) - 1:
            page.get_by_role("button", name="Volgende thema").click()
    page.get_by_role("button", name="Verstuur mijn antwoorden").click()


def rows(page, selector: str) -> list[list[str]]:
    return [[" ".join(cell.split()) for cell in row.locator("th, td").all_inner_texts()]
            for row in page.locator(f"{selector} tbody tr").all()]


def member(browser, share: str, per_theme: list[int], js: bool, folder: Path | None = None,
           name: str = "") -> list[list[str]]:
    """One member in their own browser (no cookie shared with anyone): opens the link, answers, and
    returns the rows of their own result table."""
    context = browser.new_context(java_script_enabled=js, viewport={"width": 390, "height": 900})
    page = context.new_page()
    problems = watch(page, share)
    page.goto(share)
    expect(page.get_by_role("heading", name="Teamronde: checklist teams")).to_be_visible()
    if js:
        expect(page.locator(".coach-scorecard__status")).to_have_text("Thema 1 van 5 · 0 van 25 uitspraken beantwoord")
        page.evaluate("window.sameDocument = true")
    else:
        expect(page.locator("#teams-thema-verandering")).to_be_visible()   # every theme on one page
    if folder:
        shoot(page, folder, f"{name}-form")
    answer_as_member(page, per_theme, js)
    heading = page.get_by_role("heading", name="Jouw resultaat")
    expect(heading).to_be_visible()
    if js:
        expect(heading).to_be_focused()
        assert page.evaluate("window.sameDocument") is True, "the result came without a reload"
    expect(page.get_by_text("Je antwoorden zijn anoniem toegevoegd aan de teamronde")).to_be_visible()
    if folder:
        shoot(page, folder, f"{name}-result")
    result = rows(page, "table.coach-result__table")
    assert problems == []
    assert context.cookies() == [], "a member's browser gets no cookie"
    context.close()
    return result


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_leader_starts_a_round_three_members_answer_and_the_report_shows_averages_and_spreads(
        browser, live_server, smtp_server, shots: Path, js: bool) -> None:
    mode = "js" if js else "nojs"
    context = browser.new_context(java_script_enabled=js)
    page = context.new_page()
    problems = watch(page, live_server.url)
    page.goto(live_server.url + "/checklists/teams/")
    if js:
        page.get_by_role("button", name="Alles weigeren").click()   # the cookie banner, as a visitor does
    page.get_by_role("link", name="Start een teamronde").click()
    page.wait_for_url("**/team/teams/")
    expect(page.get_by_role("heading", name="Start een teamronde met de checklist teams")).to_be_visible()
    page.get_by_label("Je naam").fill("Els Maes")
    page.get_by_label("Je e-mailadres").fill("els@example.be")
    page.get_by_label("Ik heb de privacyverklaring gelezen").check()
    shoot(page, shots, f"{mode}-1-leader-start")
    page.get_by_role("button", name="Start een teamronde").click()
    page.wait_for_url("**/team/teams/aangevraagd/")
    expect(page.get_by_role("heading", name="Kijk in je mailbox")).to_be_visible()
    shoot(page, shots, f"{mode}-2-leader-mailbox")

    rcpt, message = wait_for_mail(smtp_server, "Bevestig je teamronde")
    assert rcpt == ["els@example.be"]
    leader = LEADER_LINK.search(message.get_body(("plain",)).get_content()).group(0)
    page.goto(leader)
    expect(page.get_by_role("heading", name="Deel deze link met je team")).to_be_visible()
    share = page.get_by_label("Link voor je teamleden").input_value()
    assert re.fullmatch(re.escape(live_server.url) + r"/team/r/\S+", share)
    expect(page.get_by_text("0 teamleden vulden de checklist al in.")).to_be_visible()
    shoot(page, shots, f"{mode}-3-leader-share")
    rcpt, notice = wait_for_mail(smtp_server, "Nieuwe teamronde gestart")
    assert rcpt == [load_settings().coach.email] and "els@example.be" in notice.get_body(("plain",)).get_content()

    first = member(browser, share, [2], js, shots, f"{mode}-4-member1")
    assert first[0] == ["Vertrouwen", "2,0", "Werkpunt"]
    member(browser, share, [4], js)

    page.reload()
    expect(page.get_by_text("2 teamleden vulden de checklist al in.")).to_be_visible()
    expect(page.get_by_text(re.compile("nog 1 antwoord nodig"))).to_be_visible()
    expect(page.get_by_role("button", name="Sluit de ronde en toon het teamrapport")).to_have_count(0)
    expect(page.locator("table")).to_have_count(0)
    shoot(page, shots, f"{mode}-5-leader-two-answers")

    third = member(browser, share, [5, 3], js, shots if js else None, f"{mode}-6-member3")
    assert third[:2] == [["Vertrouwen", "5,0", "Sterkte"], ["Communicatie tussen teams", "3,0", "Groeikans"]]

    page.reload()
    expect(page.get_by_text("3 teamleden vulden de checklist al in.")).to_be_visible()
    shoot(page, shots, f"{mode}-7-leader-three-answers")
    page.get_by_role("button", name="Sluit de ronde en toon het teamrapport").click()
    expect(page.get_by_role("heading", name="Teamrapport: checklist teams")).to_be_visible()
    overview = rows(page, "table:not(.coach-heat)")
    assert overview[0] == ["Vertrouwen", "3,67", "van 2,0 tot 5,0", "Groeikans"]
    assert overview[1:] == [[d.title, "3,0", "van 2,0 tot 4,0", "Groeikans"] for d in TEAMS.dimensions[1:]]
    heat = rows(page, "section[aria-labelledby=thema-vertrouwen] table.coach-heat")
    assert heat[0] == [TEAMS.dimensions[0].statements[0], "0", "1", "0", "1", "1"]
    expect(page.get_by_role("img", name=re.compile("Teamgemiddelde en spreiding per thema"))).to_be_visible()
    shoot(page, shots, f"{mode}-8-team-report")

    assert problems == []
    rcpt, closed = wait_for_mail(smtp_server, "is afgesloten")
    assert rcpt == ["els@example.be"] and leader in closed.get_body(("plain",)).get_content()
    page.goto(share)
    expect(page.get_by_role("heading", name="Deze teamronde is afgesloten")).to_be_visible()
    context.close()


def test_after_thirty_days_the_round_is_closed_and_its_link_says_so(browser, live_server, smtp_server,
                                                                      shots: Path) -> None:
    now = utcnow()
    leader, share = open_round(live_server.app, confirmed_at=now - dt.timedelta(days=30, minutes=5), answers=2)
    with live_server.app.app_context(), db.transaction() as s:
        assert len(purge(s)["team_rounds_closed"]) == 1   # the daily job
    rcpt, message = wait_for_mail(smtp_server, "is afgesloten")
    assert rcpt == ["els@example.be"]
    assert "toont het teamrapport pas resultaten vanaf 3 antwoorden" in message.get_body(("plain",)).get_content()
    for js in (True, False):
        context = browser.new_context(java_script_enabled=js)
        page = context.new_page()
        response = page.goto(share)
        assert response.status == 410
        expect(page.get_by_role("heading", name="Deze teamronde is afgesloten")).to_be_visible()
        expect(page.get_by_text("Je kan niet meer antwoorden: deze teamronde is afgelopen.")).to_be_visible()
        expect(page.get_by_role("button", name="Verstuur mijn antwoorden")).to_have_count(0)
        if js:
            shoot(page, shots, "closed-member-link")
            page.goto(leader)
            expect(page.get_by_text(re.compile("te weinig: nog 1 antwoord nodig"))).to_be_visible()
            expect(page.locator("table")).to_have_count(0)
            shoot(page, shots, "closed-leader-two-answers")
        context.close()


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_full_round_refuses_more_answers_in_dutch(browser, live_server, shots: Path, js: bool) -> None:
    cap = load_settings().limits.team_answers_per_round
    _, share = open_round(live_server.app, answers=cap - 1)
    late = browser.new_context(java_script_enabled=js)
    late_page = late.new_page()
    late_page.goto(share)   # opened while there was still room
    expect(late_page.get_by_role("heading", name="Teamronde: checklist teams")).to_be_visible()
    member(browser, share, [4], js)   # the last place
    answer_as_member(late_page, [2], js)
    expect(late_page.get_by_text(f"Deze teamronde is vol: er kwamen al {cap} antwoorden binnen")).to_be_visible()
    expect(late_page.get_by_text("Je antwoorden zijn daarom niet meegeteld")).to_be_visible()
    expect(late_page.get_by_role("heading", name="Jouw resultaat")).to_be_visible()   # still their own result
    shoot(late_page, shots, f"{'js' if js else 'nojs'}-full-round-refused")
    again = late_page.goto(share)
    assert again.status == 409
    expect(late_page.get_by_role("heading", name="Deze teamronde is vol")).to_be_visible()
    late.close()


def test_axe_finds_no_serious_issue_on_the_team_round_pages(browser, live_server) -> None:
    leader, share = open_round(live_server.app, answers=4)
    context = browser.new_context(bypass_csp=True)   # to inject axe; the other tests run under the CSP
    page = context.new_page()
    found = {}

    def run(where: str) -> None:
        found[where] = serious_violations(page)

    page.goto(live_server.url + "/team/teams/")
    run("start")
    page.goto(leader)
    run("leader")
    page.goto(share)
    run("member form")
    answer_as_member(page, [3, 4], True)
    expect(page.get_by_role("heading", name="Jouw resultaat")).to_be_focused()
    run("member result")
    page.goto(leader)
    page.get_by_role("button", name="Sluit de ronde en toon het teamrapport").click()
    expect(page.get_by_role("heading", name="Teamrapport: checklist teams")).to_be_visible()
    run("report")
    assert found == {where: [] for where in found}
    context.close()
