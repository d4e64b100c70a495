"""Periodic jobs without cron: the worker's relay loop calls `enqueue_due(now)` every few
seconds; each job is enqueued once per time slot, whichever worker (or how many) asks.

The slot claim is a Redis SET NX on a key derived from the job and its slot, so two worker
processes never both enqueue it; the job id is derived from the same slot, and the job gets
the slot's start time as its `now`, so a run is reproducible and idempotent. They go to the
`background` queue, which workers take after `ingest` and `default`: a sweep never delays a
customer's message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from .broker import BACKGROUND_QUEUE, get_queue, redis_client

log = logging.getLogger(__name__)

# (job function path, interval in seconds)
PERIODIC: list[tuple[str, int]] = [
    ("inbox.jobs.tickets.sla_sweep", 5 * 60),
    ("inbox.jobs.tickets.auto_assign_sweep", 60),
    ("inbox.jobs.tickets.auto_close_sweep", 60 * 60),
    ("inbox.jobs.tickets.budget_sweep", 60 * 60),
    ("inbox.jobs.tickets.digest_sweep", 60 * 60),  # daily pending reminder, weekly summary (local time)
    ("inbox.jobs.portal.cleanup_expired_logins", 60 * 60),
    ("inbox.jobs.outbound.release_scheduled", 30),  # scheduled messages, campaigns, follow-ups (issue 8)
    ("inbox.jobs.outbound.campaign_tick", 30),
    ("inbox.jobs.outbound.followup_sweep", 10 * 60),
    ("inbox.jobs.channels.imap_poll_sweep", 60),  # mailboxes read over IMAP (issue 3)
    ("inbox.jobs.channels.vapi_reconcile_sweep", 5 * 60),  # VAPI reports that never arrived
    ("inbox.jobs.appointments.reminder_sweep", 5 * 60),
]


def slot_of(now: datetime, interval: int) -> int:
    return int(now.timestamp()) // interval


def job_id_for(func: str, interval: int, now: datetime) -> str:
    return f"periodic-{func.rsplit('.', 1)[-1]}-{interval}-{slot_of(now, interval)}"


def enqueue_due(now: datetime | None = None, *, jobs: list[tuple[str, int]] | None = None) -> list[str]:
    """Enqueue every periodic job whose current slot has not been claimed yet; returns their ids."""
    now = now or datetime.now(UTC)
    redis = redis_client()
    enqueued = []
    for func, interval in jobs if jobs is not None else PERIODIC:
        job_id = job_id_for(func, interval, now)
        if not redis.set(f"coccinelle:periodic:{job_id}", "1", nx=True, ex=max(2 * interval, 60)):
            continue  # this slot is already taken care of
        slot_start = datetime.fromtimestamp(slot_of(now, interval) * interval, UTC)
        get_queue(BACKGROUND_QUEUE).enqueue(func, slot_start.isoformat(), job_id=job_id)
        enqueued.append(job_id)
    if enqueued:
        log.debug("periodic jobs enqueued: %s", enqueued)
    return enqueued
