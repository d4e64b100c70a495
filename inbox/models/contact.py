from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, and_, bindparam, select
from sqlalchemy.orm import Mapped, lazyload, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, Timestamped
from ..kinds import ChannelKind

if TYPE_CHECKING:
    from .conversation import Conversation


class Contact(Timestamped, db.Model):
    """A CRM client: the person behind every identity on every channel."""

    __table_args__ = (Index("ix_contact_workspace_name", "workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    name: Mapped[str] = mapped_column(String(160))
    company: Mapped[str | None] = mapped_column(String(160))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    whatsapp: Mapped[str | None] = mapped_column(String(32))
    telegram_id: Mapped[str | None] = mapped_column(String(64))
    preferred_channel: Mapped[ChannelKind | None] = mapped_column(StrEnumType(ChannelKind, 16))
    locale: Mapped[str | None] = mapped_column(String(8))

    identities = relationship("ContactIdentity", back_populates="contact", lazy="selectin")

    @property
    def display_name(self) -> str:
        return self.name or self.phone or self.email or "?"

    @property
    def initials(self) -> str:
        parts = [p for p in self.display_name.split() if p and p[0].isalpha()]
        return "".join(p[0] for p in parts[:2]).upper() or "#"


class ContactIdentity(Timestamped, db.Model):
    """An address on one channel kind (a phone number, an email, a Telegram id) → its contact."""

    __table_args__ = (UniqueConstraint("workspace_id", "kind", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    kind: Mapped[ChannelKind] = mapped_column(StrEnumType(ChannelKind, 16))
    address: Mapped[str] = mapped_column(String(254))
    # Vouched for by the provider (the number an SMS or WhatsApp message came from, a Telegram
    # chat) or entered by an agent. False for what nobody proved: an email's From header. Only a
    # verified identity ever makes two contacts one (see actions/contacts.py).
    verified: Mapped[bool] = mapped_column(default=True)

    contact = relationship("Contact", back_populates="identities")

    @classmethod
    def find(cls, workspace_id: int, kind: ChannelKind, address: str) -> ContactIdentity | None:
        stmt = select(cls).where(
            cls.workspace_id == workspace_id, cls.kind == kind, cls.address == address
        )
        return db.session.scalar(stmt)

    @classmethod
    def contact_and_active_conversation(
        cls, workspace_id: int, kind: ChannelKind, address: str,
    ) -> tuple[Contact, Conversation | None] | None:
        """The contact behind an address and their active conversation (at most one: a partial
        unique index), in one statement: what every inbound message needs first. None for an
        address nobody has yet. The contact's identities and the conversation's channel and
        assignee are not loaded with them: storing a message reads none of them."""
        params = {"workspace_id": workspace_id, "kind": kind, "address": address}
        row = db.session.execute(_contact_and_active_conversation(), params).first()
        return None if row is None else (row[0], row[1])

    @classmethod
    def find_for_contact(cls, contact_id: int, kind: ChannelKind) -> ContactIdentity | None:
        stmt = select(cls).where(cls.contact_id == contact_id, cls.kind == kind).order_by(cls.id)
        return db.session.scalars(stmt).first()


@functools.cache
def _contact_and_active_conversation():
    """Built once, run for every inbound message: building it (options, joins) cost more CPU
    than running it."""
    from .conversation import Conversation, ConversationStatus

    identity = ContactIdentity
    active = and_(Conversation.contact_id == Contact.id, Conversation.status.in_(list(ConversationStatus.active())))
    return (select(Contact, Conversation).join(identity, identity.contact_id == Contact.id)
            .outerjoin(Conversation, active)
            .where(identity.workspace_id == bindparam("workspace_id"), identity.kind == bindparam("kind"),
                   identity.address == bindparam("address"))
            .options(lazyload(Contact.identities), lazyload(Conversation.contact),
                     lazyload(Conversation.channel), lazyload(Conversation.assignee)))
