from __future__ import annotations

from ..orchestrator import routing
from . import job


@job
def route_message(message_id: int) -> None:
    routing.route_message(message_id)
