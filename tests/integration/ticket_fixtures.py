"""Fixtures for the ticket tests (imported by them, so tests/conftest.py stays as it is)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from inbox.actions.tickets import do_create_ticket
from inbox.actions.workspace import do_create_contact, do_create_user
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Conversation, Role, Ticket

from ..conftest import PASSWORD
from ..helpers import inbound, signed_post

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Paris, the workspaces' time zone
CUSTOMER = "+33612345678"


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Camille Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("55.00"))


@pytest.fixture
def contact(workspace, sms_channel):
    return do_create_contact(workspace, name="Élodie Fournier", company="Boulangerie Fournier",
                             identities={ChannelKind.SMS: CUSTOMER}, preferred_channel=ChannelKind.SMS,
                             phone=CUSTOMER)


def make_ticket(contact, *, now=T0, notify_customer=False, **fields) -> Ticket:
    fields.setdefault("subject", "Commande n°4471 non livrée")
    return do_create_ticket(contact, now=now, notify_customer=notify_customer, **fields)


def customer_writes(client, channel, body: str, sender: str = CUSTOMER) -> Conversation:
    """The customer texts us through the signed webhook; returns their active conversation."""
    assert signed_post(client, channel, inbound(sender=sender, body=body)).status_code == 200
    db.session.rollback()
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def fresh(model, ident):
    """Re-read a row as the requests / jobs committed it."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(model, ident)
