from __future__ import annotations

from ..orchestrator import routing
from . import job


@job
def route_message(message_id: int) -> None:
    routing.route_message(message_id)


@job
def send_held_reply(decision_id: int) -> None:
    """Sara's answer held over a channel's quiet hours, at the opening (issue 5)."""
    from ..orchestrator.sara import release_held_reply

    release_held_reply(decision_id)
