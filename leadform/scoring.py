"""Scoring a checklist: answers in, per-theme averages, levels, advice and a chart out.

Pure functions over `site_config`'s checklists, so the page, the app's result page, the personal
report PDF and the team rounds all score the same way from the same YAML. An answer is keyed
`<dimension_id>-<n>` (n counts a theme's statements from 1) and holds a score from the checklist's
scale. Nothing here touches a request or a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from site_config import Checklist, Dimension, load_settings

__all__ = ["LEVELS", "LEVEL_LABELS", "Incomplete", "Result", "ThemeScore", "answer_key", "answer_keys",
           "chart_svg", "dutch_number", "load_checklist", "parse_answers", "score"]

# The three advice levels, in the order of `Checklist.level()`, with the words the page and PDFs use.
LEVELS: tuple[tuple[str, str], ...] = (("low", "Werkpunt"), ("middle", "Groeikans"), ("high", "Sterkte"))
LEVEL_LABELS: dict[str, str] = dict(LEVELS)
# Site colours per level (coach.css: amber, light petrol, petrol): each at least 3:1 against white.
LEVEL_COLOURS: dict[str, str] = {"low": "#b4561d", "middle": "#2f6b7a", "high": "#1d4f5c"}

MISSING = "Kies een antwoord bij deze uitspraak."
INVALID = "Dit antwoord kennen we niet. Kies een van de scores."


def load_checklist(slug: str) -> Checklist:
    """The checklist named `slug` from site_config; KeyError when there is none."""
    return load_settings().checklist(slug)


def answer_key(dimension: Dimension, n: int) -> str:
    """The form field name of statement n (from 1) of a theme."""
    return f"{dimension.id}-{n}"


def answer_keys(checklist: Checklist) -> list[str]:
    """Every statement's field name, in the order the page shows them."""
    return [answer_key(d, n) for d in checklist.dimensions for n in range(1, len(d.statements) + 1)]


class Incomplete(ValueError):
    """Answers missing or out of the scale: `errors` maps each such field to a Dutch message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(f"{len(errors)} answers missing or invalid")
        self.errors = errors


def parse_answers(checklist: Checklist, form: Mapping[str, object]) -> tuple[dict[str, int], dict[str, str]]:
    """Read a submitted form: the valid answers (kept, also when others are missing) and a Dutch
    message per statement that is missing or not on the scale. Unknown fields are ignored."""
    allowed = {p.score for p in checklist.scale}
    answers: dict[str, int] = {}
    errors: dict[str, str] = {}
    for key in answer_keys(checklist):
        raw = form.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            errors[key] = MISSING
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            errors[key] = INVALID
            continue
        if value in allowed:
            answers[key] = value
        else:
            errors[key] = INVALID
    return answers, errors


@dataclass(frozen=True)
class ThemeScore:
    id: str
    title: str
    answers: tuple[int, ...]
    average: float
    level: str        # low, middle, high
    advice: str

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS[self.level]

    @property
    def average_text(self) -> str:
        return dutch_number(self.average)


@dataclass(frozen=True)
class Result:
    checklist: Checklist
    themes: tuple[ThemeScore, ...]

    @property
    def strongest(self) -> ThemeScore:
        """The theme with the highest average; the first of equals, in the checklist's order."""
        return max(self.themes, key=lambda t: t.average)

    @property
    def weakest(self) -> ThemeScore:
        """The theme with the lowest average; the first of equals, in the checklist's order."""
        return min(self.themes, key=lambda t: t.average)

    @property
    def even(self) -> bool:
        """Every theme scored the same: there is no strongest or weakest one to name."""
        return len({t.average for t in self.themes}) == 1

    def theme(self, theme_id: str) -> ThemeScore:
        return next(t for t in self.themes if t.id == theme_id)


def score(checklist: Checklist, answers: Mapping[str, int]) -> Result:
    """Score complete answers; raises Incomplete naming what is missing or off the scale."""
    _, errors = parse_answers(checklist, answers)
    if errors:
        raise Incomplete(errors)
    themes = []
    for dimension in checklist.dimensions:
        values = tuple(int(answers[answer_key(dimension, n)]) for n in range(1, len(dimension.statements) + 1))
        average = sum(values) / len(values)
        level = checklist.level(average)
        themes.append(ThemeScore(id=dimension.id, title=dimension.title, answers=values, average=average,
                                 level=level, advice=getattr(dimension.advice, level)))
    return Result(checklist=checklist, themes=tuple(themes))


def dutch_number(value: float) -> str:
    """An average as a Flemish reader writes it: 3,4 and 3,0 and 3,25 (at most two decimals)."""
    text = f"{value:.2f}"
    if text.endswith("0"):
        text = text[:-1]
    return text.replace(".", ",")


# -- the chart -------------------------------------------------------------------------------------------

def chart_svg(result: Result, *, id_prefix: str = "grafiek") -> str:
    """An inline SVG bar chart of the theme averages on the checklist's scale, in the site's colours.

    Self-contained (no script, no style attribute, no external font or image), so it passes the
    strict CSP in a page and can be inlined anywhere. Screen readers get its text equivalent from its
    <title> and <desc>; the page shows the same figures as a table beside it.
    """
    checklist = result.checklist
    low, high = checklist.scale[0].score, checklist.scale[-1].score
    width, row_h, top, bar_h = 440, 56, 8, 18
    height = top + row_h * len(result.themes) + 26
    span = high - low if high > low else 1

    def x(value: float) -> float:
        return round((value - low) / span * width, 1)

    title = f"Je gemiddelde per thema op een schaal van {low} tot {high}"
    desc = "; ".join(f"{t.title}: {t.average_text}, {t.level_label.lower()}" for t in result.themes) + "."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="coach-chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{id_prefix}-titel {id_prefix}-tekst" focusable="false" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif">',
        f'<title id="{id_prefix}-titel">{escape(title)}</title>',
        f'<desc id="{id_prefix}-tekst">{escape(desc)}</desc>',
    ]
    # Grid lines at each scale point, labelled under the chart.
    grid_bottom = top + row_h * len(result.themes)
    for point in checklist.scale:
        gx = x(point.score)
        parts.append(f'<line x1="{gx}" y1="{top}" x2="{gx}" y2="{grid_bottom}" stroke="#d8cec1" stroke-width="1"/>')
        anchor = "start" if point.score == low else "end" if point.score == high else "middle"
        parts.append(f'<text x="{gx}" y="{grid_bottom + 20}" font-size="14" fill="#4f5e63" '
                     f'text-anchor="{anchor}">{point.score}</text>')
    for i, theme in enumerate(result.themes):
        y = top + i * row_h
        colour = LEVEL_COLOURS[theme.level]
        parts.append(f'<text x="0" y="{y + 20}" font-size="16" fill="#143a44">{escape(theme.title)}</text>')
        parts.append(f'<text x="{width}" y="{y + 20}" font-size="16" font-weight="700" fill="{colour}" '
                     f'text-anchor="end">{theme.average_text} · {escape(theme.level_label)}</text>')
        parts.append(f'<rect x="0" y="{y + 28}" width="{width}" height="{bar_h}" rx="4" fill="#f7f3ee"/>')
        parts.append(f'<rect x="0" y="{y + 28}" width="{max(x(theme.average), 6)}" height="{bar_h}" rx="4" '
                     f'fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)
