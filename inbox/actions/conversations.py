from __future__ import annotations

import dataclasses
import mimetypes
from typing import TYPE_CHECKING

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import defaultload, joinedload

from . import get_in_workspace
from .. import outbox, storage
from ..channels.registry import can_send_text
from ..extensions import db
from ..models import (
    Attachment, Channel, Contact, ContactIdentity, Conversation, ConversationStatus, DeliveryStatus, Direction,
    Message, Priority, SenderKind, User, utcnow,
)
from ..errors import ValidationError
from ..kinds import ChannelKind
from ..orchestrator.delivery import preferred_channels, schedule_delivery
from ..orchestrator.ingest import announce_message, touch_conversation

if TYPE_CHECKING:
    from .portal import UploadedFile

# Telegram and Meta WhatsApp split longer texts into several messages (4096 characters each); others refuse.
REPLY_LIMITS = {"sms": 1600, "whatsapp": 4096, "whatsapp/meta": 16_384, "telegram": 16_384, "email": 100_000,
                "voice": 1600}


# -- access ------------------------------------------------------------------------------------
def access_conversation(conversation_id: int, user: User) -> Conversation:
    """The conversation if the user's workspace owns it; 404 otherwise (existence never leaks)."""
    return get_in_workspace(Conversation, conversation_id, user.workspace_id)


def access_conversation_shown(conversation_id: int, user: User) -> Conversation:
    """access_conversation for the open thread: the conversation's labels, and its contact's labels
    and identities (the contact card), come in the same query instead of three more."""
    contact = defaultload(Conversation.contact)
    return get_in_workspace(Conversation, conversation_id, user.workspace_id,
                            options=[joinedload(Conversation.labels), contact.joinedload(Contact.labels),
                                     contact.joinedload(Contact.identities)])


def access_message(message_id: int, user: User) -> Message:
    return get_in_workspace(Message, message_id, user.workspace_id)


def access_attachment(attachment_id: int, user: User) -> Attachment:
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        abort(404)
    access_message(attachment.message_id, user)  # 404 unless the user's workspace owns it
    return attachment


def access_agent(user_id: int | None, user: User) -> User | None:
    if user_id is None:
        return None
    agent = db.session.get(User, user_id)
    if agent is None or agent.workspace_id != user.workspace_id or not agent.is_active:
        raise ValidationError(_("This agent does not exist or is deactivated."), field="assignee")
    return agent


def reachable_channels(workspace_id: int, contact_id: int) -> list[Channel]:
    """Channels that can carry text to the contact: enabled, and the contact has an address there."""
    kinds = select(ContactIdentity.kind).where(ContactIdentity.contact_id == contact_id)
    stmt = select(Channel).where(
        Channel.workspace_id == workspace_id, Channel.enabled.is_(True),
        Channel.kind.in_(kinds),
    ).order_by(Channel.kind, Channel.name)
    return [c for c in db.session.scalars(stmt) if can_send_text(c.kind, c.provider)]


def reply_channels(conversation: Conversation) -> list[Channel]:
    """Channels the reply can go out on: enabled, and the contact has an address there."""
    channels = reachable_channels(conversation.workspace_id, conversation.contact_id)
    # The channel the customer last wrote on first (that is where they expect the answer), then
    # their preferred one…: the order fallback follows too (orchestrator/delivery.py).
    return preferred_channels(conversation, channels)


def pick_reply_channel(conversation: Conversation, contact: Contact, channel_id: int | None = None) -> Channel:
    """The channel a message to this contact goes out on: the one asked for, else the
    conversation's own, else the contact's preferred one, else any that reaches them."""
    channels = reply_channels(conversation)
    if channel_id is not None:
        for channel in channels:
            if channel.id == channel_id:
                return channel
    elif channels:
        for channel in channels:
            if channel.id == conversation.channel_id:
                return channel
        for channel in channels:
            if channel.kind == contact.preferred_channel:
                return channel
        return channels[0]
    raise ValidationError(_("This contact cannot be reached on that channel."), field="channel")


def access_reply_channel(conversation: Conversation, channel_id: int | None) -> Channel:
    channels = reply_channels(conversation)
    for channel in channels:
        if channel_id is None or channel.id == channel_id:
            return channel
    raise ValidationError(_("This contact cannot be reached on that channel."), field="channel")


# -- check -------------------------------------------------------------------------------------
def check_reply(text: str, channel: Channel | None, *, has_files: bool = False) -> str:
    text = (text or "").strip()
    if not text and has_files:  # a photo or a document alone is a message
        return ""
    if not text:
        raise ValidationError(_("Write a message before sending."), field="body")
    limit = REPLY_LIMITS.get(f"{channel.kind}/{channel.provider}", REPLY_LIMITS.get(channel.kind, 4096)) if channel else 20_000
    if len(text) > limit:
        raise ValidationError(
            _("This message is %(length)d characters long; the limit on this channel is %(limit)d.",
              length=len(text), limit=limit), field="body")
    return text


def check_whatsapp_extras(form, channel: Channel | None, text: str) -> dict:
    """A location and/or quick-reply buttons from the composer's "More" (WhatsApp only), as the
    adapters read them from OutboundMessage.meta; {} when none was filled in."""
    fields = ("location_latitude", "location_longitude", "location_name", "location_address")
    raw = {f: (form.get(f) or "").strip() for f in fields}
    titles = [t.strip() for t in form.getlist("quick_reply") if t and t.strip()]
    if not any(raw.values()) and not titles:
        return {}
    if channel is None or channel.kind != ChannelKind.WHATSAPP:
        raise ValidationError(_("Locations and quick-reply buttons can only be sent on WhatsApp."), field="extras")
    extras: dict = {}
    if any(raw.values()):
        extras["location"] = _check_location(raw)
    if titles:
        extras["quick_replies"] = _check_quick_replies(titles, text)
    return extras


def _check_location(raw: dict) -> dict:
    try:
        latitude, longitude = float(raw["location_latitude"]), float(raw["location_longitude"])
    except ValueError:
        raise ValidationError(_("A location needs a latitude and a longitude (numbers)."), field="location") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):  # also refuses nan/inf
        raise ValidationError(_("The latitude must be between -90 and 90 and the longitude between -180 and 180."),
                              field="location")
    name, address = raw["location_name"][:1000], raw["location_address"][:1000]
    return {"latitude": latitude, "longitude": longitude, **({"name": name} if name else {}),
            **({"address": address} if address else {})}


def _check_quick_replies(titles: list[str], text: str) -> list[str]:
    # WhatsApp's interactive reply buttons: 1 to 3, titles of at most 20 characters, unique, and a body.
    if len(titles) > 3:
        raise ValidationError(_("At most 3 quick-reply buttons."), field="quick_reply")
    if any(len(t) > 20 for t in titles):
        raise ValidationError(_("Each button title is limited to 20 characters."), field="quick_reply")
    if len(set(titles)) != len(titles):
        raise ValidationError(_("Two buttons cannot have the same title."), field="quick_reply")
    if not text:
        raise ValidationError(_("Quick-reply buttons need a message text."), field="body")
    if len(text) > 1024:
        raise ValidationError(_("A message with buttons is limited to 1024 characters."), field="body")
    return titles


def check_reply_files(files, channel: Channel | None) -> list[UploadedFile]:
    """Files for a reply on `channel` (None: an internal note): images and common documents,
    each within what the channel's provider carries (storage.SEND_LIMITS). Read and checked
    before anything is stored."""
    from .portal import check_files  # portal imports this module (tickets reply through it)

    chosen = [f for f in files or () if f is not None and getattr(f, "filename", None)]
    if not chosen:
        return []
    limits = storage.send_limits(channel.kind if channel else None)
    if limits is None:
        raise ValidationError(_("Files cannot be sent on this channel."), field="files")
    uploads = [_known_type(u) for u in check_files(chosen, max_bytes=max(limits.image, limits.document))]
    for upload in uploads:
        kind = storage.sendable_type(upload.content_type)
        if kind is None:
            raise ValidationError(_("“%(name)s” cannot be sent: only images, PDF and office documents.",
                                    name=upload.filename), field="files")
        limit = limits.image if kind == "image" else limits.document
        if len(upload.content) > limit:
            raise ValidationError(_("“%(name)s” is too large for this channel: %(mb)d MB at most.",
                                    name=upload.filename, mb=limit // storage.MB), field="files")
    if limits.total and sum(len(u.content) for u in uploads) > limits.total:
        raise ValidationError(_("These files together are too large for this channel: %(mb)d MB at most.",
                                mb=limits.total // storage.MB), field="files")
    return uploads


def _known_type(upload: UploadedFile) -> UploadedFile:
    """Some browsers call any office file "application/octet-stream": its extension says more."""
    if upload.content_type != "application/octet-stream":
        return upload
    guessed = mimetypes.guess_type(upload.filename)[0]
    return dataclasses.replace(upload, content_type=guessed) if guessed else upload


def check_status(value: str) -> ConversationStatus:
    try:
        return ConversationStatus(value)
    except ValueError:
        raise ValidationError(_("Unknown status."), field="status") from None


def check_priority(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise ValidationError(_("Unknown priority."), field="priority") from None


# -- do ----------------------------------------------------------------------------------------
def do_send_reply(conversation: Conversation, text: str, *, actor: User, channel: Channel,
                  idempotency_key: str | None = None, meta: dict | None = None,
                  files: list[UploadedFile] = ()) -> Message:
    """Store the agent's reply (and its files) as queued and promise its delivery. A repeated
    key returns the first, files included: nothing is stored twice."""
    if idempotency_key:
        existing = _by_idempotency_key(conversation, idempotency_key)
        if existing is not None:
            return existing
    message = _new_message(conversation, text, actor=actor, channel=channel,
                           idempotency_key=idempotency_key, internal=False)
    if meta:  # e.g. {"send": {...}}: an approved WhatsApp template (see orchestrator/delivery._outbound)
        message.meta = meta
    message.delivery_status = DeliveryStatus.QUEUED
    if conversation.status == ConversationStatus.OPEN and conversation.assignee_id is None:
        conversation.assignee_id = actor.id  # whoever answers first owns it, as in Chatwoot
    conversation.unread_count = 0
    db.session.flush()
    _attach(message, files)
    schedule_delivery(message)
    announce_message(message)
    outbox.commit()
    return message


def do_send_bot_reply(conversation: Conversation, text: str, *, channel: Channel, meta: dict | None = None,
                      commit: bool = True) -> Message:
    """Sara or an automation answering the customer: an agent's reply path, sent as the bot
    (marked Auto-Submitted in email so vacation responders stay quiet)."""
    message = _new_message(conversation, text, actor=None, channel=channel, idempotency_key=None, internal=False)
    message.meta = meta or None
    db.session.flush()
    schedule_delivery(message)
    announce_message(message)
    if commit:
        outbox.commit()
    return message


def do_add_note(conversation: Conversation, text: str, *, actor: User,
                idempotency_key: str | None = None, files: list[UploadedFile] = ()) -> Message:
    """An internal note: visible to agents only, never sent to the customer (nor its files:
    the public media URL refuses them)."""
    if idempotency_key:
        existing = _by_idempotency_key(conversation, idempotency_key)
        if existing is not None:
            return existing
    message = _new_message(conversation, text, actor=actor, channel=None,
                           idempotency_key=idempotency_key, internal=True)
    db.session.flush()
    _attach(message, files)
    announce_message(message)
    outbox.commit()
    return message


def do_assign(conversation: Conversation, assignee: User | None, *, actor: User) -> None:
    if conversation.assignee_id == (assignee.id if assignee else None):
        return
    conversation.assignee = assignee
    if assignee:
        system_line(conversation, {"kind": "assigned", "actor": actor.name, "agent": assignee.name},
                     f"{actor.name} assigned the conversation to {assignee.name}")
    else:
        system_line(conversation, {"kind": "unassigned", "actor": actor.name},
                     f"{actor.name} unassigned the conversation")
    outbox.commit()


def do_set_status(conversation: Conversation, status: ConversationStatus, *, actor: User) -> None:
    if conversation.status == status:
        return
    if status in ConversationStatus.active() and not conversation.is_active:
        if Conversation.active_for_contact(conversation.contact_id) is not None:
            raise ValidationError(_("This contact already has an open conversation."), field="status")
    conversation.status = status
    conversation.resolved_at = utcnow() if status == ConversationStatus.RESOLVED else None
    system_line(conversation, {"kind": "status", "actor": actor.name, "status": str(status)},
                 f"{actor.name} marked the conversation {status}")
    outbox.commit()


def do_set_priority(conversation: Conversation, priority: Priority, *, actor: User) -> None:
    if conversation.priority == priority:
        return
    conversation.priority = priority
    outbox.publish_event(conversation.workspace_id, "conversation-changed",
                         conversation_id=conversation.id)
    outbox.commit()


def do_mark_read(conversation: Conversation, *, actor: User) -> None:
    if conversation.unread_count:
        conversation.unread_count = 0
        outbox.publish_event(conversation.workspace_id, "conversation-changed",
                             conversation_id=conversation.id)
        outbox.commit()


# -- helpers -----------------------------------------------------------------------------------
def _by_idempotency_key(conversation: Conversation, key: str) -> Message | None:
    stmt = select(Message).where(Message.conversation_id == conversation.id,
                                 Message.idempotency_key == key)
    return db.session.scalar(stmt)


def _attach(message: Message, files: list[UploadedFile]) -> None:
    """Keep the files as the message's attachments (the bytes in inbox/storage.py)."""
    for upload in files:
        db.session.add(Attachment(message_id=message.id, content_type=upload.content_type,
                                  filename=upload.filename, size=len(upload.content),
                                  storage_key=storage.save(upload.content)))
    if files:
        db.session.flush()
        db.session.expire(message, ["attachments"])  # the thread shows them at once


def _new_message(conversation: Conversation, text: str, *, actor: User | None, channel: Channel | None,
                 idempotency_key: str | None, internal: bool) -> Message:
    message = Message(
        workspace_id=conversation.workspace_id, conversation=conversation,
        contact_id=conversation.contact_id, channel_id=channel.id if channel else None,
        direction=Direction.OUTBOUND, sender_kind=SenderKind.AGENT if actor else SenderKind.BOT,
        sender_user_id=actor.id if actor else None,
        body=text, internal=internal, idempotency_key=idempotency_key,
        delivery_status=DeliveryStatus.QUEUED if not internal else DeliveryStatus.READ,
        status_changed_at=utcnow(), created_at=utcnow(),
    )
    db.session.add(message)
    if not internal:
        touch_conversation(conversation, message, channel_id=channel.id if channel else None)
    return message


def system_line(conversation: Conversation, event: dict, text: str) -> Message:
    """A small activity line in the thread (assignment, status…), agents only."""
    message = Message(
        workspace_id=conversation.workspace_id, conversation=conversation,
        contact_id=conversation.contact_id, direction=Direction.OUTBOUND,
        sender_kind=SenderKind.SYSTEM, body=text, internal=True, event=event,
        delivery_status=DeliveryStatus.READ, status_changed_at=utcnow(), created_at=utcnow(),
    )
    db.session.add(message)
    db.session.flush()
    announce_message(message)
    return message
