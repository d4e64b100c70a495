"""Time logged on tickets (timer or manual) and agents' effective-dated hourly costs."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import select

from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..models import Ticket, TimeEntry, TimeSource, User, UserRate, Workspace, utcnow
from ..models.timeentry import round_money
from ..business_time import BusinessCalendar

MAX_MINUTES = 24 * 60
BUDGET_JOB = "inbox.jobs.tickets.check_contact_budgets"
BASELINE_DATE = date(1970, 1, 1)


def local_today(workspace_id: int, now: datetime | None = None) -> date:
    workspace = db.session.get(Workspace, workspace_id)
    return BusinessCalendar(timezone=workspace.timezone).local_date(now or utcnow())


# -- check -------------------------------------------------------------------------------------
def check_minutes(value) -> int:
    """Minutes from a form: "45", "1:30" (h:mm) or "1.5h"."""
    text = str(value or "").strip().lower().replace(",", ".")
    try:
        if ":" in text:
            hours, _sep, minutes = text.partition(":")
            total = int(hours or 0) * 60 + int(minutes or 0)
        elif text.endswith("h"):
            total = round(float(text[:-1]) * 60)
        else:
            total = int(text.removesuffix("min").removesuffix("m").strip())
    except ValueError:
        raise ValidationError(_("Enter minutes (45), hours and minutes (1:30) or hours (1.5h)."), field="minutes") from None
    if not 1 <= total <= MAX_MINUTES:
        raise ValidationError(_("Log between 1 minute and 24 hours at a time."), field="minutes")
    return total


def check_hourly_cost(value) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace(",", ".").replace("€", "").replace(" ", ""))
    except (InvalidOperation, ValueError):
        raise ValidationError(_("Enter an hourly cost such as 42.50."), field="hourly_cost") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("100000000"):
        raise ValidationError(_("Enter an hourly cost such as 42.50."), field="hourly_cost")
    return amount.quantize(Decimal("0.01"))


def check_work_date(value, *, workspace_id: int, now: datetime | None = None) -> date:
    today = local_today(workspace_id, now)
    if not value:
        return today
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(_("Enter a date as YYYY-MM-DD."), field="work_date") from None
    if day > today:
        raise ValidationError(_("Time cannot be logged in the future."), field="work_date")
    return day


def check_note(value: str | None) -> str:
    note = " ".join((value or "").split())
    if len(note) > 255:
        raise ValidationError(_("The note is limited to 255 characters."), field="note")
    return note


# -- time --------------------------------------------------------------------------------------
def running_timer(user_id: int) -> TimeEntry | None:
    return db.session.scalar(select(TimeEntry).where(TimeEntry.user_id == user_id, TimeEntry.minutes.is_(None)))


def do_log_time(ticket: Ticket, *, user: User, minutes: int, work_date: date | None = None, note: str = "",
                now: datetime | None = None) -> TimeEntry:
    """A manual entry. The client's budgets are checked right after (alerts at 80 % and 100 %)."""
    now = now or utcnow()
    entry = TimeEntry(workspace_id=ticket.workspace_id, ticket_id=ticket.id, contact_id=ticket.contact_id,
                      user_id=user.id, source=TimeSource.MANUAL, minutes=check_minutes(minutes),
                      work_date=work_date or local_today(ticket.workspace_id, now), note=check_note(note),
                      created_at=now)
    db.session.add(entry)
    db.session.flush()
    _after_time_change(ticket, entry)
    outbox.commit()
    return entry


def do_start_timer(ticket: Ticket, *, user: User, now: datetime | None = None) -> TimeEntry:
    """Start a timer on the ticket; a timer running elsewhere is stopped first (one at a time)."""
    now = now or utcnow()
    running = running_timer(user.id)
    if running is not None:
        if running.ticket_id == ticket.id:
            return running
        _stop(running, now=now)
    entry = TimeEntry(workspace_id=ticket.workspace_id, ticket_id=ticket.id, contact_id=ticket.contact_id,
                      user_id=user.id, source=TimeSource.TIMER, started_at=now,
                      work_date=local_today(ticket.workspace_id, now), created_at=now)
    db.session.add(entry)
    db.session.flush()
    outbox.publish_event(ticket.workspace_id, f"ticket-{ticket.id}-changed", ticket_id=ticket.id)
    outbox.commit()
    return entry


def do_stop_timer(user: User, *, now: datetime | None = None) -> TimeEntry | None:
    running = running_timer(user.id)
    if running is None:
        return None
    _stop(running, now=now or utcnow())
    outbox.commit()
    return running


def _stop(entry: TimeEntry, *, now: datetime) -> None:
    elapsed = max(now - entry.started_at, timedelta(0))
    entry.ended_at = now
    entry.minutes = min(max(1, math.ceil(elapsed.total_seconds() / 60)), MAX_MINUTES)
    db.session.flush()
    ticket = db.session.get(Ticket, entry.ticket_id)
    _after_time_change(ticket, entry)


def do_delete_time_entry(entry: TimeEntry, *, actor: User) -> None:
    if entry.user_id != actor.id and not actor.is_admin:
        raise ValidationError(_("Only its author or an admin can delete a time entry."), field="entry")
    ticket = db.session.get(Ticket, entry.ticket_id)
    db.session.delete(entry)
    outbox.publish_event(ticket.workspace_id, f"ticket-{ticket.id}-changed", ticket_id=ticket.id)
    outbox.commit()


def _after_time_change(ticket: Ticket, entry: TimeEntry) -> None:
    outbox.publish_event(ticket.workspace_id, f"ticket-{ticket.id}-changed", ticket_id=ticket.id)
    outbox.enqueue_job(BUDGET_JOB, ticket.contact_id, job_id=f"budget-{ticket.contact_id}-entry-{entry.id}",
                       workspace_id=ticket.workspace_id)


def entries_of_ticket(ticket_id: int, limit: int = 100) -> list[TimeEntry]:
    stmt = (select(TimeEntry).where(TimeEntry.ticket_id == ticket_id)
            .order_by(TimeEntry.work_date.desc(), TimeEntry.id.desc()).limit(limit))
    return list(db.session.scalars(stmt))


# -- rates -------------------------------------------------------------------------------------
def rate_on(user: User, day: date) -> Decimal:
    """The hourly cost in effect for an agent on a day."""
    stmt = (select(UserRate.hourly_cost).where(UserRate.user_id == user.id, UserRate.effective_from <= day)
            .order_by(UserRate.effective_from.desc()).limit(1))
    rate = db.session.scalar(stmt)
    return Decimal(str(rate if rate is not None else user.hourly_cost)).quantize(Decimal("0.01"))


def do_set_user_rate(user: User, hourly_cost: Decimal, *, effective_from: date, actor: User | None,
                     now: datetime | None = None) -> UserRate:
    """A new hourly cost from a date on. Work before that date keeps the rate it had: the first
    change records the profile's previous cost as the baseline."""
    hourly_cost = check_hourly_cost(hourly_cost)
    if not db.session.scalar(select(UserRate.id).where(UserRate.user_id == user.id).limit(1)):
        if effective_from > BASELINE_DATE:
            db.session.add(UserRate(workspace_id=user.workspace_id, user_id=user.id,
                                    hourly_cost=user.hourly_cost, effective_from=BASELINE_DATE,
                                    set_by_id=actor.id if actor else None))
    row = db.session.scalar(select(UserRate).where(UserRate.user_id == user.id,
                                                   UserRate.effective_from == effective_from))
    if row is None:
        row = UserRate(workspace_id=user.workspace_id, user_id=user.id, effective_from=effective_from)
        db.session.add(row)
    row.hourly_cost = hourly_cost
    row.set_by_id = actor.id if actor else None
    db.session.flush()
    user.hourly_cost = rate_on(user, local_today(user.workspace_id, now))  # the profile shows today's rate
    outbox.enqueue_job("inbox.jobs.tickets.budget_sweep", job_id=f"budget-sweep-rate-{row.id}-{int(utcnow().timestamp())}",
                       workspace_id=user.workspace_id)
    outbox.commit()
    return row


def money(amount: Decimal) -> Decimal:
    return round_money(amount)
