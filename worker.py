"""The RQ worker (JSON serializer, with its scheduler) plus the outbox relay.

    python worker.py                  # every queue, in priority order: ingest, default, background
    python worker.py ingest default   # a worker kept for customers' messages and replies

Jobs run in this process (SimpleWorker) inside one app context, each with a fresh
database session; a worker takes its queues in the order given: the `ingest` queue
(customers' messages to store), then `default` (routing, replies, sends), then `background`
(periodic sweeps, campaigns).
A background thread relays outbox rows that could not reach Redis when they were written,
and enqueues again inbound webhooks whose job was lost, so work promised during a Redis
outage is never lost.
"""

from __future__ import annotations

import logging
import sys
import threading

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from inbox import create_app
from inbox.broker import WORKER_QUEUES, get_queue, redis_client
from inbox.extensions import db, sqlite_write_intent

log = logging.getLogger("worker")
RELAY_INTERVAL_SECONDS = 2


def relay_forever(app, stop: threading.Event) -> None:
    from inbox.orchestrator.ingest import requeue_stranded_deliveries
    from inbox.outbox import relay_pending

    sqlite_write_intent.set(True)  # this thread's context only
    while not stop.wait(RELAY_INTERVAL_SECONDS):
        with app.app_context():
            try:
                relayed = relay_pending()
                if relayed:
                    log.info("outbox relay: %d entries handed to redis", relayed)
                requeued = requeue_stranded_deliveries()
                if requeued:
                    log.warning("inbound sweep: %d deliveries had lost their job, enqueued again", requeued)
                from inbox.periodic import enqueue_due
                enqueue_due()  # periodic ticket jobs (SLA, auto-close…), once per slot across workers
            except Exception:  # keep relaying whatever one round did
                log.exception("outbox relay round failed")
            finally:
                db.session.remove()


def queues_from(argv: list[str]) -> tuple[str, ...]:
    unknown = [name for name in argv if name not in WORKER_QUEUES]
    if unknown:
        raise SystemExit(f"unknown queue {', '.join(unknown)}: choose among {', '.join(WORKER_QUEUES)}")
    return tuple(argv) or WORKER_QUEUES


def main(argv: list[str]) -> None:
    queues = queues_from(argv)
    app = create_app()
    stop = threading.Event()
    threading.Thread(target=relay_forever, args=(app, stop), daemon=True, name="outbox-relay").start()
    with app.app_context():
        worker = SimpleWorker([get_queue(name) for name in queues], connection=redis_client(),
                              serializer=JSONSerializer)
        try:
            worker.work(with_scheduler=True, logging_level=app.config["LOG_LEVEL"])
        finally:
            stop.set()


if __name__ == "__main__":
    main(sys.argv[1:])
