"""One voice: the site, its mails and its PDFs say "je", and each checklist has one name.

Only the case story keeps the seed's words ("Download nu uw gratis CHECKLIST LEADERSHIP …"): it is
the coach's own text, quoted as delivered.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest
import yaml

from leadform.forms import static_form_html
from leadform.pdf import render_checklist_pdf
from site_config import CONFIG_DIR, load_settings

ROOT = Path(__file__).resolve().parent.parent
CASE_STORY = ROOT / "docs" / "blog" / "posts" / "2019-10-08-klantgerichtheid-begint-bij-samenwerking.md"
FORMAL = re.compile(r"(?<![\w/.@-])(u|uw|uzelf|uwe)(?![\w/@-])", re.IGNORECASE)
SETTINGS = load_settings()


def formal_words(text: str) -> list[str]:
    """The formal pronouns in a text, with a little context to find them."""
    return [text[max(0, m.start() - 30):m.end() + 30].replace("\n", " ") for m in FORMAL.finditer(text)]


def yaml_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in yaml_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in yaml_strings(v)]
    return []


def pdf_text(slug: str) -> str:
    reader = pypdf.PdfReader(io.BytesIO(render_checklist_pdf(SETTINGS.checklist(slug), SETTINGS)))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_the_scan_finds_the_formal_words() -> None:
    assert formal_words("Wilt u uw team beter leren kennen? Kijk naar uzelf.") != []
    assert len(formal_words("Hoe gaat het met uw team? U kunt het uwe vergelijken.")) == 3
    assert formal_words("Je team, jouw rol, jezelf; https://example.be/u/ en u@example.be.") == []


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "checklists").glob("*.yml")), ids=lambda p: p.name)
def test_checklist_texts_say_je(path: Path) -> None:
    texts = yaml_strings(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert [hit for text in texts for hit in formal_words(text)] == []


@pytest.mark.parametrize("slug", SETTINGS.checklist_slugs)
def test_the_pdfs_say_je(slug: str) -> None:
    text = pdf_text(slug)
    assert "je " in text
    assert formal_words(text) == []


def test_mail_and_page_templates_say_je() -> None:
    templates = sorted((ROOT / "leadform" / "templates").rglob("*.*"))
    assert len(templates) > 10
    assert {str(p.relative_to(ROOT)): formal_words(p.read_text(encoding="utf-8")) for p in templates
            if formal_words(p.read_text(encoding="utf-8"))} == {}


def test_the_site_says_je_except_the_case_story() -> None:
    pages = [p for p in sorted((ROOT / "docs").rglob("*.md")) if p != CASE_STORY]
    assert len(pages) >= 15
    hits = {str(p.relative_to(ROOT)): formal_words(p.read_text(encoding="utf-8")) for p in pages}
    assert {path: found for path, found in hits.items() if found} == {}
    partials = sorted((CONFIG_DIR / "overrides").rglob("*.html"))
    text = " ".join(re.sub(r"\{#.*?#\}", "", p.read_text(encoding="utf-8"), flags=re.DOTALL) for p in partials)
    assert formal_words(text) == []


def test_the_case_story_keeps_the_seeds_words() -> None:
    story = CASE_STORY.read_text(encoding="utf-8")
    assert "Download nu uw gratis CHECKLIST TEAMS en ontdek hoe het met uw team gesteld is" in story
    assert "Download nu uw gratis CHECKLIST LEADERSHIP en ontdek hoe ontwikkeld uw leiderschap is." in story


@pytest.mark.parametrize("slug", SETTINGS.checklist_slugs)
def test_one_name_per_checklist_on_page_button_mail_and_pdf(slug: str, app) -> None:
    from leadform import mail

    checklist = SETTINGS.checklist(slug)
    name = checklist.title
    assert name == f"checklist {slug}"
    page = (ROOT / "docs" / "checklists" / f"{slug}.md").read_text(encoding="utf-8")
    assert f"**{name}**" in page and f"title: Gratis {name}" in page
    assert f"Stuur mij de {name}</button>" in static_form_html("checklist", checklist=checklist)
    with app.app_context():
        composed = mail.checklist_link(type("Lead", (), {"name": "An", "email": "an@example.be"}), checklist, "x")
        text, html = mail.render(composed.kind, composed.context)
    assert composed.subject == f"Je {name}: je persoonlijke downloadlink"
    assert f"de {name}" in text and f"Download de {name}" in html
    assert name.lower() in pdf_text(slug).lower()
    docs = ROOT / "docs"
    others = [docs / "index.md", *docs.glob("diensten/*.md"), *docs.glob("checklists/*.md")]
    for path in others:
        assert "LEADERSHIP" not in path.read_text(encoding="utf-8"), path
        assert "CHECKLIST " not in path.read_text(encoding="utf-8"), path
