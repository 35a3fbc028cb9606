"""The form classes: one source for fields, labels, limits and Dutch messages.

The same classes validate a POST and, at build time, render the static forms on the site
(`static_form_html`), so `required`, `maxlength` and `type=email` in the HTML always match what
the server accepts. Also here: what a form post may carry (`form_post`), and the contact form's
signed start time, its spam trap.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import Flask, abort, current_app, render_template, request, session
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.datastructures import ImmutableMultiDict
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from leadform.config import signing_keys
from leadform.mail import header_address
from site_config import load_settings

NAME_MAX = 100
EMAIL_MAX = 254
PHONE_MAX = 40
MOMENT_MAX = 200
NO_CONTROL = Regexp(r"^[^\x00-\x1f\x7f]*$", message="Gebruik geen speciale tekens of regeleinden.")
# A name is printed in the coach's mails: besides control characters (C0 and C1, NEL among them) no line
# or paragraph separator and no bidirectional or zero-width control, which could fake a line or turn text around.
NAME_TEXT = Regexp("^[^\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]*$",
                   message="Gebruik geen speciale tekens of regeleinden in je naam.")
# Line breaks and tabs are text; other control characters are not, and PostgreSQL cannot store NUL.
TEXT_ONLY = Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
                   message="Je bericht bevat een onzichtbaar teken dat we niet kunnen bewaren. Haal het weg.")
INVALID_EMAIL = "Dit lijkt geen geldig e-mailadres. Controleer het even."
NON_ASCII_EMAIL = ("Gebruik een e-mailadres met alleen gewone letters, cijfers en leestekens vóór de @: "
                   "niet elke mailserver kan een adres met andere tekens bereiken.")


def deliverable_email(form: object, field: object) -> None:
    """An address our mail can reach as written (email-validator, without a DNS lookup). Refused:
    anything outside ASCII before the @, since a server without SMTPUTF8 would bounce it only after
    hours of retries (a domain in Unicode is fine: it travels in its punycode form); and any address
    whose To: header a mail program would read as another address, such as an encoded word
    (=?utf-8?q?…?=) that decodes to someone else or to a line break."""
    value = field.data or ""
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            raise ValidationError(INVALID_EMAIL) from None
        raise ValidationError(NON_ASCII_EMAIL) from None
    try:
        header_address(value)
    except ValueError:
        raise ValidationError(INVALID_EMAIL) from None


def lower_strip(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class PersonForm(FlaskForm):
    """Who is asking, and their acknowledgement of the privacy policy: common to every form."""

    class Meta:
        # CSRFProtect (web.py) checks every POST's token before any view runs; the pages pass
        # `csrf_token` themselves, so the form's own token field would only check it twice.
        csrf = False

    name = StringField("Je naam", filters=[strip], validators=[
        DataRequired("Vul je naam in."), Length(max=NAME_MAX, message="Je naam is te lang."), NAME_TEXT])
    email = EmailField("Je e-mailadres", filters=[lower_strip], validators=[
        DataRequired("Vul je e-mailadres in."), Length(max=EMAIL_MAX, message="Dit e-mailadres is te lang."),
        NO_CONTROL, deliverable_email])
    privacy = BooleanField("Ik heb de privacyverklaring gelezen en ga ermee akkoord.", validators=[
        InputRequired("Duid aan dat je de privacyverklaring gelezen hebt.")])


class ChecklistForm(PersonForm):
    newsletter = BooleanField("Stuur me ook af en toe de nieuwsbrief (los van de checklist, altijd opzegbaar).",
                              default=False)


SUBJECTS = {"teamcoaching": "Teamcoaching", "leiderschapscoaching": "Leiderschapscoaching",
            "opleiding-klantgerichtheid": "Opleiding klantgerichtheid",
            "samenwerking-tussen-teams": "Samenwerking tussen teams", "andere": "Iets anders"}


def subject_choices() -> list[SelectChoice]:
    return [SelectChoice("", "Kies een onderwerp")] + [SelectChoice(k, v) for k, v in SUBJECTS.items()]


class ContactForm(PersonForm):
    phone = TelField("Je telefoonnummer (niet verplicht)", filters=[strip], validators=[
        Optional(), Length(max=PHONE_MAX, message="Dit telefoonnummer is te lang."),
        Regexp(r"^[0-9+()./ -]*$", message="Gebruik alleen cijfers, spaties en + ( ) . / -.")])
    subject = SelectField("Waarover gaat je vraag?", choices=subject_choices(), validate_choice=False, validators=[
        DataRequired("Kies een onderwerp.")])
    moment = StringField("Wanneer past een kennismakingsgesprek je? (niet verplicht)", filters=[strip], validators=[
        Optional(), Length(max=MOMENT_MAX, message="Hou het korter: een dag en een dagdeel volstaan."), NO_CONTROL])
    message = TextAreaField("Je bericht", filters=[strip], validators=[
        DataRequired("Schrijf je bericht."),
        Length(max=load_settings().limits.message_max_length,
               message="Je bericht is te lang: hou het onder %(max)d tekens."), TEXT_ONLY])
    # Spam traps: a field people never see, and a signed render time (checked in contact.py).
    website = StringField("Laat dit veld leeg", validators=[Optional()])
    started = HiddenField()

    def validate_subject(self, field) -> None:
        if field.data not in SUBJECTS:
            raise ValidationError("Kies een onderwerp.")


# -- what a form post may carry ----------------------------------------------------------------------------

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def form_post(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a view that reads an HTML form. Flask-WTF also reads a JSON body and uploaded
    files into a form's fields, so a string field could receive a number, an object or a file (a 500).
    The site's forms send urlencoded or multipart text: another body type is refused (415), and file
    parts, which no form has, are ignored like any other unknown field."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype and request.mimetype not in FORM_TYPES:
            abort(415)
        if request.mimetype == "multipart/form-data" and request.files:
            request.files = ImmutableMultiDict()
        return view(*args, **kwargs)

    return wrapper


# -- the contact form's start time -------------------------------------------------------------------------

STARTED_MAX_AGE = 2 * 3600  # seconds: a form open longer is shown again to be sent once more


def _started_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(current_app.config), salt="form-started")


def _session_tag() -> str:
    """Binds a start time to the visitor's session: a digest of its CSRF secret ('' before it has one,
    or with CSRF protection off, as some tests run)."""
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return ""
    secret = session.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    return hashlib.sha256(str(secret).encode()).hexdigest()[:16] if secret else ""


def issue_started(backdate: float = 0) -> str:
    """A signed 'form shown at' time, for this session only: bots that submit faster than a person can
    are ignored, and a token copied from another session or older than STARTED_MAX_AGE does not count.
    Call after generate_csrf(), which gives the session its secret."""
    return _started_serializer().dumps([time.time() - backdate, _session_tag()])


def seconds_since(token: str | None) -> float | None:
    """Seconds since the token was issued, or None when it is missing, forged, from another session
    or expired."""
    if not token:
        return None
    try:
        started, tag = _started_serializer().loads(token)
        elapsed = time.time() - float(started)
    except (BadSignature, TypeError, ValueError):
        return None
    if tag != _session_tag() or elapsed > STARTED_MAX_AGE:
        return None
    return elapsed


# -- the static forms of the site ------------------------------------------------------------------------

@cache
def _renderer() -> Flask:
    app = Flask("leadform", template_folder="templates")
    app.config.update(SECRET_KEY="static-build", WTF_CSRF_ENABLED=False)  # noqa: S106 - renders HTML only, signs nothing
    return app


def static_form_html(kind: str, **context: object) -> str:
    """The form of one flow as static HTML (the build calls this), its CSRF token left for forms.js to fill."""
    with _renderer().test_request_context():
        form = {"checklist": ChecklistForm, "contact": ContactForm}.get(kind, PersonForm)()
        return render_template(f"forms/{kind}.html", form=form, csrf_token="", started="", **context)
