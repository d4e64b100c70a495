"""Customer portal sign-ins: a magic link by email or a 6-digit code by SMS, each one row.

Neither the link nor the code is stored: both are derived from the server's SECRET_KEY and
the row's random salt (a signed token; an HMAC reduced to 6 digits), so the worker that sends
them and the request that checks them compute the same value, and a copy of the database
alone cannot sign anybody in (a plain hash of a 6-digit code would be reversed in a second).
A row is used once, expires (15 min for links, 10 min for codes) and allows 5 wrong codes;
a periodic job deletes rows an hour after they expire (jobs/portal.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, UTCDateTime, utcnow


class PortalLoginMethod(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class PortalLogin(db.Model):
    __tablename__ = "portal_login"
    __table_args__ = (
        Index("ix_portal_login_contact_created", "contact_id", "created_at"),
        Index("ix_portal_login_expires", "expires_at"),  # the cleanup job deletes by expiry
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    method: Mapped[PortalLoginMethod] = mapped_column(StrEnumType(PortalLoginMethod, 8))
    salt: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(254))  # where the link / code was sent
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))  # SMS: the channel used
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(255))  # why it could not be sent

    contact = relationship("Contact", lazy="joined")

    def usable(self, now: datetime, *, max_attempts: int) -> bool:
        return self.used_at is None and self.expires_at > now and self.attempts < max_attempts

    @classmethod
    def recent_count(cls, contact_id: int, since: datetime) -> int:
        return db.session.scalar(select(func.count(cls.id)).where(cls.contact_id == contact_id,
                                                                  cls.created_at >= since)) or 0
