from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..kinds import DeliveryStatus
from .base import StrEnumType, Timestamped, UTCDateTime


class TeamAlertKind(StrEnum):
    TICKET_CREATED = "ticket_created"
    CRITICAL_TICKET = "critical_ticket"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"


class TeamAlert(Timestamped, db.Model):
    """One post to the team's Telegram group (a channel's notification group) about a ticket.

    The row is the alert's state: unique per channel and event (`key`), so an event raised
    twice posts once; the worker claims it queued → sending before it talks to Telegram, so a
    repeated or concurrent job never posts it twice.
    """

    __table_args__ = (UniqueConstraint("channel_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    kind: Mapped[TeamAlertKind] = mapped_column(StrEnumType(TeamAlertKind, 20))
    key: Mapped[str] = mapped_column(String(160))  # the event, e.g. "sla-warning-resolution-42-1760000000"
    chat_id: Mapped[str] = mapped_column(String(64))  # the group it goes to (as configured then)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(StrEnumType(DeliveryStatus, 12), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    channel = relationship("Channel")
