"""A visitor in a real Chromium: lost on an old link, finds the way; the home page looks like a coach's."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_a_visitor_on_a_missing_page_reaches_the_contact_form(browser, live_server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    response = page.goto(live_server.url + "/diensten/coaching-oud-adres/")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Deze pagina bestaat niet (meer)"

    page.locator("label", has_text="Zoeken op de site").click()
    assert page.get_by_role("textbox", name="Zoeken").is_visible()
    page.keyboard.press("Escape")

    page.locator("article").get_by_role("link", name="Neem contact op").click()
    page.wait_for_url("**/contact/")
    assert page.get_by_role("heading", level=1).inner_text() == "Contact"
    assert page.locator("form.coach-form textarea").is_visible()
    context.close()


def test_four_service_cards_stand_two_by_two(browser, static_server: str) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(static_server + "/")
    boxes = [card.bounding_box() for card in page.locator(".coach-services > ul > li").all()]
    assert len(boxes) == 4
    rows = sorted({round(b["y"]) for b in boxes})
    assert len(rows) == 2, f"two rows of two, no orphan: {boxes}"
    assert abs(boxes[0]["width"] - boxes[3]["width"]) < 2
    portrait = page.locator("img.coach-hero__photo")
    assert portrait.is_visible() and portrait.evaluate("img => img.complete && img.naturalWidth > 0")
    assert portrait.evaluate("img => img.currentSrc").endswith(".avif")
    context.close()
