"""Invitations to join a workspace: a link by email, valid 7 days, used once."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime, utcnow
from .user import Role

INVITATION_TTL = timedelta(days=7)


def new_nonce() -> str:
    return secrets.token_hex(16)


class Invitation(Timestamped, db.Model):
    """The link carries a token signed with the app's secret over (id, nonce): the database
    alone cannot forge one, and sending again draws a new nonce so older links stop working."""

    __table_args__ = (Index("ix_invitation_ws_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[Role] = mapped_column(StrEnumType(Role, 16), default=Role.AGENT)
    nonce: Mapped[str] = mapped_column(String(32), default=new_nonce)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invited_by = relationship("User", foreign_keys=[invited_by_id], lazy="joined")

    def __repr__(self) -> str:  # never the nonce
        return f"<Invitation {self.id}>"

    def is_pending(self, now: datetime | None = None) -> bool:
        return self.accepted_at is None and self.revoked_at is None and (now or utcnow()) < self.expires_at

    @classmethod
    def pending_of(cls, workspace_id: int, *, now: datetime | None = None) -> list[Invitation]:
        stmt = (select(cls).where(cls.workspace_id == workspace_id, cls.accepted_at.is_(None),
                                  cls.revoked_at.is_(None), cls.expires_at > (now or utcnow()))
                .order_by(cls.created_at.desc()))
        return list(db.session.scalars(stmt))
