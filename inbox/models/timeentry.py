"""Time spent on tickets and what it costs: effective-dated hourly rates per agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Numeric, String, UniqueConstraint, func, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime
from .user import User

CENT = Decimal("0.01")


class UserRate(Timestamped, db.Model):
    """An agent's hourly cost from a date on. Entries are costed at the rate in effect on
    their work date, so a change never rewrites the cost of earlier work."""

    __tablename__ = "user_rate"
    __table_args__ = (UniqueConstraint("user_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    hourly_cost: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    effective_from: Mapped[date] = mapped_column(Date)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    @classmethod
    def history_of(cls, user_id: int) -> list[UserRate]:
        stmt = select(cls).where(cls.user_id == user_id).order_by(cls.effective_from.desc())
        return list(db.session.scalars(stmt))


class TimeSource(StrEnum):
    TIMER = "timer"
    MANUAL = "manual"


_RUNNING_SQL = "minutes IS NULL"


class TimeEntry(Timestamped, db.Model):
    """Minutes an agent spent on a ticket: a running timer has no minutes yet."""

    __tablename__ = "time_entry"
    __table_args__ = (
        Index("ix_time_entry_ticket", "ticket_id", "work_date"),
        Index("ix_time_entry_contact_date", "workspace_id", "contact_id", "work_date"),
        Index("ix_time_entry_ws_date", "workspace_id", "work_date"),  # reports: time logged in a date range
        # One running timer per agent.
        Index("uq_time_entry_running_user", "user_id", unique=True,
              sqlite_where=text(_RUNNING_SQL), postgresql_where=text(_RUNNING_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))  # the client billed: budgets
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    source: Mapped[TimeSource] = mapped_column(StrEnumType(TimeSource, 8))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    minutes: Mapped[int | None] = mapped_column()
    work_date: Mapped[date] = mapped_column(Date)  # in the workspace's time zone
    note: Mapped[str] = mapped_column(String(255), default="")

    user = relationship("User", lazy="joined")

    @property
    def is_running(self) -> bool:
        return self.minutes is None


def rate_in_effect():
    """SQL: the hourly cost in effect for a time entry's agent on its work date."""
    latest = (select(UserRate.hourly_cost)
              .where(UserRate.user_id == TimeEntry.user_id, UserRate.effective_from <= TimeEntry.work_date)
              .order_by(UserRate.effective_from.desc()).limit(1)
              .correlate(TimeEntry).scalar_subquery())
    # Agents whose rate was never changed are costed at their profile's hourly cost.
    return func.coalesce(latest, User.hourly_cost)


def cost_of(minutes: int, hourly_cost: Decimal) -> Decimal:
    """Exact cost of some minutes at an hourly rate, not yet rounded."""
    return Decimal(minutes) * Decimal(str(hourly_cost)).quantize(CENT) / 60


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Spend:
    minutes: int
    cost: Decimal  # rounded to the cent

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(CENT)


def total_spend(rows) -> Spend:
    """Σ minutes × rate in effect, from (minutes, rate) pairs, rounded once at the end."""
    minutes, cost = 0, Decimal(0)
    for entry_minutes, rate in rows:
        minutes += entry_minutes
        cost += cost_of(entry_minutes, rate)
    return Spend(minutes, round_money(cost))


def spend_of(workspace_id: int, *, ticket_id: int | None = None, contact_id: int | None = None,
             start: date | None = None, end: date | None = None) -> Spend:
    """Time and cost logged in a workspace, narrowed to a ticket, a client and/or [start, end)."""
    stmt = (select(TimeEntry.minutes, rate_in_effect())
            .join(User, User.id == TimeEntry.user_id)
            .where(TimeEntry.workspace_id == workspace_id, TimeEntry.minutes.is_not(None)))
    if ticket_id is not None:
        stmt = stmt.where(TimeEntry.ticket_id == ticket_id)
    if contact_id is not None:
        stmt = stmt.where(TimeEntry.contact_id == contact_id)
    if start is not None:
        stmt = stmt.where(TimeEntry.work_date >= start)
    if end is not None:
        stmt = stmt.where(TimeEntry.work_date < end)
    return total_spend(db.session.execute(stmt).all())
