from __future__ import annotations

import functools
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON, ForeignKey, Index, String, Text, UniqueConstraint, and_, bindparam, event, inspect, or_, select, text, update,
)
from sqlalchemy.orm import Mapped, aliased, attributes, mapped_column, relationship

from ..extensions import db
from ..kinds import DeliveryStatus
from .base import StrEnumType, Timestamped, UTCDateTime, utcnow


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SenderKind(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class Facts(dict):
    """A message's `meta` for templates: a missing key reads as None. On a plain dict, Jinja tries
    an attribute then an item, two exceptions, for each of the ~15 facts a message may carry."""

    __slots__ = ()

    def __getattr__(self, name: str):
        return self.get(name)


class Message(Timestamped, db.Model):
    __table_args__ = (
        # A provider delivering the same webhook twice must not store it twice.
        UniqueConstraint("channel_id", "provider_message_id"),
        # The composer sends a key per draft: a double click cannot send twice.
        UniqueConstraint("conversation_id", "idempotency_key"),
        Index("ix_message_contact_created", "contact_id", "created_at", "id"),
        Index("ix_message_conversation_created", "conversation_id", "created_at"),
        # Reports read every message of a date range (50,000 in 8 weeks on the bench workspace):
        # with the columns they group and test on in the index, they never read the message rows
        # (bodies, HTML, meta) themselves. Also the plain "messages in a date range" index.
        Index("ix_message_ws_report", "workspace_id", "created_at", "internal", "direction", "sender_kind",
              "channel_id", "conversation_id", "contact_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    direction: Mapped[Direction] = mapped_column(StrEnumType(Direction, 8))
    sender_kind: Mapped[SenderKind] = mapped_column(StrEnumType(SenderKind, 12))
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str | None] = mapped_column(String(500))  # email
    html: Mapped[str | None] = mapped_column(Text)  # email, sanitized before it is stored
    # Channel-specific facts: email Message-ID/References, call duration and recording,
    # location, Telegram command… (see channels/base.py InboundMessage.meta).
    meta: Mapped[dict | None] = mapped_column(JSON)
    # Email Message-ID (ours or the customer's): replies thread by In-Reply-To / References.
    thread_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    internal: Mapped[bool] = mapped_column(default=False)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[DeliveryStatus] = mapped_column(StrEnumType(DeliveryStatus, 12))
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Received messages only: when the conversation's first answer at the same time or later was
    # written (see `answers`). Kept as messages are stored (the listeners below), so reports add up
    # response times without looking for each received message's answer.
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # System lines (assignment, status…) keep their facts here and are worded when shown,
    # in the reader's language; `body` holds an English rendering for search and export.
    event: Mapped[dict | None] = mapped_column(JSON)

    conversation = relationship("Conversation")
    contact = relationship("Contact")
    channel = relationship("Channel", lazy="joined")
    sender = relationship("User", lazy="joined")
    attachments = relationship("Attachment", lazy="selectin", order_by="Attachment.id")

    @property
    def facts(self) -> Facts:
        return Facts(self.meta or ())

    @property
    def is_outbound(self) -> bool:
        return self.direction == Direction.OUTBOUND

    @property
    def tracks_delivery(self) -> bool:
        """Outbound messages that still expect a status callback listen for live updates."""
        return self.is_outbound and not self.internal and not self.delivery_status.is_final

    @classmethod
    def by_provider_id(cls, channel_id: int, provider_message_id: str) -> Message | None:
        stmt = select(cls).where(
            cls.channel_id == channel_id, cls.provider_message_id == provider_message_id
        )
        return db.session.scalar(stmt)

    @classmethod
    def history_of_contact(
        cls, contact_id: int, *, before_id: int | None = None, after_id: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """A contact's messages across every conversation and channel, oldest first."""
        stmt = select(cls).where(cls.contact_id == contact_id)
        if after_id is not None:
            stmt = stmt.where(cls.id > after_id).order_by(cls.created_at, cls.id)
            return list(db.session.scalars(stmt.limit(limit)))
        if before_id is not None:
            # Keyset on the order shown, (created_at, id): an email imported late has a higher id
            # than messages written after it, and an id-only cursor would skip or repeat it.
            at = select(cls.created_at).where(cls.id == before_id).scalar_subquery()
            stmt = stmt.where(or_(cls.created_at < at, and_(cls.created_at == at, cls.id < before_id)))
        stmt = stmt.order_by(cls.created_at.desc(), cls.id.desc()).limit(limit)
        return list(reversed(list(db.session.scalars(stmt))))


# -- first answers ----------------------------------------------------------------------------------
def answers(m=Message):
    """SQL: `m` answers the customer, a message a person or Sara sent them (not a note, not a
    system line)."""
    return and_(m.direction == Direction.OUTBOUND, m.sender_kind.in_([SenderKind.AGENT, SenderKind.BOT]),
                m.internal.is_(False))


def _answers(message: Message) -> bool:
    return (message.direction == Direction.OUTBOUND and message.sender_kind in (SenderKind.AGENT, SenderKind.BOT)
            and not message.internal)


@functools.cache
def _answer_alias():
    """One alias for every statement (made once the mappers are configured): a new one costs
    its columns' adaptation each time."""
    return aliased(Message)


def _first_answer(conversation_id, at):
    """SQL: the first answer in a conversation at or after a time (through the conversation's time
    index, stopping at the first answer found)."""
    answer = _answer_alias()
    return (select(answer.created_at)
            .where(answer.conversation_id == conversation_id, answers(answer), answer.created_at >= at)
            .order_by(answer.created_at).limit(1).scalar_subquery())


def refresh_answered_at(connection, conversation_id: int) -> None:
    """Work out again the first answer of every received message of a conversation: after
    messages moved into it (a merge) or an answer's time or sender changed. One statement."""
    _lock_conversation(connection, conversation_id)
    connection.execute(update(Message).where(Message.conversation_id == conversation_id,
                                             Message.direction == Direction.INBOUND)
                       .values(answered_at=_first_answer(Message.conversation_id, Message.created_at)))


def _lock_conversation(connection, conversation_id: int) -> None:
    """A received message and its answer stored at the same moment in two transactions would
    each miss the other (neither sees the other's uncommitted row) and the message would stay
    unanswered: on PostgreSQL they take turns on the conversation's row. SQLite lets one writer
    at a time anyway."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT id FROM conversation WHERE id = :id FOR UPDATE"), {"id": conversation_id})


@event.listens_for(Message, "before_insert")
def _stamp_time(mapper, connection, target: Message) -> None:
    if target.created_at is None:  # the default, set now so the listeners below can read it
        target.created_at = utcnow()


@event.listens_for(Message, "after_insert")
def _keep_first_answers(mapper, connection, target: Message) -> None:
    """Every write path (ingest, replies, Sara, notes, fallbacks, imports…) goes through here, so
    none can leave `answered_at` behind. After the insert, so that a received message and its
    answer flushed together see each other."""
    if target.direction == Direction.INBOUND:
        # Usually nothing: answers come later. An email or a webhook delivered late may be older.
        _lock_conversation(connection, target.conversation_id)
        at = connection.scalar(_first_answer_since(), {"conversation_id": target.conversation_id,
                                                     "at": target.created_at})
        if at is not None:
            connection.execute(update(Message).where(Message.id == target.id).values(answered_at=at))
            attributes.set_committed_value(target, "answered_at", at)
    elif _answers(target):
        # The received messages before it that had no answer yet (or only a later one: an answer
        # stored out of order) are answered now. One statement, bounded by the conversation.
        _lock_conversation(connection, target.conversation_id)
        connection.execute(
            update(Message).where(Message.conversation_id == target.conversation_id,
                                  Message.direction == Direction.INBOUND, Message.created_at <= target.created_at,
                                  or_(Message.answered_at.is_(None), Message.answered_at > target.created_at))
            .values(answered_at=target.created_at))


@functools.cache
def _first_answer_since():
    """Built once (every received message runs it): building it cost more CPU than running it."""
    return select(_first_answer(bindparam("conversation_id"), bindparam("at")))


_ANSWER_FACTS = ("created_at", "direction", "sender_kind", "internal", "conversation_id")


@event.listens_for(Message, "after_update")
def _refresh_first_answers(mapper, connection, target: Message) -> None:
    """A message whose time, sender, note flag or conversation changed (rare: an import fixing a
    date, a test setting the past) may answer other messages, or be answered otherwise."""
    state = inspect(target)
    if not any(state.attrs[name].history.has_changes() for name in _ANSWER_FACTS):
        return
    conversations = {target.conversation_id, *state.attrs.conversation_id.history.deleted}
    for conversation_id in sorted(c for c in conversations if c is not None):
        refresh_answered_at(connection, conversation_id)
    if target.direction == Direction.INBOUND:
        attributes.set_committed_value(target, "answered_at", connection.scalar(
            select(Message.answered_at).where(Message.id == target.id)))


class Attachment(Timestamped, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str | None] = mapped_column(String(255))
    # Where the provider keeps the file (Twilio MediaUrl); fetched with the channel's credentials.
    remote_url: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column()
    # Bytes we hold ourselves (email attachments), under inbox/storage.py's directory.
    storage_key: Mapped[str | None] = mapped_column(String(80))
    content_id: Mapped[str | None] = mapped_column(String(255))  # email cid: for inline images

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


class WebhookReplay(Timestamped, db.Model):
    """Provider delivery tokens already seen (Mailgun's token, an IMAP UID): a replay is ignored."""

    __table_args__ = (UniqueConstraint("channel_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    key: Mapped[str] = mapped_column(String(255))
