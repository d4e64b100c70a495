"""Files customers send us, kept under instance/attachments with names we choose.

A provider's file name is only ever shown, never used as a path. Dangerous types and
oversized files are refused with a reason the thread displays.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
DANGEROUS_EXTENSIONS = {
    ".exe", ".com", ".bat", ".cmd", ".scr", ".pif", ".msi", ".msp", ".jar", ".js", ".jse", ".vbs",
    ".vbe", ".wsf", ".wsh", ".ps1", ".psm1", ".sh", ".cpl", ".hta", ".lnk", ".reg", ".dll", ".iso",
}
DANGEROUS_TYPES = {
    "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer",
    "application/x-sh", "application/javascript", "text/javascript", "application/java-archive",
    "application/x-bat", "application/hta",
}


def refusal_reason(filename: str | None, content_type: str, size: int, *,
                   max_bytes: int = MAX_ATTACHMENT_BYTES) -> str | None:
    """Why a file is not kept (None when it is fine)."""
    if size > max_bytes:
        return "too_large"
    suffix = Path(filename or "").suffix.lower()
    if suffix in DANGEROUS_EXTENSIONS or content_type.split(";")[0].strip().lower() in DANGEROUS_TYPES:
        return "dangerous_type"
    return None


def _root() -> Path:
    return Path(current_app.config.get("ATTACHMENTS_DIR") or Path(current_app.instance_path) / "attachments")


def save(content: bytes) -> str:
    """Store bytes under a random key; returns the key (a relative path of our own making)."""
    key = f"{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"
    path = _root() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return key


def path_of(key: str) -> Path:
    root = _root().resolve()
    path = (root / key).resolve()
    if root not in path.parents:  # keys are ours, but never trust a path blindly
        raise FileNotFoundError(key)
    return path


# -- files agents send ---------------------------------------------------------------------------
# What an agent may attach to a reply: images and common documents, nothing executable.
MB = 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
DOCUMENT_TYPES = frozenset({
    "application/pdf", "text/plain", "text/csv", "application/rtf",
    "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
})


@dataclass(frozen=True, slots=True)
class SendLimits:
    """How large a file one channel kind carries, as its provider documents it."""

    image: int
    document: int
    total: int | None = None  # the whole message (email), when the provider counts it that way


# The one table of outbound size limits. Twilio MMS: 5 MB per message; WhatsApp (Twilio and Meta):
# images 5 MB, documents 100 MB; Telegram Bot API uploads: photos 10 MB, other files 50 MB; email:
# 10 MB for the whole message (what most receiving servers accept). Voice carries no file.
SEND_LIMITS: dict[str, SendLimits] = {
    "sms": SendLimits(image=5 * MB, document=5 * MB, total=5 * MB),
    "whatsapp": SendLimits(image=5 * MB, document=100 * MB),
    "telegram": SendLimits(image=10 * MB, document=50 * MB),
    "email": SendLimits(image=10 * MB, document=10 * MB, total=10 * MB),
}


def send_limits(channel_kind: str | None) -> SendLimits | None:
    """None: the channel cannot carry files (voice). Internal notes (no channel) keep files up
    to the size we store for inbound ones."""
    if channel_kind is None:
        return SendLimits(image=MAX_ATTACHMENT_BYTES, document=MAX_ATTACHMENT_BYTES)
    return SEND_LIMITS.get(str(channel_kind))


def sendable_type(content_type: str) -> str | None:
    """"image", "document", or None when agents may not send this kind of file."""
    bare = content_type.split(";")[0].strip().lower()
    if bare in IMAGE_TYPES:
        return "image"
    return "document" if bare in DOCUMENT_TYPES else None
