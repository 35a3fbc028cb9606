"""Scoring a checklist: the averages, levels, advice and chart a visitor's answers imply."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from leadform.scoring import (
    INVALID,
    MISSING,
    Incomplete,
    answer_key,
    answer_keys,
    chart_svg,
    dutch_number,
    load_checklist,
    parse_answers,
    score,
)
from site_config import load_settings

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

SLUGS = load_settings().checklist_slugs
SVG = "{http://www.w3.org/2000/svg}"


def pattern(slug: str, per_theme: list[list[int]]) -> dict[str, int]:
    """Answers given theme by theme, as the page's fields would carry them."""
    checklist = load_checklist(slug)
    return {answer_key(d, n): v for d, values in zip(checklist.dimensions, per_theme, strict=True)
            for n, v in enumerate(values, start=1)}


def test_teams_pattern_gives_the_averages_and_levels_it_implies():
    checklist = load_checklist("teams")
    result = score(checklist, pattern("teams", [
        [1, 2, 2, 3, 1],   # 1.8  low
        [3, 3, 3, 3, 3],   # 3.0  middle
        [5, 4, 4, 4, 5],   # 4.4  high
        [2, 3, 2, 3, 2],   # 2.4  low (just under 2.5)
        [4, 4, 4, 4, 4],   # 4.0  high (the threshold itself)
    ]))
    got = [(t.id, round(t.average, 4), t.level) for t in result.themes]
    assert got == [("vertrouwen", 1.8, "low"), ("communicatie", 3.0, "middle"), ("wijzij", 4.4, "high"),
                   ("klantgerichtheid", 2.4, "low"), ("verandering", 4.0, "high")]
    assert [t.average_text for t in result.themes] == ["1,8", "3,0", "4,4", "2,4", "4,0"]
    assert result.strongest.id == "wijzij" and result.weakest.id == "vertrouwen"
    assert result.theme("communicatie").advice == checklist.dimensions[1].advice.middle
    assert result.theme("vertrouwen").advice == checklist.dimensions[0].advice.low
    assert result.theme("verandering").level_label == "Sterkte"
    assert not result.even


def test_leiderschap_four_statement_themes_keep_two_decimals():
    checklist = load_checklist("leiderschap")
    sizes = [len(d.statements) for d in checklist.dimensions]
    per_theme = [[3] * n for n in sizes]
    four = sizes.index(4)
    per_theme[four] = [2, 2, 3, 3]           # 2.5: the middle threshold is inclusive
    result = score(checklist, pattern("leiderschap", per_theme))
    theme = result.themes[four]
    assert theme.average == 2.5 and theme.level == "middle" and theme.average_text == "2,5"
    per_theme[four] = [4, 4, 4, 3]           # 3.75
    assert score(checklist, pattern("leiderschap", per_theme)).themes[four].average_text == "3,75"


def test_ties_name_the_first_theme_and_an_even_result_says_so():
    checklist = load_checklist("teams")
    result = score(checklist, {k: 3 for k in answer_keys(checklist)})
    assert result.even
    assert result.weakest.id == result.strongest.id == checklist.dimensions[0].id


@pytest.mark.parametrize("slug", SLUGS)
def test_answer_keys_follow_the_checklist(slug):
    checklist = load_checklist(slug)
    keys = answer_keys(checklist)
    assert len(keys) == len(set(keys)) == len(checklist.statements)
    assert keys[0] == f"{checklist.dimensions[0].id}-1"


def test_parse_keeps_valid_answers_and_names_what_is_missing_or_wrong():
    checklist = load_checklist("teams")
    keys = answer_keys(checklist)
    form = {k: "4" for k in keys}
    form[keys[0]] = ""            # left open
    del form[keys[1]]             # never sent
    form[keys[2]] = "6"           # off the scale
    form[keys[3]] = "drie"        # not a number
    form["vertrouwen-99"] = "5"   # not a statement: ignored
    answers, errors = parse_answers(checklist, form)
    assert errors == {keys[0]: MISSING, keys[1]: MISSING, keys[2]: INVALID, keys[3]: INVALID}
    assert answers == {k: 4 for k in keys[4:]}
    with pytest.raises(Incomplete) as raised:
        score(checklist, answers)
    assert set(raised.value.errors) == set(keys[:4])


def test_score_accepts_string_answers_from_a_form():
    checklist = load_checklist("teams")
    result = score(checklist, {k: "5" for k in answer_keys(checklist)})
    assert all(t.average == 5 and t.level == "high" for t in result.themes)


def test_dutch_number():
    assert [dutch_number(v) for v in (1, 2.5, 3.25, 3.4, 4.0, 10 / 3)] == ["1,0", "2,5", "3,25", "3,4", "4,0",
                                                                          "3,33"]


def test_chart_is_self_contained_svg_with_a_text_equivalent():
    checklist = load_checklist("teams")
    result = score(checklist, pattern("teams", [[1] * 5, [3] * 5, [5] * 5, [2] * 5, [4] * 5]))
    svg = chart_svg(result, id_prefix="g1")
    root = ET.fromstring(svg)   # well-formed XML, so it inlines in HTML and embeds anywhere
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "g1-titel g1-tekst"
    desc = root.find(f"{SVG}desc").text
    assert "Vertrouwen: 1,0, werkpunt" in desc and "Wij-zij-denken: 5,0, sterkte" in desc
    # Nothing a strict CSP or a privacy rule would refuse: no script, style, link or foreign host.
    for element in root.iter():
        assert element.tag.removeprefix(SVG) not in {"script", "style", "image", "a", "foreignObject"}
        assert "style" not in element.attrib and not any(a.startswith("on") for a in element.attrib)
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # Bar lengths follow the averages on the 1-5 scale: the full width is 440.
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("fill") != "#f7f3ee"]
    assert [float(b.get("width")) for b in bars] == [6, 220, 440, 110, 330]
    assert [b.get("fill") for b in bars] == ["#b4561d", "#2f6b7a", "#1d4f5c", "#b4561d", "#1d4f5c"]


def test_chart_escapes_titles():
    checklist = load_checklist("teams")
    result = score(checklist, {k: 3 for k in answer_keys(checklist)})
    themes = (dataclasses.replace(result.themes[0], title="A & <b>"),) + result.themes[1:]
    svg = chart_svg(dataclasses.replace(result, themes=themes))
    assert "A &amp; &lt;b&gt;" in svg and "<b>" not in svg
