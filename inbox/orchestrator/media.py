"""Files customers sent through a provider that keeps them (Twilio MediaUrl, Meta media ids,
Telegram file ids): downloaded once, after the message is stored, into inbox/storage.py.

The provider reference stays in `Attachment.remote_url` (a URL or a pseudo-URL such as
`meta-media:<id>` / `telegram-file:<id>`, which is never shown as a link). Once the bytes are ours
the attachment gets a `storage_key` and the thread shows the image or offers the download.
A file refused (too large, dangerous type) or gone at the provider is removed from the
attachments and listed on the message with the reason, like a refused email attachment.
"""

from __future__ import annotations

import inspect
import logging
import mimetypes
import re

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from .. import outbox, storage
from ..errors import PermanentDeliveryError
from ..extensions import db
from ..models import Attachment, Direction, Message

log = logging.getLogger(__name__)
MEDIA_JOB = "inbox.jobs.channels.fetch_media"
MEDIA_RETRY_INTERVALS = [10, 60, 300]


def has_remote_media(message: Message) -> bool:
    return any(a.remote_url and not a.storage_key for a in message.attachments)


def schedule_media_download(message: Message) -> None:
    """One job per message (id media-<message id>); the caller's commit hands it to the worker."""
    outbox.enqueue_job(MEDIA_JOB, message.id, job_id=f"media-{message.id}", workspace_id=message.workspace_id,
                       retry_intervals=current_app.config.get("MEDIA_RETRY_INTERVALS", MEDIA_RETRY_INTERVALS))


def download_media(message_id: int) -> int:
    """Fetch every attachment of the message still held by the provider; returns how many were
    stored. Safe to run twice (stored ones are skipped). A transient provider error propagates,
    so the job is retried; what was already stored stays stored."""
    from .delivery import adapter_for

    message = db.session.get(Message, message_id)
    if message is None or message.channel is None:
        return 0
    pending = list(db.session.scalars(select(Attachment).where(
        Attachment.message_id == message.id, Attachment.remote_url.is_not(None), Attachment.storage_key.is_(None))
        .order_by(Attachment.id)))
    if not pending:
        return 0
    adapter = adapter_for(message.channel)
    fetch = getattr(adapter, "fetch_media", None)
    db.session.commit()  # no transaction open while the provider answers
    stored = 0
    for attachment in pending:
        try:
            if fetch is None:
                raise PermanentDeliveryError("this channel cannot download media", code="unsupported")
            content, content_type = _fetch(fetch, attachment.remote_url)
        except PermanentDeliveryError as exc:
            log.warning("media refused message_id=%s attachment_id=%s code=%s", message.id, attachment.id, exc.code)
            _refuse(message, attachment, "unavailable")
            continue
        content_type = _better_type(attachment.content_type, content_type)
        reason = storage.refusal_reason(attachment.filename, content_type, len(content))
        if reason:
            _refuse(message, attachment, reason)
            continue
        attachment.storage_key = storage.save(content)
        attachment.size = len(content)
        attachment.content_type = content_type
        stored += 1
        db.session.commit()  # each file is kept as soon as it is ours
    outbox.publish_event(message.workspace_id, f"message-{message.id}-status", status="media")
    outbox.publish_event(message.workspace_id, "conversation-changed", conversation_id=message.conversation_id)
    outbox.commit()
    log.info("media stored message_id=%s files=%s", message.id, stored)
    return stored


def _fetch(fetch, url: str) -> tuple[bytes, str]:
    # Twilio streams and stops reading past the limit; the others answer whole files.
    if "max_bytes" in inspect.signature(fetch).parameters:
        return fetch(url, max_bytes=storage.MAX_ATTACHMENT_BYTES)
    return fetch(url)


def _better_type(declared: str, served: str | None) -> str:
    """The declared type unless the provider only said "octet-stream" and the download knows better."""
    served = (served or "").split(";")[0].strip()
    if declared and declared != "application/octet-stream":
        return declared
    return served or declared or "application/octet-stream"


def _refuse(message: Message, attachment: Attachment, reason: str) -> None:
    meta = dict(message.meta or {})
    meta["refused_attachments"] = [*meta.get("refused_attachments", []),
                                   {"filename": attachment.filename, "reason": reason}]
    message.meta = meta
    db.session.delete(attachment)
    db.session.commit()


# -- files agents send ---------------------------------------------------------------------------
# Twilio and Meta fetch an outbound file from a URL we give them. The URL is public (the provider
# has no credentials of ours) but signed and short-lived: it names one attachment of one outbound,
# non-internal message, and stops working after OUTBOUND_MEDIA_URL_MAX_AGE seconds (Twilio fetches
# within seconds; Meta within minutes; a day leaves room for retries).
OUTBOUND_MEDIA_SALT = "coccinelle-outbound-media"
OUTBOUND_MEDIA_URL_MAX_AGE = 24 * 3600


def _media_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=OUTBOUND_MEDIA_SALT)


def signed_media_url(attachment: Attachment) -> str:
    """The public URL a provider fetches the file from. It ends with the file's name, whose
    extension the adapters read (Meta: image or document; Telegram: photo or document)."""
    token = _media_serializer().dumps(attachment.id)
    name = safe_url_name(attachment.filename, attachment.content_type)
    # Built by hand like webhook URLs: the delivery job has no request to build it from.
    return f"{current_app.config['PUBLIC_BASE_URL']}/media/{token}/{name}"


def attachment_from_token(token: str) -> Attachment | None:
    """The attachment a signed URL names, if the signature holds, it has not expired, and it
    belongs to a message that went (or goes) to the customer: never an internal note's file,
    never a file the customer sent us."""
    max_age = current_app.config.get("OUTBOUND_MEDIA_URL_MAX_AGE", OUTBOUND_MEDIA_URL_MAX_AGE)
    try:
        attachment_id = _media_serializer().loads(token, max_age=max_age)
    except BadSignature:
        return None
    attachment = db.session.get(Attachment, attachment_id) if isinstance(attachment_id, int) else None
    if attachment is None or not attachment.storage_key:
        return None
    message = db.session.get(Message, attachment.message_id)
    if message is None or message.internal or message.direction != Direction.OUTBOUND:
        return None
    return attachment


def safe_url_name(filename: str | None, content_type: str) -> str:
    """A name fit for a URL path: letters, digits, dot, dash, underscore; the extension kept
    (or guessed from the type)."""
    stem, dot, extension = (filename or "").rpartition(".")
    if not dot:
        stem, extension = filename or "", ""
    extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:8].lower()
    if not extension:
        extension = (mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin").lstrip(".")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60] or "file"
    return f"{stem}.{extension}"
