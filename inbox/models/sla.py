"""SLA policies, business hours and holidays: what the deadlines on a ticket are computed from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from ..business_time import BusinessCalendar, week_from_json
from ..extensions import db
from .base import StrEnumType
from .conversation import Priority
from .ticket import TicketCategory, TicketSettings
from .workspace import Workspace


class SlaScope(StrEnum):
    CATEGORY = "category"
    PRIORITY = "priority"


@dataclass(frozen=True, slots=True)
class SlaTargets:
    first_response: timedelta
    resolution: timedelta

    def stricter(self, other: SlaTargets) -> SlaTargets:
        """Each target is the shorter of the two: the stricter policy applies."""
        return SlaTargets(min(self.first_response, other.first_response),
                          min(self.resolution, other.resolution))


def _targets(resolution_hours: int) -> SlaTargets:
    # Defaults: the first answer within a quarter of the resolution target.
    return SlaTargets(timedelta(hours=resolution_hours) / 4, timedelta(hours=resolution_hours))


# Business hours. Resolution targets from the product brief; first response = a quarter of it.
DEFAULT_TARGETS: dict[tuple[SlaScope, str], SlaTargets] = {
    **{(SlaScope.CATEGORY, c.value): _targets(h) for c, h in (
        (TicketCategory.BILLING, 24), (TicketCategory.ACCOUNT, 24),
        (TicketCategory.TECHNICAL, 48), (TicketCategory.BUG_REPORT, 48),
        (TicketCategory.GENERAL, 72), (TicketCategory.SUGGESTION, 72))},
    **{(SlaScope.PRIORITY, p.value): _targets(h) for p, h in (
        (Priority.CRITICAL, 12), (Priority.HIGH, 24), (Priority.MEDIUM, 48), (Priority.LOW, 72))},
}


def targets_for(policies: dict[tuple[SlaScope, str], SlaTargets], category: TicketCategory,
                priority: Priority) -> SlaTargets:
    """The targets for a ticket: its category's and its priority's, whichever is stricter."""
    by_category = policies.get((SlaScope.CATEGORY, str(category)), DEFAULT_TARGETS[(SlaScope.CATEGORY, str(category))])
    by_priority = policies.get((SlaScope.PRIORITY, str(priority)), DEFAULT_TARGETS[(SlaScope.PRIORITY, str(priority))])
    return by_category.stricter(by_priority)


def deadlines(calendar: BusinessCalendar, start: datetime, targets: SlaTargets,
              paused: timedelta = timedelta(0)) -> tuple[datetime, datetime]:
    """(first response due, resolution due), counted in business time from `start`; the
    business time the ticket spent waiting on the customer (`paused`) does not count."""
    return calendar.add(start, targets.first_response + paused), calendar.add(start, targets.resolution + paused)


def paused_time(calendar: BusinessCalendar, since: datetime, until: datetime) -> timedelta:
    """The business time a pause of the SLA clock lasted (nights and weekends count nothing)."""
    return max(calendar.between(since, until), timedelta(0))


def resumed_deadline(calendar: BusinessCalendar, due: datetime, paused: timedelta) -> datetime:
    """A deadline once the SLA clock restarts: moved by the business time of the pause."""
    return calendar.add(due, paused)


class SlaPolicy(db.Model):
    """A workspace's own target for one category or one priority (defaults otherwise)."""

    __tablename__ = "sla_policy"
    __table_args__ = (UniqueConstraint("workspace_id", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    scope: Mapped[SlaScope] = mapped_column(StrEnumType(SlaScope, 16))
    key: Mapped[str] = mapped_column(String(24))
    first_response_minutes: Mapped[int] = mapped_column()
    resolution_minutes: Mapped[int] = mapped_column()

    @property
    def targets(self) -> SlaTargets:
        return SlaTargets(timedelta(minutes=self.first_response_minutes),
                          timedelta(minutes=self.resolution_minutes))

    @classmethod
    def of_workspace(cls, workspace_id: int) -> dict[tuple[SlaScope, str], SlaTargets]:
        """Every target in force: the defaults overridden by the workspace's own rows."""
        rows = db.session.scalars(select(cls).where(cls.workspace_id == workspace_id))
        return {**DEFAULT_TARGETS, **{(SlaScope(r.scope), r.key): r.targets for r in rows}}


class Holiday(db.Model):
    """A day the team is closed: no business time counts on it."""

    __table_args__ = (UniqueConstraint("workspace_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(120), default="")

    @classmethod
    def days_of(cls, workspace_id: int) -> frozenset[date]:
        return frozenset(db.session.scalars(select(cls.day).where(cls.workspace_id == workspace_id)))


def calendar_of(workspace_id: int, *, week=None) -> BusinessCalendar:
    """The workspace's business calendar (time zone, opening hours, holidays)."""
    workspace = db.session.get(Workspace, workspace_id)
    if week is None:  # the caller may hold the opening hours already
        week = week_from_json(TicketSettings.of(workspace_id).business_hours)
    return BusinessCalendar(
        timezone=workspace.timezone,
        week=week,
        holidays=Holiday.days_of(workspace_id),
    )
