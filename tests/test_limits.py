"""Rate limits: per IP and per e-mail address, counted in Redis so every gunicorn worker sees one count.

A limited visitor gets a Dutch page that says when to come back (429 with Retry-After). The
limits come from site_config/site.yml. Redis must run on 127.0.0.1:6379 (.ci/run starts it);
when it does not, these tests fail and say how to start it.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REDIS_URL, ROOT, free_port
from sqlalchemy import func, select

from leadform import db
from leadform.forms import issue_started
from leadform.models import ContactMessage, Lead
from site_config import load_settings

CHECKLIST = {"name": "Sofie Peeters", "privacy": "y"}
CONTACT = {"name": "Jan De Smet", "subject": "teamcoaching", "message": "Mag ik eens bellen?", "privacy": "y"}


def redis_keys(prefix: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return list(client.scan_iter(match=f"*{prefix}*", count=1000))


@pytest.fixture
def limited_app(make_app, redis_prefix):
    return make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL,
                    LIMIT_KEY_PREFIX=redis_prefix)


def count(app, model) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model))


def started_long_ago(app) -> str:
    """The contact form's signed start time, as if the visitor had typed for a minute."""
    with app.test_request_context():
        return issue_started(backdate=60)


def assert_dutch_429(status: int, headers, html: str, *, at_most_seconds: int) -> None:
    assert status == 429
    retry = headers.get("Retry-After")
    assert retry is not None and retry.isdigit(), f"no Retry-After in {dict(headers)}"
    assert 1 <= int(retry) <= at_most_seconds + 2
    assert '<html lang="nl"' in html
    assert "Je hebt dit formulier te vaak na elkaar verstuurd." in html
    assert re.search(r"Probeer het over \d+ (minuten|minuut|uur) opnieuw", html), html
    assert "Traceback" not in html


# -- one process (the test client), counting in Redis ---------------------------------------------------

def test_eleventh_checklist_request_from_one_ip_gets_a_dutch_429(limited_app, redis_prefix) -> None:
    client = limited_app.test_client()
    statuses = [client.post("/api/checklists/teams", data={**CHECKLIST, "email": f"p{i}@example.be"}).status_code
                for i in range(10)]
    assert statuses == [303] * 10
    response = client.post("/api/checklists/teams", data={**CHECKLIST, "email": "p10@example.be"})
    html = response.get_data(as_text=True)
    assert_dutch_429(response.status_code, response.headers, html, at_most_seconds=600)
    assert "Probeer het over 10 minuten opnieuw" in html
    assert count(limited_app, Lead) == 10
    # The counters are in Redis, under pseudonyms: no IP address or e-mail address in any key.
    keys = redis_keys(redis_prefix)
    assert any("form-checklist" in key for key in keys)
    assert not any("127.0.0.1" in key or "example.be" in key for key in keys), keys


def test_each_form_has_its_own_count(limited_app) -> None:
    client = limited_app.test_client()
    for i in range(10):
        client.post("/api/checklists/teams", data={**CHECKLIST, "email": f"p{i}@example.be"})
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "x@example.be"}).status_code == 429
    contact = {**CONTACT, "email": "jan@example.be", "started": started_long_ago(limited_app)}
    assert client.post("/api/contact", data=contact).status_code == 303


def test_one_address_gets_at_most_three_checklist_mails_a_day(limited_app) -> None:
    client = limited_app.test_client()
    per_day = load_settings().limits.mails_per_address_per_day
    assert per_day == 3
    # Typos shown again do not count: only accepted submissions use up the address's allowance.
    for _ in range(4):
        assert client.post("/api/checklists/teams", data={"name": "Sofie", "email": "sofie@example.be"}).status_code \
            == 400
    spellings = ["sofie@example.be", "Sofie@Example.be", " SOFIE@example.BE "]
    for email in spellings:
        assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": email}).status_code == 303
    response = client.post("/api/checklists/leiderschap", data={**CHECKLIST, "email": "sofie@example.be"})
    html = response.get_data(as_text=True)
    assert_dutch_429(response.status_code, response.headers, html, at_most_seconds=86400)
    assert "Probeer het over 24 uur opnieuw" in html
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "ander@example.be"}).status_code == 303


def test_one_address_can_send_three_contact_messages_a_day(limited_app) -> None:
    client = limited_app.test_client()
    data = {**CONTACT, "email": "jan@example.be", "started": started_long_ago(limited_app)}
    assert [client.post("/api/contact", data=data).status_code for _ in range(4)] == [303, 303, 303, 429]
    assert count(limited_app, ContactMessage) == 3


def test_download_and_renew_are_limited_per_ip(limited_app) -> None:
    client = limited_app.test_client()
    limits = load_settings().limits
    downloads = int(limits.download_per_ip.split()[0])
    statuses = [client.get(f"/download/guess{i}").status_code for i in range(downloads + 1)]
    assert statuses == [404] * downloads + [429], "guessing download links stops at the limit"
    renewals = int(limits.form_per_ip.split()[0])
    statuses = [client.post("/download/renew", data={"token": f"guess{i}"}).status_code for i in range(renewals + 1)]
    assert statuses == [404] * renewals + [429]


def test_behind_the_proxy_each_visitor_has_their_own_count(make_app, redis_prefix) -> None:
    """nginx connects from 127.0.0.1 and names the visitor in X-Forwarded-For (deploy/proxy.conf)."""
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL,
                   LIMIT_KEY_PREFIX=redis_prefix, PROXY_FIX_X_FOR=1)
    client = app.test_client()

    def post(visitor: str, i: int) -> int:
        return client.post("/api/checklists/teams", data={**CHECKLIST, "email": f"{visitor}{i}@example.be"},
                           headers={"X-Forwarded-For": visitor}).status_code

    assert [post("198.51.100.7", i) for i in range(11)] == [303] * 10 + [429]
    assert post("198.51.100.8", 0) == 303, "another visitor behind the same proxy is not limited"


def test_without_a_proxy_a_forged_forwarded_for_dodges_nothing(limited_app) -> None:
    client = limited_app.test_client()
    statuses = [client.post("/api/checklists/teams", data={**CHECKLIST, "email": f"p{i}@example.be"},
                            headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(11)]
    assert statuses == [303] * 10 + [429]


def test_consent_and_analytics_calls_are_limited_per_ip_with_a_json_429(limited_app) -> None:
    from leadform.consent import example_payload

    client = limited_app.test_client()
    per_minute = int(load_settings().limits.consent_per_ip.split()[0])
    # Every call counts, a refused one too (recorded choices meet tighter limits: tests/test_abuse.py).
    statuses = [client.post("/api/consent", json={**example_payload(), "button": "x"}).status_code
                for _ in range(per_minute + 1)]
    assert statuses == [400] * per_minute + [429]
    response = client.post("/api/consent", json=example_payload())
    assert response.get_json() == {"error": 429} and 1 <= int(response.headers["Retry-After"]) <= 62
    statuses = [client.post("/api/analytics", data="/", content_type="text/plain").status_code
                for _ in range(per_minute + 1)]
    assert statuses == [204] * per_minute + [429]


def test_limits_are_read_from_site_config(make_app, redis_prefix, tmp_path, monkeypatch) -> None:
    """The coach changes site.yml; the app follows without a code change."""
    import leadform.web
    import site_config

    config = tmp_path / "site_config"
    shutil.copytree(ROOT / "site_config", config, ignore=shutil.ignore_patterns("overrides", "__pycache__"))
    yml = config / "site.yml"
    text = yml.read_text(encoding="utf-8")
    text = re.sub(r'form_per_ip: "[^"]+"', 'form_per_ip: "3 per 1 minute"', text)
    text = re.sub(r"mails_per_address_per_day: \d+", "mails_per_address_per_day: 1", text)
    yml.write_text(text, encoding="utf-8")
    edited = site_config.load_settings(config)
    assert edited.limits.form_per_ip == "3 per 1 minute" and edited.limits.mails_per_address_per_day == 1
    monkeypatch.setattr(leadform.web, "load_settings", lambda: edited)

    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL,
                   LIMIT_KEY_PREFIX=redis_prefix)
    client = app.test_client()
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "a@example.be"}).status_code == 303
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "a@example.be"}).status_code == 429
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "b@example.be"}).status_code == 303
    response = client.post("/api/checklists/teams", data={**CHECKLIST, "email": "c@example.be"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) <= 62
    assert "Probeer het over 1 minuut opnieuw" in response.get_data(as_text=True)


def test_redis_going_away_never_costs_a_visitor_their_submission(make_app, redis_prefix) -> None:
    """Storage down: each worker falls back to counting in its own memory; no 500, the lead is stored."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=dead,
                   LIMIT_KEY_PREFIX=redis_prefix)
    client = app.test_client()
    try:
        statuses = [client.post("/api/checklists/teams", data={**CHECKLIST, "email": f"p{i}@example.be"}
                                ).status_code for i in range(11)]
    finally:
        from leadform.web import limiter

        limiter._storage_dead = False  # one Limiter per process: later apps in this test run start healthy
    assert statuses == [303] * 10 + [429]
    assert count(app, Lead) == 10


# -- real gunicorn, 1 and 4 worker processes ------------------------------------------------------------

class Gunicorn:
    """gunicorn serving create_app() on a free loopback port; stopped (process group) by `stop()`."""

    def __init__(self, workers: int, instance: Path, pdf_dir: Path, prefix: str, secret: str) -> None:
        self.port = free_port()
        self.instance = instance
        self.log = instance / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")}
        env.update(LEADFORM_INSTANCE_PATH=str(instance), LEADFORM_SECRET_KEY=secret, LEADFORM_PDF_DIR=str(pdf_dir),
                   LEADFORM_WTF_CSRF_ENABLED="false", LEADFORM_OUTBOX_THREAD="false",
                   LEADFORM_MIGRATE_ON_START="false", LEADFORM_MAIL_BACKEND="file",
                   LEADFORM_PUBLIC_URL=f"http://127.0.0.1:{self.port}/",
                   LEADFORM_RATELIMIT_STORAGE_URI=REDIS_URL, LEADFORM_LIMIT_KEY_PREFIX=prefix)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--graceful-timeout", "2", "--timeout", "30", "leadform:create_app()"],
            cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(workers)

    def _wait_ready(self, workers: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log.read_text(errors='replace')}"
            booted = self.log.read_text(errors="replace").count("Booting worker")
            if booted >= workers:
                try:
                    if self.request("GET", "/api/csrf")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"gunicorn did not start within 30 s:\n{self.log.read_text(errors='replace')}")

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            body = urllib.parse.urlencode(form) if form is not None else None
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.mark.parametrize("workers", [1, 4])
def test_limit_holds_across_gunicorn_workers(workers, tmp_path, pdf_dir, redis_prefix) -> None:
    from leadform import create_app

    secret = uuid.uuid4().hex
    instance = tmp_path / "instance"
    # Migrate once up front, so the workers do not race to create the schema.
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": secret, "PDF_DIR": str(pdf_dir),
                      "OUTBOX_THREAD": False})
    server = Gunicorn(workers, instance, pdf_dir, redis_prefix, secret)
    try:
        emails = [f"visitor{i}.{redis_prefix}@example.be" for i in range(15)]
        with ThreadPoolExecutor(max_workers=15) as pool:
            answers = list(pool.map(
                lambda email: server.request("POST", "/api/checklists/teams", {**CHECKLIST, "email": email}), emails))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [303] * 10 + [429] * 5, statuses
        for status, headers, html in answers:
            if status == 429:
                assert_dutch_429(status, headers, html, at_most_seconds=600)
        assert count(app, Lead) == 10

        # Per address, across workers: three accepted contact messages a day, then 429.
        contact = {**CONTACT, "email": f"jan.{redis_prefix}@example.be", "started": started_long_ago(app)}
        statuses = [server.request("POST", "/api/contact", contact)[0] for _ in range(5)]
        assert statuses == [303, 303, 303, 429, 429]
        assert count(app, ContactMessage) == 3
    finally:
        server.stop()
    assert any("form-checklist" in key for key in redis_keys(redis_prefix)), "the counts were not kept in Redis"
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert not any(email in log for email in [*emails, contact["email"]]), "the log names a visitor's address"
    visitor_ip_lines = [line for line in log.splitlines() if "127.0.0.1" in line and "Listening at" not in line]
    assert visitor_ip_lines == [], "the log names the visitor's IP address"
