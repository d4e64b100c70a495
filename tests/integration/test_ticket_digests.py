"""The morning digests, run through RQ as the worker runs them with an explicit `now`: the daily
reminder of tickets pending for more than 24 h (to their assignee, unassigned ones to the
admins) and the weekly summary to the admins, each once per day / ISO week, in the bell and by
email, in each reader's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from inbox.actions.ratings import do_record_rating
from inbox.actions.tickets import do_change_status
from inbox.actions.workspace import do_create_user
from inbox.broker import get_queue
from inbox.extensions import db
from inbox.mailer import get_mailer
from inbox.models import Notification, Role, Ticket, TicketStatus
from inbox.periodic import PERIODIC

from ..conftest import PASSWORD, login, run_jobs
from .ticket_fixtures import T0, admin, contact, make_ticket  # noqa: F401

MONDAY_0700_PARIS = T0 - timedelta(hours=3)  # T0 is Monday 2 March 2026, 10:00 in Paris


def sweep(app, now) -> None:
    get_queue().enqueue("inbox.jobs.tickets.digest_sweep", now.isoformat())
    run_jobs(app)  # the sweep, then the notification emails it queued
    db.session.rollback()
    db.session.expire_all()


def of_kind(kind: str, user) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.kind == kind,
                                                               Notification.user_id == user.id)
                                   .order_by(Notification.id)))


@pytest.fixture
def english_admin(admin):
    admin.locale = "en"
    db.session.commit()
    return admin


def test_pending_tickets_are_recalled_each_morning_to_their_assignee_and_unassigned_ones_to_admins(
        app, client, agent, english_admin, contact, workspace):
    assert ("inbox.jobs.tickets.digest_sweep", 3600) in PERIODIC
    bob = do_create_user(workspace, email="bob@example.test", name="Bob", password=PASSWORD, role=Role.AGENT)
    late = make_ticket(contact, subject="Livraison bloquée", assignee=agent, now=T0 - timedelta(days=2))
    orphan = make_ticket(contact, subject="Remboursement", now=T0 - timedelta(hours=30))
    make_ticket(contact, subject="Tout frais", assignee=agent, now=T0 - timedelta(hours=2))  # under 24 h
    answered = make_ticket(contact, subject="Déjà répondu", assignee=bob, now=T0 - timedelta(days=3))
    answered.last_agent_reply_at = T0 - timedelta(days=2)
    waiting = make_ticket(contact, subject="En attente du client", assignee=bob, now=T0 - timedelta(days=3))
    do_change_status(waiting, TicketStatus.WAITING_ON_CUSTOMER, actor=bob, notify_customer=False,
                     now=T0 - timedelta(days=3))  # the team is not the one keeping the customer waiting
    run_jobs(app)  # the assignment emails are not what this test is about
    get_mailer().sent.clear()

    sweep(app, MONDAY_0700_PARIS)  # before the team's morning: nothing yet
    assert db.session.scalar(select(Notification.id).where(Notification.kind == "pending_reminder")) is None

    sweep(app, T0)
    sweep(app, T0 + timedelta(hours=1))  # the hourly job runs again: nobody is told twice
    [mine] = of_kind("pending_reminder", agent)
    assert (mine.data["mine"], mine.data["unassigned"]) == (1, 0)
    assert [t["ref"] for t in mine.data["tickets"]] == [late.reference] and mine.data["tickets"][0]["hours"] == 48
    [queue] = of_kind("pending_reminder", english_admin)
    assert (queue.data["mine"], queue.data["unassigned"]) == (0, 1)
    assert queue.data["tickets"][0]["ref"] == orphan.reference
    assert of_kind("pending_reminder", bob) == []  # his tickets are answered or waiting on the customer

    # By email, in each reader's language, with the tickets listed.
    to_agent = [m for m in get_mailer().sent if m.to == agent.email]
    to_admin = [m for m in get_mailer().sent if m.to == english_admin.email and "24 h" in m.subject]
    assert len(to_agent) == 1 and len(to_admin) == 1
    assert "Tickets en attente depuis plus de 24 h : 1 à vous" in to_agent[0].subject
    assert f"{late.reference} · Livraison bloquée — en attente depuis 48 h" in to_agent[0].body
    assert "Tickets waiting for more than 24 h: 1 unassigned" in to_admin[0].subject
    assert f"{orphan.reference} · Remboursement — waiting for 30 h · unassigned" in to_admin[0].body

    # In the bell, and the notification leads to the list it is about.
    login(client, agent)
    page = client.get("/notifications").get_data(as_text=True)
    assert "Tickets en attente depuis plus de 24 h : 1 à vous" in page and "Livraison bloquée" in page
    assert client.get(f"/notifications/{mine.id}").headers["Location"] == "/tickets?assignee=me"

    sweep(app, T0 + timedelta(days=1))  # the next morning: reminded again
    assert len(of_kind("pending_reminder", agent)) == 2
    assert of_kind("pending_reminder", agent)[-1].dedupe_key == "pending-2026-03-03"


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 2, day, hour, 0, tzinfo=UTC)


def test_admins_get_the_past_week_summed_up_on_monday_morning_once(app, agent, english_admin, contact):
    # Week 9 of 2026 runs from Monday 23 February to Sunday 1 March (Paris).
    billing = make_ticket(contact, subject="Facture", category="billing", assignee=agent, now=at(24))
    billing.first_responded_at = at(24, 11)
    technical = make_ticket(contact, subject="Panne", category="technical", assignee=agent, now=at(26))
    technical.first_responded_at = at(26, 10)
    still_open = make_ticket(contact, subject="Autre facture", category="billing", assignee=agent, now=at(27))
    still_open.first_response_breached_at = at(27, 16)
    earlier = make_ticket(contact, subject="Semaine 8", category="general", assignee=agent, now=at(16))
    db.session.commit()
    do_change_status(earlier, TicketStatus.RESOLVED, actor=agent, notify_customer=False, now=at(18))
    do_change_status(billing, TicketStatus.RESOLVED, actor=agent, notify_customer=False, now=at(25))  # 24 h
    do_change_status(technical, TicketStatus.RESOLVED, actor=agent, notify_customer=False, now=at(26, 13))  # 4 h
    do_record_rating(db.session.get(Ticket, billing.id), 5, "Parfait", now=at(25, 12))
    do_record_rating(db.session.get(Ticket, technical.id), 4, now=at(26, 15))
    run_jobs(app)  # the assignment emails are not what this test is about
    get_mailer().sent.clear()

    sweep(app, MONDAY_0700_PARIS)
    assert of_kind("weekly_summary", english_admin) == []  # Monday, before the morning
    sweep(app, T0)
    sweep(app, T0 + timedelta(days=2))  # later in the week: already done
    [summary] = of_kind("weekly_summary", english_admin)
    assert of_kind("weekly_summary", agent) == []  # admins only
    d = summary.data
    assert (d["week"], d["start"]) == ("2026-W09", "2026-02-23")
    assert (d["opened"], d["resolved"], d["closed"], d["resolved_week_before"]) == (3, 2, 0, 1)
    assert d["first_response_minutes"] == 90 and d["resolution_minutes"] == 14 * 60
    assert d["sla_breaches"] == 1 and (d["satisfaction"], d["ratings"]) == ("4.50", 2)
    assert d["top_categories"] == [["billing", 2], ["technical", 1]]

    [mail] = [m for m in get_mailer().sent if m.to == english_admin.email and "Weekly summary" in m.subject]
    assert "Weekly summary (2026-W09): 2 resolved (1 the week before), 3 opened" in mail.subject
    for line in ("Tickets opened: 3", "Tickets resolved: 2 (week before: 1)", "Mean first response: 1 h 30",
                 "Mean resolution time: 14 h 00", "SLA breaches: 1", "Satisfaction: 4.5/5 over 2 ratings",
                 "Top categories: Billing (2), Technical (1)"):
        assert line in mail.body
