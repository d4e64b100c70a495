"""Ticket jobs: thin wrappers that load by id (or sweep by deadline) and call the actions.

Every job is idempotent: the actions claim their work with a conditional UPDATE (a ticket is
closed, reminded or escalated once) or a unique key (budget alerts, notifications). Sweeps
take the time as an ISO string so a test, or a late worker, decides what "now" is.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from ..actions import budgets, digests, notifications, tickets
from ..actions.assignment import do_drain_unassigned
from ..broker import BACKGROUND_QUEUE, get_queue
from ..errors import PermanentDeliveryError
from ..extensions import db
from ..models import Budget, Ticket, TicketSettings, TicketStatus, Workspace, utcnow
from . import job

log = logging.getLogger(__name__)
AUTO_CLOSE_BATCH = 25  # tickets closed per job (each tells its customer: ~30 ms each on a slow host)
SWEEP_BATCH = 200  # SLA breaches / reminders per kind and job (each notifies people)
REMINDER_HORIZON = timedelta(hours=72)  # the longest reminder lead time a workspace may set


def _now(now_iso: str | None) -> datetime:
    return datetime.fromisoformat(now_iso) if now_iso else utcnow()


@job
def email_notification(notification_id: int) -> None:
    try:
        notifications.send_notification_email(notification_id)
    except PermanentDeliveryError as exc:  # a refused address: retrying will not help
        log.warning("notification email refused notification_id=%s: %s", notification_id, exc.message)


@job
def announce_new_ticket(ticket_id: int, notify_customer: bool = True) -> None:
    tickets.do_announce_new_ticket(ticket_id, notify_customer=notify_customer)


@job
def check_contact_budgets(contact_id: int, now_iso: str | None = None) -> None:
    budgets.do_check_budget_alerts(contact_id, now=_now(now_iso))


@job
def budget_sweep(now_iso: str | None = None) -> int:
    """Every client with a budget: catches rate changes made effective in the past."""
    now = _now(now_iso)
    contact_ids = list(db.session.scalars(select(Budget.contact_id).distinct()))
    sent = 0
    for contact_id in contact_ids:
        sent += len(budgets.do_check_budget_alerts(contact_id, now=now))
    return sent


@job
def sla_sweep(now_iso: str | None = None) -> dict[str, int]:
    """Reminders before deadlines, escalation after them; SWEEP_BATCH of each kind per job, the
    rest in a further job at the back of the queues."""
    now = _now(now_iso)
    done = {"first_responses": tickets.sync_first_responses(), "reminders": 0, "breaches": 0}
    more, seen = False, 0
    # Waiting on the customer stops the clock: paused tickets are neither reminded nor escalated.
    active = Ticket.status.in_(list(TicketStatus.active())) & Ticket.sla_paused_at.is_(None)
    for target, due, met in (
        ("first_response", Ticket.first_response_due_at, Ticket.first_responded_at),
        ("resolution", Ticket.resolution_due_at, Ticket.resolved_at),
    ):
        breached = Ticket.first_response_breached_at if target == "first_response" else Ticket.resolution_breached_at
        reminded = Ticket.first_response_reminded_at if target == "first_response" else Ticket.resolution_reminded_at
        late = select(Ticket.id).where(active, met.is_(None), breached.is_(None), due <= now).order_by(due)
        batch = db.session.scalars(late.limit(SWEEP_BATCH)).all()
        seen = max([seen, *batch])
        escalated = sum(tickets.do_escalate_breach(db.session.get(Ticket, i), target, now=now) for i in batch)
        done["breaches"] += escalated
        more |= len(batch) == SWEEP_BATCH and escalated > 0
        # Unassigned tickets too: their warning goes to the admins (and the team's Telegram group).
        soon = (select(Ticket.id).where(active, met.is_(None), reminded.is_(None),
                                        due > now, due <= now + REMINDER_HORIZON).order_by(due))
        batch = db.session.scalars(soon.limit(SWEEP_BATCH)).all()
        seen = max([seen, *batch])
        reminded_now = sum(tickets.do_sla_reminder(db.session.get(Ticket, i), target, now=now) for i in batch)
        done["reminders"] += reminded_now
        more |= len(batch) == SWEEP_BATCH and reminded_now > 0
    if more:  # a backlog: the rest in another job (handled ones are marked)
        _continue_later("sla_sweep", now.isoformat(), job_id=f"sla-sweep-{int(now.timestamp())}-upto-{seen}")
    if any(done.values()):
        log.info("sla sweep %s", done)
    return done


@job
def auto_close_sweep(now_iso: str | None = None, workspace_id: int | None = None, after_id: int = 0) -> int:
    """Close tickets waiting on the customer (or resolved) after each workspace's N silent days.

    A slice of AUTO_CLOSE_BATCH tickets per job: a backlog (auto-close just enabled, history
    imported) goes on in further jobs (`_continue_later`)."""
    now = _now(now_iso)
    if workspace_id is not None:
        return _auto_close_slice(workspace_id, now, after_id)
    return sum(_auto_close_slice(ws, now, 0) for ws in db.session.scalars(select(Workspace.id)).all())


def _auto_close_slice(workspace_id: int, now: datetime, after_id: int) -> int:
    days = TicketSettings.of(workspace_id).auto_close_days
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    stmt = (select(Ticket.id).where(
        Ticket.workspace_id == workspace_id, Ticket.id > after_id,
        Ticket.status.in_([TicketStatus.WAITING_ON_CUSTOMER, TicketStatus.RESOLVED]),
        or_(Ticket.last_customer_message_at <= cutoff,
            (Ticket.last_customer_message_at.is_(None)) & (Ticket.status_changed_at <= cutoff)),
    ).order_by(Ticket.id).limit(AUTO_CLOSE_BATCH))
    batch = db.session.scalars(stmt).all()
    closed = sum(tickets.do_auto_close(db.session.get(Ticket, ticket_id), now=now) for ticket_id in batch)
    if len(batch) == AUTO_CLOSE_BATCH:  # maybe more: the next slice (keyset, so a refused ticket is not retried)
        _continue_later("auto_close_sweep", now.isoformat(), workspace_id, batch[-1],
                        job_id=f"auto-close-{workspace_id}-{int(now.timestamp())}-after-{batch[-1]}")
    return closed


def _continue_later(sweep: str, *args, job_id: str) -> None:
    """The rest of a sweep's backlog in another job at the back of the queues: customers'
    messages are routed in between instead of waiting behind one long sweep."""
    get_queue(BACKGROUND_QUEUE).enqueue(f"{__name__}.{sweep}", *args, job_id=job_id)


@job
def digest_sweep(now_iso: str | None = None) -> dict[str, int]:
    """Hourly: each workspace's daily reminder of pending tickets and weekly summary, sent once
    its morning has come (local time); the dedupe keys make every later run a no-op."""
    now = _now(now_iso)
    done = {"pending_reminders": 0, "weekly_summaries": 0}
    for workspace_id in db.session.scalars(select(Workspace.id).order_by(Workspace.id)).all():
        done["pending_reminders"] += digests.do_send_pending_reminders(workspace_id, now=now)
        done["weekly_summaries"] += digests.do_send_weekly_summary(workspace_id, now=now)
    return done


@job
def auto_assign_sweep(now_iso: str | None = None) -> int:
    """Drain each workspace's unassigned queue to agents who became available."""
    now = _now(now_iso)
    workspace_ids = db.session.scalars(
        select(TicketSettings.workspace_id).where(TicketSettings.auto_assign.is_(True))).all()
    return sum(do_drain_unassigned(workspace_id, now=now) for workspace_id in workspace_ids)
