"""Consent per contact and channel kind: opted in / opted out, when, and how we learned it.

No row means "never said": one-to-one conversation is allowed, and bulk sends are allowed
unless the campaign requires an explicit opt-in. An opted-out contact gets no campaign and
no follow-up on that kind; replies to the customer's own messages stay allowed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..kinds import ChannelKind
from .base import StrEnumType, Timestamped, UTCDateTime, utcnow


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class ConsentSource(StrEnum):
    KEYWORD = "keyword"  # STOP / START texted by the customer
    UNSUBSCRIBE_LINK = "unsubscribe_link"  # the email link or the one-click List-Unsubscribe POST
    AGENT = "agent"  # set by hand on the contact card
    IMPORT = "import"
    API = "api"


class Consent(Timestamped, db.Model):
    __table_args__ = (UniqueConstraint("contact_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    kind: Mapped[ChannelKind] = mapped_column(StrEnumType(ChannelKind, 16))
    status: Mapped[ConsentStatus] = mapped_column(StrEnumType(ConsentStatus, 12))
    source: Mapped[ConsentSource] = mapped_column(StrEnumType(ConsentSource, 20))
    detail: Mapped[str | None] = mapped_column(String(120))  # the keyword, the campaign, the agent…
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def of_contact(cls, contact_id: int) -> dict[ChannelKind, Consent]:
        rows = db.session.scalars(select(cls).where(cls.contact_id == contact_id))
        return {row.kind: row for row in rows}

    @classmethod
    def of_contacts(cls, contact_ids: list[int]) -> dict[tuple[int, ChannelKind], Consent]:
        if not contact_ids:
            return {}
        rows = db.session.scalars(select(cls).where(cls.contact_id.in_(contact_ids)))
        return {(row.contact_id, row.kind): row for row in rows}

    @classmethod
    def is_opted_out(cls, contact_id: int, kind: ChannelKind) -> bool:
        stmt = select(cls.id).where(cls.contact_id == contact_id, cls.kind == kind,
                                    cls.status == ConsentStatus.OPTED_OUT)
        return db.session.scalar(stmt) is not None
