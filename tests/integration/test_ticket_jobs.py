"""The scheduled side of tickets, run through RQ as the worker runs them, with an explicit `now`:
auto-close, SLA reminders and escalation, the unassigned queue, periodic scheduling."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from inbox.actions.assignment import do_set_availability
from inbox.actions.tickets import do_add_ticket_note, do_change_status
from inbox.actions.workspace import do_create_user
from inbox.broker import BACKGROUND_QUEUE, get_queue
from inbox.extensions import db
from inbox.models import (
    Availability, Conversation, Notification, Role, Ticket, TicketEvent, TicketSettings, TicketStatus, User,
)
from inbox.periodic import PERIODIC, enqueue_due

from ..conftest import PASSWORD, login, run_jobs
from .ticket_fixtures import T0, admin, contact, customer_writes, fresh, make_ticket  # noqa: F401


def run(app, job: str, now) -> None:
    get_queue().enqueue(f"inbox.jobs.tickets.{job}", now.isoformat())
    run_jobs(app)


def test_auto_close_counts_from_the_last_customer_message_not_the_last_update(
        app, sms_channel, agent, contact, fake_twilio):
    quiet = make_ticket(contact, subject="Attente du bon de commande", assignee=agent)
    do_change_status(quiet, TicketStatus.WAITING_ON_CUSTOMER, actor=agent, now=T0, notify_customer=False)
    quiet.last_customer_message_at = T0 - timedelta(days=1)
    db.session.commit()
    # The agent keeps working on it: updates do not hold the clock back.
    do_add_ticket_note(quiet, "Relancé par téléphone, pas de réponse", actor=agent, internal=True,
                       now=T0 + timedelta(days=4, hours=20))
    recent = make_ticket(contact, subject="Question de facturation", assignee=agent)
    do_change_status(recent, TicketStatus.WAITING_ON_CUSTOMER, actor=agent, now=T0 - timedelta(days=10),
                     notify_customer=False)
    recent.last_customer_message_at = T0 + timedelta(days=1)
    silent = make_ticket(contact, subject="Résolu sans réponse", assignee=agent)
    do_change_status(silent, TicketStatus.RESOLVED, actor=agent, now=T0 - timedelta(days=1), notify_customer=False)
    db.session.commit()

    run(app, "auto_close_sweep", T0 + timedelta(days=5))

    assert fresh(Ticket, quiet.id).status == "closed"  # 6 days since the customer last wrote
    assert fresh(Ticket, recent.id).status == "waiting_on_customer"  # only 4 days
    assert fresh(Ticket, silent.id).status == "closed"  # never wrote: counted from the resolution
    bodies = [m["Body"] for m in fake_twilio.sent]
    assert len(bodies) == 2 and all("5 days" in b or "5 jours" in b for b in bodies)
    assert f"{quiet.reference} " in " ".join(bodies)
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.kind == "auto_closed")) == 2

    run(app, "auto_close_sweep", T0 + timedelta(days=5, hours=1))  # idempotent
    assert len(fake_twilio.sent) == 2


def test_a_backlog_is_auto_closed_in_slices_that_let_other_jobs_run_between(
        app, sms_channel, agent, contact, monkeypatch):
    monkeypatch.setattr("inbox.jobs.tickets.AUTO_CLOSE_BATCH", 2)
    waiting = [make_ticket(contact, subject=f"Sans nouvelles {n}", assignee=agent) for n in range(5)]
    for ticket in waiting:
        do_change_status(ticket, TicketStatus.WAITING_ON_CUSTOMER, actor=agent, now=T0, notify_customer=False)

    from inbox.jobs.tickets import auto_close_sweep
    assert auto_close_sweep((T0 + timedelta(days=6)).isoformat()) == 2  # one slice, as one job runs it
    statuses = [fresh(Ticket, t.id).status for t in waiting]
    assert statuses == ["closed", "closed"] + ["waiting_on_customer"] * 3
    assert get_queue(BACKGROUND_QUEUE).count == 1  # the rest: at the back of the queues

    run_jobs(app)
    assert {fresh(Ticket, t.id).status for t in waiting} == {"closed"}
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.kind == "auto_closed")) == 5


def test_auto_close_delay_is_a_workspace_setting(app, sms_channel, agent, contact, workspace):
    settings = TicketSettings.ensure(workspace.id)
    settings.auto_close_days = 2
    db.session.commit()
    ticket = make_ticket(contact)
    do_change_status(ticket, TicketStatus.WAITING_ON_CUSTOMER, actor=agent, now=T0, notify_customer=False)
    run(app, "auto_close_sweep", T0 + timedelta(days=1))
    assert fresh(Ticket, ticket.id).status == "waiting_on_customer"
    run(app, "auto_close_sweep", T0 + timedelta(days=2, minutes=1))
    assert fresh(Ticket, ticket.id).status == "closed"


def test_assignee_is_reminded_six_hours_before_a_deadline_once(app, agent, contact):
    ticket = make_ticket(contact, category="billing", priority="medium", assignee=agent)
    # billing / medium: first response within 6 business hours → Monday 16:00 Paris (15:00 UTC)
    assert ticket.first_response_due_at == T0 + timedelta(hours=6)

    run(app, "sla_sweep", T0 - timedelta(minutes=5))  # 6 h 05 before: not yet
    assert db.session.scalar(select(func.count(Notification.id)).where(Notification.kind == "sla_warning")) == 0
    run(app, "sla_sweep", T0 + timedelta(minutes=5))
    run(app, "sla_sweep", T0 + timedelta(minutes=10))  # a second run reminds nobody twice

    warnings = db.session.scalars(select(Notification).where(Notification.kind == "sla_warning")).all()
    assert [(n.user_id, n.data["target"]) for n in warnings] == [(agent.id, "first_response")]
    assert fresh(Ticket, ticket.id).first_response_reminded_at is not None


def test_a_backlog_of_breaches_is_escalated_in_slices_behind_customers_messages(
        app, agent, admin, contact, monkeypatch):
    monkeypatch.setattr("inbox.jobs.tickets.SWEEP_BATCH", 2)
    late = [make_ticket(contact, subject=f"En retard {n}", category="technical", priority="medium", assignee=agent)
            for n in range(5)]
    now = max(t.first_response_due_at for t in late) + timedelta(minutes=1)

    from inbox.jobs.tickets import sla_sweep
    assert sla_sweep(now.isoformat())["breaches"] == 2  # one slice, as one job runs it
    assert get_queue(BACKGROUND_QUEUE).count == 1  # the rest: at the back of the queues

    run_jobs(app)
    assert all(fresh(Ticket, t.id).first_response_breached_at is not None for t in late)
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.kind == "sla_breached")) == 5


def test_breached_deadline_escalates_once_raising_priority_and_telling_admins(
        app, client, sms_channel, agent, admin, contact):
    conversation = customer_writes(client, sms_channel, "Le site est en panne")
    ticket = make_ticket(contact, category="technical", priority="medium", assignee=agent, conversation=conversation)
    late = ticket.first_response_due_at + timedelta(minutes=1)

    run(app, "sla_sweep", late)
    run(app, "sla_sweep", late + timedelta(minutes=5))

    ticket = fresh(Ticket, ticket.id)
    assert ticket.priority == "high" and ticket.first_response_breached_at is not None
    breached = db.session.scalars(select(Notification).where(Notification.kind == "sla_breached")).all()
    assert sorted(n.user_id for n in breached) == sorted([admin.id, agent.id])
    assert db.session.get(Conversation, conversation.id).priority == "high"  # shown in the inbox
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.kind == "sla_breached")) == 1

    run(app, "sla_sweep", ticket.resolution_due_at + timedelta(minutes=1))
    ticket = fresh(Ticket, ticket.id)
    assert ticket.priority == "critical" and ticket.resolution_breached_at is not None
    paged = db.session.scalars(select(Notification.user_id).where(Notification.kind == "critical_ticket")).all()
    assert paged == [admin.id]  # nobody on call: the admins are paged


def test_a_reply_from_the_inbox_counts_as_the_first_response(app, logged_in, client, sms_channel, agent, contact):
    conversation = customer_writes(client, sms_channel, "Bonjour")
    ticket = make_ticket(contact, conversation=conversation, assignee=agent)
    logged_in.post(f"/inbox/c/{conversation.id}/reply", data={"body": "Nous regardons", "idempotency_key": "k"},
                   headers={"HX-Request": "true"})
    run(app, "sla_sweep", ticket.first_response_due_at + timedelta(hours=1))
    ticket = fresh(Ticket, ticket.id)
    assert ticket.first_responded_at is not None and ticket.first_response_breached_at is None
    assert ticket.priority == "medium"


def test_unassigned_tickets_go_to_the_least_loaded_available_agent(app, workspace, agent, contact):
    settings = TicketSettings.ensure(workspace.id)
    settings.auto_assign = True
    db.session.commit()
    bob = do_create_user(workspace, email="bob@example.test", name="Bob", password=PASSWORD, role=Role.AGENT)
    away = do_create_user(workspace, email="zoe@example.test", name="Zoé", password=PASSWORD, role=Role.AGENT)
    for user in (agent, bob):
        user.availability = Availability.ONLINE
    away.availability = Availability.OFFLINE
    db.session.commit()
    agent_id, bob_id = agent.id, bob.id
    make_ticket(contact, assignee=agent, subject="Déjà pris")

    created = [make_ticket(contact, subject=f"Demande {i}", now=T0 + timedelta(minutes=i)) for i in range(3)]
    owners = [fresh(Ticket, t.id).assignee_id for t in created]
    assert owners == [bob_id, agent_id, bob_id]  # least load, then whoever waited longest

    night = T0 + timedelta(hours=12)  # 22:00 in Paris: outside working hours, nobody is available
    assert fresh(Ticket, make_ticket(contact, subject="La nuit", now=night).id).assignee_id is None
    run(app, "auto_assign_sweep", T0 + timedelta(days=1))  # the queue drains in the morning
    assert db.session.scalar(select(func.count(Ticket.id)).where(Ticket.assignee_id.is_(None))) == 0

    moved = do_set_availability(fresh(User, bob_id), Availability.OFFLINE, now=T0 + timedelta(days=1, hours=1))
    assert moved >= 2  # bob's tickets not yet started go to the colleague still online
    assert db.session.scalar(select(func.count(Ticket.id)).where(Ticket.assignee_id == bob_id)) == 0


def test_periodic_jobs_are_enqueued_once_per_slot_whatever_the_number_of_workers(app):
    first = enqueue_due(T0)
    again = enqueue_due(T0 + timedelta(seconds=20))  # another worker, same slots
    assert first and again == []
    assert all(job_id.startswith("periodic-") for job_id in first)
    assert set(get_queue(BACKGROUND_QUEUE).job_ids) == set(first)  # behind customers' messages
    assert get_queue().count == 0
    later = enqueue_due(T0 + timedelta(minutes=5))  # the next slots of the jobs that run every ≤ 5 min
    every_five_minutes = {func.rsplit(".", 1)[-1] for func, interval in PERIODIC if (5 * 60) % interval == 0}
    assert {j.split("-")[1] for j in later} == every_five_minutes
    run_jobs(app)  # and they run cleanly, here on an empty database
    assert {get_queue(BACKGROUND_QUEUE).fetch_job(j).get_status() for j in first + later} == {"finished"}


def test_the_sla_clock_stops_while_the_ticket_waits_on_the_customer(app, client, sms_channel, agent, admin, contact):
    from datetime import UTC, datetime

    ticket = make_ticket(contact, category="billing", priority="medium", assignee=agent)  # Monday 10:00 Paris
    assert ticket.first_response_due_at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 16:00 Paris
    assert ticket.resolution_due_at == datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # Wednesday 16:00 Paris
    do_change_status(ticket, TicketStatus.WAITING_ON_CUSTOMER, actor=agent, notify_customer=False,
                     now=T0 + timedelta(hours=4))  # Monday 14:00 Paris
    assert fresh(Ticket, ticket.id).sla_paused_at == T0 + timedelta(hours=4)

    run(app, "sla_sweep", T0 + timedelta(hours=8))  # past the first-response deadline, but paused
    ticket = fresh(Ticket, ticket.id)
    assert ticket.first_response_breached_at is None and ticket.priority == "medium"
    assert not ticket.sla_breached(T0 + timedelta(hours=8))
    login(client, agent)
    listed = client.get("/tickets").get_data(as_text=True)
    assert "SLA suspendu" in listed  # the list shows the clock stopped, not a countdown
    assert db.session.scalar(select(func.count(Notification.id)).where(
        Notification.kind.in_(["sla_warning", "sla_breached"]))) == 0

    # The customer answers on Tuesday at 11:00 Paris: 6 business hours of waiting (4 h + 2 h).
    customer_writes_at = T0 + timedelta(hours=25)
    agent = fresh(User, agent.id)
    do_change_status(ticket, TicketStatus.IN_PROGRESS, actor=agent, notify_customer=False, now=customer_writes_at)
    ticket = fresh(Ticket, ticket.id)
    assert ticket.sla_paused_at is None and ticket.sla_paused_seconds == 6 * 3600
    assert ticket.first_response_due_at == datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # Tuesday 13:00 Paris
    assert ticket.resolution_due_at == datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # Thursday 13:00 Paris
    status_line = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "status")
                                     .order_by(TicketEvent.id.desc())).first()
    assert status_line.data["sla_paused_minutes"] == 360

    # A later priority change recomputes from the creation and keeps the paused time out.
    from inbox.actions.tickets import do_set_ticket_priority
    do_set_ticket_priority(ticket, "low", actor=agent, now=customer_writes_at)
    assert fresh(Ticket, ticket.id).resolution_due_at == datetime(2026, 3, 5, 12, 0, tzinfo=UTC)

    run(app, "sla_sweep", datetime(2026, 3, 3, 12, 1, tzinfo=UTC))  # the moved deadline is what counts
    assert fresh(Ticket, ticket.id).first_response_breached_at is not None
