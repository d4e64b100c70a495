from __future__ import annotations

import uuid
from time import monotonic

from sqlalchemy import JSON, ForeignKey, Index, String, Text, event, select
from sqlalchemy.orm import Mapped, mapped_column

from .. import crypto
from ..kinds import ChannelKind, Provider
from ..extensions import db
from .base import StrEnumType, Timestamped


def _public_id() -> str:
    return uuid.uuid4().hex


# The webhook door reads its channel on every request: each process keeps the channels' columns a few
# seconds (public_id -> (expires, columns)). A change made in this process clears them at once (see the
# mapper events below); another process sees it within DOOR_CACHE_SECONDS (docs/deploy.md).
DOOR_CACHE_SECONDS = 5.0
_DOOR_CACHE_MAX = 1024  # channels, not webhooks: an unknown id is never kept
_door_cache: dict[str, tuple[float, dict]] = {}


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
    def for_webhook(cls, public_id: str) -> Channel | None:
        """The channel a webhook URL names, read from the door's cache (or the database when it has
        not got it): a transient copy of this request's own, to read and never to add to a session."""
        now = monotonic()
        cached = _door_cache.get(public_id)
        if cached is None or cached[0] <= now:
            channel = cls.by_public_id(public_id)
            if channel is None:
                return None
            if len(_door_cache) >= _DOOR_CACHE_MAX:
                _door_cache.clear()
            cached = (now + DOOR_CACHE_SECONDS, {a.key: getattr(channel, a.key) for a in cls.__mapper__.column_attrs})
            _door_cache[public_id] = cached
        columns = cached[1]
        return cls(**{**columns, "settings": dict(columns["settings"] or {})})

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[Channel]:
        stmt = select(cls).where(cls.workspace_id == workspace_id).order_by(cls.kind, cls.name)
        return list(db.session.scalars(stmt))


@event.listens_for(Channel, "after_update")
@event.listens_for(Channel, "after_delete")
def _forget_door_copies(_mapper, _connection, _channel: Channel) -> None:
    """A channel changed here (disabled, new credentials, deleted): the door reads it again."""
    _door_cache.clear()
