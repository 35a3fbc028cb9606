"""The only private helpers of leadform that the safety-net tests use, in one place.

Those tests go through stable surfaces (the test client, the CLI, the tables, the outbox and gdpr
functions, the mail that arrives). What they cannot reach that way is imported here, so a redesign
of leadform/ changes one import in this file and no test.
"""

from __future__ import annotations

from leadform.forms import issue_started  # the contact form's signed start time (a hidden field)


def contact_started(app, seconds_ago: float = 60) -> str:
    """The `started` field of a contact form shown `seconds_ago`: long enough for a person."""
    with app.test_request_context():
        return issue_started(backdate=seconds_ago)
