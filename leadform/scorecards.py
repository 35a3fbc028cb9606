"""Score yourself on a checklist page, and get your personal report by mail.

- `POST /api/scorecard/<slug>`: the page's answers in, the result out (a whole page without
  JavaScript; with the header `X-Scorecard: fragment`, only the result's HTML for scorecard.js).
  Nothing about the visitor is stored: a completed assessment only adds to anonymous weekly totals
  per checklist and theme. The form carries no CSRF token: the request changes nothing of anyone's
  (no session, no personal data), and a token would cost a visitor without JavaScript a second post.
- `POST /api/scorecard/<slug>/rapport`: name, address and the answers (hidden in the result's form):
  the same double opt-in as the checklist (checklists.save_lead, a signed link valid
  `link_valid_days`); the answers are stored with the lead and go with it.
- `GET /download/rapport/<token>`: the personal PDF, made on the spot, and the address confirmed.
- `flask --app leadform scorecards stats` (`make scorecards`): the coach's weekly view, in Dutch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import time
from typing import Any

import click
from flask import Blueprint, abort, current_app, redirect, render_template, request
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadform import db, mail, outbox
from leadform.checklists import save_lead
from leadform.config import signing_keys
from leadform.forms import PersonForm, form_post
from leadform.models import Assessment, AssessmentTotal, utcnow
from leadform.scoring import Result, answer_key, answer_keys, chart_svg, dutch_number, parse_answers, score
from leadform.web import csrf, per_email, per_ip, render_page
from site_config import Checklist, load_settings

bp = Blueprint("scorecards", __name__)
log = logging.getLogger("leadform.scorecards")
REPORT_SENT = "/checklists/rapport-verstuurd/"
REPORT_KIND = "scorecard_report"
UNAVAILABLE = ("Er ging iets mis bij het bewaren van je aanvraag. Er is niets verloren: je antwoorden en "
               "gegevens staan hieronder nog. Probeer het later opnieuw.")


def checklist_or_404(slug: str) -> Checklist:
    try:
        return load_settings().checklist(slug)
    except KeyError:
        abort(404)


# -- what the pages show ---------------------------------------------------------------------------------

def form_context(checklist: Checklist, answers: dict[str, int] | None = None,
                 errors: dict[str, str] | None = None) -> dict[str, Any]:
    """What templates/forms/scorecard.html needs: the static page and the app's page alike."""
    return {"checklist": checklist, "answers": answers or {}, "errors": errors or {},
            "total": len(checklist.statements)}


def result_context(result: Result, form: PersonForm | None = None) -> dict[str, Any]:
    """What templates/scorecard/result.html needs."""
    return {"result": result, "checklist": result.checklist, "chart": chart_svg(result),
            "answers": {answer_key(d, n): value for d, theme in zip(result.checklist.dimensions, result.themes,
                                                                   strict=True)
                        for n, value in enumerate(theme.answers, start=1)},
            "form": form or PersonForm(formdata=None), "csrf_token": generate_csrf(),
            "pdf_page": f"/checklists/{result.checklist.slug}/#vraag-je-checklist-aan",
            "dutch_number": dutch_number, "days": valid_days(), "coach_name": load_settings().coach.name}


def result_page(result: Result, status: int = 200, form: PersonForm | None = None, notice: str | None = None):
    return render_page("scorecard_page.html", status, title=f"{result.checklist.title.title()}: je resultaat",
                       notice=notice, **result_context(result, form))


def form_again(checklist: Checklist, answers: dict[str, int], errors: dict[str, str]):
    return render_page("scorecard_page.html", 400, title=f"Vul de {checklist.title.title()} verder aan",
                       form_only=True, **form_context(checklist, answers, errors))


# -- anonymous totals ------------------------------------------------------------------------------------

def week_of(moment: dt.datetime) -> dt.date:
    """The Monday of a moment's week (UTC, as `consent stats` counts)."""
    day = moment.date()
    return day - dt.timedelta(days=day.weekday())


def count_completed(s: Session, result: Result, now: dt.datetime | None = None) -> None:
    """Add one completed assessment to the week's totals: per theme a count, answers and their sum.
    One upsert per theme, so concurrent visitors add up instead of overwriting each other."""
    _add_to_totals(s, result, now, completed=1, report=0)


def count_report(s: Session, result: Result, now: dt.datetime | None = None) -> None:
    """Add one report request to the week's totals (the anonymous count stays when the lead goes)."""
    _add_to_totals(s, result, now, completed=0, report=1)


def _add_to_totals(s: Session, result: Result, now: dt.datetime | None, completed: int, report: int) -> None:
    week = week_of(now or utcnow())
    insert = db.dialect_insert(s.get_bind().dialect.name, AssessmentTotal)
    for theme in result.themes:
        row = insert.values(week=week, checklist=result.checklist.slug, theme=theme.id, completed=completed,
                            answers=len(theme.answers) * completed, points=sum(theme.answers) * completed,
                            reports=report)
        s.execute(row.on_conflict_do_update(
            index_elements=[AssessmentTotal.week, AssessmentTotal.checklist, AssessmentTotal.theme],
            set_={"completed": AssessmentTotal.completed + row.excluded.completed,
                  "answers": AssessmentTotal.answers + row.excluded.answers,
                  "points": AssessmentTotal.points + row.excluded.points,
                  "reports": AssessmentTotal.reports + row.excluded.reports}))


# -- report links ----------------------------------------------------------------------------------------

def _links() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_keys(current_app.config), salt="report-link")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_days() -> int:
    return load_settings().limits.link_valid_days


def report_mail(name: str, email: str, checklist: Checklist) -> tuple[str, mail.Mail]:
    """A new link secret and the mail that carries it; only the secret's hash is stored."""
    secret = secrets.token_urlsafe(24)
    base = current_app.config.get("PUBLIC_URL") or load_settings().site.url
    link = base.rstrip("/") + "/download/rapport/" + _links().dumps(secret)
    return secret, mail.scorecard_report(name, email, checklist, link)


# -- routes ----------------------------------------------------------------------------------------------

@bp.post("/api/scorecard/<slug>")
@csrf.exempt
@per_ip("form_per_ip", scope="form-scorecard")
@form_post
def score_answers(slug: str):
    checklist = checklist_or_404(slug)
    answers, errors = parse_answers(checklist, request.form)
    fragment = request.headers.get("X-Scorecard") == "fragment"
    if errors:
        log.info("scorecard incomplete checklist=%s open=%s", slug, len(errors))
        if fragment:  # scorecard.js checks before it posts: this is a tampered or stale page
            abort(400)
        return form_again(checklist, answers, errors)
    result = score(checklist, answers)
    s = db.session()
    try:
        with s.begin():
            count_completed(s, result)
    except SQLAlchemyError as exc:  # the visitor still gets their result; only the count is lost
        log.error("scorecard totals not counted checklist=%s error=%s", slug, type(exc).__name__)
    log.info("scorecard completed checklist=%s weakest=%s", slug, result.weakest.id)
    if fragment:
        return render_template("scorecard/result.html", **result_context(result)), 200
    return result_page(result)


@bp.post("/api/scorecard/<slug>/rapport")
@per_ip("form_per_ip", scope="form-report")
@per_email(scope="email-report")
@form_post
def request_report(slug: str):
    checklist = checklist_or_404(slug)
    answers, errors = parse_answers(checklist, request.form)
    if errors:
        log.info("report request without complete answers checklist=%s open=%s", slug, len(errors))
        return form_again(checklist, answers, errors)
    result = score(checklist, answers)
    form = PersonForm()
    if not form.validate():
        log.info("report request invalid checklist=%s fields=%s", slug, ",".join(sorted(form.errors)))
        return result_page(result, 400, form)
    secret, message = report_mail(form.name.data, form.email.data, checklist)
    s = db.session()
    try:
        with s.begin():
            lead_id, is_new, _ = save_lead(s, slug, form.email.data, form.name.data, False)
            queued = _store_report(s, lead_id, checklist, answers, secret, message)
            count_report(s, result)
    except SQLAlchemyError as exc:
        log.error("report request not stored checklist=%s error=%s", slug, type(exc).__name__)
        return result_page(result, 503, form, notice=UNAVAILABLE)
    log.info("report requested checklist=%s lead_id=%s new=%s mail_queued=%s", slug, lead_id, is_new, queued)
    if queued:
        outbox.kick()
    return redirect(REPORT_SENT, code=303)


def _store_report(s: Session, lead_id: int, checklist: Checklist, answers: dict[str, int], secret: str,
                  message: mail.Mail) -> bool:
    """Store the answers with their link and queue the mail, unless the address had its mails for today
    (the same answer as ever: the visitor is never told whether an address is known)."""
    if not outbox.queue_for_visitor(s, message, lead_id=lead_id):  # per mailbox, every form together
        return False
    ordered = {key: answers[key] for key in answer_keys(checklist)}
    s.add(Assessment(lead_id=lead_id, checklist=checklist.slug, answers=ordered, created_at=utcnow(),
                     token_hash=hash_secret(secret), expires_at=utcnow() + dt.timedelta(days=valid_days()),
                     use_count=0))
    return True


def report_again(slug: str, notice: str):
    """A report request whose CSRF token was missing or stale: its result and form again, filled in."""
    checklist = checklist_or_404(slug)
    answers, errors = parse_answers(checklist, request.form)
    if errors:
        return form_again(checklist, answers, errors)
    return result_page(score(checklist, answers), 400, PersonForm(), notice=notice)


@bp.get("/download/rapport/<token>")
@per_ip("download_per_ip", scope="download")
def download_report(token: str):
    try:
        secret = _links().loads(token, max_age=valid_days() * 86400)
    except SignatureExpired:
        return _expired()
    except BadSignature:
        return _invalid()
    s = db.session()
    with s.begin():
        row = s.scalars(select(Assessment).where(Assessment.token_hash == hash_secret(secret))).first()
        if row is None:
            return _invalid()
        if row.expires_at < utcnow():
            return _expired()
        lead = row.lead
        checklist = load_settings().checklist(row.checklist)
        from leadform.pdf import render_report_pdf  # reportlab only where a PDF is made

        result = score(checklist, row.answers)
        started = time.perf_counter()
        pdf = render_report_pdf(result, name=lead.name, day=row.created_at.date())
        log.info("report pdf rendered bytes=%s ms=%.0f", len(pdf), (time.perf_counter() - started) * 1000)
        newly_confirmed = request.method == "GET" and lead.confirmed_at is None
        first_use = request.method == "GET" and row.first_used_at is None
        if request.method == "GET":
            now = utcnow()
            row.use_count += 1
            row.first_used_at = row.first_used_at or now
        if newly_confirmed:  # double opt-in, as for the checklist
            lead.confirmed_at = now
            if lead.newsletter_requested:
                lead.newsletter_consent_at = now
        if first_use:  # the coach learns this prospect's scores, once per report
            notice = mail.coach_new_report(lead, result, row.created_at)
            if notice:
                outbox.queue(s, notice)
    log.info("report downloaded lead_id=%s confirmed_now=%s", lead.id, newly_confirmed)
    if first_use:
        outbox.kick()
    response = current_app.response_class(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="rapport-{checklist.slug}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _expired():
    settings = load_settings()
    return render_page("message_page.html", 410, title="Deze link is verlopen", paragraphs=[
        f"Links naar een persoonlijk rapport blijven {valid_days()} dagen geldig, en deze is ouder.",
        "Vul de checklist gerust opnieuw in: zo zie je meteen ook of er intussen iets veranderd is.",
    ], links=[(f"/checklists/{c.slug}/", f"Vul de {c.title} in") for c in settings.checklists])


def _invalid():
    settings = load_settings()
    return render_page("message_page.html", 404, title="Deze link werkt niet", paragraphs=[
        "Deze link naar je rapport is onvolledig of niet meer geldig. Misschien werd hij bij het kopiëren "
        "afgebroken.", "Vul de checklist opnieuw in en vraag je rapport nog eens aan.",
    ], links=[(f"/checklists/{c.slug}/", f"Vul de {c.title} in") for c in settings.checklists])


# -- the coach's view ------------------------------------------------------------------------------------

def weekly(s: Session, weeks: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Per week and checklist: completed assessments, report requests, team rounds started; and the
    average per theme over those weeks. Team rounds count once their table (`team_rounds`) exists."""
    first = week_of(now or utcnow()) - dt.timedelta(weeks=weeks - 1)
    since = dt.datetime.combine(first, dt.time())
    slugs = load_settings().checklist_slugs
    rows: dict[tuple[dt.date, str], dict[str, int]] = {
        (first + dt.timedelta(weeks=i), slug): {"completed": 0, "reports": 0, "rounds": 0}
        for i in range(weeks) for slug in slugs}
    themes: dict[tuple[str, str], list[int]] = {}
    for week, checklist, theme, completed, answers, points, reports in s.execute(
            select(AssessmentTotal.week, AssessmentTotal.checklist, AssessmentTotal.theme,
                   AssessmentTotal.completed, AssessmentTotal.answers, AssessmentTotal.points,
                   AssessmentTotal.reports).where(AssessmentTotal.week >= first)):
        if (week, checklist) in rows:  # every theme row counts the same events: take the largest
            row = rows[week, checklist]
            row["completed"], row["reports"] = max(row["completed"], completed), max(row["reports"], reports)
        sums = themes.setdefault((checklist, theme), [0, 0])
        sums[0] += answers
        sums[1] += points
    has_rounds = inspect(s.connection()).has_table("team_rounds")
    if has_rounds:
        # A round counts as started when its leader confirmed it (leadform/teams.py), not when asked for.
        for created_at, checklist in s.execute(text(
                "SELECT confirmed_at, checklist FROM team_rounds WHERE confirmed_at >= :since"), {"since": since}):
            if isinstance(created_at, str):
                created_at = dt.datetime.fromisoformat(created_at)
            if (week_of(created_at), checklist) in rows:
                rows[week_of(created_at), checklist]["rounds"] += 1
    averages = {key: points / answers for key, (answers, points) in themes.items() if answers}
    return {"rows": rows, "averages": averages, "has_rounds": has_rounds, "first": first}


@bp.cli.command("stats")
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(1, 520),
              help="How many weeks, this one included.")
def stats(weeks: int) -> None:
    """Completed self-assessments per week and checklist, report requests, team rounds, theme averages."""
    with db.transaction() as s:
        data = weekly(s, weeks)
    settings = load_settings()
    rounds = data["has_rounds"]
    click.echo(f"Ingevulde checklists per week (week begint op maandag, UTC), laatste {weeks} weken")
    click.echo(f"{'week':<10} {'checklist':<13} {'ingevuld':>9} {'rapport gevraagd':>17}"
               + (f" {'teamrondes':>11}" if rounds else ""))
    totals = {"completed": 0, "reports": 0, "rounds": 0}
    for (start, slug), counts in data["rows"].items():
        for key in totals:
            totals[key] += counts[key]
        if not any(counts.values()):
            continue
        year, week, _ = start.isocalendar()
        click.echo(f"{year}-W{week:02d}   {slug:<13} {counts['completed']:>9} {counts['reports']:>17}"
                   + (f" {counts['rounds']:>11}" if rounds else ""))
    click.echo(f"{'totaal':<24} {totals['completed']:>9} {totals['reports']:>17}"
               + (f" {totals['rounds']:>11}" if rounds else ""))
    click.echo("")
    click.echo("Gemiddelde score per thema (schaal van 1 tot 5)")
    for checklist in settings.checklists:
        click.echo(f"{checklist.title}:")
        for dimension in checklist.dimensions:
            average = data["averages"].get((checklist.slug, dimension.id))
            shown = dutch_number(average) if average is not None else "-"
            click.echo(f"  {dimension.title:<32} {shown:>5}")
