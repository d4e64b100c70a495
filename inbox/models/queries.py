"""The inbox's read side: one query for a page of rows, one for the view counts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, or_, select, text
from sqlalchemy.orm import defaultload, joinedload

from .. import search
from ..extensions import db
from ..kinds import ChannelKind
from .channel import Channel
from .contact import Contact
from .label import ConversationLabel, Label
from .conversation import OPEN_SQL, Conversation, ConversationStatus, Priority

VIEWS = ("all", "mine", "unassigned")
STATUS_ANY = "any"
SORTS = ("recent", "priority")
_PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}
_PRIORITY_ORDER = case(_PRIORITY_RANK, value=Conversation.priority, else_=4)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InboxFilter:
    view: str = "all"
    channel: ChannelKind | None = None
    status: str = ConversationStatus.OPEN
    priority: Priority | None = None
    assignee_id: int | None = None
    q: str = ""
    sort: str = "recent"
    label: int | None = None  # a Label id of the workspace

    @classmethod
    def from_args(cls, args) -> InboxFilter:
        """Unknown values fall back to the default instead of failing: URLs get shared and edited."""
        def pick(name, allowed, default):
            value = args.get(name) or default
            return value if value in allowed else default
        assignee = args.get("assignee", "")
        return cls(
            view=pick("view", VIEWS, "all"),
            channel=ChannelKind(args["channel"]) if args.get("channel") in set(ChannelKind) else None,
            status=pick("status", {*ConversationStatus, STATUS_ANY}, ConversationStatus.OPEN),
            priority=Priority(args["priority"]) if args.get("priority") in set(Priority) else None,
            assignee_id=int(assignee) if assignee.isdigit() else None,
            q=(args.get("q") or "").strip()[:100],
            sort=pick("sort", SORTS, "recent"),
            label=int(args["label"]) if str(args.get("label", "")).isdigit() else None,
        )

    def sort_key(self, conv: Conversation) -> str:
        """The row's place in this list as a string: rows sort by it descending, exactly as
        inbox_page's ORDER BY does, so the browser can put a live row where a refetch would."""
        micros = (conv.last_activity_at - _EPOCH) // timedelta(microseconds=1)
        key = f"{micros:017d}.{conv.id:012d}"
        if self.sort == "priority":
            return f"{4 - _PRIORITY_RANK.get(conv.priority, 4)}.{key}"
        return key

    def match_spec(self, user_id: int) -> dict | None:
        """What the page needs to tell whether a pushed row belongs in this list: app.js's
        `rowMatches(spec, row_facts(c))` decides as `_filtered` does (a test compares them on
        every filter). None for a search: only the server can tell, the page asks it."""
        if self.q:
            return None
        return {"view": self.view, "user": user_id, "status": self.status, "priority": self.priority,
                "assignee": self.assignee_id, "channel": self.channel, "label": self.label, "sort": self.sort}

    def to_args(self, **changes) -> dict[str, str]:
        """Query-string arguments that reproduce this filter, without the defaults."""
        f = replace(self, **changes) if changes else self
        args = {"view": f.view if f.view != "all" else None,
                "channel": f.channel, "status": f.status if f.status != ConversationStatus.OPEN else None,
                "priority": f.priority, "assignee": f.assignee_id, "q": f.q or None,
                "sort": f.sort if f.sort != "recent" else None, "label": f.label}
        return {k: str(v) for k, v in args.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset pagination: the position of the last row shown; pages cost the same at any depth.
    `rank`: its priority's place, for the "priority first" order (an offset there would skip a
    row whenever a live change moved one above the page already shown)."""

    last_activity_at: datetime
    id: int
    rank: int | None = None

    def encode(self) -> str:
        position = f"{self.last_activity_at.timestamp():.6f}_{self.id}"
        return position if self.rank is None else f"p{self.rank}_{position}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        parts = (raw or "").split("_")
        try:
            rank = int(parts.pop(0)[1:]) if len(parts) == 3 and parts[0].startswith("p") else None
            stamp, ident = parts
            return cls(datetime.fromtimestamp(float(stamp), UTC), int(ident), rank)
        except ValueError:
            return None


def _filtered(workspace_id: int, f: InboxFilter, user_id: int):
    stmt = select(Conversation).where(Conversation.workspace_id == workspace_id)
    if f.view == "mine":
        stmt = stmt.where(Conversation.assignee_id == user_id)
    elif f.view == "unassigned":
        stmt = stmt.where(Conversation.assignee_id.is_(None))
    if f.status != STATUS_ANY:
        stmt = stmt.where(Conversation.status == f.status)
    if f.priority:
        stmt = stmt.where(Conversation.priority == f.priority)
    if f.assignee_id:
        stmt = stmt.where(Conversation.assignee_id == f.assignee_id)
    if f.channel:
        stmt = stmt.where(Conversation.channel_id.in_(
            select(Channel.id).where(Channel.workspace_id == workspace_id, Channel.kind == f.channel)))
    if f.q:
        stmt = stmt.where(_search(workspace_id, f.q))
    if f.label:  # ix_conversation_label_label (label_id, conversation_id)
        stmt = stmt.where(Conversation.id.in_(
            select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == f.label)))
    return stmt


EVERY_CONVERSATION = InboxFilter(status=STATUS_ANY)  # inbox_row with it: the row whatever the list


def row_facts(conv: Conversation) -> dict:
    """What `_filtered` looks at, for the page to apply the list's filters to a pushed row."""
    return {"status": str(conv.status), "priority": str(conv.priority), "assignee": conv.assignee_id,
            "channel": str(conv.channel.kind) if conv.channel else None,
            "labels": sorted(label.id for label in conv.labels),
            "sort": {sort: replace(EVERY_CONVERSATION, sort=sort).sort_key(conv) for sort in SORTS}}


def _row_options():
    # Labels and the last message's writer in the same query; the contacts' identities (selectin by default)
    # are not shown in a row.
    return (joinedload(Conversation.labels), joinedload(Conversation.last_message_sender),
            defaultload(Conversation.contact).lazyload(Contact.identities))


def _search(workspace_id: int, q: str):
    # Full-text indexes (FTS5 / tsvector, trigrams for contacts): a LIKE over every row does not scale.
    dialect_name = db.session.get_bind().dialect.name
    contact_match = search.contacts_matching(workspace_id, q, dialect_name=dialect_name)
    message_match = Conversation.id.in_(search.conversations_matching(workspace_id, q, dialect_name=dialect_name))
    return or_(Conversation.contact_id.in_(contact_match), message_match)


def inbox_page(workspace_id: int, f: InboxFilter, *, user_id: int, after: Cursor | None,
               limit: int) -> tuple[list[Conversation], Cursor | None]:
    """One page of conversations, newest activity first (or by priority), with the next cursor."""
    stmt = _filtered(workspace_id, f, user_id).options(*_row_options())
    by_priority = f.sort == "priority"
    if after:
        older = or_(Conversation.last_activity_at < after.last_activity_at,
                    and_(Conversation.last_activity_at == after.last_activity_at, Conversation.id < after.id))
        if by_priority and after.rank is not None:
            stmt = stmt.where(or_(_PRIORITY_ORDER > after.rank, and_(_PRIORITY_ORDER == after.rank, older)))
        elif not by_priority:
            stmt = stmt.where(older)
    order = (Conversation.last_activity_at.desc(), Conversation.id.desc())
    stmt = stmt.order_by(_PRIORITY_ORDER, *order) if by_priority else stmt.order_by(*order)
    rows = list(db.session.scalars(stmt.limit(limit + 1)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return rows, None
    last = rows[-1]
    return rows, Cursor(last.last_activity_at, last.id, _PRIORITY_RANK.get(last.priority, 4) if by_priority else None)


def inbox_row(workspace_id: int, f: InboxFilter, *, user_id: int, conversation_id: int) -> Conversation | None:
    """The conversation as the list would show it, or None when the list's filters leave it out.
    Scoped to the workspace like access_conversation, so a conversation the agent may not see
    answers None too, as one outside the view: the answer tells nothing more. One query."""
    stmt = (_filtered(workspace_id, f, user_id).where(Conversation.id == conversation_id)
            .options(*_row_options()))
    return db.session.scalars(stmt).unique().one_or_none()


def _open_counts_statement():
    # Grouped on the conversations alone, in the partial index's order (no sort), then named by
    # channel kind: SQLite, which keeps no distribution of statuses (a fresh database has no
    # statistics at all), then reads that index whatever its statistics say. Joined to the channel
    # in the same grouping, it sometimes walked every conversation through the assignee index.
    open_groups = (select(Conversation.assignee_id, Conversation.channel_id, func.count().label("n"))
                   .where(Conversation.workspace_id == bindparam("workspace_id"), text(f"conversation.{OPEN_SQL}"))
                   .group_by(Conversation.assignee_id, Conversation.channel_id).subquery())
    return (select(open_groups.c.assignee_id, Channel.kind, func.sum(open_groups.c.n))
            .select_from(open_groups)
            .outerjoin(Channel, Channel.id == open_groups.c.channel_id)
            .group_by(open_groups.c.assignee_id, Channel.kind))


_OPEN_COUNTS = _open_counts_statement()  # built once, like every page's other fixed statements


@dataclass(frozen=True, slots=True)
class OpenCounts:
    """Open conversations of a workspace by (assignee id, channel kind): every agent's sidebar
    counts derive from these few rows, so one reading serves every agent of the workspace."""

    groups: tuple[tuple[int | None, str | None, int], ...]

    @classmethod
    def of(cls, workspace_id: int) -> OpenCounts:
        """Reading only the open ones through the status index: years of resolved conversations cost nothing."""
        rows = db.session.execute(_OPEN_COUNTS, {"workspace_id": workspace_id})
        return cls(tuple((assignee, str(kind) if kind else None, int(n)) for assignee, kind, n in rows))

    def views_of(self, user_id: int) -> dict[str, int]:
        counts = {"all": 0, "mine": 0, "unassigned": 0, **{kind.value: 0 for kind in ChannelKind}}
        for assignee, kind, n in self.groups:
            counts["all"] += n
            if assignee == user_id:
                counts["mine"] += n
            elif assignee is None:
                counts["unassigned"] += n
            if kind in counts:
                counts[kind] += n
        return counts


def label_counts(workspace_id: int) -> list[tuple[Label, int]]:
    """Every label of the workspace, by name, with its number of open conversations: one grouped
    query whatever the number of labels or conversations (labels with none count 0)."""
    stmt = (select(Label, func.count(Conversation.id))
            .outerjoin(ConversationLabel, ConversationLabel.label_id == Label.id)
            .outerjoin(Conversation, and_(Conversation.id == ConversationLabel.conversation_id,
                                          Conversation.status == ConversationStatus.OPEN))
            .where(Label.workspace_id == workspace_id)
            .group_by(Label.id).order_by(Label.name, Label.id))
    return [(label, int(n or 0)) for label, n in db.session.execute(stmt)]
