"""Error pages: Dutch for the visitor, one English line in the log, never a traceback.

A form posted without a valid CSRF token (a static page without JavaScript, or
an old tab) is shown again by the app, filled in, with a fresh token: one more
click and nothing the visitor typed is lost.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from leadform.web import limiter, render_page
from site_config import load_settings

log = logging.getLogger("leadform.errors")

MESSAGES = {
    400: ("Dat lukte niet", "Je aanvraag was niet volledig of niet geldig. Ga terug en probeer het opnieuw."),
    404: ("Pagina niet gevonden", "Deze pagina bestaat niet (meer)."),
    405: ("Dat kan zo niet", "Deze pagina is er alleen om een formulier te versturen."),
    413: ("Te veel tekst", "Je bericht is te groot om te versturen. Maak het korter en probeer opnieuw."),
    415: ("Dat kan zo niet", "Dit formulier kon niet gelezen worden. Verstuur het vanaf de pagina op de website."),
    429: ("Even geduld", "Je hebt dit formulier te vaak na elkaar verstuurd."),
    500: ("Er ging iets mis", "Er ging bij ons iets mis. Probeer het later opnieuw."),
    503: ("Even niet beschikbaar", "We kunnen je aanvraag nu niet verwerken. Probeer het later opnieuw."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/consent") or request.path.startswith("/api/analytics") \
        or request.accept_mimetypes.best == "application/json"


def _retry_after(error: HTTPException) -> int | None:
    """Seconds until the breached limit lets this visitor in again (RFC 9110 Retry-After)."""
    header = error.get_response().headers.get("Retry-After")
    if header and header.isdigit():
        return int(header)
    try:
        current = limiter.current_limit
        return max(1, math.ceil(current.reset_at - time.time())) if current else None
    except Exception:  # the limiter's storage went away meanwhile: fall back to the default wording
        return None


def when_again(seconds: int | None) -> str:
    """'over 7 minuten', 'over 1 minuut', 'over 5 uur' (the Retry-After header keeps the exact seconds)."""
    minutes = max(1, round(seconds / 60)) if seconds else 10
    if minutes <= 90:
        return f"over {minutes} {'minuut' if minutes == 1 else 'minuten'}"
    return f"over {math.ceil(minutes / 60)} uur"


def handle_http(error: HTTPException):
    status = error.code or 500
    title, text = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
    log.info("http error status=%s method=%s endpoint=%s", status, request.method, request.endpoint)
    paragraphs = [text]
    headers = {}
    allow = error.get_response().headers.get("Allow")
    if allow:  # a 405 names the methods that do work
        headers["Allow"] = allow
    if status == 429:
        retry = _retry_after(error)
        paragraphs.append(f"Probeer het {when_again(retry)} opnieuw. Wat je invulde, kan je met de "
                          "terugknop van je browser terugvinden.")
        headers["Retry-After"] = str(retry or 600)
    if _wants_json():
        return jsonify(error=status), status, headers
    html, code = render_page("message_page.html", status, title=title, paragraphs=paragraphs,
                             links=[("/", "Naar de startpagina")])
    return html, code, headers


def handle_csrf(error: CSRFError):
    log.info("csrf token missing or invalid endpoint=%s", request.endpoint)
    notice = "Bijna klaar: kijk je gegevens na en verstuur het formulier nog één keer."
    slug = (request.view_args or {}).get("slug")
    if request.endpoint == "checklists.request_checklist" and slug in load_settings().checklist_slugs:
        from leadform.checklists import checklist_or_404, form_page
        from leadform.forms import ChecklistForm

        return form_page(ChecklistForm(), checklist_or_404(slug), 400, notice=notice)
    if request.endpoint == "scorecards.request_report" and slug in load_settings().checklist_slugs:
        from leadform.scorecards import report_again

        return report_again(slug, notice)
    if request.endpoint == "contact.contact":
        from leadform.contact import form_page
        from leadform.forms import ContactForm

        return form_page(ContactForm(), 400, notice=notice, resubmit=True)
    return handle_http(error)


def _server_error(status: int, event: str, error: Exception):
    log.error("%s endpoint=%s type=%s", event, request.endpoint, type(error).__name__)
    if _wants_json():
        return jsonify(error=status), status
    title, text = MESSAGES[status]
    return render_page("message_page.html", status, title=title, paragraphs=[text])


def handle_unexpected(error: Exception):
    return _server_error(500, "unhandled error", error)


def handle_database(error: SQLAlchemyError):
    """The database is away (read-only, full, locked too long): a 503 that says to try again later."""
    return _server_error(503, "database unavailable", error)


def init_app(app: Flask) -> None:
    app.register_error_handler(SQLAlchemyError, handle_database)
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)
