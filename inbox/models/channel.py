from __future__ import annotations

import uuid
from sqlalchemy import JSON, ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from .. import crypto
from ..kinds import ChannelKind, Provider
from ..extensions import db
from .base import StrEnumType, Timestamped


def _public_id() -> str:
    return uuid.uuid4().hex


class Channel(Timestamped, db.Model):
    """One configured way in and out: a Twilio number, a mailbox, a bot…"""

    __table_args__ = (Index("ix_channel_workspace_kind", "workspace_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    kind: Mapped[ChannelKind] = mapped_column(StrEnumType(ChannelKind, 16))
    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider, 16))
    name: Mapped[str] = mapped_column(String(120))
    # The channel's own address: the Twilio number, the mailbox, the bot's @name.
    address: Mapped[str] = mapped_column(String(254), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    # Unguessable id used in webhook URLs, so a URL names exactly one channel of one workspace.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=_public_id)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)

    @property
    def credentials(self) -> dict:
        return crypto.decrypt_json(self.credentials_encrypted)

    @credentials.setter
    def credentials(self, value: dict) -> None:
        self.credentials_encrypted = crypto.encrypt_json(value)

    def __repr__(self) -> str:  # never show credentials in logs or tracebacks
        return f"<Channel {self.id} {self.kind}/{self.provider}>"

    @classmethod
    def by_public_id(cls, public_id: str) -> Channel | None:
        return db.session.scalar(select(cls).where(cls.public_id == public_id))

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[Channel]:
        stmt = select(cls).where(cls.workspace_id == workspace_id).order_by(cls.kind, cls.name)
        return list(db.session.scalars(stmt))
