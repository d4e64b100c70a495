"""Time on tickets and what it costs the client: effective-dated rates, budgets, alerts once."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from inbox.actions.budgets import budgets_of_contact, do_check_budget_alerts, do_set_budget
from inbox.actions.timetracking import do_log_time, do_set_user_rate, do_start_timer, do_stop_timer, rate_on
from inbox.extensions import db
from inbox.mailer import get_mailer
from inbox.models import BudgetAlert, Notification, TimeEntry, User
from inbox.models.timeentry import spend_of

from ..conftest import login, run_jobs
from .ticket_fixtures import T0, admin, contact, fresh, make_ticket  # noqa: F401


def test_a_rate_change_applies_from_its_date_and_past_entries_keep_their_rate(app, agent, admin, contact):
    ticket = make_ticket(contact)
    do_log_time(ticket, user=agent, minutes=60, work_date=date(2026, 3, 2))  # at 40.00 €/h
    do_set_user_rate(agent, Decimal("50.00"), effective_from=date(2026, 3, 10), actor=admin)
    do_log_time(ticket, user=agent, minutes=30, work_date=date(2026, 3, 9))  # still 40
    do_log_time(ticket, user=agent, minutes=30, work_date=date(2026, 3, 10))  # 50 from the 10th

    spend = spend_of(ticket.workspace_id, ticket_id=ticket.id)
    assert spend.minutes == 120 and spend.cost == Decimal("85.00")  # 40 + 20 + 25
    assert rate_on(agent, date(2026, 3, 9)) == Decimal("40.00") and rate_on(agent, date(2030, 1, 1)) == Decimal("50.00")
    # A correction back-dated to the 5th re-costs only the work from the 5th to the 9th (40 → 45).
    do_set_user_rate(agent, Decimal("45.00"), effective_from=date(2026, 3, 5), actor=admin)
    assert spend_of(ticket.workspace_id, ticket_id=ticket.id).cost == Decimal("85.00") + Decimal("2.50")
    assert fresh(User, agent.id).hourly_cost == Decimal("50.00")  # the profile shows today's rate


def test_timer_start_stop_and_manual_entries_from_the_ticket_page(app, logged_in, agent, contact):
    ticket = make_ticket(contact)
    other = make_ticket(contact, subject="Autre")
    do_start_timer(ticket, user=agent, now=T0)
    do_start_timer(other, user=agent, now=T0 + timedelta(minutes=25, seconds=10))  # stops the first one
    stopped = do_stop_timer(agent, now=T0 + timedelta(minutes=40))
    entries = db.session.scalars(select(TimeEntry).order_by(TimeEntry.id)).all()
    assert [(e.ticket_id, e.minutes) for e in entries] == [(ticket.id, 26), (other.id, 15)]
    assert stopped.ticket_id == other.id

    hx = {"HX-Request": "true"}
    assert logged_in.post(f"/tickets/{ticket.id}/time", headers=hx, data={"minutes": "1:30", "note": "Diagnostic"}).status_code == 200
    assert logged_in.post(f"/tickets/{ticket.id}/time", headers=hx, data={"minutes": "abc"}).status_code == 422
    future = (date.today() + timedelta(days=3)).isoformat()
    assert logged_in.post(f"/tickets/{ticket.id}/time", headers=hx, data={"minutes": "10", "work_date": future}).status_code == 422
    started = logged_in.post(f"/tickets/{ticket.id}/timer", headers=hx, data={"action": "start"})
    assert started.status_code == 200 and "Arrêter le chronomètre" in started.get_data(as_text=True)
    side = logged_in.post(f"/tickets/{ticket.id}/timer", headers=hx, data={"action": "stop"}).get_data(as_text=True)
    assert "Démarrer le chronomètre" in side  # the agent works in French
    db.session.rollback()  # see what the requests committed
    assert spend_of(ticket.workspace_id, ticket_id=ticket.id).minutes == 26 + 90 + 1


def test_budget_alerts_at_80_and_100_percent_once_per_period(app, client, agent, admin, contact):
    ticket = make_ticket(contact)
    do_set_budget(contact, period="month", amount="100", actor=admin)
    do_log_time(ticket, user=agent, minutes=90)  # 60 € of 100 €
    run_jobs(app)
    assert db.session.scalar(select(func.count(BudgetAlert.id))) == 0

    do_log_time(ticket, user=agent, minutes=30)  # 80 €: the 80 % alert
    run_jobs(app)
    do_log_time(ticket, user=agent, minutes=15)  # 90 €: nothing new
    run_jobs(app)
    assert db.session.scalars(select(BudgetAlert.threshold)).all() == [80]
    do_log_time(ticket, user=agent, minutes=45)  # 120 €: the 100 % alert
    run_jobs(app)
    get_queue_job = do_check_budget_alerts(contact.id)  # a re-run sends nothing
    assert get_queue_job == []
    assert sorted(db.session.scalars(select(BudgetAlert.threshold))) == [80, 100]

    alerts = db.session.scalars(select(Notification).where(Notification.kind == "budget_alert")
                                .order_by(Notification.id)).all()
    assert [(n.user_id, n.data["threshold"]) for n in alerts] == [(admin.id, 80), (admin.id, 100)]
    mails = [m for m in get_mailer().sent if m.to == "admin@example.test" and "budget" in m.subject]
    assert len(mails) == 2 and "Élodie Fournier" in mails[0].subject and "80" in mails[0].subject
    [use] = budgets_of_contact(fresh(type(contact), contact.id))
    assert use.spent == Decimal("120.00") and use.level == "over"

    next_month = date.today().replace(day=1) + timedelta(days=32)
    assert do_check_budget_alerts(contact.id, now=T0.replace(year=next_month.year, month=next_month.month)) == []

    login(client, admin)
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "120" in page and "Définir le budget" in page


def test_only_admins_set_budgets(app, logged_in, contact):
    assert logged_in.post(f"/contacts/{contact.id}/budget", data={"period": "month", "amount": "10"}).status_code == 403
