"""Kinds and statuses shared by every layer (channel adapters included, which see no models)."""

from __future__ import annotations

from enum import StrEnum


class ChannelKind(StrEnum):
    """How the customer reaches us; one conversation history mixes them all."""

    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"


class Provider(StrEnum):
    TWILIO = "twilio"
    META = "meta"
    TELEGRAM = "telegram"
    SMTP = "smtp"
    VAPI = "vapi"


class DeliveryStatus(StrEnum):
    """Outbound life cycle. A status only ever moves up in rank: late callbacks are ignored."""

    QUEUED = "queued"  # stored, waiting for the worker
    SENDING = "sending"  # the worker holds it; guards against a second send
    ACCEPTED = "accepted"  # the provider has it (Twilio: queued / accepted / sending)
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    RECEIVED = "received"  # inbound messages

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        return self in (DeliveryStatus.READ, DeliveryStatus.FAILED, DeliveryStatus.RECEIVED)


_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.ACCEPTED: 2,
    DeliveryStatus.SENT: 3,
    # Failed ranks with delivered: once one is known, the other cannot override it.
    DeliveryStatus.DELIVERED: 4,
    DeliveryStatus.FAILED: 4,
    DeliveryStatus.READ: 5,
    DeliveryStatus.RECEIVED: 5,
}
