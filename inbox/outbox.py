"""Transactional outbox: jobs and live events are promised inside the data's transaction.

`enqueue_job` / `publish_event` add a row to the session; `commit()` commits the data and
the rows together, then relays them to Redis. If Redis is unreachable the rows stay and
`relay_pending()` (run in a loop by the worker process) delivers them once it is back.
Jobs are idempotent and keyed by a job id, so a row relayed twice does no harm.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import redis
from rq import Retry
from sqlalchemy import delete, select

from .broker import get_queue, redis_client, workspace_channel
from .extensions import db
from .models import OutboxEntry, OutboxKind, utcnow

log = logging.getLogger(__name__)
_SESSION_KEY = "outbox_entries"


def enqueue_job(
    func: str, *args, job_id: str, workspace_id: int | None = None,
    retry_intervals: list[int] | None = None, queue: str = "default", delay: float | None = None,
) -> None:
    """Promise to run `func(*args)` once the current transaction commits (`delay` seconds later
    when given: RQ's scheduler, so the worker must run with it)."""
    payload = {"args": list(args), "queue": queue, "retry": retry_intervals or []}
    if delay:
        payload["at"] = (utcnow() + timedelta(seconds=delay)).isoformat()
    _add(OutboxEntry(
        workspace_id=workspace_id, kind=OutboxKind.JOB, name=func, job_id=job_id, payload=payload,
    ))


def publish_event(workspace_id: int, event_type: str, **data) -> None:
    """Tell every browser of the workspace that something changed (they fetch what they may see)."""
    _add(OutboxEntry(workspace_id=workspace_id, kind=OutboxKind.EVENT, name=event_type, payload=data))


def _add(entry: OutboxEntry) -> None:
    db.session.add(entry)
    db.session.info.setdefault(_SESSION_KEY, []).append(entry)


def commit() -> None:
    """Commit the data with its promised work, then hand that work to Redis."""
    entries = db.session.info.pop(_SESSION_KEY, [])
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if entries:
        relay([e.id for e in entries])


def discard() -> None:
    """Roll back the data and forget the work promised with it."""
    db.session.info.pop(_SESSION_KEY, None)
    db.session.rollback()


def relay(ids: list[int]) -> int:
    entries = list(db.session.scalars(select(OutboxEntry).where(OutboxEntry.id.in_(ids)).order_by(OutboxEntry.id)))
    return _dispatch(entries)


def relay_pending(*, min_age: timedelta = timedelta(seconds=5), limit: int = 500) -> int:
    """Deliver rows an earlier relay could not (Redis was down, or the process died)."""
    stmt = (
        select(OutboxEntry)
        .where(OutboxEntry.created_at < utcnow() - min_age)
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return _dispatch(list(db.session.scalars(stmt)))


def _dispatch(entries: list[OutboxEntry]) -> int:
    done: list[int] = []
    try:
        for entry in entries:
            _send(entry)
            done.append(entry.id)
    except redis.RedisError as exc:
        log.warning("outbox: redis unavailable, %d entries left for the relay (%s)",
                    len(entries) - len(done), type(exc).__name__)
    if done:
        db.session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(done)))
    db.session.commit()
    return len(done)


def enqueue_now(func: str, *args, job_id: str, queue: str = "default",
                retry_intervals: list[int] | None = None, at: datetime | None = None) -> None:
    """Hand a job to Redis now (raises redis.RedisError): for work whose promise is already
    committed, as an outbox row or a row of its own such as an inbound delivery."""
    rq_queue = get_queue(queue)
    retry = Retry(max=len(retry_intervals), interval=retry_intervals) if retry_intervals else None
    if at is not None and at > utcnow():
        rq_queue.enqueue_at(at, func, *args, job_id=job_id, retry=retry)
    else:
        with redis_client().pipeline() as pipe:  # one round trip (RQ alone makes two)
            rq_queue.enqueue(func, *args, job_id=job_id, retry=retry, pipeline=pipe)
            pipe.execute()


def _send(entry: OutboxEntry) -> None:
    if entry.kind == OutboxKind.JOB:
        at = datetime.fromisoformat(entry.payload["at"]) if entry.payload.get("at") else None
        enqueue_now(entry.name, *entry.payload.get("args", []), job_id=entry.job_id,
                    queue=entry.payload.get("queue", "default"),
                    retry_intervals=entry.payload.get("retry") or None, at=at)
    else:
        message = json.dumps({"type": entry.name, "data": entry.payload})
        redis_client().publish(workspace_channel(entry.workspace_id), message)
