"""Team rounds in tests: known answer patterns, the links in their mails, moving a round in time."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from leadform import db, outbox
from leadform.models import OutboxMail, TeamRound
from leadform.scoring import answer_keys
from site_config import load_settings

LEADER_LINK = re.compile(r"https?://[^/\s]+/team/leider/[^\s\"<>]+")
SHARE_LINK = re.compile(r"https?://[^/\s]+/team/r/[^\s\"<>]+")


def theme_scores(slug: str, *per_theme: int) -> dict[str, int]:
    """Answers giving every statement of theme i the score per_theme[i] (the last one repeats)."""
    checklist = load_settings().checklist(slug)
    answers = {}
    for i, dimension in enumerate(checklist.dimensions):
        value = per_theme[min(i, len(per_theme) - 1)]
        for n in range(1, len(dimension.statements) + 1):
            answers[f"{dimension.id}-{n}"] = value
    assert list(answers) == answer_keys(checklist)
    return answers


def mail_link(app, kind: str, pattern: re.Pattern[str] = LEADER_LINK) -> str:
    """The link in the newest queued or sent mail of `kind`, as its text reads when it is sent."""
    with app.app_context(), db.transaction() as s:
        mail = s.scalars(select(OutboxMail).where(OutboxMail.kind == kind).order_by(OutboxMail.id.desc())).first()
        assert mail is not None, f"no {kind} mail"
        return pattern.search(outbox.bodies(mail)[0]).group(0)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def move_round(app, **values) -> None:
    """Set times on every round (the tests have one): as if days had passed."""
    with app.app_context(), db.transaction() as s:
        s.execute(update(TeamRound).values(**values))


def the_round(app) -> TeamRound:
    with app.app_context(), db.transaction() as s:
        return s.scalars(select(TeamRound)).one()


def open_round(app, slug: str = "teams", confirmed_at=None, closes_at=None, answers: int = 0,
               email: str = "els@example.be") -> tuple[str, str]:
    """A confirmed round stored directly, with `answers` answers of all 3s; returns the leader's and the
    member's link (on the app's PUBLIC_URL)."""
    import datetime as dt

    from leadform.models import TeamAnswer, utcnow
    from leadform.teams import link

    confirmed_at = confirmed_at or utcnow()
    statements = len(load_settings().checklist(slug).statements)
    with app.app_context(), db.transaction() as s:
        team_round = TeamRound(checklist=slug, leader_name="Els Maes", leader_email=email, created_at=confirmed_at,
                               confirmed_at=confirmed_at,
                               closes_at=closes_at or confirmed_at + dt.timedelta(days=30))
        s.add(team_round)
        s.flush()
        s.add_all(TeamAnswer(id=f"{n:064x}", round_id=team_round.id, scores=[3] * statements)
                  for n in range(answers))
        round_id = team_round.id
    with app.test_request_context():
        return link("leader", round_id), link("member", round_id)
