"""Under load: real gunicorn (the production config, 4 workers) on one database, 2,000 concurrent POSTs.

Every request that was acknowledged (303 for a form, 201 for a consent choice) has its row,
nothing else failed, nothing stored is broken (no orphan rows; on SQLite, the file passes
`PRAGMA integrity_check`), and every queued mail reached the (real, aiosmtpd) SMTP server
exactly once. On SQLite that is one file behind four processes; on PostgreSQL
(LEADFORM_TEST_DATABASE_URL) the server under test. The harness is tests/support/load.py.
"""

from __future__ import annotations

import time

from conftest import ENGINE, free_port
from support.load import (
    ACCEPTED,
    CONTACT_MIN_SECONDS,
    Gunicorn,
    Load,
    Store,
    app_env,
    assert_each_mail_once,
    assert_nothing_lost,
    has_consent_route,
    make_tasks,
    percentile,
    throughput,
)

# -- the test ----------------------------------------------------------------------------------------------------

def test_two_thousand_concurrent_posts_lose_nothing(tmp_path, pdf_dir, smtp_server, capsys) -> None:
    from site_config import load_settings

    begun = time.perf_counter()
    assert load_settings().limits.contact_min_seconds == CONTACT_MIN_SECONDS
    # The consent choice is the site's most frequent POST; a checklist request the most expensive one.
    flows = {"checklist": 600, "contact": 400, "consent": 1000}
    if not has_consent_route():
        flows = {"checklist": 1200, "contact": 800}  # two flows, still 2,000 POSTs
    total = sum(flows.values())
    assert total >= 2000

    port = free_port()
    server = Gunicorn(app_env(tmp_path / "instance", pdf_dir, port, smtp_server.port), port,
                      tmp_path / "gunicorn.log").start()
    try:
        load = Load(port, make_tasks(flows, "load"), processes=3, threads=8, seconds=150)
        outcomes = load.wait()
        store = Store.of(tmp_path / "instance")
        mail_started = time.perf_counter()
        store.wait_all_sent(timeout=60)
        mail_wait = time.perf_counter() - mail_started
    finally:
        server.stop()

    unsent = [o for o in outcomes if o.status is None and not o.errors]
    assert not unsent, f"{len(unsent)} requests not even sent within the clients' deadline (machine too slow?)"
    errors = [o for o in outcomes if o.errors or o.status not in ACCEPTED[o.task.flow]]
    assert len(outcomes) == total, f"only {len(outcomes)} of {total} requests were made"
    assert not errors, f"{len(errors)} failed, e.g. {errors[:3]}\n{server.log_text()}"
    assert "Traceback" not in server.log_text()
    rows = assert_nothing_lost(store, outcomes)
    assert rows == flows, "each accepted request stored exactly one row"
    mails, _ = assert_each_mail_once(store, smtp_server, timeout=0)
    assert mails == flows["checklist"] + 2 * flows["contact"]

    window, rate = throughput(outcomes)
    latencies = [o.latency for o in outcomes]
    with capsys.disabled():
        print(f"\n[concurrency] gunicorn 4 workers (production config) on {ENGINE}, 3 client processes x 8 threads: "
              f"{total} POSTs "
              f"({', '.join(f'{k} {v}' for k, v in flows.items())}) in {window:.1f}s = {rate:.0f} req/s; "
              f"latency p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms; "
              f"rows {sum(rows.values())} = accepted; errors 0; {mails} mails each delivered once "
              f"(last {mail_wait:.1f}s after the last answer); {store.checked}; "
              f"test {time.perf_counter() - begun:.0f}s")
