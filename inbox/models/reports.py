"""The reports' and the dashboard's read side: grouped SQL over indexed columns, so each report
costs one or two queries whatever the size of the workspace's history.

Everything is bounded by the filter's date range, read in the workspace's time zone: a day is
a local day, a week starts on Monday. Durations are averaged in SQL (julianday on SQLite, epoch
on PostgreSQL); money is summed per (group, hourly rate) in SQL and costed in Decimal here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import Float, String, and_, case, cast, exists, func, literal, or_, select, type_coerce, union_all

from ..errors import ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from .appointment import Appointment, AppointmentStatus
from .base import UTCDateTime, seconds_between
from .budget import Budget, BudgetPeriod, period_bounds
from .channel import Channel
from .contact import Contact
from .conversation import Conversation
from .message import Direction, Message, SenderKind
from .sara import SaraDecision
from .ticket import Rating, Ticket, TicketCategory, TicketConversation, TicketSettings, TicketStatus
from .ticket_queries import Kpis, TicketFilter, breached_clause, ticket_kpis, tickets_page
from .timeentry import TimeEntry, cost_of, rate_in_effect, round_money
from .user import User
from .workspace import Workspace

MAX_DAYS = 3 * 366  # a longer range is refused: nobody reads it, and it would only cost time
WEEKLY_UP_TO_DAYS = 26 * 7  # beyond half a year the series are per month
DEFAULT_DAYS = 8 * 7
COMMENTS_SHOWN = 20
FIRST_RESPONSE_TARGET_MINUTES = 4 * 60
SATISFACTION_TARGET = Decimal("4.5")


# -- the filter ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportFilter:
    """A date range (local days, both included) and the optional narrowing filters."""

    start: date
    end: date
    channel: ChannelKind | None = None
    agent_id: int | None = None
    category: TicketCategory | None = None
    contact_id: int | None = None

    @classmethod
    def default(cls, today: date) -> ReportFilter:
        return cls(start=today - timedelta(days=DEFAULT_DAYS - 1), end=today)

    @classmethod
    def from_args(cls, args: Mapping, *, today: date) -> ReportFilter:
        """Dates a person typed are checked (ValidationError, 422); unknown choices are ignored,
        as elsewhere, because URLs get shared and edited by hand."""
        base = cls.default(today)
        start, end = _date_arg(args.get("start"), base.start), _date_arg(args.get("end"), base.end)
        if start > end:
            raise ValidationError(_("The start date must be before the end date."), field="start")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValidationError(_("A report covers at most %(n)d days.", n=MAX_DAYS), field="start")
        agent, contact = str(args.get("agent") or ""), str(args.get("client") or "")
        return cls(
            start=start, end=end,
            channel=ChannelKind(args["channel"]) if args.get("channel") in set(ChannelKind) else None,
            agent_id=int(agent) if agent.isdigit() else None,
            category=TicketCategory(args["category"]) if args.get("category") in set(TicketCategory) else None,
            contact_id=int(contact) if contact.isdigit() else None,
        )

    def to_args(self, **changes) -> dict[str, str]:
        f = replace(self, **changes) if changes else self
        args = {"start": f.start.isoformat(), "end": f.end.isoformat(), "channel": f.channel,
                "agent": f.agent_id, "category": f.category, "client": f.contact_id}
        return {k: str(v) for k, v in args.items() if v is not None}

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _date_arg(raw, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError(_("Give dates as YYYY-MM-DD."), field="start") from None


@dataclass(frozen=True, slots=True)
class Window:
    """The filter's range as UTC instants in the workspace's time zone, and its buckets."""

    start: datetime
    end: datetime  # exclusive
    unit: str  # "week" or "month"
    buckets: tuple[date, ...]  # local first day of each bucket (the first is the range's start)
    boundaries: tuple[datetime, ...]  # UTC start of each bucket after the first

    @classmethod
    def of(cls, f: ReportFilter, timezone: str) -> Window:
        tz = ZoneInfo(timezone)
        unit = "week" if f.days <= WEEKLY_UP_TO_DAYS else "month"
        starts = [f.start]
        while True:
            nxt = _next_bucket(starts[-1], unit)
            if nxt > f.end:
                break
            starts.append(nxt)
        return cls(start=_utc(f.start, tz), end=_utc(f.end + timedelta(days=1), tz), unit=unit,
                   buckets=tuple(starts), boundaries=tuple(_utc(d, tz) for d in starts[1:]))

    def bucket_of(self, column, *, dates: bool = False):
        """SQL: the index of the bucket a time (or a local date) falls in."""
        edges = self.buckets[1:] if dates else self.boundaries
        if not edges:
            return literal(0)
        return case(*[(column < edge, i) for i, edge in enumerate(edges)], else_=len(edges))

    def bucket_end(self, index: int, last: date) -> date:
        """The local day after the bucket (exclusive end)."""
        return self.buckets[index + 1] if index + 1 < len(self.buckets) else last + timedelta(days=1)


def _next_bucket(day: date, unit: str) -> date:
    if unit == "week":
        return day + timedelta(days=7 - day.weekday())  # the next Monday
    return period_bounds(BudgetPeriod.MONTH, day)[1]


def _utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _minutes(seconds) -> int | None:
    return None if seconds is None else round(float(seconds) / 60)


def _count(*conds):
    return func.coalesce(func.sum(case((and_(*conds), 1), else_=0)), 0)


def _finished():
    return func.coalesce(Ticket.resolved_at, Ticket.closed_at)


# -- scopes: how the filters narrow each kind of row -----------------------------------------------
def _ticket_scope(workspace_id: int, f: ReportFilter, *, agent_column=Ticket.assignee_id) -> list:
    conds = [Ticket.workspace_id == workspace_id]
    if f.agent_id and agent_column is not None:
        conds.append(agent_column == f.agent_id)
    if f.category:
        conds.append(Ticket.category == f.category)
    if f.contact_id:
        conds.append(Ticket.contact_id == f.contact_id)
    if f.channel:
        # A ticket belongs to a channel through the conversations it was discussed in.
        conds.append(exists(
            select(TicketConversation.ticket_id)
            .join(Conversation, Conversation.id == TicketConversation.conversation_id)
            .join(Channel, Channel.id == Conversation.channel_id)
            .where(TicketConversation.ticket_id == Ticket.id, Channel.kind == f.channel)))
    return conds


def _message_filters(workspace_id: int, f: ReportFilter) -> list:
    """Agent → conversations assigned to them; category → conversations linked to a ticket of
    that category; channel → the message's channel kind (join Channel, see _channel_join)."""
    conds = []
    if f.channel:
        conds.append(Channel.kind == f.channel)
    if f.contact_id:
        conds.append(Message.contact_id == f.contact_id)
    if f.agent_id:
        conds.append(Message.conversation_id.in_(
            select(Conversation.id).where(Conversation.workspace_id == workspace_id,
                                          Conversation.assignee_id == f.agent_id)))
    if f.category:
        conds.append(Message.conversation_id.in_(
            select(TicketConversation.conversation_id).join(Ticket, Ticket.id == TicketConversation.ticket_id)
            .where(Ticket.workspace_id == workspace_id, Ticket.category == f.category)))
    return conds


def _message_scope(workspace_id: int, f: ReportFilter, w: Window) -> list:
    """Messages customers and the team exchanged in the range (internal notes left out)."""
    return [Message.workspace_id == workspace_id, Message.created_at >= w.start, Message.created_at < w.end,
            Message.internal.is_(False), *_message_filters(workspace_id, f)]


def _channel_join(stmt, f: ReportFilter):
    return stmt.join(Channel, Channel.id == Message.channel_id) if f.channel else stmt


_SENT = and_(Message.direction == Direction.OUTBOUND, Message.sender_kind.in_([SenderKind.AGENT, SenderKind.BOT]))
_RECEIVED = Message.direction == Direction.INBOUND


# -- tickets: opened / closed, response and resolution times -------------------------------------
@dataclass(frozen=True, slots=True)
class PeriodFlow:
    start: date
    end: date  # exclusive
    opened: int
    closed: int
    first_response_minutes: int | None  # mean, tickets opened in the period
    resolution_minutes: int | None


@dataclass(frozen=True, slots=True)
class TicketFlow:
    unit: str
    periods: list[PeriodFlow]
    opened: int
    closed: int
    first_response_minutes: int | None
    resolution_minutes: int | None
    responded: int  # tickets with a first response (the mean's sample)
    resolved: int


def ticket_flow(workspace_id: int, f: ReportFilter, w: Window) -> TicketFlow:
    """Two queries: tickets opened per bucket (with their mean times), tickets closed per bucket."""
    scope = _ticket_scope(workspace_id, f)
    # Buckets are computed per row in a subquery and grouped outside: PostgreSQL would not
    # match a parameterised CASE in GROUP BY with the one in the select list.
    created = (select(w.bucket_of(Ticket.created_at).label("bucket"),
                      seconds_between(Ticket.first_responded_at, Ticket.created_at).label("first_s"),
                      seconds_between(_finished(), Ticket.created_at).label("res_s"))
               .where(*scope, Ticket.created_at >= w.start, Ticket.created_at < w.end).subquery())
    opened = {row.bucket: row for row in db.session.execute(
        select(created.c.bucket, func.count().label("n"), func.sum(created.c.first_s).label("first_s"),
               func.count(created.c.first_s).label("first_n"), func.sum(created.c.res_s).label("res_s"),
               func.count(created.c.res_s).label("res_n"))
        .group_by(created.c.bucket))}
    finished = (select(w.bucket_of(_finished()).label("bucket"))
                .where(*scope, or_(and_(Ticket.resolved_at >= w.start, Ticket.resolved_at < w.end),
                                   and_(Ticket.resolved_at.is_(None), Ticket.closed_at >= w.start,
                                        Ticket.closed_at < w.end))).subquery())
    closed = dict(db.session.execute(
        select(finished.c.bucket, func.count()).group_by(finished.c.bucket)).all())
    periods = []
    for i, start in enumerate(w.buckets):
        row = opened.get(i)
        periods.append(PeriodFlow(
            start=start, end=w.bucket_end(i, f.end), opened=row.n if row else 0, closed=int(closed.get(i, 0)),
            first_response_minutes=_mean(row.first_s, row.first_n) if row else None,
            resolution_minutes=_mean(row.res_s, row.res_n) if row else None))
    rows = list(opened.values())
    first_n, res_n = sum(r.first_n for r in rows), sum(r.res_n for r in rows)
    return TicketFlow(
        unit=w.unit, periods=periods, opened=sum(p.opened for p in periods), closed=sum(p.closed for p in periods),
        first_response_minutes=_mean(sum(float(r.first_s or 0) for r in rows), first_n),
        resolution_minutes=_mean(sum(float(r.res_s or 0) for r in rows), res_n),
        responded=first_n, resolved=res_n)


def _mean(total_seconds, n) -> int | None:
    return _minutes(float(total_seconds or 0) / n) if n else None


# -- SLA compliance ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SlaRow:
    category: str
    first_response_met: int
    first_response_missed: int
    resolution_met: int
    resolution_missed: int

    @property
    def first_response_rate(self) -> Decimal | None:
        return _rate(self.first_response_met, self.first_response_met + self.first_response_missed)

    @property
    def resolution_rate(self) -> Decimal | None:
        return _rate(self.resolution_met, self.resolution_met + self.resolution_missed)


@dataclass(frozen=True, slots=True)
class SlaCompliance:
    rows: list[SlaRow]  # one per category, in the categories' order
    total: SlaRow


def _rate(part: int, whole: int) -> Decimal | None:
    """A fraction (0–1) with 3 decimals, for format_percent; None without a sample."""
    return (Decimal(part) / whole).quantize(Decimal("0.001")) if whole else None


def sla_compliance(workspace_id: int, f: ReportFilter, w: Window, *, now: datetime) -> SlaCompliance:
    """Tickets opened in the range: a deadline is met when the work was done by it, missed when
    it passed first; a deadline still ahead is not counted yet. One query."""
    at = func.coalesce(Ticket.sla_paused_at, literal(now, UTCDateTime()))  # the clock stops while waiting
    fr_due, res_due = Ticket.first_response_due_at, Ticket.resolution_due_at
    finished = _finished()
    rows = {str(r.category): r for r in db.session.execute(
        select(Ticket.category,
               _count(Ticket.first_responded_at.is_not(None), Ticket.first_responded_at <= fr_due).label("fr_met"),
               _count(fr_due < func.coalesce(Ticket.first_responded_at, at)).label("fr_missed"),
               _count(finished.is_not(None), finished <= res_due).label("res_met"),
               _count(res_due < func.coalesce(finished, at)).label("res_missed"))
        .where(*_ticket_scope(workspace_id, f), Ticket.created_at >= w.start, Ticket.created_at < w.end)
        .group_by(Ticket.category))}
    result = []
    for category in TicketCategory:
        r = rows.get(str(category))
        result.append(SlaRow(str(category), *(int(getattr(r, k)) if r else 0
                                               for k in ("fr_met", "fr_missed", "res_met", "res_missed"))))
    total = SlaRow("", *(sum(getattr(r, k) for r in result) for k in
                         ("first_response_met", "first_response_missed", "resolution_met", "resolution_missed")))
    return SlaCompliance(rows=result, total=total)


# -- satisfaction ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentSatisfaction:
    agent_id: int | None
    name: str
    count: int
    mean: Decimal | None
    distribution: dict[int, int]  # score → ratings


@dataclass(frozen=True, slots=True)
class RatingComment:
    at: datetime
    score: int
    comment: str
    agent_name: str
    ticket_id: int
    ticket_number: int


@dataclass(frozen=True, slots=True)
class Satisfaction:
    agents: list[AgentSatisfaction]
    total: AgentSatisfaction
    comments: list[RatingComment]


def satisfaction(workspace_id: int, f: ReportFilter, w: Window) -> Satisfaction:
    """Ratings given in the range, per agent (mean and 1–5 distribution), and the latest comments.
    Two queries (plus the agents' names, one more)."""
    scope = [*_ticket_scope(workspace_id, f, agent_column=Rating.agent_id),
             Rating.workspace_id == workspace_id, Rating.created_at >= w.start, Rating.created_at < w.end]
    grouped = db.session.execute(
        select(Rating.agent_id, Rating.score, func.count(Rating.id))
        .join(Ticket, Ticket.id == Rating.ticket_id).where(*scope)
        .group_by(Rating.agent_id, Rating.score)).all()
    names = _user_names(workspace_id)
    per_agent: dict[int | None, dict[int, int]] = {}
    for agent_id, score, n in grouped:
        per_agent.setdefault(agent_id, dict.fromkeys(range(1, 6), 0))[int(score)] += int(n)
    # Names only: the view words "no agent" and "all agents" in the reader's language.
    agents = sorted((_agent_satisfaction(a, names.get(a, ""), d) for a, d in per_agent.items()),
                    key=lambda a: (a.agent_id is None, a.name.lower()))
    overall = dict.fromkeys(range(1, 6), 0)
    for d in per_agent.values():
        for score, n in d.items():
            overall[score] += n
    comments = [RatingComment(at, score, comment, names.get(agent_id, ""), ticket_id, number)
                for at, score, comment, agent_id, ticket_id, number in db.session.execute(
                    select(Rating.created_at, Rating.score, Rating.comment, Rating.agent_id, Ticket.id, Ticket.number)
                    .join(Ticket, Ticket.id == Rating.ticket_id)
                    .where(*scope, Rating.comment.is_not(None), Rating.comment != "")
                    .order_by(Rating.created_at.desc(), Rating.id.desc()).limit(COMMENTS_SHOWN))]
    return Satisfaction(agents=agents, total=_agent_satisfaction(None, "", overall), comments=comments)


def _agent_satisfaction(agent_id, name: str, distribution: dict[int, int]) -> AgentSatisfaction:
    n = sum(distribution.values())
    mean = (Decimal(sum(s * c for s, c in distribution.items())) / n).quantize(Decimal("0.01")) if n else None
    return AgentSatisfaction(agent_id, name, n, mean, distribution)


def _user_names(workspace_id: int) -> dict[int, str]:
    return dict(db.session.execute(select(User.id, User.name).where(User.workspace_id == workspace_id)).all())


# -- channels --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChannelRow:
    kind: str
    received: int
    sent: int
    answered: int  # received messages that got a reply (from a person or Sara)
    response_minutes: int | None  # mean time to that reply

    @property
    def response_rate(self) -> Decimal | None:
        return _rate(self.answered, self.received)


@dataclass(frozen=True, slots=True)
class ChannelActivity:
    rows: list[ChannelRow]
    total: ChannelRow


def _channel_activity(by_kind: dict[str, tuple[int, int, int, float | None]]) -> ChannelActivity:
    result = []
    for kind in ChannelKind:
        received_n, sent_n, answered, seconds = by_kind.get(str(kind), (0, 0, 0, None))
        result.append(ChannelRow(str(kind), received_n, sent_n, answered, _mean(seconds, answered)))
    answered = sum(r.answered for r in result)
    seconds = sum(v[3] or 0 for v in by_kind.values())
    total = ChannelRow("", sum(r.received for r in result), sum(r.sent for r in result), answered,
                       _mean(seconds, answered))
    return ChannelActivity(rows=result, total=total)


# -- the range's messages, read once for the channel, conversion and preferred-channel reports ------
@dataclass(frozen=True, slots=True)
class MessageFacts:
    channels: ChannelActivity
    by_answer: dict[int | None, int]  # conversations customers wrote in, by their best answer
    preferred: dict[str, int]  # customers who wrote, by the channel they prefer ("" for none)


_PERSON_ANSWERED, _BOT_ANSWERED = 2, 1  # a person's answer outranks Sara's
_CHANNELS, _ANSWERS, _PREFERRED = "c", "a", "p"


def message_facts(workspace_id: int, f: ReportFilter, w: Window) -> MessageFacts:
    """One statement, one pass over the range's messages (a covering index, never the rows).

    The messages are first grouped per (conversation, contact, channel): a few thousand groups for
    the ~67,000 messages of 8 weeks on the bench workspace. The three reports are then read from
    those groups, in one UNION ALL tagged by report. Each report scanning the messages on its
    own cost three passes (195 ms of the PostgreSQL page's 210 at the server).

    - channels: per channel kind, messages received and sent, the received ones answered and the
      mean time to that answer (Message.answered_at: the first message a person or Sara sent in
      the conversation, at the same time or later, whatever the filters and even after the range);
    - answers: conversations customers wrote in during the range, by the best answer they got in
      it (a person, Sara only, none);
    - preferred: customers who wrote in the range, by the channel they prefer.
    """
    answered_at = case((_RECEIVED, Message.answered_at))  # only received messages have one anyway
    groups = (_channel_join(select(
        Message.conversation_id, Message.contact_id, Message.channel_id,
        _count(_RECEIVED).label("received"),
        _count(_SENT, Message.sender_kind == SenderKind.AGENT).label("by_person"),
        _count(_SENT, Message.sender_kind == SenderKind.BOT).label("by_bot"),
        func.count(answered_at).label("answered"),
        func.sum(seconds_between(answered_at, Message.created_at)).label("seconds")), f)
        .where(*_message_scope(workspace_id, f, w), or_(_RECEIVED, _SENT))
        .group_by(Message.conversation_id, Message.contact_id, Message.channel_id)).cte("message_groups")
    g = groups.c
    per_conversation = (select(func.sum(g.by_person).label("by_person"), func.sum(g.by_bot).label("by_bot"))
                        .group_by(g.conversation_id).having(func.sum(g.received) > 0).subquery())
    best = case((per_conversation.c.by_person > 0, _PERSON_ANSWERED), (per_conversation.c.by_bot > 0, _BOT_ANSWERED))
    no_seconds = literal(None, type_=Float)  # the union's columns take the first select's types
    stmt = union_all(
        select(literal(_CHANNELS), type_coerce(Channel.kind, String), func.sum(g.received),
               func.sum(g.by_person + g.by_bot), func.sum(g.answered), func.sum(g.seconds))
        .join(Channel, Channel.id == g.channel_id).group_by(Channel.kind),
        select(literal(_ANSWERS), cast(best, String), func.count(), literal(0), literal(0), no_seconds)
        .group_by(best),
        select(literal(_PREFERRED), Contact.preferred_channel, func.count(Contact.id), literal(0), literal(0),
               no_seconds)
        .where(Contact.workspace_id == workspace_id, Contact.id.in_(select(g.contact_id).where(g.received > 0)))
        .group_by(Contact.preferred_channel))
    by_kind, by_answer, preferred = {}, {}, {}
    for report, key, n, sent, answered, seconds in db.session.execute(stmt):
        if report == _CHANNELS:
            by_kind[str(key)] = (int(n or 0), int(sent or 0), int(answered or 0),
                                 float(seconds) if seconds is not None else None)
        elif report == _ANSWERS:
            by_answer[None if key is None else int(key)] = int(n)
        else:
            preferred[str(key or "")] = int(n)
    return MessageFacts(
        channels=_channel_activity(by_kind), by_answer=by_answer,
        preferred={str(kind): preferred.get(str(kind), 0) for kind in ChannelKind} | {"": preferred.get("", 0)})


# -- conversion: who resolved the conversations, Sara's decisions, appointments ------------------------
@dataclass(frozen=True, slots=True)
class Conversion:
    conversations: int  # conversations in which customers wrote during the range
    by_bot: int  # answered by Sara only
    by_people: int  # a person answered
    unanswered: int
    decisions: dict[str, int]  # Sara's decisions by kind
    appointments: dict[str, int]  # appointments in the range by status

    @property
    def bot_rate(self) -> Decimal | None:
        return _rate(self.by_bot, self.conversations)

    @property
    def appointments_confirmed_rate(self) -> Decimal | None:
        answered = self.appointments.get("confirmed", 0) + self.appointments.get("cancelled", 0)
        return _rate(self.appointments.get("confirmed", 0), answered)


DECISION_KINDS = ("auto_reply", "collect", "escalate", "hand_to_human")


def conversion(workspace_id: int, f: ReportFilter, w: Window, *,
               by_answer: dict[int | None, int] | None = None) -> Conversion:
    """Conversations by who answered (message_facts(), unless given), Sara's decisions, appointments."""
    if by_answer is None:
        by_answer = message_facts(workspace_id, f, w).by_answer
    filters = _message_filters(workspace_id, f)
    decisions_stmt = (select(SaraDecision.kind, func.count(SaraDecision.id))
                      .where(SaraDecision.workspace_id == workspace_id, SaraDecision.created_at >= w.start,
                             SaraDecision.created_at < w.end, *filters).group_by(SaraDecision.kind))
    if filters:
        # The filters read the decision's message (its channel, contact, conversation as it is now:
        # a merge moves messages, not decisions). Unfiltered, every decision has its message (foreign
        # key, not null), so the join would only cost a primary-key lookup per decision.
        decisions_stmt = _channel_join(decisions_stmt.join(Message, Message.id == SaraDecision.message_id), f)
    decisions = dict.fromkeys(DECISION_KINDS, 0) | {str(k): int(n) for k, n in db.session.execute(decisions_stmt)}
    appointment_scope = [Appointment.workspace_id == workspace_id, Appointment.starts_at >= w.start,
                         Appointment.starts_at < w.end]
    if f.contact_id:
        appointment_scope.append(Appointment.contact_id == f.contact_id)
    if f.agent_id:
        appointment_scope.append(Appointment.agent_id == f.agent_id)
    appointments = dict.fromkeys(map(str, AppointmentStatus), 0) | {
        str(s): int(n) for s, n in db.session.execute(
            select(Appointment.status, func.count(Appointment.id)).where(*appointment_scope)
            .group_by(Appointment.status))}
    people, bot, unanswered = (by_answer.get(k, 0) for k in (_PERSON_ANSWERED, _BOT_ANSWERED, None))
    return Conversion(conversations=people + bot + unanswered, by_people=people, by_bot=bot, unanswered=unanswered,
                      decisions=decisions, appointments=appointments)


# -- cost against budget ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClientCost:
    contact_id: int
    name: str
    minutes: int
    cost: Decimal
    tickets: int
    budget: Decimal | None  # the client's budgets prorated to the range

    @property
    def cost_per_ticket(self) -> Decimal | None:
        return round_money(self.cost / self.tickets) if self.tickets else None

    @property
    def budget_used(self) -> Decimal | None:
        return _rate(self.cost, self.budget) if self.budget else None


@dataclass(frozen=True, slots=True)
class PeriodCost:
    start: date
    end: date
    minutes: int
    cost: Decimal
    budget: Decimal


@dataclass(frozen=True, slots=True)
class Costs:
    currency: str
    clients: list[ClientCost]  # most expensive first
    periods: list[PeriodCost]
    minutes: int
    cost: Decimal
    tickets: int
    budget: Decimal  # every budget, prorated to the range

    @property
    def cost_per_ticket(self) -> Decimal | None:
        return round_money(self.cost / self.tickets) if self.tickets else None

    @property
    def budget_used(self) -> Decimal | None:
        return _rate(self.cost, self.budget) if self.budget else None


def costs(workspace_id: int, f: ReportFilter, w: Window) -> Costs:
    """Time logged in the range × the hourly cost in effect on its day, per client and per
    period, against the budgets prorated to the same days. Four queries (time per client and
    rate, time per period and rate, tickets per client, budgets); each sum is exact in Decimal."""
    scope = [*_ticket_scope(workspace_id, f, agent_column=TimeEntry.user_id), TimeEntry.workspace_id == workspace_id,
             TimeEntry.minutes.is_not(None), TimeEntry.work_date >= f.start, TimeEntry.work_date <= f.end]

    def entries(*columns):
        return (select(*columns).select_from(TimeEntry).join(Ticket, Ticket.id == TimeEntry.ticket_id)
                .join(User, User.id == TimeEntry.user_id).where(*scope))

    # The rate is a correlated subquery: computed per entry inside, grouped on outside.
    rated = entries(TimeEntry.contact_id, TimeEntry.minutes, rate_in_effect().label("rate"),
                    w.bucket_of(TimeEntry.work_date, dates=True).label("bucket")).subquery()
    per_client = _costed(db.session.execute(
        select(rated.c.contact_id, rated.c.rate, func.sum(rated.c.minutes)).group_by(rated.c.contact_id, rated.c.rate)))
    per_bucket = _costed(db.session.execute(
        select(rated.c.bucket, rated.c.rate, func.sum(rated.c.minutes)).group_by(rated.c.bucket, rated.c.rate)))
    tickets = dict(db.session.execute(
        entries(TimeEntry.contact_id, func.count(func.distinct(TimeEntry.ticket_id))).group_by(TimeEntry.contact_id)).all())
    total_tickets = sum(int(n) for n in tickets.values())
    budget_stmt = select(Budget).where(Budget.workspace_id == workspace_id)
    if f.contact_id:
        budget_stmt = budget_stmt.where(Budget.contact_id == f.contact_id)
    budgets = list(db.session.scalars(budget_stmt))
    budget_by_client: dict[int, Decimal] = {}
    for b in budgets:
        budget_by_client[b.contact_id] = budget_by_client.get(b.contact_id, Decimal(0)) + prorated(
            b.period, b.amount, f.start, f.end + timedelta(days=1))
    names = {b.contact_id: b.contact.name for b in budgets}
    missing = set(per_client) - set(names)
    if missing:
        names |= dict(db.session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(missing))).all())
    clients = [ClientCost(cid, names.get(cid, "?"), per_client.get(cid, [0])[0],
                          round_money(per_client.get(cid, [0, Decimal(0)])[1]), int(tickets.get(cid, 0)),
                          round_money(budget_by_client[cid]) if cid in budget_by_client else None)
               for cid in set(per_client) | set(budget_by_client)]
    clients.sort(key=lambda c: (-c.cost, c.name.lower()))
    periods = []
    for i, start in enumerate(w.buckets):
        end = w.bucket_end(i, f.end)
        minutes, cost = per_bucket.get(i, [0, Decimal(0)])
        periods.append(PeriodCost(start, end, minutes, round_money(cost), round_money(
            sum((prorated(b.period, b.amount, start, end) for b in budgets), Decimal(0)))))
    return Costs(currency=TicketSettings.of(workspace_id).currency, clients=clients, periods=periods,
                 minutes=sum(c.minutes for c in clients), cost=round_money(sum((c.cost for c in clients), Decimal(0))),
                 tickets=total_tickets, budget=round_money(sum(budget_by_client.values(), Decimal(0))))


def _costed(rows) -> dict[int, list]:
    """(key, hourly rate, minutes) rows → key: [minutes, exact cost], summed over the rates."""
    result: dict[int, list] = {}
    for key, hourly, minutes in rows:
        acc = result.setdefault(int(key), [0, Decimal(0)])
        acc[0] += int(minutes)
        acc[1] += cost_of(int(minutes), hourly)
    return result


def prorated(period: BudgetPeriod, amount: Decimal, start: date, end: date) -> Decimal:
    """The share of a per-period budget that falls in [start, end): each month, quarter or year
    overlapped contributes its amount × the days overlapped / its days."""
    total, day = Decimal(0), start
    while day < end:
        p_start, p_end = period_bounds(period, day)
        overlap_end = min(p_end, end)
        total += Decimal(amount) * (overlap_end - day).days / (p_end - p_start).days
        day = overlap_end
    return total


# -- the dashboard ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """One KPI against its target: `met` is None when there is nothing to measure yet."""

    key: str
    value: object
    met: bool | None
    detail: object = None


@dataclass(frozen=True, slots=True)
class Dashboard:
    open: int  # active tickets (open, in progress, waiting on the customer)
    unassigned: int
    critical: int
    at_risk: int  # a deadline within the reminder offset, not missed yet
    breached: int
    mine: int
    my_tickets: list[Ticket]
    kpis: Kpis
    resolution_minutes: int | None  # mean, tickets opened in the last 30 days and finished
    resolution_allowed_minutes: int | None  # mean SLA allowance of the same tickets
    targets: list[Target] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return sum(1 for t in self.targets if t.met is False)


def dashboard(workspace_id: int, *, user_id: int, now: datetime, my_limit: int = 8) -> Dashboard:
    """Home figures: the ticket KPI strip's queries (3), one more for the at-risk, mine and
    resolution-vs-SLA figures, one for my tickets, one for the settings."""
    kpis = ticket_kpis(workspace_id, now=now)
    horizon = now + timedelta(hours=TicketSettings.of(workspace_id).sla_reminder_hours)
    active = Ticket.status.in_(list(TicketStatus.active()))
    soon = or_(and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due_at >= now,
                    Ticket.first_response_due_at <= horizon),
               and_(Ticket.resolution_due_at >= now, Ticket.resolution_due_at <= horizon))
    since = now - timedelta(days=30)
    done = and_(Ticket.created_at >= since, _finished().is_not(None), Ticket.resolution_due_at.is_not(None))
    row = db.session.execute(
        select(_count(active, soon, ~breached_clause(now)).label("at_risk"),
               _count(active, Ticket.assignee_id == user_id).label("mine"),
               func.avg(case((done, seconds_between(_finished(), Ticket.created_at)))).label("res"),
               func.avg(case((done, seconds_between(Ticket.resolution_due_at, Ticket.created_at)))).label("allowed"))
        .where(Ticket.workspace_id == workspace_id)).one()
    mine, _next = tickets_page(workspace_id, TicketFilter(assignee="me", sort="due"), user_id=user_id, now=now,
                               after=None, limit=my_limit)
    board = Dashboard(open=kpis.active, unassigned=kpis.unassigned, critical=kpis.open_critical,
                      at_risk=int(row.at_risk), breached=kpis.breached, mine=int(row.mine), my_tickets=mine,
                      kpis=kpis, resolution_minutes=_minutes(row.res), resolution_allowed_minutes=_minutes(row.allowed))
    return replace(board, targets=_targets(board))


def _targets(b: Dashboard) -> list[Target]:
    k = b.kpis
    first = k.first_response_minutes
    return [
        Target("first_response", first, None if first is None else first < FIRST_RESPONSE_TARGET_MINUTES),
        Target("resolution", b.resolution_minutes,
               None if b.resolution_minutes is None else b.resolution_minutes <= b.resolution_allowed_minutes,
               b.resolution_allowed_minutes),
        Target("satisfaction", k.satisfaction, None if k.satisfaction is None else k.satisfaction > SATISFACTION_TARGET,
               k.ratings_count),
        Target("unassigned", k.unassigned, k.unassigned == 0),
        Target("critical", k.open_critical, k.open_critical == 0),
    ]


def workspace_timezone(workspace_id: int) -> str:
    return db.session.get(Workspace, workspace_id).timezone
