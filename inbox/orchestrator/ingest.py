"""Inbound messages, from any channel, become one conversation history per contact."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from .. import outbox
from ..channels.base import InboundMessage
from ..extensions import db
from ..models import (
    Attachment, Channel, Contact, ContactIdentity, Conversation, ConversationStatus,
    DeliveryStatus, Direction, Message, SenderKind, utcnow,
)

log = logging.getLogger(__name__)
PREVIEW_LENGTH = 140
ROUTE_JOB = "inbox.jobs.route.route_message"


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: int
    conversation_id: int
    created: bool  # False when the provider delivered a message we already had


def do_ingest(channel: Channel, inbound: InboundMessage) -> IngestResult:
    """Store an inbound message exactly once, then route it and tell the browsers.

    Concurrent deliveries of the same message, or of two first messages from a new
    customer, meet a unique key; the loser rolls back and finds the winner's rows.
    """
    for _attempt in range(3):
        existing = Message.by_provider_id(channel.id, inbound.provider_message_id)
        if existing is not None:
            outbox.discard()
            return IngestResult(existing.id, existing.conversation_id, created=False)
        try:
            message = _store(channel, inbound)
            outbox.commit()
        except IntegrityError:
            outbox.discard()
            continue
        log.info("inbound stored message_id=%s conversation_id=%s channel=%s provider_id=%s",
                 message.id, message.conversation_id, channel.id, inbound.provider_message_id)
        return IngestResult(message.id, message.conversation_id, created=True)
    raise RuntimeError("inbound message could not be stored after 3 attempts")


def _store(channel: Channel, inbound: InboundMessage) -> Message:
    contact = contact_for_address(channel, inbound.sender, name=inbound.sender_name)
    conversation = Conversation.active_for_contact(contact.id)
    if conversation is None:
        conversation = Conversation(workspace_id=channel.workspace_id, contact_id=contact.id)
        db.session.add(conversation)
    now = utcnow()
    sent_at = inbound.sent_at or now
    message = Message(
        workspace_id=channel.workspace_id, conversation=conversation, contact_id=contact.id,
        channel_id=channel.id, direction=Direction.INBOUND, sender_kind=SenderKind.CUSTOMER,
        body=inbound.body, provider_message_id=inbound.provider_message_id,
        delivery_status=DeliveryStatus.RECEIVED, status_changed_at=now, created_at=sent_at,
    )
    message.attachments = [
        Attachment(content_type=m.content_type, filename=m.filename, remote_url=m.url)
        for m in inbound.media
    ]
    db.session.add(message)
    touch_conversation(conversation, message, channel_id=channel.id)
    conversation.unread_count = (conversation.unread_count or 0) + 1
    if conversation.status == ConversationStatus.PENDING:  # the customer answered
        conversation.status = ConversationStatus.OPEN
    db.session.flush()
    outbox.enqueue_job(ROUTE_JOB, message.id, job_id=f"route-{message.id}",
                       workspace_id=channel.workspace_id)
    announce_message(message)
    return message


def contact_for_address(channel: Channel, address: str, *, name: str | None = None) -> Contact:
    """The contact behind an address on this channel kind, created on first contact."""
    identity = ContactIdentity.find(channel.workspace_id, channel.kind, address)
    if identity is not None:
        return identity.contact
    contact = Contact(workspace_id=channel.workspace_id, name=name or address,
                      preferred_channel=channel.kind)
    if channel.kind in ("sms", "voice"):
        contact.phone = address
    db.session.add(contact)
    db.session.add(ContactIdentity(workspace_id=channel.workspace_id, contact=contact,
                                   kind=channel.kind, address=address))
    return contact


def touch_conversation(conversation: Conversation, message: Message, *, channel_id: int | None) -> None:
    """Keep the list's denormalised columns in step with the newest message."""
    conversation.last_activity_at = message.created_at
    conversation.last_message_preview = " ".join(message.body.split())[:PREVIEW_LENGTH] or (
        "📎" if message.attachments else "")
    conversation.last_message_direction = message.direction
    if channel_id is not None:
        conversation.channel_id = channel_id


def announce_message(message: Message) -> None:
    """Live events for a new message: the list row moves, an open thread appends it."""
    outbox.publish_event(message.workspace_id, "conversation-changed",
                         conversation_id=message.conversation_id)
    outbox.publish_event(message.workspace_id, f"contact-{message.contact_id}-message",
                         message_id=message.id)
