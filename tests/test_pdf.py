"""The checklist PDFs: complete content, embedded fonts, reproducible bytes and cheap rebuilds."""

from __future__ import annotations

import dataclasses
import io
import os
from functools import cache
from pathlib import Path

import pypdf
import pytest

from leadform.pdf import build_pdfs, render_checklist_pdf
from site_config import Checklist, load_settings

pytestmark = pytest.mark.engine_independent  # no database: .ci/run's PostgreSQL pass leaves it out

SETTINGS = load_settings()
CHECKLISTS = {c.slug: c for c in SETTINGS.checklists}
BASE14 = {"Courier", "Courier-Bold", "Courier-Oblique", "Courier-BoldOblique", "Helvetica", "Helvetica-Bold",
          "Helvetica-Oblique", "Helvetica-BoldOblique", "Times-Roman", "Times-Bold", "Times-Italic",
          "Times-BoldItalic", "Symbol", "ZapfDingbats"}


def flat(text: str) -> str:
    """Collapse whitespace: statements may wrap across lines in the PDF."""
    return " ".join(text.split())


@cache
def pdf_bytes(slug: str) -> bytes:
    return render_checklist_pdf(CHECKLISTS[slug], SETTINGS)


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return flat(" ".join(page.extract_text() or "" for page in reader.pages))


def texts_of(checklist: Checklist) -> list[str]:
    """Every piece of YAML prose the PDF must carry."""
    advice = [getattr(d.advice, level) for d in checklist.dimensions for level in ("low", "middle", "high")]
    return [checklist.introduction, checklist.closing, *checklist.statements, *advice]


def test_there_are_checklists_to_test():
    assert set(CHECKLISTS) >= {"teams", "leiderschap"}


@pytest.mark.parametrize("slug", sorted(CHECKLISTS))
def test_pdf_holds_every_statement(slug):
    text = pdf_text(pdf_bytes(slug))
    missing = [s for s in CHECKLISTS[slug].statements if flat(s) not in text]
    assert not missing


@pytest.mark.parametrize("slug", sorted(CHECKLISTS))
def test_pdf_holds_title_intro_advice_and_contact(slug):
    checklist, coach = CHECKLISTS[slug], SETTINGS.coach
    text = pdf_text(pdf_bytes(slug))
    assert checklist.title.lower() in text.lower(), "the checklist's one name (capitalised at a line start)"
    for needle in (checklist.subtitle, coach.name, coach.email, coach.company_number,
                   coach.phone, coach.company, coach.address.street, *checklist.introduction.split("\n\n"),
                   *(d.title for d in checklist.dimensions)):
        assert flat(needle) in text, needle
    for dimension in checklist.dimensions:
        for level in ("low", "middle", "high"):
            assert flat(getattr(dimension.advice, level)) in text, (dimension.id, level)


@pytest.mark.parametrize("slug", sorted(CHECKLISTS))
def test_curly_quotes_and_accents_survive(slug):
    with_quotes = [t for t in texts_of(CHECKLISTS[slug]) if any(q in t for q in "’“”")]
    assert with_quotes, "the YAML no longer has a curly quote to check"
    text = pdf_text(pdf_bytes(slug))
    for snippet in with_quotes:
        assert flat(snippet) in text
    assert "’" in text
    assert any(ch in text for ch in "éëï")


@pytest.mark.parametrize("slug", sorted(CHECKLISTS))
def test_fonts_are_embedded_truetype_and_never_base14(slug):
    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(slug)))
    fonts = {}
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            fonts[str(font["/BaseFont"])] = font
    assert fonts
    for name, font in fonts.items():
        assert name.lstrip("/").split("+")[-1] not in BASE14, name
        descriptor_of = font["/DescendantFonts"][0].get_object() if font["/Subtype"] == "/Type0" else font
        descriptor = descriptor_of.get("/FontDescriptor")
        assert descriptor is not None, f"{name} is not embedded"
        assert "/FontFile2" in descriptor.get_object(), name


@pytest.mark.parametrize("slug", sorted(CHECKLISTS))
def test_pdf_is_a4_with_several_pages(slug):
    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(slug)))
    assert len(reader.pages) >= 5
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    assert "pagina 2 van" in (reader.pages[1].extract_text() or "")


def test_render_is_deterministic():
    checklist = CHECKLISTS["teams"]
    assert render_checklist_pdf(checklist, SETTINGS) == render_checklist_pdf(checklist, SETTINGS)


def test_markup_characters_in_content_are_escaped():
    checklist = CHECKLISTS["teams"]
    odd = "Kosten & baten <b>staan</b> “helder” op papier."
    first = checklist.dimensions[0]
    changed = dataclasses.replace(checklist, dimensions=(
        dataclasses.replace(first, statements=(odd, *first.statements[1:])), *checklist.dimensions[1:]))
    assert odd in pdf_text(render_checklist_pdf(changed, SETTINGS))


def test_long_content_keeps_a_one_page_cover_and_still_renders():
    checklist = CHECKLISTS["teams"]
    dimensions = tuple(dataclasses.replace(d, title=f"{d.title} en nog veel meer woorden in de titel",
                                           statements=d.statements * 3) for d in checklist.dimensions * 2)
    big = dataclasses.replace(checklist, title="CHECKLIST SAMENWERKING TUSSEN AFDELINGEN EN TEAMS",
                              dimensions=dimensions)
    reader = pypdf.PdfReader(io.BytesIO(render_checklist_pdf(big, SETTINGS)))
    assert "Inleiding" in reader.pages[1].extract_text()
    assert flat(big.statements[-1]) in flat(" ".join(p.extract_text() for p in reader.pages))


def test_build_pdfs_writes_every_checklist_and_skips_unchanged(tmp_path: Path):
    out = tmp_path / "pdfs"
    paths = build_pdfs(out, SETTINGS)
    assert sorted(p.name for p in paths) == sorted(c.filename for c in SETTINGS.checklists)
    for path in paths:
        assert path.read_bytes().startswith(b"%PDF-")
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # an mtime no build would set

    again = build_pdfs(out, SETTINGS)
    assert again == paths
    assert all(p.stat().st_mtime_ns == 1_000_000_000_000_000_000 for p in paths)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_build_pdfs_rewrites_a_changed_file(tmp_path: Path):
    first, *_ = build_pdfs(tmp_path, SETTINGS)
    good = first.read_bytes()
    first.write_bytes(b"stale")
    build_pdfs(tmp_path, SETTINGS)
    assert first.read_bytes() == good
