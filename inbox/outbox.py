"""Transactional outbox: jobs and live events are promised inside the data's transaction.

`enqueue_job` / `publish_event` add a row to the session; `commit()` commits the data and
the rows together, then relays them to Redis. If Redis is unreachable the rows stay and
`relay_pending()` (run in a loop by the worker process) delivers them once it is back.
Jobs are idempotent and keyed by a job id, so a row relayed twice does no harm.

A request does not delete the rows it relayed: that would be a second transaction on every
action (on SQLite, the write lock taken twice). The pipeline that relays them also adds their
ids to a Redis set (`SENT_KEY`), and the relay's next round deletes those rows in one statement
(`forget_sent`). So a row that still exists is either waiting for Redis or named in the set, and
the relay never sends a row of the set again.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import redis
from rq import Retry
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from .broker import get_queue, redis_client, workspace_channel
from .extensions import db
from .models import OutboxEntry, OutboxKind, utcnow

log = logging.getLogger(__name__)
_SESSION_KEY = "outbox_entries"
_EARLIER_KEY = "outbox_entries_committed_earlier"  # ids: committed without being relayed
SENT_KEY = "coccinelle:outbox:sent"  # ids of rows handed to Redis, left for the relay to delete
FORGET_BATCH = 1000


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
    """Commit the data with its promised work, then hand that work to Redis.

    The entries this transaction wrote are relayed from the objects (the session does not
    expire them on commit), not read back: one statement fewer per commit. Entries an earlier
    plain `session.commit()` wrote are read back, as the relay may have sent them meanwhile."""
    entries = db.session.info.pop(_SESSION_KEY, [])
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    committed = [e for e in entries if inspect(e).persistent]  # not one a savepoint rolled back
    earlier = db.session.info.pop(_EARLIER_KEY, [])
    if committed:
        _hand_over(committed)
    if earlier:
        relay(earlier)


@event.listens_for(Session, "after_commit")
def _committed_without_relay(session: Session) -> None:
    """Entries committed by a plain `session.commit()` are relayed by the next `commit()` here,
    by id (or by the relay, whichever comes first)."""
    entries = session.info.pop(_SESSION_KEY, None)
    if entries:
        session.info.setdefault(_EARLIER_KEY, []).extend(e.id for e in entries if e.id is not None)


def discard() -> None:
    """Roll back the data and forget the work promised with it."""
    db.session.info.pop(_SESSION_KEY, None)
    db.session.info.pop(_EARLIER_KEY, None)
    db.session.rollback()


def relay(ids: list[int]) -> int:
    entries = list(db.session.scalars(select(OutboxEntry).where(OutboxEntry.id.in_(ids)).order_by(OutboxEntry.id)))
    return _dispatch(entries)


def relay_pending(*, min_age: timedelta = timedelta(seconds=5), limit: int = 500) -> int:
    """Delete the rows requests relayed, then deliver the rows an earlier relay could not
    (Redis was down, or the process died)."""
    forget_sent()
    stmt = (
        select(OutboxEntry)
        .where(OutboxEntry.created_at < utcnow() - min_age)
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return _dispatch(list(db.session.scalars(stmt)))


def forget_sent(*, limit: int = 50 * FORGET_BATCH) -> int:
    """Delete the rows that requests handed to Redis (their ids are in `SENT_KEY`).

    An id leaves the set only after its row's deletion committed: until then a relay that reads
    the row also finds it in the set, and does not send it again."""
    client, forgotten = redis_client(), 0
    try:
        while forgotten < limit:
            ids = [int(i) for i in client.srandmember(SENT_KEY, FORGET_BATCH)]
            if not ids:
                break
            db.session.execute(OutboxEntry.__table__.delete().where(OutboxEntry.id.in_(ids)))
            db.session.commit()
            client.srem(SENT_KEY, *ids)
            forgotten += len(ids)
            if len(ids) < FORGET_BATCH:
                break
    except redis.RedisError as exc:  # the rows stay, and so do their ids: the next round
        log.warning("outbox: redis unavailable, sent rows kept for now (%s)", type(exc).__name__)
    return forgotten


def _hand_over(entries: list[OutboxEntry]) -> None:
    """Every entry in one Redis round trip (scheduled jobs aside), their ids noted as sent in the same
    pipeline: the request ends here, the relay deletes the rows."""
    try:
        _send_all(entries, note_sent=True)
    except redis.RedisError as exc:
        _left_for_the_relay(entries, exc)


def _dispatch(entries: list[OutboxEntry]) -> int:
    """The relay's way: the rows not already sent go to Redis in one round trip, then every row read
    is deleted (those of the set were sent by a request)."""
    unsent: list[OutboxEntry] = []
    try:
        sent = redis_client().smismember(SENT_KEY, [e.id for e in entries]) if entries else []
        unsent = [e for e, was_sent in zip(entries, sent) if not was_sent]
        _send_all(unsent)
    except redis.RedisError as exc:
        _left_for_the_relay(entries, exc)
        entries = unsent = []  # every row stays
    if entries:  # Core: no ORM bookkeeping for rows this session forgets anyway
        db.session.execute(OutboxEntry.__table__.delete().where(OutboxEntry.id.in_([e.id for e in entries])))
    db.session.commit()
    return len(unsent)


def _left_for_the_relay(entries: list[OutboxEntry], exc: redis.RedisError) -> None:
    # All left for the relay: jobs are keyed, events small.
    log.warning("outbox: redis unavailable, %d entries left for the relay (%s)",
                len(entries), type(exc).__name__, exc_info=True)


def _send_all(entries: list[OutboxEntry], *, note_sent: bool = False) -> None:
    if not entries:
        return
    with redis_client().pipeline(transaction=False) as pipe:
        # Jobs first: RQ turns the pipeline into a MULTI block, which must start empty.
        for entry in sorted(entries, key=lambda e: e.kind != OutboxKind.JOB):
            _send(entry, pipe)
        if note_sent:
            pipe.sadd(SENT_KEY, *(e.id for e in entries))
        pipe.execute()


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


def _send(entry: OutboxEntry, pipe) -> None:
    """Queue the entry's command on `pipe` (a scheduled job goes to Redis at once)."""
    if entry.kind == OutboxKind.JOB:
        at = datetime.fromisoformat(entry.payload["at"]) if entry.payload.get("at") else None
        args, queue = entry.payload.get("args", []), entry.payload.get("queue", "default")
        retry_intervals = entry.payload.get("retry") or None
        if at is not None and at > utcnow():
            enqueue_now(entry.name, *args, job_id=entry.job_id, queue=queue, retry_intervals=retry_intervals, at=at)
        else:
            retry = Retry(max=len(retry_intervals), interval=retry_intervals) if retry_intervals else None
            get_queue(queue).enqueue(entry.name, *args, job_id=entry.job_id, retry=retry, pipeline=pipe)
    else:
        message = json.dumps({"type": entry.name, "data": entry.payload})
        pipe.publish(workspace_channel(entry.workspace_id), message)
