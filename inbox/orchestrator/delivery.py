"""Outbound delivery: one send per message, retried only when it is safe, statuses monotonic."""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import current_app
from sqlalchemy import select, update

from .. import outbox
from ..channels.base import ChannelAdapter, ChannelConfig, OutboundMessage, StatusUpdate
from ..channels.registry import build_adapter
from ..errors import PermanentDeliveryError, TransientDeliveryError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import Channel, ContactIdentity, DeliveryStatus, Direction, Message, SenderKind, utcnow

log = logging.getLogger(__name__)
DELIVER_JOB = "inbox.jobs.deliver.deliver_message"


def adapter_for(channel: Channel) -> ChannelAdapter:
    api_base = current_app.config.get(f"{channel.provider.upper()}_API_BASE_URL")
    credentials = {**channel.credentials, "reply_token_secret": _reply_token_secret(channel)}
    return build_adapter(ChannelConfig(
        kind=channel.kind, provider=channel.provider, address=channel.address,
        credentials=credentials, settings=channel.settings or {}, api_base_url=api_base,
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
    """Send one queued message. Safe to run twice: only the run that claims it sends."""
    if not _claim(message_id):
        log.info("deliver skipped message_id=%s: not queued (already sent or in flight)", message_id)
        return
    message = db.session.get(Message, message_id)
    channel = message.channel
    identity = ContactIdentity.find_for_contact(message.contact_id, channel.kind)
    adapter = adapter_for(channel)
    outbound = _outbound(message, channel, identity.address if identity else "")
    # End the transaction before talking to the provider: on SQLite it holds the write lock,
    # and a slow provider must not stall every request meanwhile.
    db.session.commit()
    try:
        if identity is None:
            raise PermanentDeliveryError(f"the contact has no {channel.kind} address")
        receipt = adapter.send(outbound)
    except TransientDeliveryError as exc:
        if _release_for_retry(message, str(exc)):
            raise  # RQ retries with backoff (the job was enqueued with its intervals)
        return
    except PermanentDeliveryError as exc:
        _set_status(message, DeliveryStatus.FAILED, error_code=exc.code, error_message=exc.message)
        outbox.commit()
        log.info("deliver failed message_id=%s channel=%s code=%s", message.id, channel.id, exc.code)
        return
    message.provider_message_id = receipt.provider_message_id
    if channel.kind == ChannelKind.EMAIL:
        message.thread_ref = receipt.provider_message_id  # the customer's reply will cite it
    message.error_code = message.error_message = None
    _set_status(message, receipt.status)
    outbox.commit()
    log.info("deliver accepted message_id=%s channel=%s provider_id=%s",
             message.id, channel.id, receipt.provider_message_id)


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
    if message.sender_kind == SenderKind.BOT:
        meta["auto_submitted"] = True
    return OutboundMessage(to=to, body=message.body, subject=subject,
                           status_callback_url=webhook_url(channel, "/status"), meta=meta)


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
