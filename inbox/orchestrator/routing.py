"""What happens to an inbound message once it is stored.

The AI agent (Sara) plugs in here: decide(message, context) → collect / auto-reply /
escalate / hand to human. Until an engine is configured every message is handed to the
team, which is what this module records.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from ..extensions import db
from ..models import Message, utcnow

log = logging.getLogger(__name__)


def route_message(message_id: int) -> bool:
    """Route a message once; a re-run job finds it routed and does nothing."""
    result = db.session.execute(
        update(Message).where(Message.id == message_id, Message.routed_at.is_(None))
        .values(routed_at=utcnow())
    )
    db.session.commit()
    routed = result.rowcount == 1
    if routed:
        _follow_tickets(message_id)
        log.info("routed message_id=%s decision=hand_to_human", message_id)
    return routed


def _follow_tickets(message_id: int) -> None:
    """The customer wrote: their open tickets hear about it (waiting → in progress, reopen…)."""
    from ..actions.tickets import on_customer_message

    message = db.session.get(Message, message_id)
    on_customer_message(message.conversation, message)
