from __future__ import annotations

from ..orchestrator import delivery
from . import job


@job
def deliver_message(message_id: int) -> None:
    delivery.deliver_message(message_id)
