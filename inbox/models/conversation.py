from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime, utcnow


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    RESOLVED = "resolved"

    @classmethod
    def active(cls) -> tuple[ConversationStatus, ...]:
        return (cls.OPEN, cls.PENDING)


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


# The newest message as the list shows it without reading messages (kept by touch_conversation).
LAST_MESSAGE_COLUMNS = ("last_message_preview", "last_message_direction", "last_message_sender_kind",
                        "last_message_sender_id")
_ACTIVE_SQL = "status IN ('open', 'pending')"
OPEN_SQL = "status = 'open'"


class Conversation(Timestamped, db.Model):
    """A thread of work with one contact. A contact has at most one active conversation."""

    __table_args__ = (
        # One open/pending conversation per contact: concurrent first messages cannot split a thread.
        Index(
            "uq_conversation_active_contact",
            "contact_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_conversation_ws_activity", "workspace_id", "last_activity_at", "id"),
        Index("ix_conversation_ws_status", "workspace_id", "status", "last_activity_at"),
        Index("ix_conversation_ws_assignee", "workspace_id", "assignee_id", "last_activity_at"),
        Index("ix_conversation_ws_channel", "workspace_id", "channel_id", "last_activity_at"),
        Index("ix_conversation_ws_priority", "workspace_id", "priority", "last_activity_at"),
        # The sidebar counts (open conversations by assignee and channel, on every inbox page and every
        # live change): the open few among years of resolved ones, read from the index alone. Without
        # it SQLite, whose statistics hold no distribution (3 statuses: a third each, it thinks), read
        # all 100,000 conversations of the bench workspace through the assignee index (130-280 ms).
        # Queries name the literal condition (OPEN_SQL), so that either engine can prove it implies the
        # index's.
        Index("ix_conversation_open", "workspace_id", "assignee_id", "channel_id",
              sqlite_where=text(OPEN_SQL), postgresql_where=text(OPEN_SQL)),
        # A contact's conversations (client page, search by contact): the unique index above is partial.
        Index("ix_conversation_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    # The channel of the latest message: the reply goes back there by default.
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    status: Mapped[ConversationStatus] = mapped_column(StrEnumType(ConversationStatus, 16), default=ConversationStatus.OPEN)
    priority: Mapped[Priority] = mapped_column(StrEnumType(Priority, 16), default=Priority.MEDIUM)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Denormalised so the list renders in one query, whatever the page size.
    last_message_preview: Mapped[str] = mapped_column(Text, default="")
    last_message_direction: Mapped[str | None] = mapped_column(String(8))
    # Who wrote it, for the row to say « Sara : » or « Julien : » rather than one « Vous : ».
    last_message_sender_kind: Mapped[str | None] = mapped_column(String(12))
    last_message_sender_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    unread_count: Mapped[int] = mapped_column(default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact = relationship("Contact", lazy="joined", innerjoin=True)
    channel = relationship("Channel", lazy="joined")
    assignee = relationship("User", foreign_keys=[assignee_id], lazy="joined")
    # Shown by the list's rows only: joined there (queries._row_options), not on every load.
    last_message_sender = relationship("User", foreign_keys=[last_message_sender_id])

    @property
    def is_active(self) -> bool:
        return self.status in ConversationStatus.active()

    @classmethod
    def active_for_contact(cls, contact_id: int) -> Conversation | None:
        stmt = select(cls).where(
            cls.contact_id == contact_id, cls.status.in_(list(ConversationStatus.active()))
        )
        return db.session.scalar(stmt)
