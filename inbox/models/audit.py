"""The audit log: who changed which setting, when, from what to what. Never secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One change, written in the same transaction as the change itself.

    `before` / `after` hold only the fields that changed, with secrets already masked
    (see inbox/actions/audit.py). Rows are never updated or deleted by the application."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_ws_created", "workspace_id", "created_at", "id"),
        Index("ix_audit_entry_ws_actor_created", "workspace_id", "actor_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # None: the system
    action: Mapped[str] = mapped_column(String(64))  # "channel.update", "team.role"…
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column()
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User", lazy="joined")

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.object_type}:{self.object_id}>"
