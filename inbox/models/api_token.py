"""REST API tokens: a member's (agent/admin) or a customer's (contact) key to /api.

The token itself is shown once, when created; only its SHA-256 is stored (a 32-byte random
token needs no slow hash: nobody can guess it, only look it up) and its first characters,
in clear, so people can tell their tokens apart in settings.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

TOKEN_PREFIX = "coc_"
DISPLAY_PREFIX_LENGTH = 12  # "coc_" + 8 characters of the secret


def new_token() -> str:
    """A fresh secret: "coc_" + 32 random bytes, URL-safe (47 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(db.Model):
    __tablename__ = "api_token"
    __table_args__ = (
        # A token speaks for exactly one party: a member of the team, or one customer.
        CheckConstraint("(user_id IS NULL) <> (contact_id IS NULL)", name="one_owner"),
        Index("ix_api_token_ws_created", "workspace_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User", foreign_keys=[user_id], lazy="joined")
    contact = relationship("Contact", foreign_keys=[contact_id], lazy="joined")
    created_by = relationship("User", foreign_keys=[created_by_id])

    @property
    def is_customer(self) -> bool:
        return self.contact_id is not None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def owner_name(self) -> str:
        if self.user is not None:
            return self.user.name
        return self.contact.display_name if self.contact is not None else "?"

    @classmethod
    def find(cls, token: str) -> ApiToken | None:
        """The token row for a presented secret (revoked ones included: the caller decides)."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        from .user import User

        # With the member's workspace: what they do next reads its time zone (SLA deadlines, dates).
        return db.session.scalar(select(cls).where(cls.token_hash == hash_token(token))
                                 .options(joinedload(cls.user).joinedload(User.workspace)))

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[ApiToken]:
        stmt = select(cls).where(cls.workspace_id == workspace_id).order_by(cls.revoked_at.is_not(None),
                                                                          cls.id.desc())
        return list(db.session.scalars(stmt))
