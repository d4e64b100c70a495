"""Files customers send us, kept under instance/attachments with names we choose.

A provider's file name is only ever shown, never used as a path. Dangerous types and
oversized files are refused with a reason the thread displays.
"""

from __future__ import annotations

import uuid
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


def refusal_reason(filename: str | None, content_type: str, size: int) -> str | None:
    """Why a file is not kept (None when it is fine)."""
    if size > MAX_ATTACHMENT_BYTES:
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
