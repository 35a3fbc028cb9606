"""Score yourself on the page: the app's result, the personal report by mail, GDPR, the coach's view."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from support.mail import link_in

from leadform import db, outbox
from leadform.gdpr import erase_person, export_person, purge
from leadform.models import Assessment, AssessmentTotal, Lead, OutboxMail, utcnow
from leadform.scoring import answer_keys, load_checklist
from site_config import csp

TEAMS = load_checklist("teams")
# A known pattern, theme by theme: 1.8 low, 3.0 middle, 4.4 high, 2.4 low, 4.0 high.
PATTERN = [[1, 2, 2, 3, 1], [3, 3, 3, 3, 3], [5, 4, 4, 4, 5], [2, 3, 2, 3, 2], [4, 4, 4, 4, 4]]
EXPECTED = [("Vertrouwen", "1,8", "Werkpunt"), ("Communicatie tussen teams", "3,0", "Groeikans"),
            ("Wij-zij-denken", "4,4", "Sterkte"), ("Klantgerichtheid", "2,4", "Werkpunt"),
            ("Omgaan met verandering", "4,0", "Sterkte")]
PERSON = {"name": "Sofie Peeters", "email": "Sofie@Example.be", "privacy": "y"}


def answers() -> dict[str, str]:
    values = [v for theme in PATTERN for v in theme]
    return {key: str(v) for key, v in zip(answer_keys(TEAMS), values, strict=True)}


def rows(html: str) -> list[tuple[str, str, str]]:
    """The result table's rows: theme, average, level."""
    found = re.findall(r'<tr data-theme="[^"]+"><th scope="row">([^<]+)</th><td>([^<]+)</td><td><span[^>]*>([^<]+)'
                       r'</span>', html)
    return [tuple(r) for r in found]


def count(app, model, *where) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_answers_give_the_result_page_with_averages_levels_advice_and_next_step(client, app) -> None:
    response = client.post("/api/scorecard/teams", data=answers())
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert rows(html) == EXPECTED
    assert "Je sterkste thema is <strong>Wij-zij-denken</strong> (4,4)" in html
    assert "Je grootste groeikans ligt bij <strong>Vertrouwen</strong> (1,8)" in html
    assert TEAMS.dimensions[0].advice.low in html and TEAMS.dimensions[1].advice.middle in html
    assert "Bespreek vertrouwen in een gratis kennismakingsgesprek" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="coach-chart"' in html
    assert "Stuur mij mijn persoonlijk rapport" in html
    assert "/checklists/teams/#vraag-je-checklist-aan" in html  # the blank PDF stays on offer
    # no inline code of its own: only the site shell's scripts, each allowed by the policy sent with it
    sent = response.headers["Content-Security-Policy"]
    assert [c.excerpt for c in csp.scan(html).code if c.source not in sent] == []
    # Nothing personal stored, only the anonymous totals of this week.
    assert count(app, Lead) == 0 and count(app, Assessment) == 0
    with app.app_context(), db.transaction() as s:
        totals = {t.theme: (t.completed, t.answers, t.points) for t in s.scalars(select(AssessmentTotal))}
    assert totals["vertrouwen"] == (1, 5, 9) and totals["wijzij"] == (1, 5, 22) and len(totals) == 5


def test_the_fragment_for_the_script_is_the_result_alone(client) -> None:
    response = client.post("/api/scorecard/teams", data=answers(), headers={"X-Scorecard": "fragment"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith("<section class=\"coach-result\"") and "<html" not in html
    assert rows(html) == EXPECTED


def test_incomplete_answers_are_kept_and_flagged_in_dutch(client, app) -> None:
    data = answers()
    keys = answer_keys(TEAMS)
    del data[keys[3]]
    data[keys[7]] = "9"
    response = client.post("/api/scorecard/teams", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nog 2 uitspraken zonder antwoord." in html and 'role="alert"' in html
    assert html.count("Kies een antwoord bij deze uitspraak.") == 1
    assert html.count("Dit antwoord kennen we niet.") == 1
    assert 'aria-describedby="teams-vertrouwen-4-fout"' in html
    checked = re.findall(r'name="([a-z]+-\d)" value="(\d)" checked', html)
    assert len(checked) == len(keys) - 2 and ("vertrouwen-1", "1") in checked
    assert count(app, AssessmentTotal) == 0
    fragment = client.post("/api/scorecard/teams", data=data, headers={"X-Scorecard": "fragment"})
    assert fragment.status_code == 400


def test_an_unknown_checklist_is_a_404(client) -> None:
    assert client.post("/api/scorecard/nope", data=answers()).status_code == 404


def request_report(client, **extra):
    result = client.post("/api/scorecard/teams", data=answers()).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', result).group(1)
    return client.post("/api/scorecard/teams/rapport", data={**answers(), **PERSON, "csrf_token": token, **extra})


@pytest.fixture
def csrf_app(make_app):
    return make_app(WTF_CSRF_ENABLED=True)


def test_report_request_stores_answers_with_the_lead_and_mails_a_link(csrf_app) -> None:
    client = csrf_app.test_client()
    response = request_report(client)
    assert response.status_code == 303 and response.headers["Location"] == "/checklists/rapport-verstuurd/"
    with csrf_app.app_context(), db.transaction() as s:
        lead = s.scalars(select(Lead)).one()
        assessment = s.scalars(select(Assessment)).one()
        mail = s.scalars(select(OutboxMail)).one()
    assert lead.email == "sofie@example.be" and lead.confirmed_at is None
    assert assessment.lead_id == lead.id and assessment.answers == {k: int(v) for k, v in answers().items()}
    assert (assessment.expires_at - assessment.created_at).days == 14
    assert mail.kind == "scorecard_report" and mail.to_addr == "sofie@example.be"
    with csrf_app.app_context():
        text = outbox.bodies(mail)[0]
    assert "Sofie" not in text and "14 dagen geldig" in text  # no name to an unconfirmed address
    token = link_in(csrf_app, mail)
    assert token.startswith("rapport/") and assessment.token_hash not in text

    pdf = client.get("/download/" + token)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"] == 'attachment; filename="rapport-teams.pdf"'
    body = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Voor Sofie Peeters, ingevuld op" in body
    for title, average, level in EXPECTED:
        assert f"{title} {average} · {level}" in body
    assert f"{TEAMS.dimensions[0].statements[0]} 1 · Helemaal niet" in body
    assert TEAMS.dimensions[2].advice.high.split(".")[0] in body
    assert "www.voorbeeld-coaching.be/contact" in body
    with csrf_app.app_context(), db.transaction() as s:
        assert s.scalars(select(Lead)).one().confirmed_at is not None   # double opt-in
        assert s.scalars(select(Assessment)).one().use_count == 1
        coach = s.scalars(select(OutboxMail).where(OutboxMail.kind == "coach_new_report")).one()
    with csrf_app.app_context():
        told = outbox.bodies(coach)[0]
    assert coach.to_addr == "info@voorbeeld-coaching.be" and "sofie@example.be" in told
    assert "- Vertrouwen: 1,8 (werkpunt)" in told and "Grootste groeikans: Vertrouwen." in told
    assert client.get("/download/" + token).status_code == 200   # a second download tells nobody again
    assert count(csrf_app, OutboxMail, OutboxMail.kind == "coach_new_report") == 1


def test_report_form_errors_keep_the_result_and_the_answers(csrf_app) -> None:
    client = csrf_app.test_client()
    response = request_report(client, email="sofie@", privacy="")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Dit lijkt geen geldig e-mailadres" in html and "Duid aan dat je de privacyverklaring" in html
    assert rows(html) == EXPECTED and 'value="sofie@"' in html
    assert count(csrf_app, Lead) == 0


def test_a_stale_token_shows_the_result_and_form_again(csrf_app) -> None:
    client = csrf_app.test_client()
    response = client.post("/api/scorecard/teams/rapport", data={**answers(), **PERSON})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "nog één keer" in html
    assert rows(html) == EXPECTED and 'name="csrf_token" value=""' not in html


def test_report_links_expire_and_tampered_ones_do_not_work(client, app) -> None:
    request_report(client)
    with app.app_context(), db.transaction() as s:
        mail = s.scalars(select(OutboxMail)).one()
        s.query(Assessment).update({"expires_at": utcnow() - dt.timedelta(seconds=1)})
    token = link_in(app, mail)
    assert client.get("/download/" + token).status_code == 410
    assert client.get("/download/" + token[:-3] + "abc").status_code == 404


def test_answers_are_exported_erased_and_purged_with_the_lead(client, app) -> None:
    request_report(client)
    with app.app_context(), db.transaction() as s:
        exported = export_person(s, "sofie@example.be")
    assessment = exported["leads"][0]["assessments"][0]
    assert assessment["answers"]["vertrouwen-1"] == 1 and "token_hash" not in assessment
    json.dumps(exported)
    with app.app_context(), db.transaction() as s:
        mail = s.scalars(select(OutboxMail)).one()
    assert client.get("/download/" + link_in(app, mail)).status_code == 200   # the coach is told her scores
    assert count(app, OutboxMail, OutboxMail.kind == "coach_new_report") == 1
    with app.app_context(), db.transaction() as s:
        erased = erase_person(s, "sofie@example.be")
    assert len(erased["assessments"]) == 1 and count(app, Assessment) == 0
    assert count(app, OutboxMail) == 0   # the link's mail and the coach's mail about her
    assert count(app, AssessmentTotal) == 5   # anonymous totals stay: nothing in them points to her
    assert count(app, AssessmentTotal, AssessmentTotal.completed == 1, AssessmentTotal.reports == 1) == 5

    request_report(client)
    with app.app_context(), db.transaction() as s:
        purged = purge(s, now=utcnow() + dt.timedelta(days=31))
    assert len(purged["assessments"]) == 1 and count(app, Assessment) == 0 and count(app, Lead) == 0


def test_report_mails_are_limited_per_address_per_day(client, app) -> None:
    for _ in range(4):
        assert request_report(client).status_code == 303
    assert count(app, OutboxMail, OutboxMail.kind == "scorecard_report") == 3
    assert count(app, Assessment) == 3


def test_coach_sees_weekly_counts_and_theme_averages_in_dutch(client, app, runner) -> None:
    client.post("/api/scorecard/teams", data=answers())
    client.post("/api/scorecard/teams", data={k: "5" for k in answer_keys(TEAMS)})
    request_report(client)   # a third completion, and one report
    result = runner.invoke(args=["scorecards", "stats", "--weeks", "2"])
    assert result.exit_code == 0, result.output
    year, week, _ = utcnow().date().isocalendar()
    line = next(line for line in result.output.splitlines() if line.startswith(f"{year}-W{week:02d}"))
    assert line.split() == [f"{year}-W{week:02d}", "teams", "3", "1", "0"]
    assert "Ingevulde checklists per week" in result.output and "teamrondes" in result.output
    # Vertrouwen: (1+2+2+3+1)*2 + 25 = 43 points over 15 answers = 2.87
    assert re.search(r"Vertrouwen\s+2,87", result.output)
    assert re.search(r"Visie\s+-", result.output)


def test_team_rounds_count_once_their_leader_started_them(client, app, runner) -> None:
    from leadform.models import TeamRound

    with app.app_context(), db.transaction() as s:
        s.add(TeamRound(checklist="leiderschap", leader_name="Els", leader_email="els@example.be",
                        created_at=utcnow(), confirmed_at=utcnow()))
        s.add(TeamRound(checklist="leiderschap", leader_name="Jan", leader_email="jan@example.be",
                        created_at=utcnow()))   # asked for, never confirmed: not started
    result = runner.invoke(args=["scorecards", "stats", "--weeks", "1"])
    assert "teamrondes" in result.output
    line = next(line for line in result.output.splitlines() if "leiderschap" in line)
    assert line.split()[-3:] == ["0", "0", "1"]


def test_scoring_is_rate_limited_per_ip_like_the_other_forms(make_app) -> None:
    from site_config import load_settings

    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    client = app.test_client()
    allowed = int(load_settings().limits.form_per_ip.split()[0])
    statuses = [client.post("/api/scorecard/teams", data=answers()).status_code for _ in range(allowed + 1)]
    assert statuses == [200] * allowed + [429]
    assert count(app, AssessmentTotal, AssessmentTotal.theme == "vertrouwen", AssessmentTotal.completed == allowed) == 1


@pytest.mark.parametrize("slug", ["teams", "leiderschap"])
def test_the_built_page_carries_every_statement_as_a_radio_group(site_pages: dict[str, str], slug: str) -> None:
    from selectolax.lexbor import LexborHTMLParser

    checklist = load_checklist(slug)
    page = LexborHTMLParser(site_pages[f"checklists/{slug}/index.html"])
    form = page.css_first(f"form[action='/api/scorecard/{slug}']")
    legends = [" ".join(n.text().split()[1:]) for n in form.css("fieldset > legend")]
    assert legends == [" ".join(s.split()) for s in checklist.statements]
    assert {n.attributes["name"] for n in form.css("input[type=radio]")} == set(answer_keys(checklist))
    assert len(form.css("input[type=radio]")) == len(checklist.statements) * len(checklist.scale)
    assert "defer" in page.css_first("script[src='/assets/javascripts/scorecard.js']").attributes
    assert page.css_first(f"form[action='/api/checklists/{slug}']") is not None   # the blank PDF stays


def test_any_answers_get_a_result_or_the_form_again_never_an_error(client) -> None:
    """Hypothesis: whatever the fields hold (numbers off the scale, text, control characters, markup,
    repeated fields), the answer is the result (200) or the form with the valid answers kept (400)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from werkzeug.datastructures import MultiDict

    keys = answer_keys(TEAMS)
    value = st.one_of(st.sampled_from(["1", "2", "3", "4", "5"]), st.text(max_size=12),
                      st.integers(-10, 10).map(str), st.just("<b>4</b>"))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(keys), st.lists(value, min_size=1, max_size=2), max_size=len(keys)))
    def check(fields: dict[str, list[str]]) -> None:
        form = MultiDict([(k, v) for k, values in fields.items() for v in values])
        response = client.post("/api/scorecard/teams", data=form)
        html = response.get_data(as_text=True)
        assert response.status_code in (200, 400), html[:300]
        assert "<b>4</b>" not in html
        valid = {k: form[k] for k in keys if form.get(k, "").strip() in {"1", "2", "3", "4", "5"}}
        if response.status_code == 400:
            for key, v in valid.items():
                assert f'name="{key}" value="{int(v)}" checked' in html

    check()
