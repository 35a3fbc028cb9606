"""A prospect in a real Chromium: checklist page, form, thank-you page, mail, PDF."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import smtp_config
from playwright.sync_api import expect
from pypdf import PdfReader

from site_config import load_settings

pytestmark = pytest.mark.browser
LINK = re.compile(r"http://127\.0\.0\.1:\d+/download/\S+")


@pytest.fixture
def live_config(smtp_server) -> dict:
    return {**smtp_config(smtp_server.port), "OUTBOX_POLL_SECONDS": 0.5}


def wait_for_mail(smtp_server, count: int = 1, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while len(smtp_server.messages) < count:
        assert time.monotonic() < deadline, "no mail reached the SMTP server"
        time.sleep(0.05)
    return smtp_server.messages[count - 1]


def fill(page, name: str = "Sofie Peeters", email: str = "sofie@example.be") -> None:
    page.get_by_label("Je naam").fill(name)
    page.get_by_label("Je e-mailadres").fill(email)
    page.get_by_label("Ik heb de privacyverklaring gelezen").check()


def test_visitor_requests_and_downloads_the_checklist(browser, live_server, smtp_server, artifacts: Path,
                                                      tmp_path: Path) -> None:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(live_server.url + "/checklists/teams/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("input[name=csrf_token]")).to_have_value("")  # a reader gets no token (no cookie)
    fill(page)
    expect(page.locator("input[name=csrf_token]")).not_to_have_value("")  # fetched on focus, no eval() under the CSP
    page.screenshot(path=str(artifacts / "checklist-form.png"), full_page=True)
    page.get_by_role("button", name="Stuur mij de checklist teams").click()
    page.wait_for_url("**/checklists/bedankt/")
    assert page.get_by_role("heading", name="Kijk in je mailbox").is_visible()

    rcpt, message = wait_for_mail(smtp_server)
    assert rcpt == ["sofie@example.be"]
    link = LINK.search(message.get_body(("plain",)).get_content()).group(0)
    with page.expect_download() as download_info:
        page.evaluate("url => { window.location.href = url }", link)
    download = download_info.value
    assert download.suggested_filename == "checklist-teams.pdf"
    path = tmp_path / "checklist.pdf"
    download.save_as(path)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(path).pages))
    assert load_settings().checklist("teams").statements[0] in text
    context.close()


def test_without_javascript_one_more_click_keeps_what_was_typed(browser, live_server, smtp_server) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server.url + "/checklists/leiderschap/")
    fill(page, name="Piet Janssens", email="piet@example.be")
    page.get_by_role("button", name="Stuur mij de checklist leiderschap").click()
    assert page.get_by_text("nog één keer").is_visible()
    assert page.get_by_label("Je naam").input_value() == "Piet Janssens"
    assert page.get_by_label("Je e-mailadres").input_value() == "piet@example.be"
    page.get_by_role("button", name="Stuur mij de checklist leiderschap").click()
    page.wait_for_url("**/checklists/bedankt/")
    rcpt, _ = wait_for_mail(smtp_server)
    assert rcpt == ["piet@example.be"]
    context.close()


def test_invalid_address_shows_the_dutch_error_and_keeps_the_input(browser, live_server, artifacts: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_server.url + "/checklists/teams/")
    fill(page, email="sofie@example")  # the browser accepts it, email-validator does not
    page.get_by_role("button", name="Stuur mij de checklist teams").click()
    # A click before the token (fetched on focus) is back sends the form once it is: wait for the answer.
    expect(page.get_by_text("Dit lijkt geen geldig e-mailadres")).to_be_visible()
    assert page.get_by_label("Je naam").input_value() == "Sofie Peeters"
    assert page.get_by_label("Je e-mailadres").input_value() == "sofie@example"
    page.screenshot(path=str(artifacts / "checklist-error.png"), full_page=True)
    context.close()
