"""Tickets: accountable work for a CRM client, with a status flow, SLA deadlines and a history."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import gettext as _
from sqlalchemy import (
    JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, and_, func, or_, select, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..errors import NotAllowed
from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime, utcnow
from .conversation import Priority


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @classmethod
    def active(cls) -> tuple[TicketStatus, ...]:
        """Statuses in which the ticket still needs work (and counts in an agent's load)."""
        return (cls.OPEN, cls.IN_PROGRESS, cls.WAITING_ON_CUSTOMER)


class TicketCategory(StrEnum):
    GENERAL = "general"
    BILLING = "billing"
    TECHNICAL = "technical"
    BUG_REPORT = "bug_report"
    ACCOUNT = "account"
    SUGGESTION = "suggestion"


class TicketSource(StrEnum):
    """Where the ticket was created: kept for reports and for the wording of the first event."""

    AGENT = "agent"  # the contact's page or the new-ticket form
    CONVERSATION = "conversation"  # "Escalate to ticket" in the inbox
    API = "api"
    PORTAL = "portal"
    TELEGRAM = "telegram"
    AI = "ai"


# The status flow. Closed is final: a customer writing again starts a new ticket.
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset({TicketStatus.IN_PROGRESS, TicketStatus.WAITING_ON_CUSTOMER,
                                  TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.IN_PROGRESS: frozenset({TicketStatus.OPEN, TicketStatus.WAITING_ON_CUSTOMER,
                                         TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.WAITING_ON_CUSTOMER: frozenset({TicketStatus.OPEN, TicketStatus.IN_PROGRESS,
                                                 TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset(),
}

PENDING_HOURS = 24  # a customer waiting longer than this on the team is "pending" (KPI, daily reminder)
PRIORITY_LADDER = (Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL)


def allowed_transitions(current: TicketStatus) -> frozenset[TicketStatus]:
    return TRANSITIONS[TicketStatus(current)]


def check_transition(current: TicketStatus, target: TicketStatus) -> None:
    """Raise NotAllowed, with a message a person can act on, for a move the flow forbids."""
    current, target = TicketStatus(current), TicketStatus(target)
    if current == target:
        raise NotAllowed(_("The ticket is already in this status."))
    if target not in TRANSITIONS[current]:
        if current == TicketStatus.CLOSED:
            raise NotAllowed(_("A closed ticket cannot change status: create a new ticket instead."))
        raise NotAllowed(_("A ticket cannot go from “%(current)s” to “%(target)s”.",
                           current=status_text(current), target=status_text(target)))


def status_text(status: TicketStatus) -> str:
    """A status in the reader's language (messages built in Python; templates have their macro)."""
    return {TicketStatus.OPEN: _("Open"), TicketStatus.IN_PROGRESS: _("In progress"),
            TicketStatus.WAITING_ON_CUSTOMER: _("Waiting on customer"), TicketStatus.RESOLVED: _("Resolved"),
            TicketStatus.CLOSED: _("Closed")}[TicketStatus(status)]


def raised_priority(priority: Priority) -> Priority:
    """One step up the ladder; critical stays critical."""
    index = PRIORITY_LADDER.index(Priority(priority))
    return PRIORITY_LADDER[min(index + 1, len(PRIORITY_LADDER) - 1)]


_ACTIVE_SQL = "status IN ('open', 'in_progress', 'waiting_on_customer')"


class TicketConversation(db.Model):
    """The conversations a ticket was discussed in (escalated from, replied on)."""

    __tablename__ = "ticket_conversation"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation = relationship("Conversation", viewonly=True)


class Ticket(Timestamped, db.Model):
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        Index("ix_ticket_ws_status_created", "workspace_id", "status", "id"),
        Index("ix_ticket_ws_assignee_status", "workspace_id", "assignee_id", "status"),
        Index("ix_ticket_ws_contact", "workspace_id", "contact_id", "id"),
        # The SLA sweeps scan active tickets by deadline, across workspaces.
        Index("ix_ticket_first_response_due", "first_response_due_at",
              sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("ix_ticket_resolution_due", "resolution_due_at",
              sqlite_where=text(_ACTIVE_SQL), postgresql_where=text(_ACTIVE_SQL)),
        Index("ix_ticket_ws_resolution_due", "workspace_id", "resolution_due_at", "id"),
        # Reports: tickets opened / resolved / closed in a date range (inbox/models/reports.py).
        Index("ix_ticket_ws_created", "workspace_id", "created_at"),
        Index("ix_ticket_ws_resolved", "workspace_id", "resolved_at"),
        Index("ix_ticket_ws_closed", "workspace_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    number: Mapped[int] = mapped_column()  # TKT-000123, unique per workspace
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[TicketCategory] = mapped_column(StrEnumType(TicketCategory, 16), default=TicketCategory.GENERAL)
    priority: Mapped[Priority] = mapped_column(StrEnumType(Priority, 16), default=Priority.MEDIUM)
    status: Mapped[TicketStatus] = mapped_column(StrEnumType(TicketStatus, 24), default=TicketStatus.OPEN)
    source: Mapped[TicketSource] = mapped_column(StrEnumType(TicketSource, 16), default=TicketSource.AGENT)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    resolution: Mapped[str | None] = mapped_column(Text)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # SLA: deadlines computed in business time when the ticket is created (or re-prioritised).
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_agent_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # What the SLA job already did, so a re-run (or a second worker) does it once.
    first_response_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The SLA clock stops while the ticket waits on the customer: since when (None: running),
    # and the business time of the pauses already over, which the deadlines include.
    sla_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_paused_seconds: Mapped[int] = mapped_column(default=0, server_default="0")

    contact = relationship("Contact", lazy="joined", innerjoin=True)
    assignee = relationship("User", lazy="joined", foreign_keys=[assignee_id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    rating = relationship("Rating", uselist=False, back_populates="ticket")
    conversations = relationship("Conversation", secondary="ticket_conversation",
                                 order_by="Conversation.id", viewonly=True)
    # The same, through the link rows: joined to the ticket, these make flat LEFT JOINs, where
    # `conversations` makes a nested join that SQLite answers by reading every link.
    links = relationship("TicketConversation", order_by="TicketConversation.conversation_id", viewonly=True)

    @property
    def reference(self) -> str:
        return format_reference(self.number)

    @property
    def is_active(self) -> bool:
        return self.status in TicketStatus.active()

    @property
    def sla_paused(self) -> bool:
        return self.sla_paused_at is not None

    def sla_clock(self, now: datetime) -> datetime:
        """The moment the SLA deadlines are measured against: stopped while the ticket waits."""
        return self.sla_paused_at or now

    def first_response_breached(self, now: datetime) -> bool:
        due = self.first_response_due_at
        return due is not None and (self.first_responded_at or self.sla_clock(now)) > due

    def resolution_breached(self, now: datetime) -> bool:
        due = self.resolution_due_at
        return due is not None and (self.resolved_at or self.closed_at or self.sla_clock(now)) > due

    def sla_breached(self, now: datetime) -> bool:
        return self.first_response_breached(now) or self.resolution_breached(now)

    @property
    def is_overdue(self) -> bool:
        """An active ticket past one of its deadlines, right now."""
        return self.is_active and self.sla_breached(utcnow())

    def next_deadline(self) -> tuple[str, datetime] | None:
        """The SLA target the team is racing against now: first response, then resolution."""
        if not self.is_active:
            return None
        if self.first_responded_at is None and self.first_response_due_at:
            return "first_response", self.first_response_due_at
        if self.resolution_due_at:
            return "resolution", self.resolution_due_at
        return None

    @classmethod
    def pending_clause(cls, now: datetime, *, hours: int = PENDING_HOURS):
        """SQL: the customer has waited on the team for more than `hours` (the KPI and the
        daily reminder): open or in progress, their last word (or the creation) older than
        that, and no agent answer since."""
        waiting_since = func.coalesce(cls.last_customer_message_at, cls.created_at)
        return and_(cls.status.in_([TicketStatus.OPEN, TicketStatus.IN_PROGRESS]),
                    waiting_since < now - timedelta(hours=hours),
                    or_(cls.last_agent_reply_at.is_(None), cls.last_agent_reply_at < waiting_since))

    @classmethod
    def by_reference(cls, workspace_id: int, reference: str) -> Ticket | None:
        number = parse_reference(reference)
        if number is None:
            return None
        return db.session.scalar(select(cls).where(cls.workspace_id == workspace_id, cls.number == number))

    @classmethod
    def active_of_contact(cls, workspace_id: int, contact_id: int, limit: int = 20) -> list[Ticket]:
        stmt = (select(cls).where(cls.workspace_id == workspace_id, cls.contact_id == contact_id,
                                  cls.status.in_(list(TicketStatus.active())))
                .order_by(cls.id.desc()).limit(limit))
        return list(db.session.scalars(stmt))


def format_reference(number: int) -> str:
    return f"TKT-{number:06d}"


def parse_reference(reference: str) -> int | None:
    """ "TKT-000123", "tkt-123", "#123" or "123" → 123."""
    raw = (reference or "").strip().upper().removeprefix("TKT-").removeprefix("TKT").lstrip("#")
    return int(raw) if raw.isdigit() else None


class TicketEventKind(StrEnum):
    CREATED = "created"
    PUBLIC_REPLY = "public_reply"  # an agent's answer, sent to the customer (message_id)
    INTERNAL_NOTE = "internal_note"  # agents only, never sent
    CUSTOMER_MESSAGE = "customer_message"  # the customer wrote (message_id, or body from the portal)
    STATUS = "status"
    ASSIGNED = "assigned"
    PRIORITY = "priority"
    CATEGORY = "category"
    LINKED = "linked"
    SLA_BREACHED = "sla_breached"
    REOPENED = "reopened"
    AUTO_CLOSED = "auto_closed"
    RATED = "rated"
    CUSTOMER_NOTIFIED = "customer_notified"  # an automated message (confirmation, rating request…)


class TicketEvent(db.Model):
    """One line of the ticket's history, shown by date. `internal` lines never leave the agents."""

    __table_args__ = (
        Index("ix_ticket_event_ticket_created", "ticket_id", "created_at", "id"),
        # A customer message or a reply is recorded once on a ticket, whoever calls twice.
        UniqueConstraint("ticket_id", "message_id"),
        # The composer sends a key per draft: a double click cannot add a note twice.
        UniqueConstraint("ticket_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    kind: Mapped[TicketEventKind] = mapped_column(StrEnumType(TicketEventKind, 24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    internal: Mapped[bool] = mapped_column(default=True)
    body: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    # Facts (from/to status, agent names…), worded when shown, in the reader's language.
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User", lazy="joined")
    message = relationship("Message", lazy="joined")

    @property
    def is_discussion(self) -> bool:
        return self.kind in (TicketEventKind.PUBLIC_REPLY, TicketEventKind.INTERNAL_NOTE,
                             TicketEventKind.CUSTOMER_MESSAGE, TicketEventKind.CREATED)

    @classmethod
    def public_of(cls, ticket_id: int) -> list[TicketEvent]:
        """What a customer may see (portal, customer API): never internal lines."""
        stmt = (select(cls).where(cls.ticket_id == ticket_id, cls.internal.is_(False))
                .order_by(cls.created_at, cls.id))
        return list(db.session.scalars(stmt))


class Rating(db.Model):
    """The customer's 1–5 satisfaction score, once per ticket."""

    __table_args__ = (
        CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        Index("ix_rating_ws_created", "workspace_id", "created_at"),
        Index("ix_rating_agent", "agent_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), unique=True)
    score: Mapped[int] = mapped_column()
    comment: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # sms, whatsapp, telegram, email, link, portal…
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # feeds satisfaction per agent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket = relationship("Ticket", back_populates="rating")


class TicketSettings(db.Model):
    """Per-workspace ticket behaviour. A workspace without a row uses these defaults."""

    __tablename__ = "ticket_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), primary_key=True)
    auto_close_days: Mapped[int] = mapped_column(default=5)  # 0 turns auto-close off
    reopen_window_days: Mapped[int] = mapped_column(default=7)
    sla_reminder_hours: Mapped[int] = mapped_column(default=6)
    auto_assign: Mapped[bool] = mapped_column(default=False)
    # Seven lists (Monday first) of ["HH:MM", "HH:MM"]; null → Monday to Friday, 09:00–18:00.
    business_hours: Mapped[list | None] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    request_ratings: Mapped[bool] = mapped_column(default=True)
    confirm_new_tickets: Mapped[bool] = mapped_column(default=True)
    email_notifications: Mapped[bool] = mapped_column(default=True)
    on_call_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    DEFAULTS = {"auto_close_days": 5, "reopen_window_days": 7, "sla_reminder_hours": 6,
                "auto_assign": False, "business_hours": None, "currency": "EUR",
                "request_ratings": True, "confirm_new_tickets": True, "email_notifications": True,
                "on_call_user_id": None}

    @classmethod
    def of(cls, workspace_id: int) -> TicketSettings:
        """The workspace's settings; a transient row with the defaults when none was saved."""
        row = db.session.get(cls, workspace_id)
        return row if row is not None else cls(workspace_id=workspace_id, **cls.DEFAULTS)

    @classmethod
    def ensure(cls, workspace_id: int) -> TicketSettings:
        row = db.session.get(cls, workspace_id)
        if row is None:
            row = cls(workspace_id=workspace_id, **cls.DEFAULTS)
            db.session.add(row)
        return row
