"""Static HTML of the app's forms, rendered at build time (filled in with the lead-capture app)."""

from __future__ import annotations


def checklist_form_html(checklist, page_url: str) -> str:
    return '<p class="coach-form-soon">Het aanvraagformulier volgt binnenkort.</p>'


def contact_form_html(page_url: str) -> str:
    return '<p class="coach-form-soon">Het contactformulier volgt binnenkort.</p>'
