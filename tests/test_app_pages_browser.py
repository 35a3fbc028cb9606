"""The pages the app draws itself, in a real Chromium at a phone's width: the site's menu, the footer
with "Cookie-instellingen", nothing against the screen's edge; and the thank-you pages that repeat the
address the mail went to."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
EDGE = 12  # px: Material's content margin on a phone is 16 px; the old plain page had 0


@pytest.fixture
def live_config() -> dict:
    return {"RATELIMIT_ENABLED": True, "OUTBOX_THREAD": False}


def submit_without_browser_checks(page: Page, action: str, fields: dict[str, str], drop_token: bool = False) -> None:
    """Post the page's static form as a visitor whose browser skips the HTML checks (or whose token is gone)."""
    page.locator(f'form[action="{action}"] input[name=name]').focus()   # forms.js fetches the token on first use
    expect(page.locator(f'form[action="{action}"] input[name=csrf_token]')).not_to_have_value("")
    page.evaluate("""([action, fields, dropToken]) => {
        const form = document.querySelector(`form.coach-form[action="${action}"]`);
        form.noValidate = true;
        if (dropToken) form.querySelector('[name=csrf_token]').remove();
        for (const [name, value] of Object.entries(fields)) form.querySelector(`[name=${name}]`).value = value;
        form.submit();
    }""", [action, fields, drop_token])
    page.wait_for_load_state()


def assert_in_the_site_shell(page: Page, heading: str, shots: Path, name: str) -> None:
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
    footer = page.locator("footer")
    expect(footer.get_by_role("link", name="Cookie-instellingen")).to_have_count(1)
    expect(footer.get_by_role("link", name="Privacyverklaring")).to_have_count(1)
    page.screenshot(path=str(shots / f"{name}-390.png"), full_page=True)
    # Nothing touches the screen's edge, and nothing is wider than the phone.
    for selector in ("h1", "article p >> nth=0"):
        box = page.locator(selector).first.bounding_box()
        assert box and box["x"] >= EDGE and box["x"] + box["width"] <= PHONE["width"] - EDGE, (name, selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    # The site's menu: the drawer opens from the header and leads to every section.
    page.locator('label.md-header__button[for="__drawer"]').click()
    drawer = page.locator("nav.md-nav--primary")
    for label in ("Diensten", "Checklists", "Blog", "Over mij", "Contact"):
        expect(drawer.get_by_text(label, exact=True).first).to_be_visible()


def test_every_page_the_app_draws_sits_in_the_site_shell_on_a_phone(browser, live_server, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    base = live_server.url

    page.goto(base + "/contact/")
    submit_without_browser_checks(page, "/api/contact", {"name": "Céline", "email": "geen-adres"})
    expect(page.get_by_text("Dit lijkt geen geldig e-mailadres.")).to_be_visible()
    assert_in_the_site_shell(page, "Stuur een bericht", artifacts, "app-form-error")

    page.goto(base + "/checklists/teams/")
    submit_without_browser_checks(page, "/api/checklists/teams",
                                  {"name": "Céline", "email": "celine@example.be"}, drop_token=True)
    expect(page.get_by_text("Bijna klaar")).to_be_visible()
    assert_in_the_site_shell(page, "Vraag de checklist teams aan", artifacts, "app-bijna-klaar")

    page.goto(base + "/download/kapot")
    assert_in_the_site_shell(page, "Deze link werkt niet", artifacts, "app-link-werkt-niet")

    page.goto(base + "/api/bestaat-niet")
    assert_in_the_site_shell(page, "Pagina niet gevonden", artifacts, "app-404")

    for _ in range(30):  # download_per_ip: 30 per 10 minutes
        page.request.get(base + "/download/kapot")
    response = page.goto(base + "/download/kapot")
    assert response and response.status == 429
    assert_in_the_site_shell(page, "Even geduld", artifacts, "app-429")
    context.close()


def test_the_thank_you_pages_repeat_the_address_the_mail_went_to(browser, live_server) -> None:
    address = "o'brien+nieuws@example.be"
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server.url + "/checklists/leiderschap/")
    page.get_by_label("Je naam").fill("Seán <b>O'Brien</b>")
    page.get_by_label("Je e-mailadres").fill(address)
    page.get_by_label("Ik heb de privacyverklaring gelezen").check()
    page.get_by_role("button", name="Stuur mij de checklist leiderschap").click()
    page.wait_for_url("**/checklists/bedankt/")
    assert "brien" not in page.url and "%40" not in page.url
    expect(page.locator("[data-sent-to]")).to_have_text(f"We stuurden die e-mail naar {address}. Klopt dat adres "
                                                        "niet? Vraag de checklist dan gewoon opnieuw aan.")

    page.goto(live_server.url + "/contact/")
    page.get_by_label("Je naam").fill("Seán")   # the first focus fetches the token and the start time
    expect(page.locator("input[name=started]")).not_to_have_value("")
    page.get_by_label("Je e-mailadres").fill("sean@example.be")
    page.get_by_label("Waarover gaat je vraag?").select_option("andere")
    page.get_by_label("Je bericht").fill("Dag An, mag ik je eens bellen?")
    page.get_by_label("Ik heb de privacyverklaring gelezen").check()
    page.wait_for_timeout(3100)  # contact_min_seconds: a person takes a moment to type
    page.get_by_role("button", name="Verstuur je bericht").click()
    page.wait_for_url("**/contact/bedankt/")
    expect(page.locator("[data-sent-to] strong")).to_have_text("sean@example.be")
    context.close()

    # A new visitor (another session) sees no address at all.
    other = browser.new_context(viewport=PHONE).new_page()
    other.goto(live_server.url + "/checklists/bedankt/")
    other.wait_for_load_state("networkidle")
    expect(other.locator("[data-sent-to]")).to_be_hidden()
    other.context.close()
