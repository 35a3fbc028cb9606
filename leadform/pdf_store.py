"""Where the app finds the checklist PDFs: built by `make build`, or on first start if missing."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, current_app

from site_config import Checklist

log = logging.getLogger("leadform.pdf")


def pdf_path(checklist: Checklist) -> Path:
    return Path(current_app.config["PDF_DIR"]) / checklist.filename


def init_app(app: Flask) -> None:
    """`make build` writes the PDFs; an app started without them builds them once."""
    from leadform.pdf import build_pdfs
    from site_config import load_settings

    folder = Path(app.config["PDF_DIR"])
    if not all((folder / c.filename).exists() for c in load_settings().checklists):
        build_pdfs(folder)
        log.info("checklist pdfs built folder=%s", folder.name)
