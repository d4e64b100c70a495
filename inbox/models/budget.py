"""Client budgets per period, and the alerts sent once per threshold and period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Numeric, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime, utcnow

THRESHOLDS = (80, 100)  # percent of the budget


class BudgetPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def period_bounds(period: BudgetPeriod, day: date) -> tuple[date, date]:
    """[start, end) of the month, quarter or year containing `day`."""
    period = BudgetPeriod(period)
    if period == BudgetPeriod.YEAR:
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    months = 3 if period == BudgetPeriod.QUARTER else 1
    first_month = (day.month - 1) // months * months + 1
    start = date(day.year, first_month, 1)
    end_month = first_month + months
    end = date(day.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return start, end


def percent_used(spent: Decimal, amount: Decimal) -> Decimal:
    if amount <= 0:
        return Decimal(0)
    return (Decimal(spent) * 100 / Decimal(amount)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def crossed_thresholds(spent: Decimal, amount: Decimal, *, already: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Thresholds reached by this spend that were not alerted yet (80 %, 100 %)."""
    if amount <= 0:
        return []
    return [t for t in THRESHOLDS if t not in already and Decimal(spent) * 100 >= Decimal(amount) * t]


class Budget(Timestamped, db.Model):
    """What a client's support may cost per month, quarter or year (the workspace currency)."""

    __table_args__ = (UniqueConstraint("contact_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    period: Mapped[BudgetPeriod] = mapped_column(StrEnumType(BudgetPeriod, 8))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    contact = relationship("Contact", lazy="joined")

    @classmethod
    def of_contact(cls, contact_id: int) -> list[Budget]:
        order = {BudgetPeriod.MONTH: 0, BudgetPeriod.QUARTER: 1, BudgetPeriod.YEAR: 2}
        budgets = list(db.session.scalars(select(cls).where(cls.contact_id == contact_id)))
        return sorted(budgets, key=lambda b: order[b.period])


class BudgetAlert(db.Model):
    """One threshold crossed in one period: the unique key makes the alert go out once."""

    __tablename__ = "budget_alert"
    __table_args__ = (UniqueConstraint("budget_id", "period_start", "threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    budget_id: Mapped[int] = mapped_column(ForeignKey("budget.id"))
    period_start: Mapped[date] = mapped_column(Date)
    threshold: Mapped[int] = mapped_column()
    spent: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def sent_for(cls, budget_id: int, period_start: date) -> set[int]:
        stmt = select(cls.threshold).where(cls.budget_id == budget_id, cls.period_start == period_start)
        return set(db.session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class BudgetUse:
    budget: Budget
    period_start: date
    period_end: date
    spent: Decimal
    minutes: int

    @property
    def percent(self) -> Decimal:
        return percent_used(self.spent, self.budget.amount)

    @property
    def level(self) -> str:
        """ok / warn (≥ 80 %) / over (≥ 100 %): the bar's colour."""
        crossed = crossed_thresholds(self.spent, self.budget.amount)
        return "over" if 100 in crossed else "warn" if 80 in crossed else "ok"
