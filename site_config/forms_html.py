"""Static HTML of the app's forms for the site's pages, rendered by the app's own templates."""

from __future__ import annotations

from site_config import Checklist


def checklist_form_html(checklist: Checklist) -> str:
    from leadform.forms import static_form_html

    return static_form_html("checklist", checklist=checklist)


def contact_form_html() -> str:
    from leadform.forms import static_form_html

    return static_form_html("contact")


def scorecard_form_html(checklist: Checklist) -> str:
    """The self-assessment form (leadform/scorecards.py answers it) and the script that makes it step by step."""
    from leadform.forms import static_form_html

    form = static_form_html("scorecard", checklist=checklist, answers={}, errors={},
                            total=len(checklist.statements))
    # No blank line inside: Markdown would end the HTML block there and read the rest as text.
    form = "\n".join(line for line in form.splitlines() if line.strip())
    return form + '\n<div class="coach-scorecard__result" data-scorecard-result></div>\n' \
        '<script src="/assets/javascripts/scorecard.js" defer></script>'
