"""Durable checklist leads per second from two processes writing at once, without HTTP.

Why: a lead's transaction holds the database's one write lock, and each lead must be on disk
before the visitor is thanked. This isolates that part from the forms and the web server: two
processes (two gunicorn workers) each store leads as the checklist request does (the lead, its
download link and its mail, in one transaction, leadform/lead_store.py) as fast as they can. With
the WAL synced after the lock is released (leadform/wal_file.py) the two overlap their disk
flushes; with SQLite's own fsync inside the commit they took turns.

    python bench/durable_writes.py              # 2 x 2500 leads, 3 runs, median
    python bench/durable_writes.py --leads 500  # quicker
    git worktree add /tmp/old 013d48c && python bench/durable_writes.py --tree /tmp/old   # an older commit
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from common import in_process_app_env

ROOT = Path(__file__).resolve().parent.parent


def _writer(worker: int, leads: int, start, instance: str) -> None:
    in_process_app_env(instance)
    from leadform import checklists, create_app, db, direct_sql, lead_store

    app = create_app()
    with app.test_request_context():
        engine = db.engine()
        checklist = checklists.load_settings().checklist("teams")
        start.wait()
        for n in range(leads):
            email = f"w{worker}-{n}@example.be"
            secret, mail = checklists.link_mail(SimpleNamespace(name="Bench", email=email), checklist)
            with direct_sql.transaction(engine) as tx:
                lead_id, _, newsletter = lead_store.save_lead(tx, "teams", email, "Bench", False)
                lead_store.queue_link(tx, lead_id, email, newsletter, secret, mail)


def run_once(leads: int, processes: int = 2) -> float:
    """Leads per second from `processes` writers on a fresh database."""
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as instance:
        in_process_app_env(instance)
        from leadform import create_app

        create_app()  # the schema, once, before the writers start
        context = multiprocessing.get_context("fork")
        start = context.Event()
        workers = [context.Process(target=_writer, args=(k, leads, start, instance)) for k in range(processes)]
        for worker in workers:
            worker.start()
        time.sleep(2)  # every writer has its app and is waiting
        began = time.perf_counter()
        start.set()
        for worker in workers:
            worker.join()
        if any(worker.exitcode for worker in workers):
            raise SystemExit("a writer failed")
        return processes * leads / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2500, help="leads per process")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose leadform to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    rates = [run_once(args.leads) for _ in range(args.runs)]
    print(f"{args.tree}: durable leads per second, 2 processes: median {statistics.median(rates):.0f} "
          f"(runs: {', '.join(f'{r:.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
