"""Team jobs: the invitation email (thin: load by id, call the action)."""

from __future__ import annotations

import logging

from ..actions import team
from ..errors import PermanentDeliveryError
from . import job

log = logging.getLogger(__name__)


@job
def send_invitation(invitation_id: int) -> None:
    try:
        team.send_invitation_email(invitation_id)
    except PermanentDeliveryError as exc:  # a refused address: retrying will not help
        log.warning("invitation email refused invitation_id=%s: %s", invitation_id, exc.message)
