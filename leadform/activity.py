"""How busy this process is with requests, so that background work can wait for a gap.

Why: delivering one mail (composing the MIME message, writing it out, two small commits) costs
more CPU than accepting the lead that caused it. Under a burst of form posts the outbox thread
took the workers' CPU and the write lock from the visitors still waiting for an answer. The
outbox thread now sends in the gaps between requests (leadform/outbox.py), with a bound on how
long a mail may wait, and this gauge tells it when there is a gap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class RequestGauge:
    """WSGI middleware that counts the app's requests in progress in this process. A request counts
    until the app returns its response; a body streamed after that (a PDF download) does not, nor
    do the static files `make run` serves beside the app."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app
        self._lock = threading.Lock()
        self._active = 0
        self._last_end = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self._active += 1
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            with self._lock:
                self._active -= 1
                self._last_end = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last request ended; 0 while one is in progress."""
        with self._lock:
            return 0.0 if self._active else time.monotonic() - self._last_end

    def wait_for_gap(self, gap: float, deadline: float, every: float = 0.05) -> bool:
        """Wait until no request has been in progress for `gap` seconds, or until `deadline`
        (time.monotonic()), looking `every` seconds: each look takes the GIL from a request.
        True when a gap came, False when the deadline passed first."""
        while self.quiet_for() < gap:
            if time.monotonic() >= deadline:
                return False
            time.sleep(every)
        return True
