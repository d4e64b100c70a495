"""Client budgets: spend = Σ time × the rate in effect; alerts once per threshold and period."""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..models import (
    Budget, BudgetAlert, BudgetPeriod, BudgetUse, Contact, NotificationKind, TicketSettings, User, utcnow,
)
from ..models.budget import crossed_thresholds, period_bounds
from ..models.timeentry import spend_of
from .audit import record
from .notifications import admins_of, notify_many
from .timetracking import local_today

log = logging.getLogger(__name__)


def check_budget_amount(value) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace(",", ".").replace("€", "").replace(" ", ""))
    except (InvalidOperation, ValueError):
        raise ValidationError(_("Enter an amount such as 1500 or 1500.00."), field="amount") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("10000000000"):
        raise ValidationError(_("Enter an amount such as 1500 or 1500.00."), field="amount")
    return amount.quantize(Decimal("0.01"))


def check_period(value: str) -> BudgetPeriod:
    try:
        return BudgetPeriod(value)
    except ValueError:
        raise ValidationError(_("Choose a month, a quarter or a year."), field="period") from None


def do_set_budget(contact: Contact, *, period: BudgetPeriod | str, amount: Decimal | str,
                  actor: User | None) -> Budget | None:
    """Set (or, with 0, remove) the client's budget for each month, quarter or year. The change
    is audit-logged (client, period, amount before → after) in the same transaction."""
    period, amount = check_period(str(period)), check_budget_amount(amount)
    budget = db.session.scalar(select(Budget).where(Budget.contact_id == contact.id, Budget.period == period))
    before = _budget_state(contact, period, budget.amount) if budget is not None else None
    if amount == 0:
        if budget is not None:
            record(actor, "budget.remove", budget, before, None)
            for alert in db.session.scalars(select(BudgetAlert).where(BudgetAlert.budget_id == budget.id)):
                db.session.delete(alert)
            db.session.delete(budget)
        outbox.commit()
        return None
    if budget is None:
        budget = Budget(workspace_id=contact.workspace_id, contact_id=contact.id, period=period)
        db.session.add(budget)
    budget.amount = amount
    db.session.flush()
    record(actor, "budget.set", budget, before, _budget_state(contact, period, amount),
           keep=("contact", "period"))
    outbox.enqueue_job("inbox.jobs.tickets.check_contact_budgets", contact.id,
                       job_id=f"budget-{contact.id}-set-{budget.id}-{int(utcnow().timestamp())}",
                       workspace_id=contact.workspace_id)
    outbox.commit()
    return budget


def _budget_state(contact: Contact, period: BudgetPeriod, amount: Decimal) -> dict:
    return {"contact": contact.display_name, "period": period, "amount": amount}


def budget_use(budget: Budget, *, day: date) -> BudgetUse:
    start, end = period_bounds(budget.period, day)
    spend = spend_of(budget.workspace_id, contact_id=budget.contact_id, start=start, end=end)
    return BudgetUse(budget=budget, period_start=start, period_end=end, spent=spend.cost, minutes=spend.minutes)


def budgets_of_contact(contact: Contact, *, now: datetime | None = None) -> list[BudgetUse]:
    day = local_today(contact.workspace_id, now)
    return [budget_use(b, day=day) for b in Budget.of_contact(contact.id)]


def do_check_budget_alerts(contact_id: int, *, now: datetime | None = None) -> list[BudgetAlert]:
    """Alert the admins (in-app and email) when a client's spend reaches 80 % or 100 % of a
    budget in the current period: once per threshold per period, however often it runs."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        return []
    day = local_today(contact.workspace_id, now)
    currency = TicketSettings.of(contact.workspace_id).currency
    sent: list[BudgetAlert] = []
    for budget in Budget.of_contact(contact.id):
        use = budget_use(budget, day=day)
        already = BudgetAlert.sent_for(budget.id, use.period_start)
        for threshold in crossed_thresholds(use.spent, budget.amount, already=already):
            alert = BudgetAlert(workspace_id=budget.workspace_id, budget_id=budget.id,
                                period_start=use.period_start, threshold=threshold, spent=use.spent,
                                created_at=utcnow())
            try:
                with db.session.begin_nested():
                    db.session.add(alert)
                    db.session.flush()
            except IntegrityError:  # another run sent it
                continue
            notify_many(admins_of(budget.workspace_id), workspace_id=budget.workspace_id,
                        kind=NotificationKind.BUDGET_ALERT, contact_id=contact.id,
                        dedupe_key=f"budget-{budget.id}-{use.period_start.isoformat()}-{threshold}",
                        data={"contact": contact.display_name, "percent": str(use.percent),
                              "threshold": threshold, "period": str(budget.period),
                              "spent": str(use.spent), "amount": str(budget.amount), "currency": currency})
            sent.append(alert)
            log.info("budget alert contact_id=%s budget_id=%s threshold=%s", contact.id, budget.id, threshold)
    outbox.commit()
    return sent
