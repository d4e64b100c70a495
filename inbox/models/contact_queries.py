"""The CRM's read side: a page of the client list in one query (whatever its size), and the
facts the client page shows (conversations, satisfaction)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, and_, case, exists, func, literal, or_, select

from ..extensions import db
from ..kinds import ChannelKind
from .budget import Budget, BudgetPeriod, period_bounds
from .contact import Contact, ContactIdentity
from .conversation import Conversation
from .gdpr import ContactErasure
from .ticket import Rating, Ticket, TicketStatus, format_reference
from .timeentry import TimeEntry, rate_in_effect
from .user import User

# Spend is rounded to the cent once, at the end (timeentry.total_spend): Σ minutes × rate is
# "over" when Σ / 60 rounds to at least the amount, i.e. Σ ≥ 60 × amount − 0.3.
_HALF_CENT_MINUTES = Decimal("0.3")


@dataclass(frozen=True, slots=True)
class ContactFilter:
    q: str = ""
    company: str = ""
    channel: ChannelKind | None = None  # preferred channel
    open_tickets: bool = False
    over_budget: bool = False

    @classmethod
    def from_args(cls, args) -> ContactFilter:
        """Unknown values fall back to the defaults: URLs get shared and edited by hand."""
        flag = lambda name: args.get(name) in ("1", "on", "true")  # noqa: E731
        return cls(
            q=(args.get("q") or "").strip()[:100],
            company=" ".join((args.get("company") or "").split())[:160],
            channel=ChannelKind(args["channel"]) if args.get("channel") in set(ChannelKind) else None,
            open_tickets=flag("open"), over_budget=flag("over_budget"),
        )

    def to_args(self, **changes) -> dict[str, str]:
        f = replace(self, **changes) if changes else self
        args = {"q": f.q or None, "company": f.company or None, "channel": f.channel,
                "open": "1" if f.open_tickets else None, "over_budget": "1" if f.over_budget else None}
        return {k: str(v) for k, v in args.items() if v is not None}

    @property
    def is_empty(self) -> bool:
        return self == ContactFilter()


@dataclass(frozen=True, slots=True)
class ContactCursor:
    """Keyset position in the (name, id) order: every page costs the same, at any depth."""

    name: str
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.name, self.id], ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, raw: str | None) -> ContactCursor | None:
        if not raw:
            return None
        try:
            name, ident = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            return cls(str(name), int(ident))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class ContactRow:
    contact: Contact
    open_tickets: int
    over_budget: bool
    erased: bool


def open_tickets_count():
    """SQL, per client row: their tickets that still need work."""
    return (select(func.count(Ticket.id))
            .where(Ticket.workspace_id == Contact.workspace_id, Ticket.contact_id == Contact.id,
                   Ticket.status.in_(list(TicketStatus.active())))
            .correlate(Contact).scalar_subquery())


def over_budget_clause(today: date):
    """SQL, per client row: spend in the current period reached 100 % of one of their budgets
    (the same figure as BudgetUse.level == "over", computed in the database)."""
    bounds = {period: period_bounds(period, today) for period in BudgetPeriod}

    def bound(i: int):
        return case(*[(Budget.period == p, literal(bounds[p][i], Date())) for p in BudgetPeriod])

    spent = (select(func.coalesce(func.sum(TimeEntry.minutes * rate_in_effect()), 0))
             .join(User, User.id == TimeEntry.user_id)
             .where(TimeEntry.workspace_id == Budget.workspace_id, TimeEntry.contact_id == Budget.contact_id,
                    TimeEntry.minutes.is_not(None), TimeEntry.work_date >= bound(0), TimeEntry.work_date < bound(1))
             .correlate(Budget).scalar_subquery())
    return exists().where(Budget.contact_id == Contact.id, Budget.amount > 0,
                          spent >= Budget.amount * 60 - _HALF_CENT_MINUTES)


def _search(workspace_id: int, q: str):
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"%{escaped}%"
    identity_match = exists().where(ContactIdentity.contact_id == Contact.id,
                                    ContactIdentity.workspace_id == workspace_id,
                                    ContactIdentity.address.ilike(like, escape="\\"))
    return or_(Contact.name.ilike(like, escape="\\"), Contact.company.ilike(like, escape="\\"),
               Contact.email.ilike(like, escape="\\"), Contact.phone.ilike(like, escape="\\"),
               Contact.whatsapp.ilike(like, escape="\\"), identity_match)


def contacts_page(workspace_id: int, f: ContactFilter, *, today: date, after: ContactCursor | None = None,
                  limit: int = 25) -> tuple[list[ContactRow], ContactCursor | None]:
    """One page of clients by name, with their open-ticket count and budget state: one query
    (plus one for their identities), whatever the page size."""
    over = over_budget_clause(today)
    erased = exists().where(ContactErasure.contact_id == Contact.id)
    stmt = (select(Contact, open_tickets_count().label("open_tickets"), over.label("over_budget"),
                   erased.label("erased"))
            .where(Contact.workspace_id == workspace_id))
    if f.q:
        stmt = stmt.where(_search(workspace_id, f.q))
    if f.company:
        stmt = stmt.where(func.lower(Contact.company) == f.company.lower())
    if f.channel:
        stmt = stmt.where(Contact.preferred_channel == f.channel)
    if f.open_tickets:
        stmt = stmt.where(exists().where(Ticket.workspace_id == workspace_id, Ticket.contact_id == Contact.id,
                                         Ticket.status.in_(list(TicketStatus.active()))))
    if f.over_budget:
        stmt = stmt.where(over)
    if after is not None:
        stmt = stmt.where(or_(Contact.name > after.name, and_(Contact.name == after.name, Contact.id > after.id)))
    stmt = stmt.order_by(Contact.name, Contact.id).limit(limit + 1)
    rows = [ContactRow(contact, int(count or 0), bool(is_over), bool(is_erased))
            for contact, count, is_over, is_erased in db.session.execute(stmt).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (ContactCursor(rows[-1].contact.name, rows[-1].contact.id) if more else None)


def conversations_of_contact(workspace_id: int, contact_id: int, limit: int = 20) -> list[Conversation]:
    stmt = (select(Conversation).where(Conversation.workspace_id == workspace_id,
                                       Conversation.contact_id == contact_id)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit))
    return list(db.session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class Satisfaction:
    count: int
    mean: Decimal | None
    distribution: dict[int, int]  # score → how many
    recent: list[tuple[Rating, str]]  # the latest ratings with a comment, and their ticket's reference

    def share(self, score: int) -> int:
        """Percentage of ratings with this score (for the bars)."""
        return round(100 * self.distribution.get(score, 0) / self.count) if self.count else 0


def satisfaction_of_contact(workspace_id: int, contact_id: int, *, recent: int = 3) -> Satisfaction:
    by_score = dict(db.session.execute(
        select(Rating.score, func.count(Rating.id)).join(Ticket, Ticket.id == Rating.ticket_id)
        .where(Ticket.workspace_id == workspace_id, Ticket.contact_id == contact_id)
        .group_by(Rating.score)).all())
    count = sum(by_score.values())
    mean = (Decimal(sum(s * n for s, n in by_score.items())) / count).quantize(Decimal("0.1")) if count else None
    comments = db.session.execute(
        select(Rating, Ticket.number).join(Ticket, Ticket.id == Rating.ticket_id)
        .where(Ticket.workspace_id == workspace_id, Ticket.contact_id == contact_id,
               Rating.comment.is_not(None), Rating.comment != "")
        .order_by(Rating.created_at.desc()).limit(recent)).all()
    return Satisfaction(count=count, mean=mean, distribution={int(s): int(n) for s, n in by_score.items()},
                        recent=[(rating, format_reference(number)) for rating, number in comments])
