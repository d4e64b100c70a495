"""The tickets' read side: a page of the list in one query, the KPI strip in a few, the timeline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import contains_eager, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from .base import UTCDateTime, seconds_between
from .. import search
from .conversation import Priority
from .message import Direction, Message, SenderKind
from .timeentry import Spend, TimeEntry, rate_in_effect, spend_of, total_spend
from .user import User
from .ticket import (
    Rating, Ticket, TicketCategory, TicketConversation, TicketEvent, TicketStatus, parse_reference,
)

STATUS_ACTIVE, STATUS_ANY = "active", "any"
SORTS = ("newest", "due")
KPI_WINDOW = timedelta(days=30)
# The ticket table under another name, for the KPI query's subquery (a Core alias: aliasing
# the mapped class on every request cost more than the query).
_ACTIVE_IDS_FROM = Ticket.__table__.alias("active_ticket")


@dataclass(frozen=True, slots=True)
class TicketFilter:
    status: str = STATUS_ACTIVE
    priority: Priority | None = None
    category: TicketCategory | None = None
    assignee: str = ""  # "", "me", "none" or a user id
    breached: bool = False
    contact_id: int | None = None
    q: str = ""
    sort: str = "newest"

    @classmethod
    def from_args(cls, args) -> TicketFilter:
        """Unknown values fall back to the defaults: URLs get shared and edited by hand."""
        status = args.get("status") or STATUS_ACTIVE
        assignee = args.get("assignee", "")
        contact = args.get("contact", "")
        return cls(
            status=status if status in {*TicketStatus, STATUS_ACTIVE, STATUS_ANY} else STATUS_ACTIVE,
            priority=Priority(args["priority"]) if args.get("priority") in set(Priority) else None,
            category=TicketCategory(args["category"]) if args.get("category") in set(TicketCategory) else None,
            assignee=assignee if assignee in ("me", "none") or assignee.isdigit() else "",
            breached=args.get("breached") in ("1", "on", "true"),
            contact_id=int(contact) if contact.isdigit() else None,
            q=(args.get("q") or "").strip()[:100],
            sort=args.get("sort") if args.get("sort") in SORTS else "newest",
        )

    def to_args(self, **changes) -> dict[str, str]:
        f = replace(self, **changes) if changes else self
        args = {"status": f.status if f.status != STATUS_ACTIVE else None, "priority": f.priority,
                "category": f.category, "assignee": f.assignee or None, "breached": "1" if f.breached else None,
                "contact": f.contact_id, "q": f.q or None, "sort": f.sort if f.sort != "newest" else None}
        return {k: str(v) for k, v in args.items() if v is not None}


@dataclass(frozen=True, slots=True)
class TicketCursor:
    """Keyset position: the id for "newest"; (resolution due, id) for "due"."""

    id: int
    due: datetime | None = None

    def encode(self) -> str:
        return f"{self.due.timestamp():.6f}_{self.id}" if self.due else str(self.id)

    @classmethod
    def decode(cls, raw: str | None) -> TicketCursor | None:
        try:
            if raw and "_" in raw:
                stamp, ident = raw.split("_")
                return cls(int(ident), datetime.fromtimestamp(float(stamp), UTC))
            return cls(int(raw)) if raw else None
        except ValueError:
            return None


def breached_clause(now: datetime):
    """SQL: the ticket missed (or is missing) a deadline."""
    at = func.coalesce(Ticket.sla_paused_at, literal(now, UTCDateTime()))  # stopped while waiting
    return or_(Ticket.first_response_due_at < func.coalesce(Ticket.first_responded_at, at),
               Ticket.resolution_due_at < func.coalesce(Ticket.resolved_at, Ticket.closed_at, at))


def _filtered(workspace_id: int, f: TicketFilter, *, user_id: int, now: datetime):
    stmt = select(Ticket).where(Ticket.workspace_id == workspace_id)
    if f.status == STATUS_ACTIVE:
        stmt = stmt.where(Ticket.status.in_(list(TicketStatus.active())))
    elif f.status != STATUS_ANY:
        stmt = stmt.where(Ticket.status == f.status)
    if f.priority:
        stmt = stmt.where(Ticket.priority == f.priority)
    if f.category:
        stmt = stmt.where(Ticket.category == f.category)
    if f.assignee == "me":
        stmt = stmt.where(Ticket.assignee_id == user_id)
    elif f.assignee == "none":
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    elif f.assignee:
        stmt = stmt.where(Ticket.assignee_id == int(f.assignee))
    if f.contact_id:
        stmt = stmt.where(Ticket.contact_id == f.contact_id)
    if f.breached:
        stmt = stmt.where(breached_clause(now))
    if f.q:
        stmt = stmt.where(_search(workspace_id, f.q))
    return stmt


def _search(workspace_id: int, q: str):
    """The ticket is among those whose text, client or reference matches `q`."""
    # One IN over the union of what each index finds (ticket text, clients, the number), not an OR
    # of three conditions: SQLite then walks the candidate ids newest first and stops at the page
    # size, where an OR fetched and sorted every match (150 ms for a word in 11,000 tickets). The
    # subject LIKE '%q%' scan this replaced cost 25-50 ms per search on 30,000 tickets when few
    # matched (3 ms now); a word in a third of them costs more than the scan did (20 ms vs 8).
    dialect_name = db.session.get_bind().dialect.name
    candidates = [search.ticket_ids_matching(q, dialect_name=dialect_name)]  # any workspace
    if not search.is_short_query(q):  # 1-2 characters: a number or a subject word's start, not every client
        contacts = search.contacts_matching(workspace_id, q, dialect_name=dialect_name)
        candidates.append(select(Ticket.id).where(Ticket.workspace_id == workspace_id, Ticket.contact_id.in_(contacts)))
    number = parse_reference(q)
    if number is not None:
        candidates.append(select(Ticket.id).where(Ticket.workspace_id == workspace_id, Ticket.number == number))
    # PostgreSQL: UNION, not UNION ALL, so the planner estimates the candidates' count (it assumed 200
    # distinct ids and looked 11,500 tickets up one by one for a common word: 100 ms; a hash join, 70 ms).
    if dialect_name == "postgresql":
        first, *others = candidates
        return Ticket.id.in_(first.union(*others))
    return Ticket.id.in_(union_all(*candidates))


def tickets_page(workspace_id: int, f: TicketFilter, *, user_id: int, now: datetime,
                 after: TicketCursor | None, limit: int) -> tuple[list[Ticket], TicketCursor | None]:
    """One page of tickets (contact and assignee joined in the same query) and the next cursor."""
    stmt = _filtered(workspace_id, f, user_id=user_id, now=now)
    if f.sort == "due":
        due = func.coalesce(Ticket.resolution_due_at, literal(datetime(9999, 1, 1, tzinfo=UTC), UTCDateTime()))
        if after and after.due:
            stmt = stmt.where(or_(Ticket.resolution_due_at > after.due,
                                  and_(Ticket.resolution_due_at == after.due, Ticket.id > after.id)))
        stmt = stmt.order_by(due, Ticket.id)
    else:
        if after:
            stmt = stmt.where(Ticket.id < after.id)
        stmt = stmt.order_by(Ticket.id.desc())
    rows = list(db.session.scalars(stmt.limit(limit + 1)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return rows, None
    last = rows[-1]
    return rows, TicketCursor(last.id, last.resolution_due_at if f.sort == "due" else None)


@dataclass(frozen=True, slots=True)
class Kpis:
    unassigned: int
    open_critical: int
    waiting_over_24h: int
    breached: int
    active: int
    first_response_minutes: int | None  # mean, last 30 days
    resolved_within_sla: int | None  # percent of tickets resolved in the last 30 days
    resolved_count: int
    satisfaction: Decimal | None  # mean score, last 30 days
    ratings_count: int


def ticket_kpis(workspace_id: int, *, now: datetime) -> Kpis:
    """The strip above the list: counts in one query, 30-day averages in two more."""
    def count(*conds):
        return func.coalesce(func.sum(case((and_(*conds), 1), else_=0)), 0)

    # Every counter is about active tickets (waiting ones are open or in progress), so only they
    # are read. Their ids come from a subquery on the (workspace, status) index, the rows by
    # primary key (~2 ms): with a plain WHERE, SQLite's statistics (rows per status averaged over
    # all statuses: 6,000 of 30,000 on the bench) made its planner expect most tickets active and
    # scan the whole table (20-30 ms). PostgreSQL plans both forms alike.
    chosen = _ACTIVE_IDS_FROM.c
    active_ids = select(chosen.id).where(chosen.workspace_id == workspace_id,
                                         chosen.status.in_(list(TicketStatus.active())))
    counts = db.session.execute(
        select(
            count(Ticket.assignee_id.is_(None)).label("unassigned"),
            count(Ticket.priority == Priority.CRITICAL).label("open_critical"),
            # The customer has been waiting on the team for more than a day.
            count(Ticket.pending_clause(now)).label("waiting"),
            count(breached_clause(now)).label("breached"),
            func.count().label("active"),
        ).where(Ticket.id.in_(active_ids))
    ).one()
    since = now - KPI_WINDOW
    finished_at = func.coalesce(Ticket.resolved_at, Ticket.closed_at)
    finished = and_(finished_at.is_not(None), Ticket.resolution_due_at.is_not(None))
    # Averaged in SQL: the window holds thousands of tickets on a busy workspace, and loading
    # their timestamps cost the list page ~40 ms.
    recent = db.session.execute(
        select(
            func.avg(case((Ticket.first_responded_at.is_not(None),
                           seconds_between(Ticket.first_responded_at, Ticket.created_at)))).label("response_s"),
            count(finished).label("done"),
            count(finished, finished_at <= Ticket.resolution_due_at).label("within"),
        ).where(Ticket.workspace_id == workspace_id, Ticket.created_at >= since)
    ).one()
    rating = db.session.execute(
        select(func.avg(Rating.score), func.count(Rating.id))
        .where(Rating.workspace_id == workspace_id, Rating.created_at >= since)).one()
    return Kpis(
        unassigned=int(counts.unassigned), open_critical=int(counts.open_critical),
        waiting_over_24h=int(counts.waiting), breached=int(counts.breached), active=int(counts.active),
        first_response_minutes=round(float(recent.response_s) / 60) if recent.response_s is not None else None,
        resolved_within_sla=round(100 * int(recent.within) / int(recent.done)) if recent.done else None,
        resolved_count=int(recent.done),
        satisfaction=Decimal(str(rating[0])).quantize(Decimal("0.1")) if rating[1] else None,
        ratings_count=int(rating[1]),
    )


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    event: TicketEvent | None = None
    message: Message | None = None  # a message of a linked conversation not recorded as an event

    @property
    def key(self) -> str:
        return f"ev-{self.event.id}" if self.event else f"msg-{self.message.id}"


def ticket_timeline(ticket: Ticket, *, limit: int = 300) -> list[TimelineItem]:
    """The ticket's history by date: its events, plus what was said in its conversations
    (what led to an escalation, inbox replies, customer messages not already on the ticket)."""
    linked = select(TicketConversation.conversation_id).where(TicketConversation.ticket_id == ticket.id)
    said = list(db.session.scalars(
        select(Message).where(Message.conversation_id.in_(linked), Message.sender_kind != SenderKind.SYSTEM)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)))
    # An event's message is most often one of those (the customer's words, the confirmation):
    # it is taken from there rather than loaded again with the events (and its files twice).
    events = list(db.session.scalars(
        select(TicketEvent).options(lazyload(TicketEvent.message)).where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc()).limit(limit)))
    by_id = {m.id: m for m in said}
    missing = {e.message_id for e in events if e.message_id and e.message_id not in by_id}
    if missing:
        by_id.update((m.id, m) for m in db.session.scalars(select(Message).where(Message.id.in_(missing))))
    for e in events:
        if e.message_id:
            set_committed_value(e, "message", by_id.get(e.message_id))
    known = {e.message_id for e in events if e.message_id}
    messages = [m for m in said if m.id not in known]
    items = [TimelineItem(e.created_at, event=e) for e in events] + [TimelineItem(m.created_at, message=m) for m in messages]
    items.sort(key=lambda i: (i.at, i.key))
    return items[-limit:]


def first_inbound_messages(conversation_id: int, limit: int = 5) -> list[Message]:
    """The latest customer messages of a conversation: the escalation form's description."""
    stmt = (select(Message).where(Message.conversation_id == conversation_id, Message.direction == Direction.INBOUND)
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    return list(reversed(list(db.session.scalars(stmt))))


@dataclass(frozen=True, slots=True)
class TicketTime:
    """The time panel of a ticket's page."""
    entries: list[TimeEntry]  # newest first
    spend: Spend  # every finished entry of the ticket, costed at the rate in effect on its day
    running: TimeEntry | None  # the reader's running timer, on this ticket or another


def ticket_time(ticket: Ticket, *, user_id: int, limit: int = 100) -> TicketTime:
    """The ticket's time entries, their spend and the reader's running timer in one query: the
    rows carry the rate in effect on their day, and the reader's timer comes along wherever it
    runs (one agent runs one timer at most). A ticket with more than `limit` entries, whose
    spend the first rows do not cover, asks the database for its sum and the timer."""
    running_elsewhere = and_(TimeEntry.user_id == user_id, TimeEntry.minutes.is_(None))
    rows = db.session.execute(
        select(TimeEntry, rate_in_effect()).join(User, User.id == TimeEntry.user_id)
        .options(contains_eager(TimeEntry.user))
        .where(or_(TimeEntry.ticket_id == ticket.id, running_elsewhere))
        .order_by(TimeEntry.work_date.desc(), TimeEntry.id.desc()).limit(limit + 2)).all()
    mine = [(entry, rate) for entry, rate in rows if entry.ticket_id == ticket.id]
    running = next((entry for entry, _rate in rows if entry.user_id == user_id and entry.minutes is None), None)
    entries = [entry for entry, _rate in mine[:limit]]
    # limit + 2 rows: the ticket's (limit + 1 tell it has more) and a timer elsewhere (one at most).
    if len(mine) > limit:  # cut short: neither every entry nor the timer elsewhere is sure to be here
        return TicketTime(entries, spend_of(ticket.workspace_id, ticket_id=ticket.id),
                          db.session.scalar(select(TimeEntry).where(running_elsewhere)))
    return TicketTime(entries, total_spend((e.minutes, rate) for e, rate in mine if e.minutes is not None), running)
