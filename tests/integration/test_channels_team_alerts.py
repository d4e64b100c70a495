"""The team's Telegram group hears about new tickets, critical tickets and SLA deadlines: one
short post per event, through python-telegram-bot to the fake Bot API, never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.actions.tickets import do_escalate_breach, do_set_ticket_priority, do_sla_reminder
from inbox.broker import get_queue
from inbox.extensions import db
from inbox.models import Priority, TeamAlert
from inbox.models.team_alert import TeamAlertKind
from inbox.sandbox.telegram import DEMO_NOTIFICATION_CHAT_ID

from ..conftest import PUBLIC_BASE_URL, run_jobs
from .test_channels_long_texts import run_retries
from .ticket_fixtures import admin, contact, make_ticket  # noqa: F401 — fixtures

GROUP = DEMO_NOTIFICATION_CHAT_ID


@pytest.fixture
def team_group(telegram):
    telegram.settings = {**(telegram.settings or {}), "notification_chat_id": str(GROUP)}
    db.session.commit()
    return telegram


def group_posts(fake) -> list[str]:
    return [m["text"] for m in fake.sent if m["chat"]["id"] == GROUP]


def alerts() -> list[TeamAlert]:
    db.session.rollback()
    db.session.expire_all()
    return list(db.session.scalars(select(TeamAlert).order_by(TeamAlert.id)))


def test_a_new_ticket_is_posted_to_the_group_once(app, team_group, contact, fake_telegram):
    ticket = make_ticket(contact, subject="Commande n°4471 non livrée", priority=Priority.HIGH)
    run_jobs(app)
    [post] = group_posts(fake_telegram)
    assert post.splitlines() == [f"🆕 Nouveau ticket {ticket.reference} : Commande n°4471 non livrée",
                                 "Priorité : Haute", f"{PUBLIC_BASE_URL}/tickets/{ticket.id}"]
    [alert] = alerts()
    assert alert.status == "sent" and alert.provider_message_id.startswith(f"{GROUP}:")

    # The job again (a worker retry, a relay twice): nothing more reaches the group.
    get_queue().enqueue("inbox.jobs.channels.send_team_alert", alert.id, job_id="again")
    run_jobs(app)
    assert len(group_posts(fake_telegram)) == 1


def test_a_critical_ticket_is_one_critical_post(app, team_group, contact, fake_telegram):
    ticket = make_ticket(contact, subject="Site en panne", priority=Priority.CRITICAL)
    do_set_ticket_priority(ticket, Priority.CRITICAL, actor=None)  # already critical: no second page
    ref = ticket.reference
    run_jobs(app)
    [post] = group_posts(fake_telegram)
    assert post.startswith(f"🚨 Ticket critique {ref} : Site en panne") and "Priorité : Critique" in post
    assert [a.kind for a in alerts()] == [TeamAlertKind.CRITICAL_TICKET]


def test_sla_warning_and_breach_reach_the_group(app, team_group, contact, admin, fake_telegram):  # noqa: F811
    ticket = make_ticket(contact, subject="Facture en double", assignee=admin)
    due = ticket.first_response_due_at
    assert do_sla_reminder(ticket, "first_response", now=due - timedelta(hours=1))
    assert do_escalate_breach(ticket, "first_response", now=due + timedelta(minutes=1))
    assert not do_escalate_breach(ticket, "first_response", now=due + timedelta(minutes=2))  # once
    ref = ticket.reference
    run_jobs(app)
    created, warning, breach = group_posts(fake_telegram)
    assert warning.startswith(f"⏰ {ref} : première réponse attendue dans moins de 6") and "Facture en double" in warning
    assert breach.startswith(f"🔥 {ref}") and "Priorité : Haute" in breach
    assert [a.kind for a in alerts()] == [TeamAlertKind.TICKET_CREATED, TeamAlertKind.SLA_WARNING,
                                          TeamAlertKind.SLA_BREACHED]


def test_a_transient_telegram_error_is_retried_and_posts_once(app, team_group, contact, fake_telegram):
    fake_telegram.fail_next(status=502, description="Bad Gateway", method="sendMessage")
    make_ticket(contact, subject="Imprimante bloquée")
    run_jobs(app)
    [alert] = alerts()
    assert alert.status == "queued" and "Bad Gateway" in alert.error_message and not group_posts(fake_telegram)

    run_retries(app)
    assert len(group_posts(fake_telegram)) == 1 and alerts()[0].status == "sent"


def test_a_refusal_is_kept_with_its_reason(app, team_group, contact, fake_telegram):
    fake_telegram.fail_next(status=400, description="Bad Request: chat not found", method="sendMessage")
    make_ticket(contact, subject="Colis abîmé")
    run_jobs(app)
    [alert] = alerts()
    assert alert.status == "failed" and "chat not found" in alert.error_message.lower()


def test_no_group_no_post(app, telegram, contact, fake_telegram):
    make_ticket(contact, subject="Question")
    run_jobs(app)
    assert alerts() == [] and not fake_telegram.sent


def test_erasing_the_client_wipes_the_subject_from_the_posts(app, team_group, contact, admin,  # noqa: F811
                                                             fake_telegram):
    from inbox.actions.gdpr import do_erase_contact

    ticket = make_ticket(contact, subject="Problème avec ma carte vitale")
    ref, ticket_id = ticket.reference, ticket.id
    do_erase_contact(contact, actor=admin, confirmation=contact.display_name)
    [alert] = alerts()
    assert alert.text == f"🆕 {ref}\n{PUBLIC_BASE_URL}/tickets/{ticket_id}" and "carte vitale" not in alert.text
    run_jobs(app)
    assert group_posts(fake_telegram) == [alert.text]
