"""In-app notifications: the header bell. Worded when shown, in the reader's language."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, UTCDateTime, utcnow


class NotificationKind(StrEnum):
    ASSIGNED = "assigned"  # a ticket was assigned to you
    CUSTOMER_REPLIED = "customer_replied"  # on a ticket of yours (reopened or not)
    SLA_WARNING = "sla_warning"  # a deadline of yours is near
    SLA_BREACHED = "sla_breached"  # escalation: admins and the assignee
    CRITICAL_TICKET = "critical_ticket"  # pages the on-call agent
    BUDGET_ALERT = "budget_alert"  # a client reached 80 % / 100 % of a budget
    NEW_TICKET = "new_ticket"  # a ticket nobody owns yet: to the admins
    PENDING_REMINDER = "pending_reminder"  # daily: tickets a customer has waited on for more than 24 h
    WEEKLY_SUMMARY = "weekly_summary"  # Monday, to admins: the past week's figures


class Notification(db.Model):
    __table_args__ = (
        Index("ix_notification_user_unread", "user_id", "read_at", "id"),
        # Jobs that notify pass a key derived from the work: a re-run notifies nobody twice.
        UniqueConstraint("user_id", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[NotificationKind] = mapped_column(StrEnumType(NotificationKind, 24))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")

    @classmethod
    def unread_count(cls, user_id: int) -> int:
        stmt = select(func.count(cls.id)).where(cls.user_id == user_id, cls.read_at.is_(None))
        return db.session.scalar(stmt) or 0

    @classmethod
    def recent_of(cls, user_id: int, limit: int = 50) -> list[Notification]:
        stmt = select(cls).where(cls.user_id == user_id).order_by(cls.id.desc()).limit(limit)
        return list(db.session.scalars(stmt))
