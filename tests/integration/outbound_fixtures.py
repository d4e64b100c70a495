"""Shared set-up for the outbound tests (issue 8): an admin, contacts, templates, segments."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select

from inbox.actions.campaigns import do_create_campaign, do_save_template
from inbox.actions.segments import do_save_segment
from inbox.actions.workspace import do_create_contact, do_create_user
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Message, Role, SegmentRules

from ..conftest import PASSWORD

# A Tuesday, 10:00 in Paris: inside any "09:00-18:00" allowed hours.
T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Camille Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("50.00"))


def make_contact(workspace, name: str, *, sms: str | None = None, email: str | None = None,
                 whatsapp: str | None = None, preferred: ChannelKind | None = None, **fields):
    fresh()
    workspace = again(workspace)
    identities = {}
    if sms:
        identities[ChannelKind.SMS] = sms
    if email:
        identities[ChannelKind.EMAIL] = email
    if whatsapp:
        identities[ChannelKind.WHATSAPP] = whatsapp
    return do_create_contact(workspace, name=name, identities=identities, preferred_channel=preferred,
                             phone=sms, email=email, whatsapp=whatsapp, **fields)


def make_template(workspace, name: str = "Promo", *, body: str = "Bonjour {{prospect_name}}, {{offer}}", **values):
    fresh()
    data = {"name": name, "kind": None, "subject": None, "body": body, "html": None, "provider_template": None,
            "variables": None}
    data.update(values)
    return do_save_template(again(workspace).id, data)


def make_segment(workspace, name: str = "Everyone", **rules):
    fresh()
    return do_save_segment(again(workspace).id, name=name, rules=SegmentRules(**rules))


def make_campaign(workspace, actor, *, template=None, segment=None, **values):
    template = template or make_template(workspace)
    segment = segment or make_segment(workspace)
    fresh()
    workspace, actor = again(workspace), again(actor)
    data = {"name": "Spring", "template_id": template.id, "segment_id": segment.id, "variables": {"offer": "-20 %"},
            "channel_order": ["whatsapp", "sms", "email"], "require_opt_in": False}
    data.update(values)
    return do_create_campaign(workspace.id, data, actor=actor)


def again(obj):
    """The same row in the current session (a job run by run_jobs closed the session it came from)."""
    return db.session.get(type(obj), inspect(obj).identity[0])


def fresh():
    """End the test's read snapshot: see what requests and jobs committed."""
    db.session.rollback()
    db.session.expire_all()


def outbound_messages(contact_id: int | None = None) -> list[Message]:
    fresh()
    stmt = select(Message).where(Message.direction == "outbound", Message.internal.is_(False))
    if contact_id is not None:
        stmt = stmt.where(Message.contact_id == contact_id)
    return list(db.session.scalars(stmt.order_by(Message.id)))
