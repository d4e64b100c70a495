"""Customer portal jobs: send a sign-in link or code (loaded by id; sent once), and the
periodic cleanup of expired sign-ins."""

from __future__ import annotations

from datetime import datetime

from ..actions import portal
from . import job


@job
def send_portal_login(login_id: int) -> None:
    portal.send_login(login_id)


@job
def cleanup_expired_logins(now_iso: str | None = None) -> int:
    """Periodic: delete magic links and SMS codes expired for more than an hour."""
    return portal.do_delete_expired_logins(now=datetime.fromisoformat(now_iso) if now_iso else None)
