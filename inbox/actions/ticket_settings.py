"""Admins tune tickets per workspace: delays, business hours, holidays, SLA targets, the team's
capacity and hourly costs (effective-dated: timetracking.do_set_user_rate). Every change is
audit-logged in the transaction that makes it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from .. import outbox
from ..business_time import parse_day_openings, week_to_json
from ..errors import ValidationError
from ..extensions import db
from ..models import Holiday, Priority, SlaPolicy, SlaScope, TicketCategory, TicketSettings, User
from .audit import record, state
from .settings import do_save_settings
from .timetracking import check_hourly_cost

_BOUNDS = {"auto_close_days": (0, 365), "reopen_window_days": (0, 365), "sla_reminder_hours": (1, 72)}
_FLAGS = ("auto_assign", "request_ratings", "confirm_new_tickets", "email_notifications")
_AUDITED = (*_BOUNDS, *_FLAGS, "currency", "on_call_user_id")


def check_int(value, *, field: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise ValidationError(_("Enter a whole number from %(low)d to %(high)d.", low=low, high=high), field=field)
    return number


def check_ticket_settings(workspace_id: int, form: Mapping) -> dict:
    """The values of the ticket automation form; a delay missing from the form stays as it is."""
    values = {name: check_int(form[name], field=name, low=low, high=high)
              for name, (low, high) in _BOUNDS.items() if name in form}
    values.update({name: form.get(name) == "1" for name in _FLAGS})
    currency = (form.get("currency") or TicketSettings.of(workspace_id).currency or "EUR").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError(_("Enter a three-letter currency code such as EUR."), field="currency")
    values["currency"] = currency
    on_call = form.get("on_call_user_id") or ""
    values["on_call_user_id"] = None
    if on_call.isdigit():
        user = db.session.get(User, int(on_call))
        if user is None or user.workspace_id != workspace_id:
            raise ValidationError(_("This agent does not exist or is deactivated."), field="on_call_user_id")
        values["on_call_user_id"] = user.id
    return values


def do_update_ticket_settings(workspace_id: int, form: Mapping, *, actor: User) -> TicketSettings:
    return do_save_settings(TicketSettings, workspace_id, check_ticket_settings(workspace_id, form),
                            action="tickets.settings", actor=actor, audited=_AUDITED)


def do_set_business_hours(workspace_id: int, days: list[str], *, actor: User) -> TicketSettings:
    """Seven texts, Monday first, such as "09:00-12:30, 13:30-18:00" (empty: closed)."""
    if len(days) != 7:
        raise ValidationError(_("Give the opening hours of the seven days."), field="business_hours")
    try:
        week = tuple(parse_day_openings(text) for text in days)
    except ValueError:
        raise ValidationError(_("Write opening hours as 09:00-12:30, 13:30-18:00."), field="business_hours") from None
    if not any(week):
        raise ValidationError(_("Open at least one day a week, or SLA deadlines can never be met."),
                              field="business_hours")
    return do_save_settings(TicketSettings, workspace_id, {"business_hours": week_to_json(week)},
                            action="tickets.business_hours", actor=actor)


def do_add_holiday(workspace_id: int, day: str, name: str, *, actor: User) -> Holiday:
    try:
        parsed = date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValidationError(_("Enter a date as YYYY-MM-DD."), field="day") from None
    holiday = db.session.scalar(select(Holiday).where(Holiday.workspace_id == workspace_id, Holiday.day == parsed))
    if holiday is None:
        holiday = Holiday(workspace_id=workspace_id, day=parsed)
        db.session.add(holiday)
    before = {"day": parsed, "name": holiday.name} if holiday.id else None
    holiday.name = " ".join((name or "").split())[:120]
    record(actor, "tickets.holiday_add", holiday, before, {"day": parsed, "name": holiday.name}, keep=("day",))
    outbox.commit()
    return holiday


def do_remove_holiday(workspace_id: int, holiday_id: int, *, actor: User) -> None:
    holiday = db.session.get(Holiday, holiday_id)
    if holiday is not None and holiday.workspace_id == workspace_id:
        record(actor, "tickets.holiday_remove", holiday, {"day": holiday.day, "name": holiday.name}, None)
        db.session.delete(holiday)
    outbox.commit()


def do_set_sla_policy(workspace_id: int, scope: str, key: str, *, first_response_hours, resolution_hours,
                      actor: User) -> SlaPolicy:
    """A workspace's own targets (in business hours) for one category or priority. Deadlines of
    tickets already open are kept; new tickets use the new targets."""
    try:
        scope = SlaScope(scope)
        key = str(TicketCategory(key) if scope == SlaScope.CATEGORY else Priority(key))
    except ValueError:
        raise ValidationError(_("Unknown category or priority."), field="key") from None
    first = _hours(first_response_hours, field="first_response_hours")
    resolution = _hours(resolution_hours, field="resolution_hours")
    if first > resolution:
        raise ValidationError(_("The first response cannot come after the resolution."), field="first_response_hours")
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.workspace_id == workspace_id,
                                                       SlaPolicy.scope == scope, SlaPolicy.key == key))
    if policy is None:
        policy = SlaPolicy(workspace_id=workspace_id, scope=scope, key=key)
        db.session.add(policy)
    before = state(policy, ("scope", "key", "first_response_minutes", "resolution_minutes")) if policy.id else None
    policy.first_response_minutes = int(first.total_seconds() // 60)
    policy.resolution_minutes = int(resolution.total_seconds() // 60)
    record(actor, "tickets.sla_policy", policy, before,
           state(policy, ("scope", "key", "first_response_minutes", "resolution_minutes")), keep=("scope", "key"))
    outbox.commit()
    return policy


def _hours(value, *, field: str) -> timedelta:
    try:
        hours = float(str(value).replace(",", ".").strip())
    except ValueError:
        hours = -1
    if not 0.25 <= hours <= 24 * 90:
        raise ValidationError(_("Enter a number of business hours (at least 0.25)."), field=field)
    return timedelta(minutes=round(hours * 60))


def do_set_capacity(user: User, capacity, *, actor: User) -> User:
    _set_capacity(user, check_int(capacity, field="capacity", low=0, high=500), actor=actor)
    outbox.commit()
    return user


def do_set_capacity_and_cost(user: User, *, capacity, hourly_cost=None, effective_from: date | None = None,
                             actor: User) -> User:
    """The ticket settings' team row: capacity, and a new hourly cost from a date when one is
    given. Both are checked before anything changes, and both land in the audit log."""
    from .team import do_set_hourly_cost  # team builds on this module

    capacity = check_int(capacity, field="capacity", low=0, high=500)
    cost = check_hourly_cost(hourly_cost) if str(hourly_cost or "").strip() else None
    if cost is not None and effective_from is None:
        raise ValidationError(_("Enter a date as YYYY-MM-DD."), field="effective_from")
    _set_capacity(user, capacity, actor=actor)
    if cost is None:
        outbox.commit()
    else:
        do_set_hourly_cost(user, cost, effective_from=effective_from, actor=actor)  # audit-logged, commits
    return user


def _set_capacity(user: User, capacity: int, *, actor: User) -> None:
    before = user.capacity
    user.capacity = capacity
    record(actor, "team.capacity", user, {"capacity": before}, {"capacity": capacity})
