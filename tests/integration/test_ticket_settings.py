"""Admins tune tickets: business hours and holidays move deadlines, SLA targets, rates, capacity."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from inbox.extensions import db
from inbox.models import Holiday, SlaPolicy, TicketSettings, User, UserRate

from ..conftest import login
from .ticket_fixtures import T0, admin, contact, fresh, make_ticket  # noqa: F401


def test_only_admins_see_ticket_settings(app, logged_in):
    assert logged_in.get("/tickets/settings").status_code == 403
    assert logged_in.post("/tickets/settings/general", data={"auto_close_days": "1"}).status_code == 403


def test_business_hours_holidays_and_targets_change_new_deadlines(app, client, admin, contact, workspace):
    login(client, admin)
    assert client.get("/tickets/settings").status_code == 200
    week = {f"day{i}": "08:00-12:00, 14:00-18:00" for i in range(5)} | {"day5": "", "day6": ""}
    assert client.post("/tickets/settings/hours", data=week).status_code == 303
    assert client.post("/tickets/settings/holiday", data={"day": "2026-03-03", "name": "Fermeture"}).status_code == 303
    assert client.post("/tickets/settings/sla", data={"scope": "category", "key": "billing",
                                                       "first_response_hours": "2", "resolution_hours": "8"}).status_code == 303
    bad = client.post("/tickets/settings/hours", data={**week, "day0": "18:00-08:00"})
    assert bad.status_code == 422 and "09:00-12:30" in bad.get_data(as_text=True)
    assert client.post("/tickets/settings/general", data={"auto_close_days": "3", "reopen_window_days": "2",
                                                          "sla_reminder_hours": "4", "currency": "eur",
                                                          "auto_assign": "1"}).status_code == 303

    db.session.rollback()
    settings = TicketSettings.of(workspace.id)
    assert (settings.auto_close_days, settings.sla_reminder_hours, settings.currency, settings.auto_assign) == (3, 4, "EUR", True)
    assert db.session.scalar(select(Holiday.name)) == "Fermeture"
    assert db.session.scalar(select(SlaPolicy.resolution_minutes)) == 8 * 60
    ticket = make_ticket(contact, category="billing", priority="medium")  # Monday 10:00 Paris
    assert ticket.first_response_due_at == T0 + timedelta(hours=2)  # 12:00, before lunch
    # 8 h: Monday 10–12 and 14–18 (6 h), Tuesday is a holiday, Wednesday 08:00–10:00.
    assert ticket.resolution_due_at == T0 + timedelta(days=2)  # Wednesday 10:00


def test_rate_and_capacity_from_the_team_table(app, client, admin, agent):
    login(client, admin)
    response = client.post("/tickets/settings/team", data={"user_id": agent.id, "capacity": "4",
                                                           "hourly_cost": "45,50", "effective_from": "2026-01-01"})
    assert response.status_code == 303
    user = fresh(User, agent.id)
    assert user.capacity == 4 and user.hourly_cost == Decimal("45.50")
    history = [(r.effective_from.isoformat(), r.hourly_cost) for r in UserRate.history_of(agent.id)]
    assert history == [("2026-01-01", Decimal("45.50")), ("1970-01-01", Decimal("40.00"))]
    page = client.get("/tickets/settings").get_data(as_text=True)
    assert "45,50" in page or "45.50" in page
