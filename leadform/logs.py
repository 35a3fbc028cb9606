"""One line per event, UTC, English, and never a visitor's personal data.

Call sites log ids and event names only; this module sets the format.
"""

from __future__ import annotations

import logging
import time

from flask import Flask

FORMAT = "%(asctime)sZ %(levelname)s %(name)s %(message)s"


class UTCFormatter(logging.Formatter):
    converter = time.gmtime


def init_app(app: Flask) -> None:
    logger = logging.getLogger("leadform")
    if not any(getattr(h, "_leadform", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(UTCFormatter(FORMAT, "%Y-%m-%dT%H:%M:%S"))
        handler._leadform = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    # Werkzeug's access log would write visitors' IP addresses.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
