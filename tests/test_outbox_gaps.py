"""The outbox thread sends in the gaps between requests, and never makes a mail wait too long.

A request that stays in progress is a real checklist POST whose body arrives slowly: its stream
blocks until the test lets it go, as a visitor's upload on a slow connection would.
"""

from __future__ import annotations

import io
import threading
import time

from conftest import smtp_config
from test_reliability import wait_until

BODY = b"name=Traag&email=traag%40example.be&privacy=y"


class SlowBody(io.BytesIO):
    """A request body that arrives only when `arrive` is set."""

    def __init__(self) -> None:
        super().__init__(BODY)
        self.inside = threading.Event()  # the request is in the app, reading its body
        self.arrive = threading.Event()

    def _wait(self) -> None:
        self.inside.set()
        assert self.arrive.wait(30), "the test never let the slow body arrive"

    def read(self, size: int | None = -1) -> bytes:
        self._wait()
        return super().read(size)

    def readinto(self, buffer) -> int:
        self._wait()
        return super().readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        self._wait()
        return super().readline(size)


def slow_request(app) -> tuple[SlowBody, threading.Thread, list[int]]:
    """A checklist POST in progress in another thread until its body arrives."""
    body, statuses = SlowBody(), []

    def post() -> None:
        statuses.append(app.test_client().post(
            "/api/checklists/teams", input_stream=body, content_length=len(BODY),
            content_type="application/x-www-form-urlencoded").status_code)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return body, thread, statuses


def test_a_mail_waits_while_a_request_is_in_progress_and_leaves_right_after(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600,
                   OUTBOX_MAX_DEFER_SECONDS=60, **smtp_config(smtp_server.port))
    body, thread, statuses = slow_request(app)
    assert body.inside.wait(10)
    response = app.test_client().post("/api/checklists/teams",
                                      data={"name": "Snel", "email": "snel@example.be", "privacy": "y"})
    assert response.status_code == 303  # the visitor is answered at once
    time.sleep(1.0)
    assert smtp_server.messages == [], "the mail left while another request was still being answered"

    body.arrive.set()
    thread.join(10)
    assert statuses == [303]
    wait_until(lambda: len(smtp_server.messages) == 2, 10, "the mails to leave after the requests")
    assert sorted(rcpt[0] for rcpt, _ in smtp_server.messages) == ["snel@example.be", "traag@example.be"]


def test_a_mail_never_waits_longer_than_the_bound(make_app, smtp_server) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, OUTBOX_THREAD=True, OUTBOX_POLL_SECONDS=3600,
                   OUTBOX_MAX_DEFER_SECONDS=1.5, **smtp_config(smtp_server.port))
    body, thread, _ = slow_request(app)
    assert body.inside.wait(10)
    app.test_client().post("/api/checklists/teams", data={"name": "Snel", "email": "snel@example.be",
                                                           "privacy": "y"})
    try:
        time.sleep(0.5)
        assert smtp_server.messages == []  # it waits for a gap first
        wait_until(lambda: len(smtp_server.messages) == 1, 10, "the mail a busy process held back")
        assert thread.is_alive()  # and leaves while the other request is still in progress
    finally:
        body.arrive.set()
        thread.join(10)
