"""A team leader starts an anonymous team round; members answer; the report shows aggregates only.

Through the app's own routes on this run's database (the browser story is test_team_rounds_browser.py).
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import func, select
from support.teams import SHARE_LINK, mail_link, move_round, path_of, the_round, theme_scores

from leadform import db, outbox
from leadform.gdpr import purge
from leadform.models import OutboxMail, TeamAnswer, TeamRound, utcnow
from site_config import load_settings

LEADER = {"name": "Els Maes", "email": "Els.Maes@Example.be", "privacy": "y"}
TOKEN = re.compile(r'name="formulier" value="([^"]+)"')
DAY = dt.timedelta(days=1)


def count(app, model, *where) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def text(response) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def start_round(client, app) -> tuple[str, str]:
    """Request and confirm a round on the teams checklist; returns the leader's and the share path."""
    response = client.post("/team/teams/", data=LEADER)
    assert response.status_code == 303 and response.headers["Location"] == "/team/teams/aangevraagd/"
    leader = path_of(mail_link(app, "team_round_link"))
    page = client.get(leader)
    assert page.status_code == 200
    share = path_of(SHARE_LINK.search(page.get_data(as_text=True)).group(0))
    return leader, share


def answer(client, share: str, answers: dict[str, int], token: str | None = None):
    if token is None:
        token = TOKEN.search(client.get(share).get_data(as_text=True)).group(1)
    return client.post(share, data={**answers, "formulier": token})


@pytest.fixture
def started(app, client):
    return start_round(client, app)


def test_a_request_waits_for_the_leaders_confirmation_and_tells_the_coach_only_then(client, app) -> None:
    assert client.post("/team/teams/", data=LEADER).status_code == 303
    stored = the_round(app)
    assert (stored.leader_name, stored.leader_email, stored.checklist) == ("Els Maes", "els.maes@example.be", "teams")
    assert stored.confirmed_at is None and stored.closes_at is None
    assert count(app, OutboxMail, OutboxMail.to_addr == "els.maes@example.be") == 1
    assert count(app, OutboxMail, OutboxMail.kind == "coach_team_round") == 0
    leader = path_of(mail_link(app, "team_round_link"))
    assert client.head(leader).status_code == 200 and the_round(app).confirmed_at is None, "a link preview"
    page = client.get(leader)
    assert "Deel deze link met je team" in text(page)
    confirmed = the_round(app)
    assert confirmed.closes_at - confirmed.confirmed_at == dt.timedelta(days=30)
    assert count(app, OutboxMail, OutboxMail.kind == "coach_team_round") == 1
    client.get(leader)
    assert count(app, OutboxMail, OutboxMail.kind == "coach_team_round") == 1, "one notice per round"
    with app.app_context(), db.transaction() as s:
        notice = s.scalars(select(OutboxMail).where(OutboxMail.kind == "coach_team_round")).one()
        body = outbox.bodies(notice)[0]
    assert "Els Maes" in body and "els.maes@example.be" in body and "checklist teams" in body


def test_an_invalid_request_shows_dutch_errors_and_keeps_the_input(client, app) -> None:
    response = client.post("/team/teams/", data={"name": "Els Maes", "email": "els@example"})
    assert response.status_code == 400
    page = text(response)
    assert "Dit lijkt geen geldig e-mailadres" in page and "Duid aan dat je de privacyverklaring" in page
    assert 'value="Els Maes"' in response.get_data(as_text=True)
    assert count(app, TeamRound) == 0
    assert client.get("/team/koken/").status_code == 404


def test_the_share_link_works_only_once_the_round_is_confirmed_and_never_opens_the_leaders_page(client, app) -> None:
    client.post("/team/teams/", data=LEADER)
    with app.app_context(), app.test_request_context():
        from leadform.teams import link

        share = path_of(link("member", the_round(app).id))
    assert client.get(share).status_code == 404
    leader, share = path_of(mail_link(app, "team_round_link")), share
    client.get(leader)
    assert client.get(share).status_code == 200
    assert client.get(share.replace("/team/r/", "/team/leider/")).status_code == 404
    assert client.get(leader.replace("/team/leider/", "/team/r/")).status_code == 404
    assert client.get(share[:-3] + "abc").status_code == 404


def test_three_members_answer_and_the_report_shows_averages_and_spreads(started, client, app) -> None:
    leader, share = started
    first = answer(client, share, theme_scores("teams", 2))
    assert first.status_code == 200
    mine = text(first)
    assert "Jouw resultaat" in mine and "anoniem toegevoegd" in mine
    assert "Vertrouwen 2,0 Werkpunt" in mine  # the member's own result, from scoring.py
    answer(client, share, theme_scores("teams", 4))

    waiting = text(client.get(leader))
    assert "2 teamleden vulden de checklist al in" in waiting
    assert "nog 1 antwoord nodig" in waiting
    assert "Teamgemiddelde" not in waiting and "Sluit de ronde" not in waiting
    assert client.post(leader + "/sluiten").status_code == 409, "two answers: the round cannot close early"

    answer(client, share, theme_scores("teams", 5, 3))
    ready = text(client.get(leader))
    assert "3 teamleden vulden de checklist al in" in ready and "Sluit de ronde" in ready
    assert "Teamgemiddelde" not in ready, "no report while answers can still change it"

    closing = client.post(leader + "/sluiten")
    assert closing.status_code == 303 and closing.headers["Location"] == leader
    report = text(client.get(leader))
    # Vertrouwen: members 2, 4 and 5 -> 3,67 from 2,0 to 5,0; every other theme: 2, 4, 3 -> 3,0 from 2,0 to 4,0
    assert "Vertrouwen 3,67 van 2,0 tot 5,0 Groeikans" in report
    for theme in load_settings().checklist("teams").dimensions[1:]:
        assert f"{theme.title} 3,0 van 2,0 tot 4,0 Groeikans" in report
    statement = load_settings().checklist("teams").dimensions[0].statements[0]
    assert f"{statement} 0 1 0 1 1" in report, "heat map: one member each chose 2, 4 and 5"
    second = load_settings().checklist("teams").dimensions[1].statements[0]
    assert f"{second} 0 1 1 1 0" in report
    assert "Teamrapport: checklist teams" in report
    assert count(app, OutboxMail, OutboxMail.kind == "team_report_ready") == 1
    assert "Deze teamronde is afgesloten" in text(client.get(share))


def test_a_member_page_sets_no_cookie_and_an_answer_holds_only_its_round_and_scores(started, client, app) -> None:
    _, share = started
    fresh = app.test_client()
    page = fresh.get(share)
    assert "Set-Cookie" not in page.headers
    posted = answer(fresh, share, theme_scores("teams", 3))
    assert posted.status_code == 200 and "Set-Cookie" not in posted.headers
    assert set(TeamAnswer.__table__.columns.keys()) == {"id", "round_id", "scores"}
    with app.app_context(), db.transaction() as s:
        stored = s.scalars(select(TeamAnswer)).one()
    assert stored.scores == [3] * 25 and re.fullmatch(r"[0-9a-f]{64}", stored.id)


def test_one_form_counts_once(started, client, app) -> None:
    _, share = started
    token = TOKEN.search(client.get(share).get_data(as_text=True)).group(1)
    assert answer(client, share, theme_scores("teams", 4), token).status_code == 200
    again = answer(client, share, theme_scores("teams", 4), token)
    assert again.status_code == 200 and "al verstuurd: ze tellen één keer mee" in text(again)
    assert count(app, TeamAnswer) == 1
    forged = answer(client, share, theme_scores("teams", 4), token[:-2] + "xx")
    assert forged.status_code == 400 and "Verstuur ze nog één keer" in text(forged)
    assert count(app, TeamAnswer) == 1


def test_incomplete_answers_are_kept_with_a_dutch_message_per_statement(started, client, app) -> None:
    _, share = started
    answers = theme_scores("teams", 4)
    del answers["vertrouwen-2"], answers["verandering-5"]
    answers["wijzij-1"] = "9"
    response = answer(client, share, answers)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nog 3 uitspraken zonder antwoord. Je andere antwoorden zijn bewaard." in text(response)
    assert page.count("Kies een antwoord bij deze uitspraak.") == 2
    assert "Dit antwoord kennen we niet" in page
    assert re.search(r'name="vertrouwen-1" value="4" checked', page), "what was chosen stays"
    assert 'aria-describedby="teams-vertrouwen-2-fout"' in page
    assert count(app, TeamAnswer) == 0


def test_a_round_takes_at_most_its_cap_of_answers(started, client, app) -> None:
    _, share = started
    cap = load_settings().limits.team_answers_per_round
    with app.app_context(), db.transaction() as s:
        round_id = s.scalars(select(TeamRound.id)).one()
        s.add_all(TeamAnswer(id=f"{n:064x}", round_id=round_id, scores=[3] * 25) for n in range(cap - 1))
    token = TOKEN.search(client.get(share).get_data(as_text=True)).group(1)
    late = TOKEN.search(client.get(share).get_data(as_text=True)).group(1)
    assert answer(client, share, theme_scores("teams", 4), token).status_code == 200
    refused = answer(client, share, theme_scores("teams", 2), late)
    assert refused.status_code == 409
    assert f"Deze teamronde is vol: er kwamen al {cap} antwoorden binnen" in text(refused)
    assert "Jouw resultaat" in text(refused), "the member still sees their own result"
    assert count(app, TeamAnswer) == cap
    full = client.get(share)
    assert full.status_code == 409 and "Deze teamronde is vol" in text(full)


def test_one_address_cannot_flood_a_round(make_app) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True)
    client = app.test_client()
    _, share = start_round(client, app)
    limit = int(load_settings().limits.team_answers_per_ip.split()[0])
    token = TOKEN.search(client.get(share).get_data(as_text=True)).group(1)
    statuses = [client.post(share, data={"formulier": token}).status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [400] * limit
    assert statuses[limit] == 429
    refused = client.post(share, data={"formulier": token})
    assert refused.status_code == 429 and "Je hebt dit formulier te vaak na elkaar verstuurd" in text(refused)


def test_after_thirty_days_the_purge_closes_the_round_and_mails_the_leader(started, client, app) -> None:
    leader, share = started
    for pattern in (1, 3, 5):
        answer(client, share, theme_scores("teams", pattern))
    closes = the_round(app).closes_at
    with app.app_context(), db.transaction() as s:
        assert purge(s, closes - dt.timedelta(seconds=1))["team_rounds_closed"] == []
    with app.app_context(), db.transaction() as s:
        assert len(purge(s, closes + DAY)["team_rounds_closed"]) == 1
    assert the_round(app).closed_at == closes
    mail = mail_link(app, "team_report_ready")
    assert path_of(mail) == leader
    closed = client.get(share)
    assert closed.status_code == 410 and "Deze teamronde is afgesloten" in text(closed)
    assert "Vertrouwen 3,0 van 1,0 tot 5,0" in text(client.get(leader))
    with app.app_context(), db.transaction() as s:
        assert purge(s, closes + 2 * DAY)["team_rounds_closed"] == [], "closed once"
    assert count(app, OutboxMail, OutboxMail.kind == "team_report_ready") == 1


def test_a_round_past_its_time_is_closed_before_the_purge_runs(started, client, app) -> None:
    leader, share = started
    answer(client, share, theme_scores("teams", 2))
    move_round(app, closes_at=utcnow() - DAY)
    assert client.get(share).status_code == 410
    assert "Deze teamronde is afgesloten" in text(answer(client, share, theme_scores("teams", 2), "x"))
    page = text(client.get(leader))
    assert "te weinig: nog 2 antwoorden nodig" in page and "Teamgemiddelde" not in page


def test_the_purge_removes_a_round_with_its_answers_and_mail_after_the_retention(started, client, app) -> None:
    _, share = started
    for pattern in (2, 3, 4):
        answer(client, share, theme_scores("teams", pattern))
    with app.app_context(), db.transaction() as s:
        purge(s, the_round(app).closes_at)  # closes it
    closed_at = the_round(app).closed_at
    keep = load_settings().retention.team_round_days
    with app.app_context(), db.transaction() as s:
        kept = purge(s, closed_at + keep * DAY)
    assert kept["team_rounds"] == [] and count(app, TeamAnswer) == 3
    with app.app_context(), db.transaction() as s:
        gone = purge(s, closed_at + keep * DAY + dt.timedelta(seconds=1))
    assert len(gone["team_rounds"]) == 1 and len(gone["team_answers"]) == 3
    assert count(app, TeamAnswer) == 0 and count(app, TeamRound) == 0
    assert count(app, OutboxMail, OutboxMail.to_addr == "els.maes@example.be") == 0
    assert client.get(share).status_code == 404


def test_an_unconfirmed_round_goes_with_its_mail_after_the_unconfirmed_retention(client, app) -> None:
    client.post("/team/teams/", data=LEADER)
    created = the_round(app).created_at
    days = load_settings().retention.unconfirmed_lead_days
    with app.app_context(), db.transaction() as s:
        assert purge(s, created + days * DAY)["team_rounds"] == []
    with app.app_context(), db.transaction() as s:
        assert len(purge(s, created + days * DAY + DAY)["team_rounds"]) == 1
    assert count(app, TeamRound) == 0 and count(app, OutboxMail) == 0


def test_erasing_the_leader_erases_their_rounds_and_export_lists_them(started, client, app) -> None:
    _, share = started
    answer(client, share, theme_scores("teams", 4))
    client.post("/team/leiderschap/", data={**LEADER, "email": "els.maes@example.be"})
    client.post("/team/teams/", data={**LEADER, "name": "Piet", "email": "piet@example.be"})
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["gdpr", "export", "ELS.MAES@example.be"])
    assert exported.exit_code == 0
    import json

    data = json.loads(exported.output)
    assert sorted(r["checklist"] for r in data["team_rounds"]) == ["leiderschap", "teams"]
    assert sorted(r["answers"] for r in data["team_rounds"]) == [0, 1]
    erased = runner.invoke(args=["gdpr", "erase", "els.maes@example.be", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "team_rounds: 2 erased" in erased.output and "team_answers: 1 erased" in erased.output
    with app.app_context(), db.transaction() as s:
        assert list(s.scalars(select(TeamRound.leader_email))) == ["piet@example.be"]
        assert s.scalar(select(func.count()).select_from(TeamAnswer)) == 0
        left = [(m.kind, m.to_addr, str(m.context)) for m in s.scalars(select(OutboxMail))]
    assert not any("els.maes" in str(mail) for mail in left), left


def test_scorecard_js_gets_only_the_result_section(started, client, app) -> None:
    _, share = started
    token = TOKEN.search(client.get(share).get_data(as_text=True)).group(1)
    response = client.post(share, data={**theme_scores("teams", 4), "formulier": token},
                           headers={"X-Scorecard": "fragment"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section class="coach-result"') and "<html" not in body
    assert "Vertrouwen" in body and "4,0" in body and count(app, TeamAnswer) == 1


def test_the_daily_purge_command_says_which_rounds_it_closed(started, client, app) -> None:
    _, share = started
    answer(client, share, theme_scores("teams", 3))
    move_round(app, closes_at=utcnow() - DAY)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["gdpr", "purge", "--dry-run"])
    assert "team_rounds_closed: 1 would be closed" in dry.output
    assert count(app, OutboxMail, OutboxMail.kind == "team_report_ready") == 0, "a dry run changes nothing"
    done = runner.invoke(args=["gdpr", "purge"])
    assert done.exit_code == 0 and "team_rounds_closed: 1 closed (report mail queued)" in done.output
    assert "team_rounds: 0 purged" in done.output and "team_answers: 0 purged" in done.output
    assert count(app, OutboxMail, OutboxMail.kind == "team_report_ready") == 1
