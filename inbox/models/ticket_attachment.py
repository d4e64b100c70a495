"""Files attached to a ticket (screenshots, PDF) by the customer (portal, API) or an agent.

The bytes live under inbox/storage.py's directory with a key of our making; the name the
person gave is only ever shown, never used as a path.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class TicketAttachment(db.Model):
    __tablename__ = "ticket_attachment"
    __table_args__ = (Index("ix_ticket_attachment_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    # The line of the ticket's history the file came with (a customer's reply, the creation).
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_event.id"), index=True)
    uploaded_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    uploaded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column()
    storage_key: Mapped[str] = mapped_column(String(80))
    # Agents-only files (attached to an internal note) are never shown to the customer.
    internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @classmethod
    def of_ticket(cls, ticket_id: int, *, public_only: bool) -> list[TicketAttachment]:
        stmt = select(cls).where(cls.ticket_id == ticket_id)
        if public_only:
            stmt = stmt.where(cls.internal.is_(False))
        return list(db.session.scalars(stmt.order_by(cls.id)))

    @classmethod
    def of_event(cls, event_id: int) -> list[TicketAttachment]:
        return list(db.session.scalars(select(cls).where(cls.event_id == event_id).order_by(cls.id)))
