"""Outbound work that is not an immediate reply: templates, scheduled messages, campaigns and
follow-up rules (issue 8).

Each unit of work has its own row with a state, and every transition is a conditional UPDATE
(`... WHERE state = 'pending'`), so a job run twice, two workers, or a restart after a crash
can never send the same thing twice: the run that moves the row owns it. A `Message` is only
created (QUEUED) when the work is due, in the same transaction as that transition.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..kinds import ChannelKind
from .base import StrEnumType, Timestamped, UTCDateTime

VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


# -- templates ------------------------------------------------------------------------------------
class OutboundTemplate(Timestamped, db.Model):
    """A message written once, sent many times with variables ({{prospect_name}}, {{company}}…).

    `kind` None: usable on every channel. `provider_template` is what WhatsApp needs outside the
    24-hour window: {"content_sid": "HX…"} (Twilio) or {"name": "…", "language": "fr"} (Meta);
    `variables` orders the variables into the provider template's numbered placeholders.
    """

    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[ChannelKind | None] = mapped_column(StrEnumType(ChannelKind, 16))
    subject: Mapped[str | None] = mapped_column(String(500))  # email
    body: Mapped[str] = mapped_column(Text, default="")  # plain text (the email's text part)
    html: Mapped[str | None] = mapped_column(Text)  # email newsletter
    provider_template: Mapped[dict | None] = mapped_column(JSON)
    variables: Mapped[list | None] = mapped_column(JSON)

    @property
    def whatsapp_ready(self) -> bool:
        """Can open a WhatsApp conversation (an approved template), not only answer in the window."""
        pt = self.provider_template or {}
        return bool(pt.get("content_sid") or pt.get("name"))

    def fits(self, kind: ChannelKind) -> bool:
        return self.kind is None or self.kind == kind

    def variable_names(self) -> list[str]:
        seen: list[str] = []
        for text in (self.subject or "", self.body or "", self.html or ""):
            for name in VARIABLE.findall(text):
                if name not in seen:
                    seen.append(name)
        return seen

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[OutboundTemplate]:
        return list(db.session.scalars(select(cls).where(cls.workspace_id == workspace_id).order_by(cls.name)))


# -- scheduled messages ---------------------------------------------------------------------------
class ScheduledStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time; editable and cancellable
    SENT = "sent"  # released: a queued Message exists (message_id)
    CANCELLED = "cancelled"
    BLOCKED = "blocked"  # could not leave (WhatsApp window closed without a template…): see error


class ScheduledMessage(Timestamped, db.Model):
    __table_args__ = (
        Index("ix_scheduled_due", "status", "send_at"),  # the release job: due and still scheduled
        Index("ix_scheduled_contact", "contact_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    # None: a new message to the contact; released into their active conversation (or a new one).
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    body: Mapped[str] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_template.id"))
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ScheduledStatus] = mapped_column(StrEnumType(ScheduledStatus, 12),
                                                    default=ScheduledStatus.SCHEDULED)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    # Set when the channel's allowed hours moved the send later, or why it was blocked.
    postponed_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    channel = relationship("Channel", lazy="joined")
    author = relationship("User", lazy="joined")
    template = relationship("OutboundTemplate", lazy="joined")

    @property
    def is_pending(self) -> bool:
        return self.status == ScheduledStatus.SCHEDULED

    @classmethod
    def pending_of_contact(cls, contact_id: int) -> list[ScheduledMessage]:
        stmt = (select(cls).where(cls.contact_id == contact_id,
                                  cls.status.in_([ScheduledStatus.SCHEDULED, ScheduledStatus.BLOCKED]))
                .order_by(cls.send_at, cls.id))
        return list(db.session.scalars(stmt))


# -- campaigns ------------------------------------------------------------------------------------
class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # launches itself at scheduled_at
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class RecipientState(StrEnum):
    PENDING = "pending"  # in the audience, not sent yet
    QUEUED = "queued"  # its Message exists and was handed to delivery (see Message.delivery_status)
    SKIPPED = "skipped"  # no usable channel, or no consent: see reason
    CANCELLED = "cancelled"  # the campaign was cancelled before its turn


class Campaign(Timestamped, db.Model):
    __table_args__ = (Index("ix_campaign_status", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    template_id: Mapped[int] = mapped_column(ForeignKey("outbound_template.id"))
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id"))
    status: Mapped[CampaignStatus] = mapped_column(StrEnumType(CampaignStatus, 12), default=CampaignStatus.DRAFT)
    # Values for variables that are not the contact's own ({{offer}}, {{date}}…).
    variables: Mapped[dict] = mapped_column(JSON, default=dict)
    # Fallback order after the contact's preferred channel, e.g. ["whatsapp", "sms", "email"].
    channel_order: Mapped[list] = mapped_column(JSON, default=list)
    require_opt_in: Mapped[bool] = mapped_column(default=False)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # Why it is not sending right now (outside the allowed hours, daily limit reached…).
    waiting_reason: Mapped[str | None] = mapped_column(String(40))

    template = relationship("OutboundTemplate", lazy="joined")
    segment = relationship("Segment", lazy="joined")
    created_by = relationship("User", lazy="joined")

    @property
    def is_editable(self) -> bool:
        return self.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)

    @property
    def is_live(self) -> bool:
        return self.status in (CampaignStatus.SENDING, CampaignStatus.PAUSED)


class CampaignRecipient(db.Model):
    """One row per contact of the audience, frozen at launch: the source of truth of who got what."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        Index("ix_recipient_campaign_state", "campaign_id", "state", "id"),
        # Throttling counts what a channel sent in the last minute / today.
        Index("ix_recipient_channel_queued", "channel_id", "queued_at"),
        Index("ix_recipient_contact", "contact_id", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    state: Mapped[RecipientState] = mapped_column(StrEnumType(RecipientState, 12), default=RecipientState.PENDING)
    reason: Mapped[str | None] = mapped_column(String(40))  # skipped: no_channel, opted_out, no_opt_in
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))

    contact = relationship("Contact", lazy="joined")
    channel = relationship("Channel", lazy="joined")
    reply_message = relationship("Message", foreign_keys=[reply_message_id])


# -- follow-ups -----------------------------------------------------------------------------------
class FollowUpTrigger(StrEnum):
    # An open conversation whose last message is ours, and the customer has been silent N days.
    NO_REPLY = "no_reply"
    # N days after an appointment: plugs in when appointments exist (see orchestrator/followups.py).
    AFTER_APPOINTMENT = "after_appointment"


class FollowUpRule(Timestamped, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    trigger: Mapped[FollowUpTrigger] = mapped_column(StrEnumType(FollowUpTrigger, 24))
    delay_days: Mapped[int] = mapped_column(default=2)
    template_id: Mapped[int] = mapped_column(ForeignKey("outbound_template.id"))
    max_per_conversation: Mapped[int] = mapped_column(default=1)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Also put this label on the conversation it follows up (an automation: "Relancé").
    label_id: Mapped[int | None] = mapped_column(ForeignKey("label.id", ondelete="SET NULL"))

    template = relationship("OutboundTemplate", lazy="joined")
    label = relationship("Label")

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[FollowUpRule]:
        return list(db.session.scalars(select(cls).where(cls.workspace_id == workspace_id).order_by(cls.id)))


class FollowUpOutcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # opted out, no usable channel, WhatsApp window without template…


class FollowUpSent(Timestamped, db.Model):
    """What a rule did for one occasion. The unique anchor (the message we are following up, an
    appointment…) makes the sweep idempotent: an occasion is handled once, whatever reruns."""

    __table_args__ = (
        UniqueConstraint("rule_id", "anchor"),
        Index("ix_followup_rule_conversation", "rule_id", "conversation_id"),
        Index("ix_followup_channel_created", "channel_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("follow_up_rule.id"))
    anchor: Mapped[str] = mapped_column(String(64))  # "message:123", "appointment:45"
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))
    outcome: Mapped[FollowUpOutcome] = mapped_column(StrEnumType(FollowUpOutcome, 12))
    reason: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
