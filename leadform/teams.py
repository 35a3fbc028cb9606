"""Team rounds: a team leader lets the whole team score a checklist, anonymously.

- `/team/<slug>/`: the leader asks for a round (name, address, privacy consent). It is stored
  unconfirmed and its link mailed: the same double opt-in as a checklist request.
- `/team/leider/<token>`: the leader's page. Its first GET confirms the address, opens the round for
  `team_round_open_days` and tells the coach; it shows the link to share, how many answered, and the
  team report once the round is closed. `…/sluiten` closes it early (from MINIMUM answers on).
- `/team/r/<token>`: a member's form and their own result; no name, no address, no cookie.

Anonymity by construction: an answer is its round and its scores, under a random key (the hash of
its form's single-use token), with no time. The report shows aggregates only (per theme the average
and the lowest and highest member average, per statement how many chose each score), only from
MINIMUM answers, and only once the round is closed: a report that changed with every answer would
show, by difference, what the last member answered.

Links carry the round's random id signed with itsdangerous, a salt per role, so the share link never
opens the leader's page; they work as long as the round exists (the retention purge ends it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from html import escape
from types import SimpleNamespace

from flask import Blueprint, abort, current_app, redirect, render_template, request
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadform import db, mail, outbox
from leadform.config import signing_keys
from leadform.forms import PersonForm, form_post
from leadform.models import OutboxMail, TeamAnswer, TeamRound, utcnow
from leadform.scoring import LEVEL_LABELS, Result, answer_keys, chart_svg, dutch_number, parse_answers, score
from leadform.web import csrf, per_email, per_ip, render_page
from site_config import Checklist, load_settings

bp = Blueprint("teams", __name__)
log = logging.getLogger("leadform.teams")
MINIMUM = 3          # answers before a report shows anything
FORM_FIELD = "formulier"   # the hidden field with the form's single-use token
PATHS = {"leader": "/team/leider/", "member": "/team/r/"}
MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
          "oktober", "november", "december")
UNAVAILABLE = ("Er ging iets mis bij het bewaren. Er is niets verloren: wat je invulde, staat hieronder nog. "
               "Probeer het later opnieuw.")


def checklist_or_404(slug: str) -> Checklist:
    try:
        return load_settings().checklist(slug)
    except KeyError:
        abort(404)


def dutch_date(moment: dt.datetime) -> str:
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def still_needed(count: int) -> str:
    """'nog 1 antwoord nodig', 'nog 2 antwoorden nodig'."""
    missing = MINIMUM - count
    return f"nog {missing} {'antwoord' if missing == 1 else 'antwoorden'} nodig"


# -- links -----------------------------------------------------------------------------------------------

def _signer(role: str) -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(current_app.config), salt=f"team-{role}")


def link(role: str, round_id: str) -> str:
    base = current_app.config.get("PUBLIC_URL") or load_settings().site.url
    return base.rstrip("/") + PATHS[role] + _signer(role).dumps(round_id)


def find_round(s: Session, role: str, token: str, lock: bool = False) -> TeamRound | None:
    """The round a signed link names, or None (tampered with, another role's link, or purged).
    `lock` holds the round's row until commit (PostgreSQL), so the answer cap holds under concurrency."""
    try:
        round_id = _signer(role).loads(token)
    except BadSignature:
        return None
    if not isinstance(round_id, str):
        return None
    return s.get(TeamRound, round_id, with_for_update=lock)


def _form_tokens() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_keys(current_app.config), salt="team-answer-form")


def issue_form_token(round_id: str) -> str:
    """A single-use token for one member's form: its hash becomes the answer's key."""
    return _form_tokens().dumps([round_id, secrets.token_urlsafe(18)])


def answer_key(round_id: str, token: str) -> str | None:
    """The answer's key from a form token made for this round, or None (missing, forged, too old)."""
    max_age = (load_settings().limits.team_round_open_days + 1) * 86400
    try:
        issued_for, nonce = _form_tokens().loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired, ValueError, TypeError):
        return None
    if issued_for != round_id or not isinstance(nonce, str):
        return None
    return hashlib.sha256(nonce.encode()).hexdigest()


# -- the round's state -----------------------------------------------------------------------------------

def answer_count(s: Session, round_id: str) -> int:
    return s.scalar(select(func.count()).select_from(TeamAnswer).where(TeamAnswer.round_id == round_id)) or 0


def is_closed(team_round: TeamRound, now: dt.datetime) -> bool:
    return team_round.closed_at is not None or (team_round.closes_at is not None and team_round.closes_at <= now)


def close(s: Session, team_round: TeamRound, when: dt.datetime) -> None:
    """Close the round as of `when` and queue the leader's mail with the report's link, in the caller's
    transaction."""
    team_round.closed_at = when
    team_round.closes_at = min(team_round.closes_at or when, when)
    checklist = load_settings().checklist(team_round.checklist)
    message = mail.team_report_ready(team_round, checklist, link("leader", team_round.id),
                                     answer_count(s, team_round.id), MINIMUM)
    outbox.queue(s, message, team_round_id=team_round.id)


def close_due(s: Session, now: dt.datetime) -> list[str]:
    """Close every open round whose time is up (the daily purge calls this); returns their ids."""
    due = s.scalars(select(TeamRound).where(TeamRound.closed_at.is_(None), TeamRound.closes_at.is_not(None),
                                            TeamRound.closes_at <= now).order_by(TeamRound.closes_at)).all()
    for team_round in due:
        close(s, team_round, team_round.closes_at)
    return [r.id for r in due]


def purge_rounds(s: Session, now: dt.datetime) -> dict[str, list]:
    """Delete rounds never confirmed after `unconfirmed_lead_days` and closed rounds after
    `team_round_days`, with their answers and the mail about them; returns the ids per kind."""
    keep = load_settings().retention
    unconfirmed = TeamRound.confirmed_at.is_(None) & (
        TeamRound.created_at < now - dt.timedelta(days=keep.unconfirmed_lead_days))
    expired = TeamRound.closed_at < now - dt.timedelta(days=keep.team_round_days)
    round_ids = list(s.scalars(select(TeamRound.id).where(unconfirmed | expired)))
    return delete_rounds(s, round_ids)


def delete_rounds(s: Session, round_ids: list[str]) -> dict[str, list]:
    """Delete rounds with their answers and the mail about them (purge and erasure)."""
    found = {
        "team_rounds": round_ids,
        "team_answers": list(s.scalars(select(TeamAnswer.id).where(TeamAnswer.round_id.in_(round_ids)))),
        "outbox": list(s.scalars(select(OutboxMail.id).where(OutboxMail.team_round_id.in_(round_ids)))),
    }
    s.execute(delete(OutboxMail).where(OutboxMail.id.in_(found["outbox"])))
    s.execute(delete(TeamAnswer).where(TeamAnswer.round_id.in_(round_ids)))
    s.execute(delete(TeamRound).where(TeamRound.id.in_(round_ids)))
    return found


# -- the team report -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TeamTheme:
    id: str
    title: str
    average: float        # the mean of the members' theme averages
    lowest: float         # the lowest member average: with `highest`, the spread
    highest: float
    level: str
    advice: str
    statements: tuple[tuple[str, tuple[int, ...]], ...]   # (statement, members per score of the scale)

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS[self.level]


def team_report(checklist: Checklist, answers: list[list[int]]) -> tuple[TeamTheme, ...]:
    """Aggregates only: per theme the team average and spread, per statement how many members chose each
    score. `answers` is every member's scores in the checklist's order; their order does not matter."""
    keys = answer_keys(checklist)
    members = [score(checklist, dict(zip(keys, scores, strict=True))) for scores in answers]
    scale = [point.score for point in checklist.scale]
    themes = []
    for i, dimension in enumerate(checklist.dimensions):
        averages = [member.themes[i].average for member in members]
        average = sum(averages) / len(averages)
        level = checklist.level(average)
        counts = tuple((statement, tuple(sum(1 for m in members if m.themes[i].answers[n] == value)
                                         for value in scale))
                       for n, statement in enumerate(dimension.statements))
        themes.append(TeamTheme(id=dimension.id, title=dimension.title, average=average, lowest=min(averages),
                                highest=max(averages), level=level, advice=getattr(dimension.advice, level),
                                statements=counts))
    return tuple(themes)


def heat(count: int, members: int) -> int:
    """Shade 0-4 of a heat map cell: none, under a quarter, under half, under three quarters, more."""
    return 0 if not count else 1 + min(3, int(count / members * 4))


def spread_svg(checklist: Checklist, themes: tuple[TeamTheme, ...]) -> str:
    """Per theme a bar from the lowest to the highest member average with a mark at the team average,
    on the checklist's scale. Presentation attributes only (no style), so the strict CSP holds; the
    table beside it carries the same figures for screen readers."""
    low, high = checklist.scale[0].score, checklist.scale[-1].score
    width, row_h, top = 600, 74, 8
    height = top + row_h * len(themes) + 32

    def x(value: float) -> float:
        return round((value - low) / ((high - low) or 1) * (width - 28) + 14, 1)

    desc = "; ".join(f"{t.title}: gemiddeld {dutch_number(t.average)}, van {dutch_number(t.lowest)} "
                     f"tot {dutch_number(t.highest)}" for t in themes) + "."
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="coach-chart" viewBox="0 0 {width} {height}" '
             'role="img" aria-labelledby="spreiding-titel spreiding-tekst" focusable="false" '
             'font-family="system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif">',
             f'<title id="spreiding-titel">Teamgemiddelde en spreiding per thema, op een schaal van {low} tot '
             f'{high}</title>', f'<desc id="spreiding-tekst">{escape(desc)}</desc>']
    bottom = top + row_h * len(themes)
    for point in checklist.scale:
        parts.append(f'<line x1="{x(point.score)}" y1="{top}" x2="{x(point.score)}" y2="{bottom}" '
                     'stroke="#d8cec1" stroke-width="1"/>')
        parts.append(f'<text x="{x(point.score)}" y="{bottom + 26}" font-size="20" fill="#4f5e63" '
                     f'text-anchor="middle">{point.score}</text>')
    for i, theme in enumerate(themes):
        y = top + i * row_h
        parts.append(f'<text x="8" y="{y + 24}" font-size="22" fill="#143a44">{escape(theme.title)}</text>')
        parts.append(f'<text x="{width - 8}" y="{y + 24}" font-size="22" font-weight="700" fill="#1d4f5c" '
                     f'text-anchor="end">{dutch_number(theme.average)}</text>')
        parts.append(f'<rect x="{x(theme.lowest) - 6}" y="{y + 38}" width="{x(theme.highest) - x(theme.lowest) + 12}" '
                     'height="16" rx="8" fill="#b9d4d9"/>')
        parts.append(f'<circle cx="{x(theme.average)}" cy="{y + 46}" r="11" fill="#1d4f5c" stroke="#fff" '
                     'stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


# -- the leader ------------------------------------------------------------------------------------------

def start_page(form: PersonForm, checklist: Checklist, status: int, notice: str | None = None):
    settings = load_settings()
    return render_page("team/start.html", status, title=f"Start een teamronde met de {checklist.title}",
                       form=form, checklist=checklist, notice=notice, csrf_token=generate_csrf(),
                       open_days=settings.limits.team_round_open_days, minimum=MINIMUM,
                       kept_days=settings.retention.team_round_days)


@bp.get("/team/<slug>/")
def start(slug: str):
    return start_page(PersonForm(formdata=None), checklist_or_404(slug), 200)


@bp.post("/team/<slug>/")
@per_ip("form_per_ip", scope="form-team")
@per_email(scope="email-team")
@form_post
def request_round(slug: str):
    checklist = checklist_or_404(slug)
    form = PersonForm()
    if not form.validate():
        log.info("team round request invalid checklist=%s fields=%s", slug, ",".join(sorted(form.errors)))
        return start_page(form, checklist, 400)
    s = db.session()
    try:
        with s.begin():
            queued = False
            if not outbox.mailbox_full(s, form.email.data):  # per mailbox, every form together
                team_round = TeamRound(checklist=slug, leader_name=form.name.data, leader_email=form.email.data,
                                       created_at=utcnow())
                s.add(team_round)
                s.flush()
                leader = SimpleNamespace(name=form.name.data, email=form.email.data)
                outbox.queue(s, mail.team_round_link(leader, checklist, link("leader", team_round.id)),
                             team_round_id=team_round.id)
                queued = True
    except SQLAlchemyError as exc:
        log.error("team round request not stored checklist=%s error=%s", slug, type(exc).__name__)
        return start_page(form, checklist, 503, notice=UNAVAILABLE)
    log.info("team round requested checklist=%s mail_queued=%s", slug, queued)
    if queued:
        outbox.kick()
    return redirect(f"/team/{slug}/aangevraagd/", code=303)


@bp.get("/team/<slug>/aangevraagd/")
def requested(slug: str):
    """The same page whether a mail was queued or the address had its mails for today."""
    checklist_or_404(slug)
    return render_page("message_page.html", 200, title="Kijk in je mailbox", paragraphs=[
        "We stuurden je een e-mail met een persoonlijke link. Open die link om je teamronde te starten: "
        "daar vind je de link die je met je team deelt.",
        "Geen e-mail gekregen? Kijk even bij je ongewenste e-mail, of vraag de ronde opnieuw aan.",
    ])


def _link_invalid(status: int = 404):
    return render_page("message_page.html", status, title="Deze link werkt niet", paragraphs=[
        "Deze link naar een teamronde is onvolledig of bestaat niet meer. Misschien werd hij bij het kopiëren "
        "afgebroken, of werd de ronde ondertussen gewist.",
    ], links=[(f"/team/{c.slug}/", f"Start een teamronde met de {c.title}") for c in load_settings().checklists])


@bp.get("/team/leider/<token>")
@per_ip("download_per_ip", scope="team-leader")
def leader(token: str):
    s = db.session()
    with s.begin():
        team_round = find_round(s, "leader", token)
        if team_round is None:
            return _link_invalid()
        checklist = load_settings().checklist(team_round.checklist)
        now = utcnow()
        # Only a GET confirms; a HEAD (a mail scanner, a link preview) sees the page without opening the round.
        newly_confirmed = request.method == "GET" and team_round.confirmed_at is None
        if newly_confirmed:
            team_round.confirmed_at = now
            team_round.closes_at = now + dt.timedelta(days=load_settings().limits.team_round_open_days)
            notice = mail.coach_team_round(team_round, checklist)
            if notice:
                outbox.queue(s, notice, team_round_id=team_round.id)
        count = answer_count(s, team_round.id)
        closed = team_round.confirmed_at is not None and is_closed(team_round, now)
        themes = None
        if closed and count >= MINIMUM:
            answers = list(s.scalars(select(TeamAnswer.scores).where(TeamAnswer.round_id == team_round.id)))
            themes = team_report(checklist, answers)
        context = {"round": team_round, "checklist": checklist, "count": count, "closed": closed,
                   "started": dutch_date(team_round.confirmed_at or now),
                   "ends": dutch_date(team_round.closes_at or now)}
    log.info("team round leader page confirmed_now=%s closed=%s answers=%s", newly_confirmed, closed, count)
    if newly_confirmed:
        outbox.kick()
    title = f"Teamrapport: {checklist.title}" if closed else f"Je teamronde met de {checklist.title}"
    return render_page("team/leader.html", 200, title=title, **context, themes=themes, minimum=MINIMUM,
                       still_needed=still_needed(count), share_link=link("member", team_round.id),
                       token=token, csrf_token=generate_csrf(), dutch_number=dutch_number, heat=heat,
                       chart=spread_svg(checklist, themes) if themes else None,
                       kept_days=load_settings().retention.team_round_days)


@bp.post("/team/leider/<token>/sluiten")
@per_ip("form_per_ip", scope="form-team-close")
@form_post
def close_early(token: str):
    """The leader ends the round before its time, to see the report: from MINIMUM answers on."""
    s = db.session()
    with s.begin():
        team_round = find_round(s, "leader", token, lock=True)
        if team_round is None or team_round.confirmed_at is None:
            return _link_invalid()
        now = utcnow()
        if is_closed(team_round, now):
            return redirect(PATHS["leader"] + token, code=303)
        if answer_count(s, team_round.id) < MINIMUM:
            return render_page("message_page.html", 409, title="Nog even wachten", paragraphs=[
                f"Om niemand aan te wijzen, toont het teamrapport pas resultaten vanaf {MINIMUM} antwoorden. "
                "Deel de link nog eens met je team."], links=[(PATHS["leader"] + token, "Terug naar je teamronde")])
        close(s, team_round, now)
    log.info("team round closed by its leader")
    outbox.kick()
    return redirect(PATHS["leader"] + token, code=303)


# -- the members -----------------------------------------------------------------------------------------

def _closed_page():
    return render_page("message_page.html", 410, title="Deze teamronde is afgesloten", paragraphs=[
        "Je kan niet meer antwoorden: deze teamronde is afgelopen. Je leidinggevende bespreekt de resultaten "
        "met het team.",
        "Wil je de checklist toch voor jezelf invullen? Dat kan op de website, zonder je naam te geven.",
    ], links=[(f"/checklists/{c.slug}/", c.title) for c in load_settings().checklists])


def _full_message() -> str:
    cap = load_settings().limits.team_answers_per_round
    return (f"Deze teamronde is vol: er kwamen al {cap} antwoorden binnen, het maximum voor één ronde. "
            "Je antwoorden zijn daarom niet meegeteld. Laat het je leidinggevende weten.")


def answer_page(team_round: TeamRound, checklist: Checklist, token: str, status: int = 200,
                answers: dict[str, int] | None = None, errors: dict[str, str] | None = None,
                notice: str | None = None):
    """The checklist page's own form (forms/scorecard.html, step by step with scorecard.js), posting here
    with a fresh single-use token."""
    return render_page("team/answer.html", status, title=f"Teamronde: {checklist.title}", checklist=checklist,
                       action=PATHS["member"] + token, hidden={FORM_FIELD: issue_form_token(team_round.id)},
                       answers=answers or {}, errors=errors or {}, total=len(checklist.statements),
                       notice=notice, minimum=MINIMUM, submit_label="Verstuur mijn antwoorden",
                       note=("Anoniem: we bewaren alleen je scores bij deze teamronde, zonder naam, e-mailadres "
                             "of tijdstip."))


def result_page(result: Result, status: int = 200, notice: str | None = None, counted: bool = True):
    """The member's own result: the whole page, or only its section for scorecard.js (no reload)."""
    context = {"result": result, "notice": notice, "counted": counted, "chart": chart_svg(result),
               "checklist": result.checklist}
    if request.headers.get("X-Scorecard") == "fragment" and status == 200:
        return render_template("team/result.html", **context), status
    return render_page("team/result_page.html", status, title=f"Teamronde: {result.checklist.title}", **context)


@bp.get("/team/r/<token>")
@per_ip("team_answers_per_ip", scope="team-form")
def member(token: str):
    s = db.session()
    with s.begin():
        team_round = find_round(s, "member", token)
        if team_round is None or team_round.confirmed_at is None:
            return _link_invalid()
        if is_closed(team_round, utcnow()):
            return _closed_page()
        full = answer_count(s, team_round.id) >= load_settings().limits.team_answers_per_round
        checklist = load_settings().checklist(team_round.checklist)
    if full:
        return render_page("message_page.html", 409, title="Deze teamronde is vol", paragraphs=[_full_message()])
    return answer_page(team_round, checklist, token)


@bp.post("/team/r/<token>")
@csrf.exempt  # no cookie for members: the form's single-use token stands in for the CSRF token
@per_ip("team_answers_per_ip", scope="team-answer")
@form_post
def answer(token: str):
    s = db.session()
    with s.begin():
        team_round = find_round(s, "member", token)
        if team_round is None or team_round.confirmed_at is None:
            return _link_invalid()
        if is_closed(team_round, utcnow()):
            return _closed_page()
    checklist = load_settings().checklist(team_round.checklist)
    answers, errors = parse_answers(checklist, request.form)
    if errors:
        log.info("team answer incomplete missing=%s", len(errors))
        return answer_page(team_round, checklist, token, 400, answers, errors)  # the form lists what is open
    key = answer_key(team_round.id, request.form.get(FORM_FIELD, ""))
    if key is None:
        log.info("team answer without a valid form token")
        return answer_page(team_round, checklist, token, 400, answers, notice=(
            "Bijna klaar: je antwoorden staan hieronder nog. Verstuur ze nog één keer."))
    result = score(checklist, answers)
    try:
        outcome = store_answer(s, team_round.id, key, [answers[k] for k in answer_keys(checklist)])
    except SQLAlchemyError as exc:
        log.error("team answer not stored error=%s", type(exc).__name__)
        return answer_page(team_round, checklist, token, 503, answers, notice=UNAVAILABLE)
    log.info("team answer %s checklist=%s", outcome, checklist.slug)
    if outcome == "closed":
        return _closed_page()
    if outcome == "twice":
        return result_page(result, counted=False, notice="Je antwoorden waren al verstuurd: ze tellen één keer mee.")
    if outcome == "full":
        return result_page(result, 409, counted=False, notice=_full_message())
    return result_page(result)


def store_answer(s: Session, round_id: str, key: str, scores: list[int]) -> str:
    """Add one answer unless the round closed or is full, or this form was sent before: 'stored', 'closed',
    'full' or 'twice'. The round's row is locked (PostgreSQL; SQLite has one writer), so the cap holds
    when members answer at the same moment."""
    with s.begin():
        team_round = s.get(TeamRound, round_id, with_for_update=True, populate_existing=True)
        if team_round is None or is_closed(team_round, utcnow()):
            return "closed"
        if s.get(TeamAnswer, key) is not None:
            return "twice"
        if answer_count(s, round_id) >= load_settings().limits.team_answers_per_round:
            return "full"
        s.add(TeamAnswer(id=key, round_id=round_id, scores=scores))
    return "stored"
