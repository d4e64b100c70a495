from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Timestamped


class InboundDelivery(Timestamped, db.Model):
    """A signed inbound webhook, kept as the provider sent it until a worker has stored its messages.

    The webhook verifies, validates and writes this one row, then answers: contact, conversation
    and message rows are written by the `ingest` job, so a burst of customer messages is absorbed
    at the rate of one insert per request. The row is deleted once its messages are stored; one
    still here after a while means its job was lost, and the worker enqueues it again.
    """

    __table_args__ = (Index("ix_inbound_delivery_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    url: Mapped[str] = mapped_column(Text)  # the public URL the provider called
    headers: Mapped[list] = mapped_column(JSON, default=list)  # [name, value] pairs, cookies left out
    body: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(default=0)  # times the worker's sweep enqueued it again

    channel = relationship("Channel")

    @classmethod
    def stranded_ids(cls, older_than, *, limit: int) -> list[int]:
        """Ids only: the sweep runs every few seconds, and during a backlog these rows are many
        and carry their bodies."""
        stmt = select(cls.id).where(cls.created_at < older_than).order_by(cls.id).limit(limit)
        return list(db.session.scalars(stmt))

    @classmethod
    def count_attempt(cls, ids: list[int]) -> None:
        db.session.execute(update(cls).where(cls.id.in_(ids)).values(attempts=cls.attempts + 1))
