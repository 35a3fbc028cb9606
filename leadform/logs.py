"""One line per event, UTC, English, and never a visitor's personal data.

Call sites log ids and event names only; this module sets the format.
"""

from __future__ import annotations

import logging
import re
import sys
import time

from flask import Flask

FORMAT = "%(asctime)sZ %(levelname)s %(name)s %(message)s"


class UTCFormatter(logging.Formatter):
    converter = time.gmtime


class NoClientAddress(logging.Filter):
    """Werkzeug (the `make run` server) starts its lines with the client's IP and a local time: drop both."""

    PREFIX = re.compile(r"^\S+ - - \[[^\]]*\] ")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        stripped = self.PREFIX.sub("", message)
        if stripped != message:
            record.msg, record.args = stripped, None
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the event, not the one it was created with
    (a replaced, closed stream makes logging print its own traceback, with the exception at hand)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def init_app(app: Flask) -> None:
    logger = logging.getLogger("leadform")
    if not any(getattr(h, "_leadform", False) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(UTCFormatter(FORMAT, "%Y-%m-%dT%H:%M:%S"))
        handler._leadform = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    # Werkzeug's access log would write visitors' IP addresses; its error lines lose theirs.
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.WARNING)
    if not any(isinstance(f, NoClientAddress) for f in werkzeug.filters):
        werkzeug.addFilter(NoClientAddress())
