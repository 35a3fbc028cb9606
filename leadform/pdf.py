"""The downloadable checklist PDFs, rendered from the same settings as the website.

Each checklist in `site_config/checklists/*.yml` becomes one A4 document: a cover,
the introduction, the statements with empty score boxes, a scoring key, the advice
per theme, the closing text and the coach's contact details.  The PDFs are built
ahead of time (``python -m leadform.pdf OUT_DIR``) so a download never waits on
rendering, and the output is byte-for-byte reproducible so a rebuild only touches
files whose content really changed.

Only the Bitstream Vera fonts that ship inside reportlab are used, embedded as
TrueType: Dutch text with é, ë and curly quotes renders the same everywhere, and
building needs neither system fonts nor the network.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    FrameBreak,
    KeepInFrame,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from site_config import Checklist, Dimension, Settings, load_settings

__all__ = ["render_checklist_pdf", "render_report_pdf", "build_pdfs", "main"]

# --- look ---------------------------------------------------------------------------------------

PETROL = colors.HexColor("#1d4f5c")
AMBER = colors.HexColor("#b4561d")
SAND = colors.HexColor("#f7f3ee")
INK = colors.HexColor("#2a3336")
MUTED = colors.HexColor("#6b7478")
RULE = colors.HexColor("#d8cec1")
PETROL_TINT = colors.HexColor("#e4eef0")
AMBER_TINT = colors.HexColor("#f6e6da")
ON_PETROL = colors.HexColor("#cfe0e4")

PAGE_W, PAGE_H = A4
MARGIN_X = 20 * mm
MARGIN_TOP = 24 * mm
MARGIN_BOTTOM = 22 * mm
CONTENT_W = PAGE_W - 2 * MARGIN_X

FONT = "CoachVera"
FONT_BOLD = "CoachVera-Bold"
FONT_ITALIC = "CoachVera-Italic"
FONT_BOLD_ITALIC = "CoachVera-BoldItalic"

# What the three advice levels are called in the document, in the order of `Checklist.level()`.
LEVELS: tuple[tuple[str, str], ...] = (("low", "Werkpunt"), ("middle", "Groeikans"), ("high", "Sterkte"))


def _register_fonts() -> None:
    """Register reportlab's bundled Vera family once, so <b>/<i> map to embedded TTFs."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    font_dir = Path(reportlab.__file__).resolve().parent / "fonts"
    for name, file in ((FONT, "Vera.ttf"), (FONT_BOLD, "VeraBd.ttf"),
                       (FONT_ITALIC, "VeraIt.ttf"), (FONT_BOLD_ITALIC, "VeraBI.ttf")):
        pdfmetrics.registerFont(TTFont(name, str(font_dir / file)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT_ITALIC, boldItalic=FONT_BOLD_ITALIC)


def _styles() -> dict[str, ParagraphStyle]:
    """Every paragraph style in one place; hyphenation is off so extracted text stays whole."""
    base = ParagraphStyle("body", fontName=FONT, fontSize=10, leading=15, textColor=INK,
                          hyphenationLang="", embeddedHyphenation=0, uriWasteReduce=0,
                          bulletFontName=FONT, spaceAfter=7)

    def style(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=base, **kw)

    return {
        "body": base,
        "lead": style("lead", fontSize=11, leading=17, spaceAfter=9),
        "small": style("small", fontSize=8.5, leading=12, textColor=MUTED, spaceAfter=0),
        "kicker": style("kicker", fontName=FONT_BOLD, fontSize=8, leading=11, textColor=AMBER, spaceAfter=3,
                        keepWithNext=1),
        "h1": style("h1", fontName=FONT_BOLD, fontSize=21, leading=26, textColor=PETROL, spaceAfter=10,
                    keepWithNext=1),
        "h2": style("h2", fontName=FONT_BOLD, fontSize=14, leading=18, textColor=PETROL, spaceBefore=6,
                    spaceAfter=6, keepWithNext=1),
        "cell": style("cell", fontSize=9.5, leading=13, spaceAfter=0),
        "cell_num": style("cell_num", fontName=FONT_BOLD, fontSize=9, leading=13, textColor=AMBER,
                          spaceAfter=0),
        "head": style("head", fontName=FONT_BOLD, fontSize=8.5, leading=11, textColor=colors.white,
                      spaceAfter=0),
        "scale_num": style("scale_num", fontName=FONT_BOLD, fontSize=11, leading=13, textColor=colors.white,
                           alignment=TA_CENTER, spaceAfter=0),
        "scale_label": style("scale_label", fontSize=6.8, leading=8.2, textColor=ON_PETROL,
                             alignment=TA_CENTER, spaceAfter=0),
        "avg_label": style("avg_label", fontName=FONT_ITALIC, fontSize=8.5, leading=11, textColor=PETROL,
                           alignment=TA_RIGHT, spaceAfter=0),
        "level": style("level", fontName=FONT_BOLD, fontSize=9.5, leading=12, spaceAfter=1),
        "level_range": style("level_range", fontSize=7.8, leading=10, textColor=MUTED, spaceAfter=0),
        "step_num": style("step_num", fontName=FONT_BOLD, fontSize=11.5, leading=15, textColor=AMBER,
                          alignment=TA_CENTER, spaceAfter=0),
        "contact_name": style("contact_name", fontName=FONT_BOLD, fontSize=13, leading=17, textColor=PETROL,
                              spaceAfter=1),
        "contact": style("contact", fontSize=9.5, leading=13, spaceAfter=0),
        "contact_label": style("contact_label", fontName=FONT_BOLD, fontSize=8.5, leading=13, textColor=PETROL,
                               spaceAfter=0),
        "contact_role": style("contact_role", fontSize=9.5, leading=13, textColor=MUTED, spaceAfter=8),
        "cover_site": style("cover_site", fontName=FONT_BOLD, fontSize=9, leading=12, textColor=AMBER),
        "cover_kicker": style("cover_kicker", fontName=FONT_BOLD, fontSize=15, leading=18, textColor=ON_PETROL,
                              spaceAfter=2),
        "cover_title": style("cover_title", fontName=FONT_BOLD, fontSize=40, leading=44,
                             textColor=colors.white, spaceAfter=0),
        "cover_subtitle": style("cover_subtitle", fontSize=19, leading=25, textColor=colors.white, spaceAfter=8),
        "cover_tagline": style("cover_tagline", fontName=FONT_ITALIC, fontSize=11.5, leading=16,
                               textColor=ON_PETROL, spaceAfter=0),
        "cover_fact": style("cover_fact", fontSize=10, leading=14, textColor=PETROL, spaceAfter=0),
        "cover_theme": style("cover_theme", fontSize=10.5, leading=14, textColor=INK, spaceAfter=0),
        "cover_theme_num": style("cover_theme_num", fontName=FONT_BOLD, fontSize=10.5, leading=14,
                                 textColor=AMBER, spaceAfter=0),
        "cover_coach": style("cover_coach", fontName=FONT_BOLD, fontSize=12, leading=16, textColor=PETROL,
                             spaceAfter=0),
        "cover_role": style("cover_role", fontSize=9.5, leading=13, textColor=MUTED, spaceAfter=0),
    }


# --- small helpers ------------------------------------------------------------------------------


def _t(text: str) -> str:
    """Escape content for Paragraph markup: the YAML may well contain & < >."""
    return escape(" ".join(text.split()))


def _paragraphs(text: str) -> list[str]:
    """Split a YAML block on blank lines, the way an author writes paragraphs."""
    return [" ".join(block.split()) for block in text.strip().split("\n\n") if block.strip()]


def _num(value: float) -> str:
    """Dutch number: 2,5 and 4 rather than 2.5 and 4.0."""
    return f"{value:g}".replace(".", ",")


def _bare_url(url: str) -> str:
    """The site address as a reader types it, without scheme or trailing slash."""
    return url.split("://", 1)[-1].rstrip("/")


def _level_ranges(checklist: Checklist) -> dict[str, str]:
    """The score range each advice level covers, in words."""
    low, high = _num(checklist.low_below), _num(checklist.high_from)
    return {"low": f"lager dan {low}", "middle": f"van {low} tot {high}", "high": f"{high} of hoger"}


def _table_style(commands: list[tuple[Any, ...]]) -> TableStyle:
    """Every table cell sets its font, even around flowables: default it to Vera, never Helvetica."""
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT), *commands])


class _ScoreBox(Flowable):
    """An empty rounded box to write a score or an average in by hand."""

    def __init__(self, width: float = 6.2 * mm, height: float = 6.2 * mm, stroke: colors.Color = PETROL) -> None:
        super().__init__()
        self.box_w, self.box_h, self.stroke = width, height, stroke

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        self._avail_w = avail_w
        return avail_w, self.box_h

    def draw(self) -> None:
        c = self.canv
        c.setStrokeColor(self.stroke)
        c.setFillColor(colors.white)
        c.setLineWidth(0.8)
        c.roundRect((self._avail_w - self.box_w) / 2, 0, self.box_w, self.box_h, 1.2 * mm, stroke=1, fill=1)


class _AccentRule(Flowable):
    """A short amber bar under a heading: the document's recurring accent."""

    def __init__(self, width: float = 14 * mm, thickness: float = 2.2, space_after: float = 9,
                 space_before: float = 0) -> None:
        super().__init__()
        self.rule_w, self.thickness, self.space_after = width, thickness, space_after
        self.space_before = space_before

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        return self.rule_w, self.space_before + self.thickness + self.space_after

    def draw(self) -> None:
        self.canv.setFillColor(AMBER)
        self.canv.rect(0, self.space_after, self.rule_w, self.thickness, stroke=0, fill=1)


def _numbered_canvas(footer_left: str) -> type[Canvas]:
    """A canvas that knows the page total, for "pagina 3 van 9" in every footer but the cover's."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._saved_pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # hold the page back until the total is known
            self._saved_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._saved_pages)
            for state in self._saved_pages:
                self.__dict__.update(state)
                if self._pageNumber > 1:
                    self._draw_footer(total)
                super().showPage()
            super().save()

        def _draw_footer(self, total: int) -> None:
            y = MARGIN_BOTTOM - 11 * mm
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.6)
            self.line(MARGIN_X, y + 4.5 * mm, PAGE_W - MARGIN_X, y + 4.5 * mm)
            self.setFont(FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawString(MARGIN_X, y, footer_left)
            self.setFillColor(PETROL)
            self.setFont(FONT_BOLD, 7.5)
            self.drawRightString(PAGE_W - MARGIN_X, y, f"pagina {self._pageNumber} van {total}")
            self.restoreState()

    return NumberedCanvas


# --- the pages ----------------------------------------------------------------------------------


def _capital(text: str) -> str:
    """The checklist's name at the start of a line: 'checklist teams' -> 'Checklist teams'."""
    return text[:1].upper() + text[1:]


def _cover(checklist: Checklist, settings: Settings, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Title block on the petrol band; the background itself is drawn by the cover template."""
    words = checklist.title.split(maxsplit=1)   # "checklist teams": CHECKLIST over "Teams"
    kicker, main_title = (words[0].upper(), _capital(words[1])) if len(words) == 2 else ("", _capital(checklist.title))
    tagline = checklist.tagline.strip()
    tagline = tagline[:1].upper() + tagline[1:]
    story: list[Flowable] = [Paragraph(_t(settings.site.name).upper(), st["cover_site"]), Spacer(1, 46 * mm)]
    if kicker:
        story.append(Paragraph(_t(kicker), st["cover_kicker"]))
    story += [
        Paragraph(_t(main_title), st["cover_title"]),
        _AccentRule(width=22 * mm, thickness=3, space_after=14, space_before=10),
        Paragraph(_t(checklist.subtitle), st["cover_subtitle"]),
        Paragraph(_t(tagline), st["cover_tagline"]),
    ]
    return story


def _cover_contents(checklist: Checklist, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """What the checklist holds, in the sand area under the band: a reader sees the scope at a glance."""
    n_dims, n_statements = len(checklist.dimensions), len(checklist.statements)
    points = checklist.scale
    facts = (f"<b>{n_dims}</b> thema’s  ·  <b>{n_statements}</b> uitspraken  ·  "
             f"score van <b>{points[0].score}</b> tot <b>{points[-1].score}</b>  ·  advies op maat")
    items = [[Paragraph(f"{i:02d}", st["cover_theme_num"]), Paragraph(_t(d.title), st["cover_theme"])]
             for i, d in enumerate(checklist.dimensions, start=1)]
    half = (len(items) + 1) // 2
    left, right = items[:half], items[half:] + [["", ""]] * (half - len(items[half:]))
    rows = [a + [""] + b for a, b in zip(left, right, strict=True)]
    col = (CONTENT_W - 8 * mm) / 2
    themes = Table(rows, colWidths=[10 * mm, col - 10 * mm, 8 * mm, 10 * mm, col - 10 * mm], hAlign="LEFT")
    themes.setStyle(_table_style([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ("LINEBELOW", (0, 0), (1, len(left) - 1), 0.6, RULE),
        ("LINEBELOW", (3, 0), (4, len(items) - half - 1), 0.6, RULE),
    ]))
    return [Paragraph(facts, st["cover_fact"]), Spacer(1, 10 * mm),
            Paragraph("IN DEZE CHECKLIST", st["kicker"]), Spacer(1, 2), themes]


def _cover_coach(settings: Settings, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Who wrote it, anchored to the foot of the cover."""
    coach = settings.coach
    return [
        _AccentRule(width=CONTENT_W, thickness=0.8, space_after=8),
        Paragraph(_t(coach.name), st["cover_coach"]),
        Paragraph(f"{_t(coach.role)}  ·  {_t(coach.company)}  ·  {_t(_bare_url(settings.site.url))}",
                  st["cover_role"]),
    ]


def _heading(kicker: str, title: str, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    return [Paragraph(_t(kicker).upper(), st["kicker"]), Paragraph(_t(title), st["h1"]), _AccentRule()]


def _introduction(checklist: Checklist, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    story = _heading("Voor je begint", "Inleiding", st)
    story += [Paragraph(_t(p), st["lead"]) for p in _paragraphs(checklist.introduction)]
    # The scale as a legend, so the reader knows the words behind the numbers before scoring.
    cells = [[Paragraph(f"<b>{p.score}</b>", st["step_num"]) for p in checklist.scale],
             [Paragraph(_t(p.label), ParagraphStyle("legend", parent=st["small"], alignment=TA_CENTER,
                                                    textColor=INK)) for p in checklist.scale]]
    legend = Table(cells, colWidths=[CONTENT_W / len(checklist.scale)] * len(checklist.scale))
    legend.setStyle(_table_style([
        ("BACKGROUND", (0, 0), (-1, -1), SAND),
        ("LINEBEFORE", (1, 0), (-1, -1), 0.6, RULE),
        ("TOPPADDING", (0, 0), (-1, 0), 8), ("BOTTOMPADDING", (0, -1), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    story += [KeepTogether([Spacer(1, 4), Paragraph("DE SCORES", st["kicker"]), legend])]
    return story


def _dimension_table(number_from: int, dimension: Dimension, checklist: Checklist,
                     st: dict[str, ParagraphStyle]) -> tuple[Table, int]:
    """One theme: its statements in rows, the scale as the header, an empty box per score."""
    n_scale = len(checklist.scale)
    score_w = 14.5 * mm
    num_w = 9.5 * mm
    text_w = CONTENT_W - num_w - n_scale * score_w
    header = [Paragraph("", st["head"]), Paragraph("Uitspraak", st["head"])]
    header += [[Paragraph(str(p.score), st["scale_num"]), Paragraph(_t(p.label), st["scale_label"])]
               for p in checklist.scale]
    rows: list[list[Any]] = [header]
    n = number_from
    for statement in dimension.statements:
        rows.append([Paragraph(str(n), st["cell_num"]), Paragraph(_t(statement), st["cell"])]
                    + [_ScoreBox() for _ in checklist.scale])
        n += 1
    rows.append([Paragraph(f"Je gemiddelde voor dit thema: som ÷ {len(dimension.statements)} =",
                           st["avg_label"]), "", _ScoreBox(width=22 * mm, stroke=AMBER)] + [""] * (n_scale - 1))
    last = len(rows) - 1
    table = Table(rows, colWidths=[num_w, text_w] + [score_w] * n_scale, repeatRows=1)
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), PETROL),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
        ("LEFTPADDING", (0, 0), (-1, -1), 4), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("LEFTPADDING", (0, 0), (0, -1), 6), ("RIGHTPADDING", (0, 0), (0, -1), 0),
        ("LEFTPADDING", (2, 0), (-1, -1), 1), ("RIGHTPADDING", (2, 0), (-1, -1), 1),
        ("TOPPADDING", (0, 0), (-1, 0), 5), ("BOTTOMPADDING", (0, 0), (-1, 0), 5),
        ("VALIGN", (2, 0), (-1, 0), "TOP"),
        ("LINEBELOW", (0, 1), (-1, last - 1), 0.5, RULE),
        ("SPAN", (0, last), (1, last)), ("SPAN", (2, last), (-1, last)),
        ("BACKGROUND", (0, last), (-1, last), SAND),
        ("TOPPADDING", (0, last), (-1, last), 7), ("BOTTOMPADDING", (0, last), (-1, last), 7),
    ]
    style += [("BACKGROUND", (0, r), (-1, r), SAND) for r in range(2, last, 2)]
    table.setStyle(_table_style(style))
    return table, n


def _statements(checklist: Checklist, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    story = _heading("De checklist", "Geef je score", st)
    story.append(Paragraph(
        "Kruis bij elke uitspraak het vakje aan dat het best past bij je situatie van vandaag. "
        "Onderaan elk thema vul je daarna je gemiddelde in.", st["body"]))
    number = 1
    for i, dimension in enumerate(checklist.dimensions, start=1):
        table, number = _dimension_table(number, dimension, checklist, st)
        story.append(_theme_block(i, dimension, checklist, table, st))
    return story


def _theme_block(i: int, dimension: Dimension, checklist: Checklist, table: Table,
                 st: dict[str, ParagraphStyle]) -> KeepTogether:
    """A theme's kicker, title and table, kept on one page."""
    return KeepTogether([
        Spacer(1, 8),
        Paragraph(f"THEMA {i} VAN {len(checklist.dimensions)}", st["kicker"]),
        Paragraph(_t(dimension.title), st["h2"]),
        table,
    ])


def _scoring_key(checklist: Checklist, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    story = _heading("Je resultaat", "Zo bereken je je score", st)
    steps = [
        "Tel per thema de scores van alle uitspraken bij elkaar op.",
        "Deel die som door het aantal uitspraken van dat thema. Zo krijg je je gemiddelde, "
        f"een getal tussen {checklist.scale[0].score} en {checklist.scale[-1].score}.",
        "Noteer het gemiddelde in de tabel hieronder en lees bij elk thema het advies dat bij je niveau past.",
    ]
    rows = [[Paragraph(str(i), st["step_num"]), Paragraph(_t(text), st["body"])] for i, text in enumerate(steps, 1)]
    table = Table(rows, colWidths=[10 * mm, CONTENT_W - 10 * mm])
    table.setStyle(_table_style([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0),
                                 ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    story.append(table)

    example = [4, 3, 5, 2, 4]
    if {p.score for p in checklist.scale} >= set(example):
        avg = sum(example) / len(example)
        level = dict(LEVELS)[checklist.level(avg)].lower()
        story += [Spacer(1, 4), Paragraph(
            f"<i>Voorbeeld: de scores {', '.join(map(str, example[:-1]))} en {example[-1]} geven samen "
            f"{sum(example)}. {sum(example)} ÷ {len(example)} = {_num(avg)}: dit thema is een {level}.</i>",
            ParagraphStyle("example", parent=st["body"], textColor=MUTED))]

    # The three levels as tinted bands, in the colours the advice pages reuse.
    ranges = _level_ranges(checklist)
    meaning = {
        "low": "Dit thema is een duidelijk werkpunt. Hier valt de meeste winst te boeken.",
        "middle": "Er is een goede basis, met ruimte voor groei.",
        "high": "Dit is een sterkte. Koester ze bewust en zet ze in.",
    }
    bands = [[_level_label(key, label, ranges[key], st), Paragraph(_t(meaning[key]), st["cell"])]
             for key, label in LEVELS]
    band_table = Table(bands, colWidths=[52 * mm, CONTENT_W - 52 * mm])
    band_table.setStyle(_level_style(len(bands)))
    story += [Spacer(1, 10), Paragraph("WAT BETEKENT JE GEMIDDELDE?", st["kicker"]), Spacer(1, 3), band_table]

    # A place to write every average down, so the overview sits on one page.
    head = ParagraphStyle("overview_head", parent=st["head"])
    rows = [[Paragraph("Thema", head), Paragraph("Je gemiddelde", ParagraphStyle(
        "overview_head_c", parent=head, alignment=TA_CENTER))]]
    rows += [[Paragraph(_t(d.title), st["cell"]), ""] for d in checklist.dimensions]
    overview = Table(rows, colWidths=[CONTENT_W - 45 * mm, 45 * mm], rowHeights=[None] + [10 * mm] * len(
        checklist.dimensions))
    overview.setStyle(_table_style([
        ("BACKGROUND", (0, 0), (-1, 0), PETROL),
        ("BACKGROUND", (1, 1), (1, -1), colors.white),
        ("BACKGROUND", (0, 1), (0, -1), SAND),
        ("GRID", (0, 1), (-1, -1), 0.6, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, 0), 6), ("BOTTOMPADDING", (0, 0), (-1, 0), 6),
    ]))
    story.append(KeepTogether([Spacer(1, 12), Paragraph("JE OVERZICHT", st["kicker"]), Spacer(1, 3), overview]))
    return story


def _level_label(key: str, label: str, range_text: str, st: dict[str, ParagraphStyle]) -> list[Paragraph]:
    colour = {"low": AMBER, "middle": PETROL, "high": PETROL}[key]
    return [Paragraph(_t(label), ParagraphStyle(f"level_{key}", parent=st["level"], textColor=colour)),
            Paragraph(_t(range_text), st["level_range"])]


def _level_style(n_rows: int) -> TableStyle:
    """Tint per level: amber for a work point, sand for growth, petrol for a strength."""
    tints = {0: AMBER_TINT, 1: SAND, 2: PETROL_TINT}
    bars = {0: AMBER, 1: RULE, 2: PETROL}
    cmds: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 7), ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
        ("LEFTPADDING", (0, 0), (0, -1), 9), ("LEFTPADDING", (1, 0), (1, -1), 6),
        ("RIGHTPADDING", (0, 0), (-1, -1), 8),
    ]
    for r in range(n_rows):
        cmds += [("BACKGROUND", (0, r), (-1, r), tints[r % 3]),
                 ("LINEBEFORE", (0, r), (0, r), 3, bars[r % 3], "butt")]
        if r < n_rows - 1:
            cmds.append(("LINEBELOW", (0, r), (-1, r), 2, colors.white, "butt"))
    return _table_style(cmds)


def _advice(checklist: Checklist, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    story = _heading("Aan de slag", "Advies per thema", st)
    story.append(Paragraph(
        "Zoek bij elk thema het niveau dat bij je gemiddelde past. Begin bij het thema met de laagste score: "
        "daar maakt een kleine stap het grootste verschil.", st["body"]))
    ranges = _level_ranges(checklist)
    for i, dimension in enumerate(checklist.dimensions, start=1):
        rows = [[_level_label(key, label, ranges[key], st),
                 Paragraph(_t(getattr(dimension.advice, key)), st["cell"])] for key, label in LEVELS]
        table = Table(rows, colWidths=[40 * mm, CONTENT_W - 40 * mm])
        table.setStyle(_level_style(len(rows)))
        story.append(_theme_block(i, dimension, checklist, table, st))
    return story


def _closing(checklist: Checklist, settings: Settings, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The invitation to talk, kept on one page with the contact block it points to."""
    coach, address = settings.coach, settings.coach.address
    details = [
        ("Adres", f"{address.street}, {address.postcode} {address.city}, {address.country}"),
        ("E-mail", coach.email),
        ("Telefoon", coach.phone),
        ("Website", _bare_url(settings.site.url)),
        ("Ondernemingsnr.", coach.company_number),
    ]
    detail_rows = [[Paragraph(_t(label), st["contact_label"]), Paragraph(_t(value), st["contact"])]
                   for label, value in details]
    inner_w = CONTENT_W - 32
    detail_table = Table(detail_rows, colWidths=[34 * mm, inner_w - 34 * mm])
    detail_table.setStyle(_table_style([
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    card_content: list[Flowable] = [
        Paragraph("CONTACT", st["kicker"]),
        Paragraph(_t(coach.name), st["contact_name"]),
        Paragraph(f"{_t(coach.role)}  ·  {_t(coach.company)}", st["contact_role"]),
        detail_table,
    ]
    card = Table([[card_content]], colWidths=[CONTENT_W])
    card.setStyle(_table_style([
        ("BACKGROUND", (0, 0), (-1, -1), SAND),
        ("LINEBEFORE", (0, 0), (0, -1), 4, PETROL, "butt"),
        ("LEFTPADDING", (0, 0), (-1, -1), 16), ("RIGHTPADDING", (0, 0), (-1, -1), 16),
        ("TOPPADDING", (0, 0), (-1, -1), 14), ("BOTTOMPADDING", (0, 0), (-1, -1), 16),
    ]))
    story = _heading("Tot slot", "Zin in een gesprek?", st)
    story += [Paragraph(_t(p), st["lead"]) for p in _paragraphs(checklist.closing)]
    story += [Spacer(1, 10), card]
    return [KeepTogether(story)]


# --- document -----------------------------------------------------------------------------------


def _page_callbacks(checklist: Checklist, settings: Settings) -> tuple[Callable[..., None], Callable[..., None]]:
    """Backgrounds and running header; the footer with the page total is drawn by the canvas."""
    band_bottom = PAGE_H * 0.42

    def cover(canv: Canvas, doc: BaseDocTemplate) -> None:
        canv.saveState()
        canv.setFillColor(SAND)
        canv.rect(0, 0, PAGE_W, PAGE_H, stroke=0, fill=1)
        canv.setFillColor(PETROL)
        canv.rect(0, band_bottom, PAGE_W, PAGE_H - band_bottom, stroke=0, fill=1)
        # A quiet pattern of score boxes, echoing the checklist inside.
        canv.setStrokeColor(colors.HexColor("#2c6172"))
        canv.setLineWidth(1.2)
        size, gap = 9 * mm, 4 * mm
        for row in range(3):
            for col in range(5 - row):
                x = PAGE_W - MARGIN_X - (col + 1) * size - col * gap
                y = PAGE_H - 22 * mm - (row + 1) * size - row * gap
                canv.roundRect(x, y, size, size, 1.8 * mm, stroke=1, fill=0)
        canv.setFillColor(AMBER)
        canv.rect(0, band_bottom - 2.2 * mm, PAGE_W, 2.2 * mm, stroke=0, fill=1)
        canv.restoreState()

    def body(canv: Canvas, doc: BaseDocTemplate) -> None:
        canv.saveState()
        y = PAGE_H - 13 * mm
        canv.setFillColor(AMBER)
        canv.rect(MARGIN_X, y - 1.2, 2.2 * mm, 2.2 * mm, stroke=0, fill=1)
        canv.setFont(FONT_BOLD, 7.5)
        canv.setFillColor(PETROL)
        canv.drawString(MARGIN_X + 4.2 * mm, y, settings.site.name.upper())
        canv.setFont(FONT, 7.5)
        canv.setFillColor(MUTED)
        canv.drawRightString(PAGE_W - MARGIN_X, y, f"{_capital(checklist.title)}  ·  {checklist.subtitle}")
        canv.restoreState()

    return cover, body


def render_checklist_pdf(checklist: Checklist, settings: Settings) -> bytes:
    """The checklist as A4 PDF bytes; identical input gives identical bytes."""
    _register_fonts()
    st = _styles()
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer, pagesize=A4,
        leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM,
        title=f"{_capital(checklist.title)} – {checklist.subtitle}",
        author=f"{settings.coach.name}, {settings.coach.company}",
        subject=checklist.tagline, creator=settings.site.name, producer=settings.site.name,
        keywords=["checklist", checklist.slug],
        # invariant=1 freezes the dates (2000-01-01) and the file ID, so equal input gives equal bytes.
        invariant=1, initialFontName=FONT, initialFontSize=10, initialLeading=12,
        lang="nl-BE",
    )
    cover_cb, body_cb = _page_callbacks(checklist, settings)
    band_bottom = PAGE_H * 0.42
    cover_frames = [
        Frame(MARGIN_X, band_bottom + 10 * mm, CONTENT_W, PAGE_H - band_bottom - 10 * mm - 20 * mm,
              id="cover_band", leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0),
        Frame(MARGIN_X, 42 * mm, CONTENT_W, band_bottom - 2.2 * mm - 12 * mm - 42 * mm,
              id="cover_sand", leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0),
        Frame(MARGIN_X, 16 * mm, CONTENT_W, 22 * mm,
              id="cover_coach", leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0),
    ]
    body_frame = Frame(MARGIN_X, MARGIN_BOTTOM, CONTENT_W, PAGE_H - MARGIN_TOP - MARGIN_BOTTOM, id="body",
                       leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([
        PageTemplate(id="cover", frames=cover_frames, onPage=cover_cb),
        PageTemplate(id="body", frames=[body_frame], onPage=body_cb),
    ])
    # Each cover frame shrinks its content rather than spilling onto a second cover page.
    story: list[Flowable] = []
    for frame, content in zip(cover_frames, (_cover(checklist, settings, st), _cover_contents(checklist, st),
                                             _cover_coach(settings, st)), strict=True):
        story += [KeepInFrame(frame.width, frame.height, content, mode="shrink"), FrameBreak()]
    story[-1:] = [NextPageTemplate("body"), PageBreak()]
    story += _introduction(checklist, st)
    story += [PageBreak(), *_statements(checklist, st)]
    story += [PageBreak(), *_scoring_key(checklist, st)]
    story += [PageBreak(), *_advice(checklist, st)]
    story += [CondPageBreak(120 * mm), Spacer(1, 14), *_closing(checklist, settings, st)]
    footer = f"{settings.coach.name}  ·  {settings.coach.company}  ·  {_bare_url(settings.site.url)}"
    doc.build(story, canvasmaker=_numbered_canvas(footer))
    return buffer.getvalue()


# --- the personal report ---------------------------------------------------------------------------


class _ScoreBars(Flowable):
    """The theme averages as horizontal bars on the checklist's scale, coloured by level as on the page."""

    ROW = 13 * mm

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        self.width = avail_w
        return avail_w, self.ROW * len(self.result.themes) + 6 * mm

    def draw(self) -> None:
        from leadform.scoring import LEVEL_COLOURS

        c, scale = self.canv, self.result.checklist.scale
        low, high = scale[0].score, scale[-1].score
        top = self.ROW * len(self.result.themes) + 6 * mm
        for i, theme in enumerate(self.result.themes):
            y = top - (i + 1) * self.ROW
            colour = colors.HexColor(LEVEL_COLOURS[theme.level])
            c.setFont(FONT, 9)
            c.setFillColor(INK)
            c.drawString(0, y + 7 * mm, theme.title)
            c.setFont(FONT_BOLD, 9)
            c.setFillColor(colour)
            c.drawRightString(self.width, y + 7 * mm, f"{theme.average_text} · {theme.level_label}")
            c.setFillColor(SAND)
            c.roundRect(0, y + 1.5 * mm, self.width, 4 * mm, 1 * mm, stroke=0, fill=1)
            c.setFillColor(colour)
            length = max((theme.average - low) / ((high - low) or 1) * self.width, 2 * mm)
            c.roundRect(0, y + 1.5 * mm, length, 4 * mm, 1 * mm, stroke=0, fill=1)
        c.setFont(FONT, 7.5)
        c.setFillColor(MUTED)
        for point in scale:
            x = (point.score - low) / ((high - low) or 1) * self.width
            draw = c.drawString if point.score == low else c.drawRightString if point.score == high \
                else c.drawCentredString
            draw(x, 0, str(point.score))


def render_report_pdf(result: Any, *, name: str, day: Any, settings: Settings | None = None) -> bytes:
    """One person's report (leadform.scoring.Result): theme scores and chart, their advice, their answer
    per statement, the date and how to reach the coach. Made on the spot for each download."""
    from leadform.scoring import LEVEL_LABELS

    settings = settings or load_settings()
    checklist = result.checklist
    _register_fonts()
    st = _styles()
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer, pagesize=A4,
        leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM,
        title=f"Persoonlijk rapport – {checklist.title.title()}", author=f"{settings.coach.name}, "
        f"{settings.coach.company}", creator=settings.site.name, producer=settings.site.name,
        initialFontName=FONT, initialFontSize=10, initialLeading=12, lang="nl-BE",
    )
    _, body_cb = _page_callbacks(checklist, settings)
    frame = Frame(MARGIN_X, MARGIN_BOTTOM, CONTENT_W, PAGE_H - MARGIN_TOP - MARGIN_BOTTOM, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate(id="body", frames=[frame], onPage=body_cb)])
    months = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
              "oktober", "november", "december"]
    date_text = f"{day.day} {months[day.month - 1]} {day.year}"

    story: list[Flowable] = _heading(checklist.title, "Je persoonlijk rapport", st)
    story.append(Paragraph(f"Voor <b>{_t(name)}</b>, ingevuld op {date_text}.", st["lead"]))
    if result.even:
        summary = "Al je thema’s scoren even hoog."
    else:
        summary = (f"Je sterkste thema is <b>{_t(result.strongest.title)}</b> ({result.strongest.average_text}); "
                   f"je grootste groeikans ligt bij <b>{_t(result.weakest.title)}</b> "
                   f"({result.weakest.average_text}).")
    story += [Paragraph(summary, st["body"]), Spacer(1, 4),
              Paragraph("JE GEMIDDELDE PER THEMA", st["kicker"]), Spacer(1, 2), _ScoreBars(result)]
    head = ParagraphStyle("report_head", parent=st["head"])
    rows = [[Paragraph("Thema", head), Paragraph("Gemiddelde", head), Paragraph("Niveau", head)]]
    rows += [[Paragraph(_t(t.title), st["cell"]), Paragraph(t.average_text, st["cell"]),
              Paragraph(_t(t.level_label), st["cell"])] for t in result.themes]
    overview = Table(rows, colWidths=[CONTENT_W - 70 * mm, 30 * mm, 40 * mm], repeatRows=1)
    overview.setStyle(_table_style([
        ("BACKGROUND", (0, 0), (-1, 0), PETROL), ("GRID", (0, 1), (-1, -1), 0.6, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
    ]))
    story += [Spacer(1, 8), overview]

    story += [PageBreak(), *_heading("Aan de slag", "Jouw advies per thema", st)]
    story.append(Paragraph("Het advies past bij je gemiddelde per thema. Begin bij het thema met de laagste "
                           "score: daar maakt een kleine stap het grootste verschil.", st["body"]))
    ranges = _level_ranges(checklist)
    for i, theme in enumerate(result.themes, start=1):
        row = [[_level_label(theme.level, f"{LEVEL_LABELS[theme.level]} · {theme.average_text}",
                             ranges[theme.level], st), Paragraph(_t(theme.advice), st["cell"])]]
        table = Table(row, colWidths=[40 * mm, CONTENT_W - 40 * mm])
        table.setStyle(_level_style(1) if theme.level == "low" else _table_style([
            ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 7),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 8), ("LEFTPADDING", (0, 0), (0, -1), 9),
            ("BACKGROUND", (0, 0), (-1, -1), SAND if theme.level == "middle" else PETROL_TINT),
            ("LINEBEFORE", (0, 0), (0, 0), 3, RULE if theme.level == "middle" else PETROL, "butt")]))
        story.append(KeepTogether([Spacer(1, 6), Paragraph(f"THEMA {i} VAN {len(result.themes)}", st["kicker"]),
                                   Paragraph(_t(theme.title), st["h2"]), table]))

    story += [CondPageBreak(90 * mm), Spacer(1, 10), *_heading("Je antwoorden", "Wat je per uitspraak antwoordde", st)]
    labels = {p.score: p.label for p in checklist.scale}
    number = 1
    for dimension, theme in zip(checklist.dimensions, result.themes, strict=True):
        rows = [[Paragraph("", head), Paragraph(_t(dimension.title), head), Paragraph("Je antwoord", head)]]
        for statement, answer in zip(dimension.statements, theme.answers, strict=True):
            rows.append([Paragraph(str(number), st["cell_num"]), Paragraph(_t(statement), st["cell"]),
                         Paragraph(f"<b>{answer}</b> · {_t(labels.get(answer, ''))}", st["cell"])])
            number += 1
        rows.append(["", Paragraph(f"Je gemiddelde: <b>{theme.average_text}</b> ({_t(theme.level_label)})",
                                   st["avg_label"]), ""])
        table = Table(rows, colWidths=[9.5 * mm, CONTENT_W - 9.5 * mm - 38 * mm, 38 * mm], repeatRows=1)
        table.setStyle(_table_style([
            ("BACKGROUND", (0, 0), (-1, 0), PETROL), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEBELOW", (0, 1), (-1, -2), 0.5, RULE), ("BACKGROUND", (0, -1), (-1, -1), SAND),
            ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ]))
        story += [Spacer(1, 8), KeepTogether([table])]

    contact_page = settings.site.url.rstrip("/") + "/contact/"
    story += [CondPageBreak(120 * mm), Spacer(1, 14), *_closing(checklist, settings, st),
              Spacer(1, 8), Paragraph(f"Een gesprek plannen: <b>{_t(_bare_url(contact_page))}</b>", st["body"])]
    footer = f"{settings.coach.name}  ·  {settings.coach.company}  ·  {_bare_url(settings.site.url)}"
    doc.build(story, canvasmaker=_numbered_canvas(footer))
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Replace the file atomically, and only when its bytes differ, so mtimes mean something."""
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_pdfs(out_dir: Path, settings: Settings | None = None) -> list[Path]:
    """Write every checklist's PDF into out_dir; unchanged files are left alone."""
    settings = settings or load_settings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for checklist in settings.checklists:
        path = out_dir / checklist.filename
        _write_if_changed(path, render_checklist_pdf(checklist, settings))
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m leadform.pdf OUT_DIR`: build the checklist PDFs ahead of deployment."""
    parser = argparse.ArgumentParser(prog="python -m leadform.pdf", description=main.__doc__)
    parser.add_argument("out_dir", type=Path, help="folder to write the PDFs into")
    args = parser.parse_args(argv)
    for path in build_pdfs(args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
