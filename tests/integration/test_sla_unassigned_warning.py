"""An unassigned ticket nearing its SLA deadline is not forgotten: the sweep warns the admins
(nobody else would hear of it) and the team's Telegram group, once per deadline."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from inbox.extensions import db
from inbox.models import Notification, TeamAlert, Ticket
from inbox.models.team_alert import TeamAlertKind
from inbox.sandbox.telegram import DEMO_NOTIFICATION_CHAT_ID

from .test_channels_team_alerts import group_posts
from .test_ticket_jobs import run
from .ticket_fixtures import T0, admin, contact, fresh, make_ticket  # noqa: F401, F811 — fixtures


def test_unassigned_ticket_warns_the_admins_and_the_group_once(app, telegram, agent, admin, contact,  # noqa: F811
                                                              fake_telegram):
    telegram.settings = {**(telegram.settings or {}), "notification_chat_id": str(DEMO_NOTIFICATION_CHAT_ID)}
    db.session.commit()
    ticket = make_ticket(contact, category="billing", priority="medium", subject="Facture en double")
    assert ticket.assignee_id is None and ticket.first_response_due_at == T0 + timedelta(hours=6)

    run(app, "sla_sweep", T0 - timedelta(minutes=5))  # 6 h 05 before: not yet
    assert db.session.scalars(select(Notification).where(Notification.kind == "sla_warning")).all() == []
    run(app, "sla_sweep", T0 + timedelta(minutes=5))
    run(app, "sla_sweep", T0 + timedelta(minutes=10))  # a second run warns nobody twice

    db.session.rollback()
    warnings = db.session.scalars(select(Notification).where(Notification.kind == "sla_warning")).all()
    assert [(n.user_id, n.data["target"]) for n in warnings] == [(admin.id, "first_response")]  # not the agent
    assert fresh(Ticket, ticket.id).first_response_reminded_at is not None
    assert [a.kind for a in db.session.scalars(select(TeamAlert).order_by(TeamAlert.id))] == [
        TeamAlertKind.TICKET_CREATED, TeamAlertKind.SLA_WARNING]
    created, warning = group_posts(fake_telegram)
    assert warning.startswith(f"⏰ {ticket.reference} : première réponse attendue dans moins de 6")
