"""Customer portal jobs: send a sign-in link or code (loaded by id; sent once)."""

from __future__ import annotations

from ..actions import portal
from . import job


@job
def send_portal_login(login_id: int) -> None:
    portal.send_login(login_id)
