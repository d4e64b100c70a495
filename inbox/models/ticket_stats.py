"""Ticket statistics for the REST API and the Telegram /ticket_stats command: three queries,
whatever the number of tickets (counts grouped in SQL, durations over a bounded window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from ..extensions import db
from .conversation import Priority
from .ticket import Rating, Ticket, TicketCategory, TicketStatus

WINDOW_ROWS = 10_000  # durations are averaged over at most this many recent tickets


@dataclass(frozen=True, slots=True)
class TicketStats:
    total: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_category: dict[str, int]
    window_days: int
    mean_first_response_minutes: int | None  # tickets created in the window
    mean_resolution_minutes: int | None
    satisfaction_mean: Decimal | None  # ratings given in the window
    satisfaction_count: int
    satisfaction_distribution: dict[int, int]

    @property
    def active(self) -> int:
        return sum(self.by_status[s] for s in TicketStatus.active())


def ticket_stats(workspace_id: int, *, now: datetime, days: int = 30) -> TicketStats:
    by_status = dict.fromkeys(map(str, TicketStatus), 0)
    by_priority = dict.fromkeys(map(str, Priority), 0)
    by_category = dict.fromkeys(map(str, TicketCategory), 0)
    rows = db.session.execute(
        select(Ticket.status, Ticket.priority, Ticket.category, func.count(Ticket.id))
        .where(Ticket.workspace_id == workspace_id)
        .group_by(Ticket.status, Ticket.priority, Ticket.category)).all()
    for status, priority, category, count in rows:
        by_status[str(status)] += count
        by_priority[str(priority)] += count
        by_category[str(category)] += count

    since = now - timedelta(days=days)
    recent = db.session.execute(
        select(Ticket.created_at, Ticket.first_responded_at, Ticket.resolved_at, Ticket.closed_at)
        .where(Ticket.workspace_id == workspace_id, Ticket.created_at >= since)
        .order_by(Ticket.id.desc()).limit(WINDOW_ROWS)).all()
    responses = [r.first_responded_at - r.created_at for r in recent if r.first_responded_at]
    resolutions = [(r.resolved_at or r.closed_at) - r.created_at for r in recent if r.resolved_at or r.closed_at]

    distribution = dict.fromkeys(range(1, 6), 0)
    for score, count in db.session.execute(
            select(Rating.score, func.count(Rating.id))
            .where(Rating.workspace_id == workspace_id, Rating.created_at >= since).group_by(Rating.score)):
        distribution[int(score)] = int(count)
    rated = sum(distribution.values())
    mean = (Decimal(sum(s * n for s, n in distribution.items())) / rated).quantize(Decimal("0.01")) if rated else None
    return TicketStats(
        total=sum(by_status.values()), by_status=by_status, by_priority=by_priority, by_category=by_category,
        window_days=days, mean_first_response_minutes=_mean_minutes(responses),
        mean_resolution_minutes=_mean_minutes(resolutions), satisfaction_mean=mean, satisfaction_count=rated,
        satisfaction_distribution=distribution)


def _mean_minutes(durations: list[timedelta]) -> int | None:
    if not durations:
        return None
    return round(sum(durations, timedelta()).total_seconds() / 60 / len(durations))
