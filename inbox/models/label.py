"""Labels: colored, workspace-defined tags on conversations and on contacts (issue 8).

`Conversation.labels` and `Contact.labels` are added from here (backrefs), so the core models
stay untouched. They load lazily: a list that shows labels asks for them with selectinload
(one query per page, whatever its size).
"""

from __future__ import annotations

import re

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from ..extensions import db
from .base import Timestamped

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
PALETTE = ("#c81d32", "#c2410c", "#9a6700", "#1a7f37", "#0e7490", "#2563eb", "#7c3aed", "#be185d",
           "#4b5563")


class Label(Timestamped, db.Model):
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    name: Mapped[str] = mapped_column(String(60))
    color: Mapped[str] = mapped_column(String(7), default="#4b5563")

    conversations = relationship(
        "Conversation", secondary="conversation_label", viewonly=False,
        backref=backref("labels", order_by="Label.name", lazy="select"))
    contacts = relationship(
        "Contact", secondary="contact_label",
        backref=backref("labels", order_by="Label.name", lazy="select"))

    @property
    def text_color(self) -> str:
        """Black or white, whichever reads better on the label's color."""
        r, g, b = (int(self.color[i:i + 2], 16) for i in (1, 3, 5))
        return "#1d2430" if (0.299 * r + 0.587 * g + 0.114 * b) > 150 else "#ffffff"

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[Label]:
        return list(db.session.scalars(select(cls).where(cls.workspace_id == workspace_id).order_by(cls.name)))


class ConversationLabel(db.Model):
    __tablename__ = "conversation_label"
    # The inbox filter reads "conversations with label L": (label_id, conversation_id) answers it.
    __table_args__ = (Index("ix_conversation_label_label", "label_id", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"),
                                                 primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"), primary_key=True)


class ContactLabel(db.Model):
    __tablename__ = "contact_label"
    __table_args__ = (Index("ix_contact_label_label", "label_id", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"), primary_key=True)
