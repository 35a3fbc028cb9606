"""The form classes: one source for fields, labels, limits and Dutch messages.

The same classes validate a POST and, at build time, render the static forms on
the site (see `leadform.render`), so `required`, `maxlength` and `type=email`
in the HTML always match what the server accepts.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, Regexp, ValidationError

from site_config import load_settings

NAME_MAX = 100
EMAIL_MAX = 254
PHONE_MAX = 40
NO_CONTROL = Regexp(r"^[^\x00-\x1f\x7f]*$", message="Gebruik geen speciale tekens of regeleinden.")
EMAIL = Email(message="Dit lijkt geen geldig e-mailadres. Controleer het even.", check_deliverability=False,
              granular_message=False)


def lower_strip(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class PersonForm(FlaskForm):
    """Who is asking, and their acknowledgement of the privacy policy: common to every form."""

    class Meta:
        # CSRFProtect (extensions.py) checks every POST's token before any view runs. The form's own
        # token field would check it again and sign a fresh token per request that no template uses
        # (the pages pass `csrf_token` themselves): a sixth of a checklist request's CPU.
        csrf = False

    name = StringField("Je naam", filters=[strip], validators=[
        DataRequired("Vul je naam in."), Length(max=NAME_MAX, message="Je naam is te lang."), NO_CONTROL])
    email = EmailField("Je e-mailadres", filters=[lower_strip], validators=[
        DataRequired("Vul je e-mailadres in."), Length(max=EMAIL_MAX, message="Dit e-mailadres is te lang."),
        NO_CONTROL, EMAIL])
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
    message = TextAreaField("Je bericht", filters=[strip], validators=[
        DataRequired("Schrijf je bericht."),
        Length(max=load_settings().limits.message_max_length,
               message="Je bericht is te lang: hou het onder %(max)d tekens.")])
    # Spam traps: a field people never see, and a signed render time (checked in contact.py).
    website = StringField("Laat dit veld leeg", validators=[Optional()])
    started = HiddenField()

    def validate_subject(self, field) -> None:
        if field.data not in SUBJECTS:
            raise ValidationError("Kies een onderwerp.")
