from __future__ import annotations

from ..orchestrator import ingest
from . import job


@job
def ingest_delivery(delivery_id: int) -> None:
    """A kept inbound webhook becomes contacts, conversations and messages."""
    ingest.ingest_delivery(delivery_id)
