"""Reading the mails the app queues."""

from __future__ import annotations

import re

from leadform import outbox
from leadform.models import OutboxMail

LINK = re.compile(r"http://site\.test/download/(\S+)")  # conftest.app_config's PUBLIC_URL


def link_in(app, mail: OutboxMail) -> str:
    """The download token in a queued mail, as its text reads when it is sent."""
    with app.app_context():
        return LINK.search(outbox.bodies(mail)[0]).group(1)
