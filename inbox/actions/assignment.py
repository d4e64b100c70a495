"""Automatic assignment: to an available agent (online, within working hours, under capacity),
the least loaded first, then round robin (whoever was assigned least recently)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from .. import outbox
from ..business_time import BusinessCalendar, week_from_json
from ..extensions import db
from ..models import Availability, Priority, Ticket, TicketSettings, TicketStatus, User, utcnow
from ..models.sla import calendar_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    user_id: int
    load: int  # active tickets assigned
    capacity: int
    last_assigned_at: datetime | None


def choose_agent(candidates: list[Candidate]) -> int | None:
    """Least open load first; on a tie, whoever was assigned least recently (never first); then id."""
    free = [c for c in candidates if c.load < c.capacity]
    if not free:
        return None
    never = datetime.min.replace(tzinfo=UTC)
    best = min(free, key=lambda c: (c.load, c.last_assigned_at or never, c.user_id))
    return best.user_id


def open_loads(workspace_id: int) -> dict[int, int]:
    stmt = (select(Ticket.assignee_id, func.count(Ticket.id))
            .where(Ticket.workspace_id == workspace_id, Ticket.assignee_id.is_not(None),
                   Ticket.status.in_(list(TicketStatus.active())))
            .group_by(Ticket.assignee_id))
    return {user_id: count for user_id, count in db.session.execute(stmt)}


def available_agents(workspace_id: int, *, now: datetime, exclude: set[int] = frozenset()) -> list[User]:
    """Members who are online and within their working hours right now."""
    stmt = (select(User).where(User.workspace_id == workspace_id, User.is_active_member.is_(True),
                               User.availability == Availability.ONLINE).order_by(User.id))
    agents = [u for u in db.session.scalars(stmt) if u.id not in exclude]
    if not agents:
        return []
    workspace_calendar = calendar_of(workspace_id)
    return [u for u in agents if _calendar_of_user(u, workspace_calendar).is_open(now)]


def _calendar_of_user(user: User, workspace_calendar: BusinessCalendar) -> BusinessCalendar:
    if not user.working_hours:
        return workspace_calendar
    return BusinessCalendar(timezone=workspace_calendar.timezone, week=week_from_json(user.working_hours),
                            holidays=workspace_calendar.holidays)


def pick_agent(workspace_id: int, *, now: datetime, exclude: set[int] = frozenset()) -> User | None:
    agents = available_agents(workspace_id, now=now, exclude=exclude)
    if not agents:
        return None
    loads = open_loads(workspace_id)
    chosen = choose_agent([Candidate(u.id, loads.get(u.id, 0), u.capacity, u.last_assigned_at) for u in agents])
    return next((u for u in agents if u.id == chosen), None)


def auto_assign(ticket: Ticket, *, now: datetime | None = None, exclude: set[int] = frozenset()) -> User | None:
    """Assign to the best available agent, in the caller's transaction. None when nobody is free."""
    from .tickets import _assign

    now = now or utcnow()
    agent = pick_agent(ticket.workspace_id, now=now, exclude=exclude)
    if agent is not None:
        _assign(ticket, agent, actor=None, now=now, auto=True)
    return agent


def do_drain_unassigned(workspace_id: int, *, now: datetime | None = None, limit: int = 200) -> int:
    """Hand unassigned active tickets to available agents, most urgent first. Returns how many."""
    from .tickets import _changed

    now = now or utcnow()
    if not TicketSettings.of(workspace_id).auto_assign:
        return 0
    priority_rank = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}
    stmt = (select(Ticket).where(Ticket.workspace_id == workspace_id, Ticket.assignee_id.is_(None),
                                 Ticket.status.in_([TicketStatus.OPEN, TicketStatus.IN_PROGRESS]))
            .order_by(Ticket.resolution_due_at, Ticket.id).limit(limit))
    tickets = sorted(db.session.scalars(stmt), key=lambda t: priority_rank[t.priority])
    assigned = 0
    for ticket in tickets:
        if auto_assign(ticket, now=now) is None:
            break
        _changed(ticket)
        outbox.commit()
        assigned += 1
    return assigned


def do_set_availability(user: User, availability: Availability | str, *, now: datetime | None = None) -> int:
    """Change an agent's availability. Going offline hands their not-yet-started tickets to
    someone available (or back to the unassigned queue) when auto-assignment is on."""
    from .tickets import _assign, _changed

    now = now or utcnow()
    availability = Availability(availability)
    user.availability = availability
    moved = 0
    if availability == Availability.OFFLINE and TicketSettings.of(user.workspace_id).auto_assign:
        stmt = (select(Ticket).where(Ticket.workspace_id == user.workspace_id, Ticket.assignee_id == user.id,
                                     Ticket.status == TicketStatus.OPEN).order_by(Ticket.id))
        for ticket in db.session.scalars(stmt).all():
            if auto_assign(ticket, now=now, exclude={user.id}) is None:
                _assign(ticket, None, actor=None, now=now, auto=True)
            _changed(ticket)
            moved += 1
    outbox.publish_event(user.workspace_id, "agents-changed", user_id=user.id)
    outbox.commit()
    log.info("availability user_id=%s %s, %d tickets handed over", user.id, availability, moved)
    return moved
