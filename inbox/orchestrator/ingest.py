"""Inbound messages, from any channel, become one conversation history per contact."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import redis
from rq.job import Job
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.sql import Executable
from werkzeug.datastructures import Headers, MultiDict
from werkzeug.formparser import parse_form_data

from .. import outbox, storage
from ..broker import INGEST_QUEUE, redis_client
from ..channels.base import InboundMessage, StatusUpdate, WebhookRequest
from ..extensions import db
from ..kinds import ChannelKind
from ..models import (
    Attachment, Channel, Contact, ContactIdentity, Conversation, ConversationStatus,
    DeliveryStatus, Direction, InboundDelivery, Message, SenderKind, WebhookReplay, utcnow,
)

log = logging.getLogger(__name__)
PREVIEW_LENGTH = 140
ROUTE_JOB = "inbox.jobs.route.route_message"
INGEST_JOB = "inbox.jobs.ingest.ingest_delivery"
INGEST_RETRY_INTERVALS = [5, 30, 120]  # the database restarting, a deadlock: seconds, not days
STRANDED_AFTER = timedelta(seconds=60)  # a delivery older than this without a job lost it
_UNKEPT_HEADERS = {"cookie", "authorization"}  # never needed to read a payload again


# --- The door: a verified webhook is kept as sent, its messages are stored by a job ---------

def do_accept_delivery(channel: Channel, request: WebhookRequest) -> int:
    """Keep a verified, readable webhook and promise its ingestion: one insert, one commit.

    The row is the promise (no outbox row needed): if Redis does not take the job now, the
    worker's sweep finds the row and enqueues it again.
    """
    # One INSERT … RETURNING on the table (no ORM object, nor the ORM's bulk path): the whole cost of a webhook.
    kept = InboundDelivery.__table__
    delivery_id = db.session.scalar(insert(kept).returning(kept.c.id).values(
        workspace_id=channel.workspace_id, channel_id=channel.id, url=request.url, body=request.body,
        headers=[[k, v] for k, v in request.headers.items() if k.lower() not in _UNKEPT_HEADERS]))
    db.session.commit()
    _enqueue_ingest(delivery_id)
    return delivery_id


def ingest_delivery(delivery_id: int) -> None:
    """Store the messages (and Meta's statuses) of a kept webhook, then forget the webhook.

    Idempotent: a second run finds no row, or finds messages already stored by provider id.
    The webhook is forgotten in the transaction that stores its last message when it can be
    (the usual single message: one commit per job, and never one without the other), else
    after everything it carried was applied.
    """
    delivery = db.session.get(InboundDelivery, delivery_id, options=[joinedload(InboundDelivery.channel)])
    if delivery is None:
        return
    channel = delivery.channel
    from .delivery import adapter_for, do_update_delivery

    adapter = adapter_for(channel)
    request, arrived_at = delivery_request(delivery), delivery.created_at
    # A backlog must not reorder a conversation: undated messages are dated at arrival.
    messages = [replace(m, sent_at=m.sent_at or arrived_at) for m in adapter.parse(request)]
    statuses = list(adapter.parse_status(request)) if getattr(adapter, "statuses_in_inbound_webhook", False) else []
    forget = InboundDelivery.__table__.delete().where(InboundDelivery.id == delivery_id)  # Core: no ORM sync
    forgotten = False
    for i, message in enumerate(messages):
        # Not with a message whose storing goes on after its commit (an identity claim).
        with_forget = i == len(messages) - 1 and not statuses and not _claims_identity(channel, message)
        result = do_ingest(channel, message, also=forget if with_forget else None)
        forgotten = with_forget and result.created
    for update in statuses:  # Meta batches both in one POST
        do_update_delivery(channel, update)
    if not forgotten:
        db.session.execute(forget)
        db.session.commit()


def requeue_stranded_deliveries(*, min_age: timedelta = STRANDED_AFTER, limit: int = 500) -> int:
    """Enqueue again the kept webhooks whose job Redis does not have (it was down at the door,
    or lost its data). A job that failed stays in RQ's failed registry, not re-run from here."""
    stranded = InboundDelivery.stranded_ids(utcnow() - min_age, limit=limit)
    if not stranded:
        return 0
    pipe = redis_client().pipeline(transaction=False)
    for delivery_id in stranded:
        pipe.exists(Job.key_for(_ingest_job_id(delivery_id)))
    lost = [i for i, exists in zip(stranded, pipe.execute()) if not exists]
    if lost:
        InboundDelivery.count_attempt(lost)
        db.session.commit()
    for delivery_id in lost:
        _enqueue_ingest(delivery_id)
    return len(lost)


def delivery_request(delivery: InboundDelivery) -> WebhookRequest:
    """The webhook as the adapter read it at the door, rebuilt from what was kept."""
    headers = Headers([(k, v) for k, v in delivery.headers])
    body = delivery.body or b""
    form: MultiDict = MultiDict()
    content_type = headers.get("Content-Type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": content_type, "REQUEST_METHOD": "POST"}
        _stream, form, _files = parse_form_data(environ)
    query = MultiDict(parse_qsl(urlsplit(delivery.url).query, keep_blank_values=True))
    return WebhookRequest(url=delivery.url, headers=headers, form=form, body=body, query=query)


def _ingest_job_id(delivery_id: int) -> str:
    return f"ingest-{delivery_id}"


def _enqueue_ingest(delivery_id: int) -> None:
    try:
        outbox.enqueue_now(INGEST_JOB, delivery_id, job_id=_ingest_job_id(delivery_id), queue=INGEST_QUEUE,
                           retry_intervals=INGEST_RETRY_INTERVALS)
    except redis.RedisError as exc:
        log.warning("inbound delivery %s kept for the sweep: redis unavailable (%s)",
                    delivery_id, type(exc).__name__)


# --- Storing one message ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: int | None  # None when nothing was stored (a replay, a bounce we applied)
    conversation_id: int | None
    created: bool  # False when the provider delivered a message we already had


def do_ingest(channel: Channel, inbound: InboundMessage, *, also: Executable | None = None) -> IngestResult:
    """Store an inbound message exactly once, then route it and tell the browsers.

    Concurrent deliveries of the same message, or of two first messages from a new
    customer, meet a unique key; the loser rolls back and finds the winner's rows.
    `also` is a statement committed with the message if it is stored (`created`), not otherwise.
    """
    if _replayed(channel, inbound):
        log.warning("inbound replay ignored channel=%s", channel.id)
        return IngestResult(None, None, created=False)
    if _applied_bounce(channel, inbound):
        return IngestResult(None, None, created=False)
    for _attempt in range(3):
        existing = Message.by_provider_id(channel.id, inbound.provider_message_id)
        if existing is not None:
            if inbound.meta.get("merge"):
                _merge(channel, existing, inbound)
            else:
                outbox.discard()
            return IngestResult(existing.id, existing.conversation_id, created=False)
        try:
            message = _store(channel, inbound)
            if also is not None:
                db.session.execute(also)
            outbox.commit()
        except IntegrityError:
            outbox.discard()
            continue
        log.info("inbound stored message_id=%s conversation_id=%s channel=%s provider_id=%s",
                 message.id, message.conversation_id, channel.id, inbound.provider_message_id)
        if _apply_identity_claim(channel, message, inbound):
            db.session.refresh(message)  # merged into the contact who owned that identity
        return IngestResult(message.id, message.conversation_id, created=True)
    raise RuntimeError("inbound message could not be stored after 3 attempts")


def _claims_identity(channel: Channel, inbound: InboundMessage) -> bool:
    card = inbound.meta.get("contact")
    return channel.kind == ChannelKind.TELEGRAM and isinstance(card, dict) and bool(card.get("phone_number"))


def _apply_identity_claim(channel: Channel, message: Message, inbound: InboundMessage) -> bool:
    """A Telegram user sharing their own number with the contact button (the card's user_id is
    theirs: Telegram vouches for it) may be a customer we know by phone: the contacts become one.
    Anybody else's card, or a number typed in a message, proves nothing and changes nothing."""
    if not _claims_identity(channel, inbound):
        return False
    from ..actions.contacts import ClaimOutcome, do_claim_identity

    card = inbound.meta["contact"]
    own = str(card.get("user_id") or "") == str(inbound.sender)
    number = str(card["phone_number"]).strip().replace(" ", "")
    number = number if number.startswith("+") else "+" + number
    outcome = do_claim_identity(message.contact, ChannelKind.SMS, number, verified=own)
    log.info("identity claim message_id=%s outcome=%s", message.id, outcome)
    return outcome == ClaimOutcome.MERGED


def _store(channel: Channel, inbound: InboundMessage) -> Message:
    contact, active = contact_for_address(channel, inbound.sender, name=inbound.sender_name)
    _remember_language(contact, inbound)
    conversation = _conversation_for(channel, contact, inbound, active=active)
    now = utcnow()
    sent_at = inbound.sent_at or now
    message = Message(
        workspace_id=channel.workspace_id, conversation=conversation, contact=contact,
        channel_id=channel.id, direction=Direction.INBOUND, sender_kind=SenderKind.CUSTOMER,
        body=inbound.body, provider_message_id=inbound.provider_message_id,
        delivery_status=DeliveryStatus.RECEIVED, status_changed_at=now, created_at=sent_at,
        subject=inbound.subject, meta=dict(inbound.meta) or None,
        thread_ref=_thread_ref(inbound),
    )
    message.attachments = _attachments(inbound, message)
    if inbound.meta.get("replay_key"):
        db.session.add(WebhookReplay(channel_id=channel.id, key=str(inbound.meta["replay_key"])[:255]))
    db.session.add(message)
    touch_conversation(conversation, message, channel_id=channel.id)
    # Counted by the database: two workers storing messages of one conversation at once would
    # each write the count they read, and one message would not count.
    conversation.unread_count = 1 if conversation.id is None else Conversation.unread_count + 1
    if conversation.status == ConversationStatus.PENDING:  # the customer answered
        conversation.status = ConversationStatus.OPEN
    db.session.flush()
    if inbound.html:
        message.html = _safe_html(inbound.html, message.attachments)
    if _should_route(inbound):
        outbox.enqueue_job(ROUTE_JOB, message.id, job_id=f"route-{message.id}",
                           workspace_id=channel.workspace_id)
    if any(a.remote_url and not a.storage_key for a in message.attachments):
        from .media import schedule_media_download

        schedule_media_download(message)  # the provider keeps the file: fetch it into our storage
    announce_message(message)
    return message


def _remember_language(contact: Contact, inbound: InboundMessage) -> None:
    """The language the customer's app reports (Telegram's `from.language_code`, an IETF tag such
    as "en" or "pt-br"), kept when we know none yet, so bot replies are in their language. A
    language set by an agent or learnt earlier is not overwritten."""
    if inbound.meta.get("notification_group"):
        return  # a team member writing in the team's group, not a customer
    code = str(inbound.meta.get("language_code") or "").strip().lower().replace("_", "-")
    primary = code.split("-")[0]
    if not contact.locale and primary.isalpha() and 2 <= len(primary) <= 3:
        contact.locale = primary


def _conversation_for(channel: Channel, contact: Contact, inbound: InboundMessage, *,
                      active: Conversation | None) -> Conversation:
    """The thread an email replies to (signed reply token, then In-Reply-To / References),
    if it is this contact's; otherwise the contact's active conversation, or a new one."""
    threaded = _threaded_conversation(channel, inbound)
    if threaded is not None and threaded.contact_id == contact.id:
        if threaded.is_active:
            return threaded
        if active is None:  # a reply to a resolved thread reopens it, as people expect
            threaded.status = ConversationStatus.OPEN
            threaded.resolved_at = None
            return threaded
    if active is not None:
        return active
    conversation = Conversation(workspace_id=channel.workspace_id, contact=contact)  # a new one has no id yet
    db.session.add(conversation)
    return conversation


def _threaded_conversation(channel: Channel, inbound: InboundMessage) -> Conversation | None:
    meta = inbound.meta
    conversation_id = meta.get("reply_conversation_id")
    if isinstance(conversation_id, int):
        conversation = db.session.get(Conversation, conversation_id)
        if conversation is not None and conversation.workspace_id == channel.workspace_id:
            return conversation
    refs = [meta.get("in_reply_to"), *reversed(list(meta.get("references") or []))]
    for ref in [r for r in refs if r]:
        stmt = select(Message.conversation_id).where(
            Message.workspace_id == channel.workspace_id, Message.thread_ref == str(ref)[:255]).limit(1)
        conversation_id = db.session.scalar(stmt)
        if conversation_id is not None:
            return db.session.get(Conversation, conversation_id)
    return None


def _attachments(inbound: InboundMessage, message: Message) -> list[Attachment]:
    """Keep what we may keep; what is refused (too big, dangerous) is listed on the message."""
    kept, refused = [], []
    for media in inbound.media:
        attachment = Attachment(content_type=media.content_type, filename=media.filename,
                                remote_url=media.url, content_id=media.content_id)
        if media.content is not None:
            reason = storage.refusal_reason(media.filename, media.content_type, len(media.content))
            if reason:
                refused.append({"filename": media.filename, "reason": reason})
                continue
            attachment.storage_key = storage.save(media.content)
            attachment.size = len(media.content)
        kept.append(attachment)
    if refused:
        message.meta = {**(message.meta or {}), "refused_attachments": refused}
    return kept


def _safe_html(html: str, attachments: list[Attachment]) -> str:
    """Sanitized once, at the door: no script, no handler, no remote image; cid: → our files."""
    from ..channels.email import sanitize_html

    cid_map = {a.content_id.strip("<>"): f"/inbox/attachments/{a.id}"
               for a in attachments if a.content_id and a.storage_key}
    return sanitize_html(html, cid_map)


def _replayed(channel: Channel, inbound: InboundMessage) -> bool:
    key = inbound.meta.get("replay_key")
    if not key:
        return False
    stmt = select(WebhookReplay.id).where(WebhookReplay.channel_id == channel.id,
                                          WebhookReplay.key == str(key)[:255])
    return db.session.scalar(stmt) is not None


def _applied_bounce(channel: Channel, inbound: InboundMessage) -> bool:
    """A bounce of mail we sent marks that message failed, with the reason; it is not a
    conversation of its own."""
    bounce = inbound.meta.get("bounce")
    if not isinstance(bounce, dict) or not bounce.get("original_message_id"):
        return False
    from .delivery import do_update_delivery

    original = Message.by_provider_id(channel.id, str(bounce["original_message_id"]))
    if original is None:
        return False
    do_update_delivery(channel, StatusUpdate(
        provider_message_id=original.provider_message_id, status=DeliveryStatus.FAILED,
        error_code=str(bounce.get("status") or "bounce"), error_message=str(bounce.get("reason") or "")))
    return True


def _should_route(inbound: InboundMessage) -> bool:
    """Auto-replies and bounces are kept but never answered (no mail loops); a voicemail whose
    transcript is still coming is routed when the transcript arrives."""
    return not inbound.automated and not inbound.meta.get("transcription_pending")


def _thread_ref(inbound: InboundMessage) -> str | None:
    ref = inbound.meta.get("message_id")
    return str(ref)[:255] if ref else None


def _merge(channel: Channel, message: Message, inbound: InboundMessage) -> None:
    """A provider completing an earlier delivery (a voicemail's transcript after its recording):
    the adapter merges both, the message is updated and routed once complete."""
    from .delivery import adapter_for

    adapter = adapter_for(channel)
    current = InboundMessage(provider_message_id=message.provider_message_id or "", sender="",
                             recipient="", body=message.body, meta=message.meta or {})
    merged = adapter.merge(current, inbound)
    # Not routed yet: a voicemail waiting for its transcript, or a call first stored as missed.
    was_waiting = bool((message.meta or {}).get("transcription_pending") or (message.meta or {}).get("missed_call"))
    message.body, message.meta = merged.body, dict(merged.meta)
    touch_conversation(message.conversation, message, channel_id=channel.id)
    if was_waiting and _should_route(merged):
        outbox.enqueue_job(ROUTE_JOB, message.id, job_id=f"route-{message.id}",
                           workspace_id=channel.workspace_id)
    outbox.publish_event(message.workspace_id, f"message-{message.id}-status", status="updated")
    outbox.publish_event(message.workspace_id, "conversation-changed",
                         conversation_id=message.conversation_id)
    outbox.commit()


def contact_for_address(
    channel: Channel, address: str, *, name: str | None = None,
) -> tuple[Contact, Conversation | None]:
    """The contact behind an address on this channel kind, created on first contact, and their
    active conversation if they have one (found with the contact: one statement)."""
    found = ContactIdentity.contact_and_active_conversation(channel.workspace_id, channel.kind, address)
    if found is not None:
        return found
    from ..actions.contacts import PHONE_KINDS, verified_phone_owner

    if channel.kind in PHONE_KINDS:  # the provider proved the number: same number, same person
        owner = verified_phone_owner(channel.workspace_id, address)
        if owner is not None:
            db.session.add(ContactIdentity(workspace_id=channel.workspace_id, contact=owner, kind=channel.kind,
                                           address=address, verified=True))
            return owner, Conversation.active_for_contact(owner.id)
    contact = Contact(workspace_id=channel.workspace_id, name=name or address,
                      preferred_channel=channel.kind)
    if channel.kind in (ChannelKind.SMS, ChannelKind.VOICE):
        contact.phone = address
    elif channel.kind == ChannelKind.EMAIL:
        contact.email = address
    elif channel.kind == ChannelKind.WHATSAPP:
        contact.whatsapp = address
    elif channel.kind == ChannelKind.TELEGRAM:
        contact.telegram_id = address
    db.session.add(contact)
    # An email From header proves nothing (anyone can write it); the other channels' providers
    # authenticate the sender's number or chat.
    db.session.add(ContactIdentity(workspace_id=channel.workspace_id, contact=contact,
                                   kind=channel.kind, address=address, verified=channel.kind != ChannelKind.EMAIL))
    return contact, None  # a new contact has no conversation yet


def touch_conversation(conversation: Conversation, message: Message, *, channel_id: int | None) -> None:
    """Keep the list's denormalised columns in step with the newest message."""
    conversation.last_activity_at = message.created_at
    conversation.last_message_preview = " ".join(message.body.split())[:PREVIEW_LENGTH] or (
        "📎" if message.attachments else "")
    conversation.last_message_direction = message.direction
    conversation.last_message_sender_kind = message.sender_kind
    conversation.last_message_sender_id = message.sender_user_id
    if channel_id is not None:
        conversation.channel_id = channel_id


def announce_message(message: Message) -> None:
    """Live events for a new message: the list row moves, an open thread appends it."""
    outbox.publish_event(message.workspace_id, "conversation-changed",
                         conversation_id=message.conversation_id)
    outbox.publish_event(message.workspace_id, f"contact-{message.contact_id}-message",
                         message_id=message.id)
