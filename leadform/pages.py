"""Pages the app renders itself (a form shown again, an expired link, an error) in the site's look."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import current_app, render_template

from site_config import load_settings


@cache
def _site_stylesheets(site_dir: str) -> tuple[str, ...]:
    """Material's fingerprinted stylesheet from the built site, then the coach's own."""
    folder = Path(site_dir) / "assets" / "stylesheets"
    material = sorted(p.name for p in folder.glob("main.*.min.css"))
    return tuple(f"/assets/stylesheets/{name}" for name in material[:1]) + ("/assets/stylesheets/coach.css",)


def render_page(template: str, status: int = 200, **context: object):
    settings = load_settings()
    html = render_template(template, settings=settings, coach=settings.coach,
                           stylesheets=_site_stylesheets(current_app.config["SITE_DIR"]), **context)
    return html, status
