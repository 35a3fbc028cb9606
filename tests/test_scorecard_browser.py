"""A visitor scores themself on a checklist page in a real Chromium, with JavaScript and without,
then asks for their personal report, finds the mail and downloads a PDF that holds their scores."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from conftest import smtp_config
from playwright.sync_api import expect
from pypdf import PdfReader
from support.axe import serious_violations

from leadform.scoring import load_checklist

pytestmark = pytest.mark.browser
LINK = re.compile(r"http://127\.0\.0\.1:\d+/download/rapport/\S+")
TEAMS = load_checklist("teams")
# 1.8 low, 3.0 middle, 4.4 high, 2.4 low, 4.0 high
PATTERN = [[1, 2, 2, 3, 1], [3, 3, 3, 3, 3], [5, 4, 4, 4, 5], [2, 3, 2, 3, 2], [4, 4, 4, 4, 4]]
EXPECTED = [["Vertrouwen", "1,8", "Werkpunt"], ["Communicatie tussen teams", "3,0", "Groeikans"],
            ["Wij-zij-denken", "4,4", "Sterkte"], ["Klantgerichtheid", "2,4", "Werkpunt"],
            ["Omgaan met verandering", "4,0", "Sterkte"]]


@pytest.fixture
def live_config(smtp_server) -> dict:
    return {**smtp_config(smtp_server.port), "OUTBOX_POLL_SECONDS": 0.5}


def wait_for_mail(smtp_server, timeout: float = 10):
    import time

    deadline = time.monotonic() + timeout
    while not smtp_server.messages:
        assert time.monotonic() < deadline, "no mail reached the SMTP server"
        time.sleep(0.05)
    return smtp_server.messages[-1]


def answer_theme(page, index: int, values: list[int]) -> None:
    """Click the answers of one theme as a visitor does: on the label of each score."""
    dimension = TEAMS.dimensions[index]
    for n, value in enumerate(values, start=1):
        page.locator(f"#teams-{dimension.id}-{n} label").nth(value - 1).click()


def result_rows(page) -> list[list[str]]:
    return [[cell.strip() for cell in row.locator("th, td").all_inner_texts()]
            for row in page.locator("table.coach-result__table tbody tr").all()]


def request_report_and_read_pdf(page, smtp_server, tmp_path: Path) -> str:
    report = page.locator("form[action='/api/scorecard/teams/rapport']")
    report.get_by_label("Je naam").fill("Sofie Peeters")
    report.get_by_label("Je e-mailadres").fill("sofie@example.be")
    report.get_by_label("Ik heb de privacyverklaring gelezen").check()
    report.get_by_role("button", name="Stuur mij mijn persoonlijk rapport").click()
    page.wait_for_url("**/checklists/rapport-verstuurd/")
    expect(page.get_by_role("heading", name="Kijk in je mailbox voor je rapport")).to_be_visible()
    rcpt, message = wait_for_mail(smtp_server)
    assert rcpt == ["sofie@example.be"] and "persoonlijk rapport" in message["Subject"]
    link = LINK.search(message.get_body(("plain",)).get_content()).group(0)
    with page.expect_download() as download_info:
        page.evaluate("url => { window.location.href = url }", link)
    path = tmp_path / "rapport.pdf"
    download_info.value.save_as(path)
    return " ".join(" ".join((p.extract_text() or "").split()) for p in PdfReader(io.BytesIO(path.read_bytes())).pages)


def assert_scores_in(text: str) -> None:
    assert "Voor Sofie Peeters" in text
    for title, average, level in EXPECTED:
        assert f"{title} {average} · {level}" in text


def test_with_javascript_theme_by_theme_then_the_result_without_reload(browser, live_server, smtp_server,
                                                                       tmp_path: Path) -> None:
    context = browser.new_context(accept_downloads=True, viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(live_server.url + "/checklists/teams/")
    status = page.locator(".coach-scorecard__status")
    expect(status).to_have_text("Thema 1 van 5 · 0 van 25 uitspraken beantwoord")
    expect(page.locator("#teams-thema-communicatie")).to_be_hidden()

    answer_theme(page, 0, PATTERN[0][:3])
    page.get_by_role("button", name="Volgende thema").click()   # two left open: flagged, not lost
    expect(page.get_by_role("alert")).to_have_text(re.compile("Nog 2 uitspraken zonder antwoord"))
    expect(page.locator("#teams-vertrouwen-4-fout")).to_have_text("Kies een antwoord bij deze uitspraak.")
    expect(page.locator("#teams-vertrouwen-4 input").first).to_be_focused()
    expect(status).to_have_text("Thema 1 van 5 · 3 van 25 uitspraken beantwoord")

    page.evaluate("window.sameDocument = true")
    for index, values in enumerate(PATTERN):
        answer_theme(page, index, values)
        if index < len(PATTERN) - 1:
            page.get_by_role("button", name="Volgende thema").click()
            expect(page.locator(f"#teams-thema-{TEAMS.dimensions[index + 1].id}-titel")).to_be_focused()
    expect(page.locator("#teams-vertrouwen-4-fout")).to_have_count(0)
    expect(status).to_have_text("Thema 5 van 5 · 25 van 25 uitspraken beantwoord")
    page.get_by_role("button", name="Toon mijn resultaat").click()

    heading = page.get_by_role("heading", name="Je resultaat", exact=True)
    expect(heading).to_be_focused()
    assert page.evaluate("window.sameDocument") is True   # no reload
    assert page.url.endswith("/checklists/teams/")
    assert result_rows(page) == EXPECTED
    expect(page.locator(".coach-result__summary")).to_contain_text("Je sterkste thema is Wij-zij-denken (4,4)")
    expect(page.get_by_role("link", name="Bespreek vertrouwen in een gratis kennismakingsgesprek")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Je gemiddelde per thema"))).to_be_visible()
    expect(page.get_by_role("link", name="Vraag de lege checklist teams aan als pdf")).to_be_visible()
    assert errors == []   # nothing refused by the CSP, no script error

    assert_scores_in(request_report_and_read_pdf(page, smtp_server, tmp_path))
    context.close()


def test_without_javascript_one_form_and_the_result_page(browser, live_server, smtp_server, tmp_path: Path) -> None:
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    page.goto(live_server.url + "/checklists/teams/")
    expect(page.locator("#teams-thema-verandering")).to_be_visible()   # every theme on one page
    for index, values in enumerate(PATTERN):
        answer_theme(page, index, values if index else values[:4])     # one left open
    page.get_by_role("button", name="Toon mijn resultaat").click()
    expect(page.get_by_role("alert")).to_contain_text("Nog 1 uitspraak zonder antwoord.")
    expect(page.locator("#teams-vertrouwen-5-fout")).to_have_text("Kies een antwoord bij deze uitspraak.")
    expect(page.locator("#teams-wijzij-1 input[value='5']")).to_be_checked()   # the rest is kept
    answer_theme(page, 0, PATTERN[0])
    page.get_by_role("button", name="Toon mijn resultaat").click()
    expect(page.get_by_role("heading", name="Je resultaat", exact=True)).to_be_visible()
    assert result_rows(page) == EXPECTED
    assert_scores_in(request_report_and_read_pdf(page, smtp_server, tmp_path))
    context.close()


def test_axe_finds_no_serious_issue_on_the_page_and_the_result(browser, live_server) -> None:
    context = browser.new_context(bypass_csp=True)   # to inject axe; the other tests run under the CSP
    page = context.new_page()
    page.goto(live_server.url + "/checklists/leiderschap/")
    serious = {"page": serious_violations(page)}
    checklist = load_checklist("leiderschap")
    for i, dimension in enumerate(checklist.dimensions):
        for n in range(1, len(dimension.statements) + 1):
            page.locator(f"#leiderschap-{dimension.id}-{n} label").nth(2).click()
        if i < len(checklist.dimensions) - 1:
            page.get_by_role("button", name="Volgende thema").click()
    page.get_by_role("button", name="Toon mijn resultaat").click()
    expect(page.get_by_role("heading", name="Je resultaat", exact=True)).to_be_focused()
    page.wait_for_timeout(600)   # Material's back-to-top button fades in after the scroll
    serious["result"] = serious_violations(page)
    assert serious == {"page": [], "result": []}
    page.get_by_role("link", name="pas je antwoorden aan").click()   # back to the form, answers kept
    expect(page.locator(f"#leiderschap-thema-{checklist.dimensions[0].id}-titel")).to_be_focused()
    expect(page.locator(".coach-scorecard__status")).to_have_text(
        f"Thema 1 van 5 · {len(checklist.statements)} van {len(checklist.statements)} uitspraken beantwoord")
    expect(page.get_by_role("heading", name="Je resultaat", exact=True)).to_have_count(0)
    context.close()
