"""Two app servers, one PostgreSQL database and one Redis: production with more than one machine.

Two gunicorn instances (two workers each, their own instance folder, nothing shared on disk) start
together on a fresh database, so four workers migrate at once. A visitor's session from one works on
the other; the per-address and per-IP limits count once across both; every mail goes out exactly
once although both instances' outbox threads deliver.
"""

from __future__ import annotations

import http.cookiejar
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import REDIS_URL, free_port, smtp_config
from sqlalchemy import create_engine, func, select
from support.postgres import throwaway_database

from deploy import local
from leadform.models import Lead, OutboxMail
from site_config import load_settings

pytestmark = pytest.mark.postgresql


class Visitor:
    """A browser: one cookie jar for both instances (they are one site behind a load balancer)."""

    def __init__(self) -> None:
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    def token(self, base: str) -> str:
        with self.opener.open(f"{base}/api/csrf", timeout=60) as response:
            return json.load(response)["csrf_token"]

    def post(self, url: str, fields: dict[str, str]) -> int:
        data = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(url, data=data, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the 303 to the thank-you page is the answer
        return None


def test_two_instances_share_limits_and_send_every_mail_once(tmp_path: Path, pdf_dir: Path, smtp_server,
                                                             redis_prefix: str) -> None:
    limits = load_settings().limits
    with throwaway_database() as url, ExitStack() as stack:
        ports = [free_port(), free_port()]
        common = {"LEADFORM_DATABASE_URL": url, "LEADFORM_SECRET_KEY": "one-secret-for-both-instances",
                  "LEADFORM_RATELIMIT_STORAGE_URI": REDIS_URL, "LEADFORM_LIMIT_KEY_PREFIX": redis_prefix,
                  "LEADFORM_PDF_DIR": str(pdf_dir), "LEADFORM_OUTBOX_POLL_SECONDS": "1",
                  "LEADFORM_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}/",
                  **{f"LEADFORM_{key}": str(value) for key, value in smtp_config(smtp_server.port).items()}}
        failures: list[BaseException] = []

        def start(n: int) -> None:
            try:
                env = {**common, "LEADFORM_INSTANCE_PATH": str(tmp_path / f"instance-{n}")}
                stack.enter_context(local.gunicorn(env, ports[n], workers=2, log=tmp_path / f"gunicorn-{n}.log"))
            except BaseException as exc:  # noqa: BLE001 - reported below, with the server's log
                failures.append(exc)

        starting = [threading.Thread(target=start, args=(n,)) for n in (0, 1)]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join(120)
        assert not failures and not any(thread.is_alive() for thread in starting), failures
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        logs = "\n".join((tmp_path / f"gunicorn-{n}.log").read_text() for n in (0, 1))
        assert "Traceback" not in logs, logs[-2000:]

        # One address, alternately on each instance: the daily limit counts once, across both.
        visitor = Visitor()
        token = visitor.token(a)  # its session cookie came from A; B reads it (one secret)
        form = {"name": "Sofie Peeters", "email": "sofie@example.be", "privacy": "y", "csrf_token": token}
        statuses = [visitor.post(f"{(a, b)[n % 2]}/api/checklists/teams", form)
                    for n in range(limits.mails_per_address_per_day + 1)]
        assert statuses == [303] * limits.mails_per_address_per_day + [429]

        # Other addresses from the same IP: the per-IP limit (form_per_ip) counts once, across both.
        per_ip = int(limits.form_per_ip.split()[0])
        others = [visitor.post(f"{(b, a)[n % 2]}/api/checklists/leiderschap",
                               {**form, "email": f"lid{n}@example.be"}) for n in range(per_ip)]
        taken = others.count(303)
        assert others == [303] * taken + [429] * (per_ip - taken)
        assert 0 < taken <= per_ip - len(statuses) + 1  # per instance, each would have allowed all ten
        accepted = limits.mails_per_address_per_day + taken

        # Every queued mail is delivered once, whichever instance's thread took it.
        engine = create_engine(url)
        deadline = time.monotonic() + 60
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                unsent = connection.scalar(select(func.count()).where(OutboxMail.status != "sent"))
                connection.rollback()
                if unsent == 0:
                    break
                time.sleep(0.2)
            queued = connection.scalar(select(func.count()).select_from(OutboxMail))
            leads = connection.scalar(select(func.count()).select_from(Lead))
        engine.dispose()
        time.sleep(1.5)  # a duplicate would come within a poll
        message_ids = [message["Message-ID"] for _rcpt, message in smtp_server.messages]
        assert unsent == 0 and queued == accepted and leads == 1 + taken
        assert len(message_ids) == queued and len(set(message_ids)) == queued
