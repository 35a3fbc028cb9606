"""Self-hosted analytics: POST /api/analytics counts one page view per path per day (UTC).

docs/assets/javascripts/analytics.js sends the page's path as text/plain, and only after the
visitor allowed "analytics" in the cookie banner. Nothing about the visitor is read or kept: no
cookie (the script sends none), no IP address, no user agent, no referrer, no query string;
the table holds (day, path, count) and nothing else.

Exempt from CSRF like the consent endpoint, and limited to same-origin requests the same way
(leadform.consent.require_same_origin): the worst a forged request could do is add one to a count.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import click
from flask import Blueprint, abort
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from leadform import db
from leadform.consent import read_body
from leadform.extensions import csrf, limiter
from leadform.models import PageView, utcnow
from site_config import load_settings

bp = Blueprint("analytics", __name__, cli_group="analytics")
csrf.exempt(bp)
log = logging.getLogger("leadform.analytics")

# A site path as location.pathname gives it: percent-encoded, no query, no fragment, at most 200 characters.
PATH = re.compile(r"/[A-Za-z0-9/_.~%-]{0,199}")


def valid_path(path: str) -> bool:
    return bool(PATH.fullmatch(path)) and "//" not in path and "/../" not in path and not path.endswith("/..")


def count_view(day: dt.date, path: str) -> None:
    """Add one to (day, path); the first view of the day inserts the row."""
    for attempt in range(2):
        s = db.session()
        try:
            with s.begin():
                done = s.execute(update(PageView).where(PageView.day == day, PageView.path == path)
                                 .values(count=PageView.count + 1)
                                 .execution_options(synchronize_session=False)).rowcount
                if not done:
                    s.execute(insert(PageView).values(day=day, path=path, count=1))
            return
        except IntegrityError:  # another request inserted the same row first: update it now
            s.rollback()
            if attempt:
                raise


@bp.post("/api/analytics")
@limiter.limit(lambda: load_settings().limits.consent_per_ip, scope="analytics")
def page_view() -> tuple[str, int]:
    try:
        path = read_body("text/plain", 256).decode("ascii")
    except UnicodeDecodeError:
        abort(400)
    if not valid_path(path):
        abort(400)
    try:
        count_view(utcnow().date(), path)
    except SQLAlchemyError as exc:
        log.error("page view not counted error=%s", type(exc).__name__)
        abort(503)
    return "", 204


@bp.cli.command("pages")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660), help="How many days back.")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 10_000), help="How many paths.")
def pages(days: int, limit: int) -> None:
    """Page views per path over the last days, most viewed first."""
    since = utcnow().date() - dt.timedelta(days=days - 1)
    total = func.sum(PageView.count)
    with db.transaction() as s:
        rows = s.execute(select(PageView.path, total).where(PageView.day >= since)
                         .group_by(PageView.path).order_by(total.desc(), PageView.path).limit(limit)).all()
    for path, views in rows:
        click.echo(f"{views:>8}  {path}")
    click.echo(f"{sum(v for _, v in rows)} view(s) since {since:%Y-%m-%d}")
