"""What a workspace taught Sara (intents, knowledge-base articles, settings) and what she
decided for each inbound message, with the agents' corrections."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, Float, ForeignKey, Index, Numeric, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Timestamped, UTCDateTime


class KnowledgeArticle(Timestamped, db.Model):
    __table_args__ = (Index("ix_knowledge_article_ws", "workspace_id", "enabled"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    enabled: Mapped[bool] = mapped_column(default=True)


class SaraIntent(Timestamped, db.Model):
    """Something customers ask, taught by example phrases, and what Sara does about it."""

    __table_args__ = (Index("ix_sara_intent_ws", "workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    name: Mapped[str] = mapped_column(String(80))
    examples: Mapped[list] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(16), default="escalate")  # auto_reply | escalate
    category: Mapped[str] = mapped_column(String(16), default="general")
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    article_id: Mapped[int | None] = mapped_column(ForeignKey("knowledge_article.id"))
    reply_template: Mapped[str | None] = mapped_column(Text)
    always_escalate: Mapped[bool] = mapped_column(default=False)

    article = relationship("KnowledgeArticle")


class SaraSettings(db.Model):
    """One row per workspace. Sara is off until an admin switches her on (Settings → Sara), usually
    after teaching her a knowledge base; the demo workspace has her on. The OpenAI-compatible
    engine is used when chosen and a base URL or key is configured."""

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    engine: Mapped[str] = mapped_column(String(16), default="offline")  # offline | openai
    model: Mapped[str] = mapped_column(String(80), default="gpt-4o-mini")
    confidence_threshold: Mapped[float] = mapped_column(Float, default=0.55)
    # Channel ids where Sara never answers by herself (she still routes and escalates).
    auto_reply_off_channels: Mapped[list] = mapped_column(JSON, default=list)
    out_of_scope_examples: Mapped[list] = mapped_column(JSON, default=list)
    # What the OpenAI-compatible provider charges per million tokens (prompt, completion), in the
    # workspace's currency: the Sara page turns recorded token counts into a cost per 1,000 messages.
    prompt_price_per_million: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    completion_price_per_million: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))

    @classmethod
    def of(cls, workspace_id: int) -> SaraSettings:
        settings = db.session.get(cls, workspace_id)
        if settings is None:
            settings = cls(workspace_id=workspace_id, enabled=False, engine="offline", model="gpt-4o-mini",
                           confidence_threshold=0.55, auto_reply_off_channels=[], out_of_scope_examples=[])
        return settings


class HeldReply(StrEnum):
    """An auto-reply decided during the channel's quiet hours waits for the opening."""

    HELD = "held"  # waiting for `reply_at`
    SENT = "sent"
    DROPPED = "dropped"  # a person took over, or the channel no longer allows it (see the thread)


class SaraDecision(Timestamped, db.Model):
    """What Sara decided for one inbound message, shown to agents in the thread."""

    __table_args__ = (Index("ix_sara_decision_ws_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(300))
    guardrail: Mapped[str | None] = mapped_column(String(24))
    engine: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    intent: Mapped[str | None] = mapped_column(String(80))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("knowledge_article.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    # Quiet hours: the auto-reply is kept here and sent at `reply_at` (the channel's opening).
    held_reply: Mapped[str | None] = mapped_column(Text)
    reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_state: Mapped[str | None] = mapped_column(String(12))  # HeldReply
    # An agent's correction: kept as a training example for the workspace.
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    corrected_category: Mapped[str | None] = mapped_column(String(16))
    corrected_intent: Mapped[str | None] = mapped_column(String(80))

    @classmethod
    def for_message(cls, message_id: int) -> SaraDecision | None:
        return db.session.scalar(select(cls).where(cls.message_id == message_id))

    @classmethod
    def for_messages(cls, message_ids: list[int]) -> dict[int, SaraDecision]:
        if not message_ids:
            return {}
        rows = db.session.scalars(select(cls).where(cls.message_id.in_(message_ids)))
        return {row.message_id: row for row in rows}


class TrainingExample(Timestamped, db.Model):
    """A message an agent re-labelled: it teaches the offline engine the workspace's language."""

    __table_args__ = (Index("ix_training_example_ws", "workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(80))
    category: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="correction")
