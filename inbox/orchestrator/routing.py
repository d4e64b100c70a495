"""What happens to an inbound message once it is stored, in the route job.

Once per message (the job claims it), in order, the first step that handles it wins:
    0. the channel's forwarding rules (a copy by email, new conversations assigned);
    1. consent keywords (STOP / START…): opt out or in, confirm;
    2. bot commands (Telegram /ticket_…, /start, /help…; /rdv, /nouveau_rdv, /annuler);
    3. outside the channel's availability hours, the customer is told when we answer (once);
       the customer's open tickets hear about it (waiting → in progress, reopen);
    4. Sara decides: collect an answer, reply from the knowledge base, escalate, or step aside.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from ..extensions import db
from ..models import Message, utcnow
from .channel_behaviour import apply_forwarding_rules, reply_when_closed
from .commands import handle_command
from .consent import handle_consent_keyword

log = logging.getLogger(__name__)


def route_message(message_id: int) -> bool:
    """Route a message once; a re-run job finds it routed and does nothing."""
    if not _claim(message_id):
        return False
    message = db.session.get(Message, message_id)
    apply_forwarding_rules(message)  # the channel's rules see every message, commands too
    if handle_consent_keyword(message) or handle_command(message):
        return True
    from .sara import handle_appointment_command, run_sara

    if handle_appointment_command(message):
        return True
    reply_when_closed(message)  # outside the channel's availability hours: when we answer
    _follow_tickets(message)
    run_sara(message)
    log.info("routed message_id=%s", message_id)
    return True


def _claim(message_id: int) -> bool:
    result = db.session.execute(
        update(Message).where(Message.id == message_id, Message.routed_at.is_(None)).values(routed_at=utcnow()))
    db.session.commit()
    return result.rowcount == 1


def _follow_tickets(message: Message) -> None:
    from ..actions.tickets import on_customer_message

    on_customer_message(message.conversation, message)
