"""Static HTML of the app's forms for the site's pages, rendered by the app's own templates."""

from __future__ import annotations

from site_config import Checklist


def checklist_form_html(checklist: Checklist) -> str:
    from leadform.forms import static_form_html

    return static_form_html("checklist", checklist=checklist)


def contact_form_html() -> str:
    from leadform.forms import static_form_html

    return static_form_html("contact")
