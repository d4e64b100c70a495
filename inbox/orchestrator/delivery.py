"""Outbound delivery: one send per message, retried only when it is safe, statuses monotonic."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from .. import outbox, storage
from ..channels.base import (
    ChannelAdapter, ChannelConfig, OutboundAttachment, OutboundMessage, PartlySent, StatusUpdate,
)
from ..channels.registry import build_adapter
from ..errors import PermanentDeliveryError, RateLimited, TransientDeliveryError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import (
    Attachment, Channel, Contact, ContactIdentity, DeliveryStatus, Direction, Message, SenderKind, Workspace, utcnow,
)

log = logging.getLogger(__name__)
DELIVER_JOB = "inbox.jobs.deliver.deliver_message"


def adapter_for(channel: Channel) -> ChannelAdapter:
    api_base = current_app.config.get(f"{channel.provider.upper()}_API_BASE_URL")
    credentials = {**channel.credentials, "reply_token_secret": _reply_token_secret(channel)}
    settings = dict(channel.settings or {})
    if channel.kind == ChannelKind.VOICE:  # the caller is greeted in the workspace's language
        workspace = db.session.get(Workspace, channel.workspace_id)
        settings.setdefault("workspace_locale", workspace.default_locale if workspace else None)
    return build_adapter(ChannelConfig(
        kind=channel.kind, provider=channel.provider, address=channel.address,
        credentials=credentials, settings=settings, api_base_url=api_base,
    ))


def _reply_token_secret(channel: Channel) -> str:
    """Per-channel key for the signed reply-to tokens of email (derived, never stored)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"reply-token:{channel.public_id}".encode(), hashlib.sha256).hexdigest()


def webhook_url(channel: Channel, suffix: str = "") -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/webhooks/{channel.provider}/{channel.kind}/{channel.public_id}{suffix}"


def schedule_delivery(message: Message) -> None:
    """Promise the send; the caller's commit hands it to the worker."""
    outbox.enqueue_job(DELIVER_JOB, message.id, job_id=f"deliver-{message.id}",
                       workspace_id=message.workspace_id,
                       retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])


def deliver_message(message_id: int) -> None:
    """Send one queued message. Safe to run twice: only the run that claims it sends.

    Per-conversation order: a message waits while an earlier one of its conversation is still
    queued or in flight (a rate-limited or retried send keeps its place); whichever way the
    earlier one ends (sent, failed, fallen back), `_hand_on_next` enqueues the next in line.
    """
    earlier = _earlier_pending(message_id)
    if earlier is not None:
        # Handed on when the earlier one ends; and, should that one be stuck (a worker killed
        # mid-send), looked at again once it no longer counts, so nothing waits forever.
        message = db.session.get(Message, message_id)
        outbox.enqueue_job(DELIVER_JOB, message_id, job_id=f"deliver-{message_id}-recheck-{earlier}",
                           workspace_id=message.workspace_id, delay=ORDER_STALE_AFTER.total_seconds() + 60,
                           retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])
        outbox.commit()
        log.info("deliver waits message_id=%s behind message_id=%s", message_id, earlier)
        return
    if not _claim(message_id):
        log.info("deliver skipped message_id=%s: not queued (already sent or in flight)", message_id)
        return
    message = db.session.get(Message, message_id)
    channel = message.channel
    identity = ContactIdentity.find_for_contact(message.contact_id, channel.kind)
    # A bot answer may go elsewhere than the contact's address (a command asked in a Telegram group).
    to = (message.meta or {}).get("deliver_to") if message.sender_kind == SenderKind.BOT else None
    to = str(to) if to else (identity.address if identity else "")
    adapter = adapter_for(channel)
    outbound = _outbound(message, channel, to)
    # End the transaction before talking to the provider: on SQLite it holds the write lock,
    # and a slow provider must not stall every request meanwhile.
    db.session.commit()
    try:
        if not channel.enabled:
            raise PermanentDeliveryError("the channel is disabled", code="disabled")
        if not to:
            raise PermanentDeliveryError(f"the contact has no {channel.kind} address", code="no_address")
        receipt = adapter.send(outbound)
    except RateLimited as exc:
        _wait_for_rate_limit(message, exc)
        return
    except TransientDeliveryError as exc:
        partly = _remember_sent_parts(message, exc)
        if _release_for_retry(message, str(exc)):
            raise  # RQ retries with backoff (the job was enqueued with its intervals)
        # Nothing went out: another channel may carry it; part of it did: not twice elsewhere.
        fall_back(message, code="partial" if partly else "unavailable")
        _hand_on_next(message)
        outbox.commit()
        return
    except PermanentDeliveryError as exc:
        _set_status(message, DeliveryStatus.FAILED, error_code=exc.code, error_message=exc.message)
        fall_back(message, code=exc.code)
        _hand_on_next(message)
        outbox.commit()
        log.info("deliver failed message_id=%s channel=%s code=%s", message.id, channel.id, exc.code)
        return
    message.provider_message_id = receipt.provider_message_id
    if receipt.message_ids or (message.meta or {}).get("parts_sent"):  # a long text, in several messages
        meta = {k: v for k, v in (message.meta or {}).items() if k != "parts_sent"}
        message.meta = {**meta, "provider_message_ids": list(receipt.message_ids)}
    if channel.kind == ChannelKind.EMAIL:
        message.thread_ref = receipt.provider_message_id  # the customer's reply will cite it
    message.error_code = message.error_message = None
    _set_status(message, receipt.status)
    _hand_on_next(message)
    outbox.commit()
    log.info("deliver accepted message_id=%s channel=%s provider_id=%s",
             message.id, channel.id, receipt.provider_message_id)


def _remember_sent_parts(message: Message, exc: Exception) -> bool:
    """Keep the parts of a long message that went out before a transient failure: the retry
    sends only the rest (see channels.base.PartlySent). True when some part is out."""
    if isinstance(exc, PartlySent):
        message.meta = {**(message.meta or {}), "parts_sent": list(exc.sent_ids)}
    return bool((message.meta or {}).get("parts_sent"))


def _outbound(message: Message, channel: Channel, to: str) -> OutboundMessage:
    """What the adapter needs beyond the text: the email thread, the WhatsApp window…"""
    last_inbound = db.session.scalar(
        select(Message).where(Message.conversation_id == message.conversation_id,
                              Message.direction == Direction.INBOUND, Message.channel_id == channel.id)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))
    meta: dict = {"conversation_id": message.conversation_id}
    subject = None
    if last_inbound is not None:
        meta["last_inbound_at"] = last_inbound.created_at
        if channel.kind == ChannelKind.EMAIL and last_inbound.thread_ref:
            meta["in_reply_to"] = last_inbound.thread_ref
            meta["references"] = [*(last_inbound.meta or {}).get("references", []), last_inbound.thread_ref]
        subject = last_inbound.subject
    if channel.kind == ChannelKind.EMAIL:
        from ..channels.email import reply_subject

        subject = reply_subject(subject) if subject else None
    if channel.kind == ChannelKind.WHATSAPP:  # the window is the customer's, whatever the thread
        wrote_at = customer_last_wrote_at(message.contact_id, channel.id)
        if wrote_at is not None:
            meta["last_inbound_at"] = wrote_at
    if message.sender_kind == SenderKind.BOT:
        meta["auto_submitted"] = True
    if (message.meta or {}).get("parts_sent"):
        meta["parts_sent"] = list(message.meta["parts_sent"])
    meta.update((message.meta or {}).get("send") or {})  # campaigns/templates: provider template, List-Unsubscribe
    media_urls, attachments = _files(message, channel)
    return OutboundMessage(to=to, body=message.body, subject=message.subject or subject, html=message.html,
                           status_callback_url=webhook_url(channel, "/status"), meta=meta,
                           media_urls=media_urls, attachments=attachments)


# Channels whose provider receives the bytes from us (SMTP, a Bot API upload); the others
# (Twilio, Meta) fetch each file from a signed, expiring URL of ours.
UPLOADED_KINDS = frozenset({ChannelKind.EMAIL, ChannelKind.TELEGRAM})


def _files(message: Message, channel: Channel) -> tuple[tuple[str, ...], tuple[OutboundAttachment, ...]]:
    """The message's files as the channel's adapter takes them: URLs or bytes."""
    from .media import signed_media_url

    stored = [a for a in message.attachments if a.storage_key]
    if not stored:
        return (), ()
    if channel.kind in UPLOADED_KINDS:
        return (), tuple(OutboundAttachment(filename=a.filename or f"attachment-{a.id}",
                                            content_type=a.content_type,
                                            content=storage.path_of(a.storage_key).read_bytes()) for a in stored)
    return tuple(signed_media_url(a) for a in stored), ()


# -- order, rate limits, fallback --------------------------------------------------------------
# A send still queued or in flight for longer than this no longer holds its conversation back
# (a worker killed mid-send leaves it SENDING; the retry intervals sum to ~45 min).
ORDER_STALE_AFTER = timedelta(hours=1)
RATE_LIMIT_MAX_WAITS = 20
# Codes after which another channel is tried. Never after an ambiguous failure ("timeout": it may
# have gone out; "partial": part of it did): the customer must not get the message twice.
NO_FALLBACK_CODES = frozenset({"timeout", "partial", "unexpected_answer", "rate_limited"})
WINDOW_CODES = frozenset({"63016", "131047"})
# Failures reported later by a status callback that prove the message never reached the customer.
UNDELIVERED_FALLBACK_CODES = frozenset({*WINDOW_CODES, "63003", "63024", "131026", "30003", "30005", "30006",
                                        "21614"})
DEFAULT_KIND_ORDER = (ChannelKind.WHATSAPP, ChannelKind.SMS, ChannelKind.TELEGRAM, ChannelKind.EMAIL,
                      ChannelKind.VOICE)


def _pending_in_conversation(message: Message):
    return select(Message.id).where(
        Message.conversation_id == message.conversation_id, Message.id != message.id,
        Message.direction == Direction.OUTBOUND, Message.internal.is_(False), Message.channel_id.is_not(None),
    )


def _earlier_pending(message_id: int) -> int | None:
    """The id of an earlier message of the same conversation still waiting to go out, if any."""
    message = db.session.get(Message, message_id)
    if message is None or message.delivery_status != DeliveryStatus.QUEUED:
        return None
    now = utcnow()
    stmt = _pending_in_conversation(message).where(
        Message.delivery_status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING]),
        Message.status_changed_at >= now - ORDER_STALE_AFTER, Message.created_at <= now,
        or_(Message.created_at < message.created_at,
            and_(Message.created_at == message.created_at, Message.id < message.id)),
    ).order_by(Message.created_at, Message.id).limit(1)
    return db.session.scalar(stmt)


def _hand_on_next(message: Message) -> None:
    """This message is done with (sent, failed or replaced): the next one queued behind it in
    its conversation may go. Its own job may have run already and stepped aside."""
    stmt = _pending_in_conversation(message).where(
        Message.delivery_status == DeliveryStatus.QUEUED,
        or_(Message.created_at > message.created_at,
            and_(Message.created_at == message.created_at, Message.id > message.id)),
    ).order_by(Message.created_at, Message.id).limit(1)
    next_id = db.session.scalar(stmt)
    if next_id is not None:
        outbox.enqueue_job(DELIVER_JOB, next_id, job_id=f"deliver-{next_id}-after-{message.id}",
                           workspace_id=message.workspace_id,
                           retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])


def _wait_for_rate_limit(message: Message, exc: RateLimited) -> None:
    """The provider said "slow down": send again after the delay it gave (our default when it
    gave none) rather than the fixed backoff. The message stays queued, so later messages of
    the conversation keep waiting behind it; a rate limit does not use up its retries."""
    meta = dict(message.meta or {})
    waits = int(meta.get("rate_limited", 0)) + 1
    if waits > RATE_LIMIT_MAX_WAITS:
        _set_status(message, DeliveryStatus.FAILED, error_code="rate_limited",
                    error_message=f"{exc} ({waits - 1} waits)")
        _hand_on_next(message)
        outbox.commit()
        return
    delay = exc.retry_after if exc.retry_after else current_app.config.get("DELIVERY_RATE_LIMIT_DELAY", 30)
    delay = min(max(float(delay), 1.0), 3600.0)
    meta["rate_limited"] = waits
    message.meta = meta
    message.attempts = max(0, message.attempts - 1)
    message.delivery_status = DeliveryStatus.QUEUED
    message.status_changed_at = utcnow()
    message.error_message = str(exc)
    outbox.enqueue_job(DELIVER_JOB, message.id, job_id=f"deliver-{message.id}-wait-{waits}",
                       workspace_id=message.workspace_id, delay=delay,
                       retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])
    outbox.commit()
    log.warning("deliver rate limited message_id=%s channel=%s retry_in=%ss", message.id, message.channel_id, delay)


def customer_last_wrote_at(contact_id: int, channel_id: int) -> datetime | None:
    """When the customer last wrote on this channel (any conversation): opens WhatsApp's window."""
    return db.session.scalar(
        select(Message.created_at).where(Message.contact_id == contact_id, Message.channel_id == channel_id,
                                         Message.direction == Direction.INBOUND)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def rank_channels(channels: list[Channel], *, last_used_channel_id: int | None,
                  preferred_kind: ChannelKind | None, recent_channel_ids: list[int]) -> list[Channel]:
    """The contact's channels, best first: the one they last wrote on, their preferred kind,
    the others they wrote on (most recent first), then WhatsApp, SMS, Telegram, email. Pure."""
    recency = {channel_id: i for i, channel_id in enumerate(recent_channel_ids)}

    def key(channel: Channel):
        kind_rank = DEFAULT_KIND_ORDER.index(channel.kind) if channel.kind in DEFAULT_KIND_ORDER else 99
        return (channel.id != last_used_channel_id, channel.kind != preferred_kind,
                recency.get(channel.id, len(recency)), kind_rank, channel.id)

    return sorted(channels, key=key)


def preferred_channels(conversation, channels: list[Channel]) -> list[Channel]:
    """`channels` (those that can reach the contact) in the order replies should try them."""
    rows = db.session.execute(
        select(Message.channel_id, func.max(Message.created_at)).where(
            Message.contact_id == conversation.contact_id, Message.direction == Direction.INBOUND,
            Message.channel_id.is_not(None)).group_by(Message.channel_id)).all()
    recent = [channel_id for channel_id, _at in sorted(rows, key=lambda r: r[1], reverse=True)]
    # A conversation not flushed yet has its contact_id but no loaded contact.
    contact = conversation.contact or (db.session.get(Contact, conversation.contact_id)
                                       if conversation.contact_id else None)
    return rank_channels(channels, last_used_channel_id=recent[0] if recent else None,
                         preferred_kind=contact.preferred_channel if contact else None, recent_channel_ids=recent)


def fallback_reason(code: str | None) -> str:
    if code in WINDOW_CODES:
        return "window"
    return code if code in ("disabled", "no_address", "unsupported", "forbidden") else "failed"


def fall_back(message: Message, *, code: str | None) -> Message | None:
    """The send failed for good on its channel: queue the same text on the contact's next
    preferred channel and say so in the thread. Once per message (its idempotency key
    `fallback-<id>` is unique in the conversation), never after an ambiguous failure, and
    never onto a channel already tried for it. The caller commits."""
    from ..actions.conversations import reply_channels
    from ..channels.whatsapp_twilio import window_open
    from .ingest import announce_message

    if (code in NO_FALLBACK_CODES or message.internal or message.direction != Direction.OUTBOUND
            or message.sender_kind not in (SenderKind.AGENT, SenderKind.BOT) or message.channel_id is None
            or not (message.body.strip() or message.attachments)
            or {"campaign_id", "followup_rule_id"} & set(message.meta or {})):  # bulk: its channel was chosen with consent
        return None
    key = f"fallback-{message.id}"
    if db.session.scalar(select(Message.id).where(Message.conversation_id == message.conversation_id,
                                                  Message.idempotency_key == key)):
        return None
    tried = [*(message.meta or {}).get("fallback_tried", []), message.channel_id]
    now = utcnow()
    candidates = [c for c in preferred_channels(message.conversation, reply_channels(message.conversation))
                  if c.id not in tried and not (
                      c.kind == ChannelKind.WHATSAPP
                      and not window_open(customer_last_wrote_at(message.contact_id, c.id), now))
                  and not (message.attachments and storage.send_limits(c.kind) is None)]  # files need carrying
    if not candidates:
        log.info("no fallback channel message_id=%s code=%s", message.id, code)
        return None
    channel = candidates[0]
    follow = Message(
        workspace_id=message.workspace_id, conversation_id=message.conversation_id,
        contact_id=message.contact_id, channel_id=channel.id, direction=Direction.OUTBOUND,
        sender_kind=message.sender_kind, sender_user_id=message.sender_user_id, body=message.body,
        subject=message.subject if channel.kind == ChannelKind.EMAIL else None,
        html=message.html if channel.kind == ChannelKind.EMAIL else None, idempotency_key=key,
        delivery_status=DeliveryStatus.QUEUED, status_changed_at=now,
        created_at=message.created_at,  # it takes the failed message's place in the send order
        meta={"fallback_of": message.id, "fallback_tried": tried},
    )
    db.session.add(follow)
    db.session.flush()
    for attachment in message.attachments:  # the same stored bytes, sent again on the new channel
        if attachment.storage_key:
            db.session.add(Attachment(message_id=follow.id, content_type=attachment.content_type,
                                      filename=attachment.filename, size=attachment.size,
                                      storage_key=attachment.storage_key))
    from_kind = message.channel.kind
    reason = fallback_reason(code)
    line = Message(
        workspace_id=message.workspace_id, conversation_id=message.conversation_id,
        contact_id=message.contact_id, direction=Direction.OUTBOUND, sender_kind=SenderKind.SYSTEM,
        internal=True, delivery_status=DeliveryStatus.READ, status_changed_at=now, created_at=now,
        body=f"sent by {channel.kind} instead of {from_kind}: {reason}",
        event={"kind": "fallback", "from": str(from_kind), "to": str(channel.kind), "reason": reason,
               "message_id": follow.id, "failed_message_id": message.id},
    )
    db.session.add(line)
    db.session.flush()
    schedule_delivery(follow)
    announce_message(follow)
    announce_message(line)
    log.info("fallback message_id=%s → message_id=%s channel=%s reason=%s", message.id, follow.id, channel.id, reason)
    return follow


def _claim(message_id: int) -> bool:
    """Atomically move queued → sending; a second worker (or a re-run job) gets nothing."""
    result = db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.delivery_status == DeliveryStatus.QUEUED)
        .values(delivery_status=DeliveryStatus.SENDING, attempts=Message.attempts + 1,
                status_changed_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


def _release_for_retry(message: Message, reason: str) -> bool:
    """Put the message back in the queue for the next attempt, or fail it when none is left."""
    max_attempts = len(current_app.config["DELIVERY_RETRY_INTERVALS"]) + 1
    if message.attempts >= max_attempts:
        _set_status(message, DeliveryStatus.FAILED, error_code="unavailable",
                    error_message=f"{reason} ({message.attempts} attempts)")
        outbox.commit()
        return False
    message.delivery_status = DeliveryStatus.QUEUED
    message.error_message = reason
    db.session.commit()
    log.warning("deliver transient error message_id=%s attempt=%s", message.id, message.attempts)
    return True


def do_update_delivery(channel: Channel, update_: StatusUpdate) -> bool:
    """Apply a provider status callback. Returns False when it was stale or unknown."""
    message = Message.by_provider_id(channel.id, update_.provider_message_id)
    if message is None or update_.status.rank <= message.delivery_status.rank:
        return False
    _set_status(message, update_.status, error_code=update_.error_code,
                error_message=update_.error_message)
    if update_.status == DeliveryStatus.FAILED and update_.error_code in UNDELIVERED_FALLBACK_CODES:
        fall_back(message, code=update_.error_code)  # it never reached the customer: no double send
    outbox.commit()
    return True


def _set_status(message: Message, status: DeliveryStatus, *, error_code: str | None = None,
                error_message: str | None = None) -> None:
    now = utcnow()
    message.delivery_status = status
    message.status_changed_at = now
    stamp = {DeliveryStatus.SENT: "sent_at", DeliveryStatus.DELIVERED: "delivered_at",
             DeliveryStatus.READ: "read_at", DeliveryStatus.FAILED: "failed_at"}.get(status)
    if stamp:
        setattr(message, stamp, now)
    if status == DeliveryStatus.FAILED:
        message.error_code = error_code
        message.error_message = error_message
    outbox.publish_event(message.workspace_id, f"message-{message.id}-status", status=str(status))
    if (message.meta or {}).get("campaign_id"):  # the campaign's progress bar moves live
        outbox.publish_event(message.workspace_id, f"campaign-{message.meta['campaign_id']}-progress")
