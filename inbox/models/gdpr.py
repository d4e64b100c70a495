"""GDPR erasure: the record that a client's personal data was wiped (the row itself is a
tombstone: the contact stays, anonymized, so statistics keep their counts and amounts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class ContactErasure(db.Model):
    __tablename__ = "contact_erasure"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), unique=True)
    erased_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    erased_by = relationship("User", lazy="joined")

    @classmethod
    def of_contact(cls, contact_id: int) -> ContactErasure | None:
        return db.session.scalar(select(cls).where(cls.contact_id == contact_id))
