"""Saved segments of contacts and the query builder behind them.

A segment stores its rules as JSON (`SegmentRules.to_dict()`); the audience is computed when it
is asked for, so a segment always reflects today's contacts. Every rule narrows the audience
(AND); a rule left empty does not filter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, ForeignKey, String, exists, func, select
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..kinds import ChannelKind
from .base import Timestamped
from .contact import Contact, ContactIdentity
from .label import ContactLabel
from .message import Message

OPEN_TICKETS = ("", "any", "none")


@dataclass(frozen=True, slots=True)
class SegmentRules:
    label_ids: tuple[int, ...] = ()  # contacts with any of these labels
    channel: ChannelKind | None = None  # has an address on this channel kind
    company: str = ""  # company name contains (case-insensitive)
    last_contact_within_days: int | None = None  # a message (either way) in the last N days
    no_contact_for_days: int | None = None  # no message for at least N days
    open_tickets: str = ""  # "any": has an open ticket, "none": has none
    preferred_channel: ChannelKind | None = None
    language: str = ""  # contact.locale ("fr", "en")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["label_ids"] = list(self.label_ids)
        return {k: (str(v) if isinstance(v, ChannelKind) else v) for k, v in data.items() if v not in (None, "", [])}

    @classmethod
    def from_dict(cls, data: dict | None) -> SegmentRules:
        data = data or {}

        def kind(value):
            return ChannelKind(value) if value in set(ChannelKind) else None

        def days(value):
            try:
                number = int(value)
            except (TypeError, ValueError):
                return None
            return number if 0 < number <= 3650 else None

        return cls(
            label_ids=tuple(int(i) for i in data.get("label_ids") or () if str(i).isdigit()),
            channel=kind(data.get("channel")),
            company=str(data.get("company") or "").strip()[:160],
            last_contact_within_days=days(data.get("last_contact_within_days")),
            no_contact_for_days=days(data.get("no_contact_for_days")),
            open_tickets=data.get("open_tickets") if data.get("open_tickets") in OPEN_TICKETS else "",
            preferred_channel=kind(data.get("preferred_channel")),
            language=str(data.get("language") or "").strip()[:8],
        )


class Segment(Timestamped, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    rules_json: Mapped[dict] = mapped_column("rules", JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    @property
    def rules(self) -> SegmentRules:
        return SegmentRules.from_dict(self.rules_json)

    @classmethod
    def of_workspace(cls, workspace_id: int) -> list[Segment]:
        return list(db.session.scalars(select(cls).where(cls.workspace_id == workspace_id).order_by(cls.name)))


def segment_contact_ids(workspace_id: int, rules: SegmentRules, *, now: datetime):
    """A SELECT of the matching contacts' ids, scoped to the workspace (usable as a subquery)."""
    stmt = select(Contact.id).where(Contact.workspace_id == workspace_id)
    if rules.label_ids:
        stmt = stmt.where(Contact.id.in_(
            select(ContactLabel.contact_id).where(ContactLabel.label_id.in_(rules.label_ids))))
    if rules.channel:
        stmt = stmt.where(exists().where(ContactIdentity.contact_id == Contact.id,
                                         ContactIdentity.kind == rules.channel))
    if rules.company:
        escaped = rules.company.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Contact.company.ilike(f"%{escaped}%", escape="\\"))
    if rules.last_contact_within_days:
        since = now - timedelta(days=rules.last_contact_within_days)
        stmt = stmt.where(exists().where(Message.contact_id == Contact.id, Message.created_at >= since,
                                         Message.internal.is_(False)))
    if rules.no_contact_for_days:
        since = now - timedelta(days=rules.no_contact_for_days)
        stmt = stmt.where(~exists().where(Message.contact_id == Contact.id, Message.created_at >= since,
                                          Message.internal.is_(False)))
    if rules.open_tickets in ("any", "none"):
        from .ticket import Ticket, TicketStatus

        has_open = exists().where(Ticket.workspace_id == workspace_id, Ticket.contact_id == Contact.id,
                                  Ticket.status.in_(list(TicketStatus.active())))
        stmt = stmt.where(has_open if rules.open_tickets == "any" else ~has_open)
    if rules.preferred_channel:
        stmt = stmt.where(Contact.preferred_channel == rules.preferred_channel)
    if rules.language:
        stmt = stmt.where(func.lower(Contact.locale) == rules.language.lower())
    return stmt


def segment_count(workspace_id: int, rules: SegmentRules, *, now: datetime) -> int:
    sub = segment_contact_ids(workspace_id, rules, now=now).subquery()
    return int(db.session.scalar(select(func.count()).select_from(sub)) or 0)


def segment_sample(workspace_id: int, rules: SegmentRules, *, now: datetime, limit: int = 5) -> list[Contact]:
    ids = segment_contact_ids(workspace_id, rules, now=now)
    stmt = select(Contact).where(Contact.id.in_(ids)).order_by(Contact.name, Contact.id).limit(limit)
    return list(db.session.scalars(stmt))
