"""Scheduled digests: every morning, the tickets a customer has been waiting on for more than
24 h (to their assignee; unassigned ones to the admins), and every Monday a summary of the
past week to the admins. Both are notifications (the bell) with an email copy, worded when
shown in the reader's language from the facts stored here.

The periodic job calls these every hour; each one does nothing before the workspace's
morning (DIGEST_HOUR, local time) and at most once per day / ISO week and recipient: the
notification's dedupe key ("pending-2026-03-02", "weekly-2026-W10") is unique per user.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select

from .. import outbox
from ..extensions import db
from ..models import NotificationKind, Rating, Ticket, User, Workspace
from ..models.ticket import format_reference
from .notifications import admins_of, notify

log = logging.getLogger(__name__)

DIGEST_HOUR = 8  # local time: reminders and summaries arrive as the team starts the day
LISTED_MAX = 20  # tickets named in one reminder (the count says how many there are in all)
PENDING_SCAN_MAX = 2000
DURATION_ROWS_MAX = 10_000


# -- the daily reminder ------------------------------------------------------------------------
def do_send_pending_reminders(workspace_id: int, *, now: datetime) -> int:
    """Remind each agent of their tickets pending for more than 24 h, and the admins of the
    unassigned ones (a ticket whose assignee left counts as unassigned). Returns how many
    people were notified; 0 before the workspace's morning or when it was done today."""
    workspace = db.session.get(Workspace, workspace_id)
    local = now.astimezone(ZoneInfo(workspace.timezone))
    if local.hour < DIGEST_HOUR:
        return 0
    waiting_since = func.coalesce(Ticket.last_customer_message_at, Ticket.created_at)
    rows = db.session.execute(
        select(Ticket.id, Ticket.number, Ticket.subject, Ticket.assignee_id, waiting_since.label("since"))
        .where(Ticket.workspace_id == workspace_id, Ticket.pending_clause(now))
        .order_by(waiting_since, Ticket.id).limit(PENDING_SCAN_MAX)).all()
    if not rows:
        return 0
    members = {u.id: u for u in User.agents_of(workspace_id)}  # active members only
    admins = admins_of(workspace_id)
    mine: dict[int, list] = {}
    unassigned = []
    for row in rows:
        if row.assignee_id in members:
            mine.setdefault(row.assignee_id, []).append(row)
        else:
            unassigned.append(row)
    recipients = {**{user_id: members[user_id] for user_id in mine},
                  **({a.id: a for a in admins} if unassigned else {})}
    key = f"pending-{local.date().isoformat()}"
    sent = 0
    for user_id, user in recipients.items():
        own, queue = mine.get(user_id, []), (unassigned if user.is_admin else [])
        listed = [_pending_fact(row, now, unassigned=False) for row in own]
        listed += [_pending_fact(row, now, unassigned=True) for row in queue]
        data = {"date": local.date().isoformat(), "mine": len(own), "unassigned": len(queue),
                "tickets": listed[:LISTED_MAX]}
        if notify(user, workspace_id=workspace_id, kind=NotificationKind.PENDING_REMINDER, data=data,
                  dedupe_key=key):
            sent += 1
    outbox.commit()
    if sent:
        log.info("pending reminders workspace_id=%s recipients=%s tickets=%s", workspace_id, sent, len(rows))
    return sent


def _pending_fact(row, now: datetime, *, unassigned: bool) -> dict:
    return {"id": row.id, "ref": format_reference(row.number), "subject": row.subject,
            "hours": int((now - _aware(row.since)).total_seconds() // 3600), "unassigned": unassigned}


# -- the weekly summary ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WeekFigures:
    """One ISO week of a workspace's tickets (JSON-ready: it is stored on the notification)."""

    week: str  # "2026-W10"
    start: str  # the Monday, ISO date
    opened: int
    resolved: int
    closed: int
    resolved_week_before: int
    first_response_minutes: int | None  # mean, over first answers given that week
    resolution_minutes: int | None  # mean, over tickets resolved that week
    sla_breaches: int  # tickets that missed a deadline that week
    satisfaction: str | None  # mean rating given that week, "4.50"
    ratings: int
    top_categories: list[list] = field(default_factory=list)  # [["billing", 5], …], at most 3


def week_bounds(local_day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The ISO week containing `local_day`, Monday 00:00 to the next Monday, as aware datetimes."""
    monday = local_day - timedelta(days=local_day.weekday())
    start = datetime.combine(monday, time(), tzinfo=tz)
    return start, datetime.combine(monday + timedelta(days=7), time(), tzinfo=tz)


def week_figures(workspace_id: int, start: datetime, end: datetime) -> WeekFigures:
    """Four queries, whatever the number of tickets: counts, durations, ratings, categories."""
    before = start - (end - start)

    def within(column, lo=start, hi=end):
        return and_(column >= lo, column < hi)

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    counts = db.session.execute(
        select(count(within(Ticket.created_at)).label("opened"),
               count(within(Ticket.resolved_at)).label("resolved"),
               count(within(Ticket.closed_at)).label("closed"),
               count(within(Ticket.resolved_at, before, start)).label("resolved_before"),
               count(or_(within(Ticket.first_response_breached_at), within(Ticket.resolution_breached_at)))
               .label("breaches"))
        .where(Ticket.workspace_id == workspace_id,
               or_(Ticket.created_at >= before, Ticket.resolved_at >= before, Ticket.closed_at >= before,
                   Ticket.first_response_breached_at >= before, Ticket.resolution_breached_at >= before))).one()
    durations = db.session.execute(
        select(Ticket.created_at, Ticket.first_responded_at, Ticket.resolved_at)
        .where(Ticket.workspace_id == workspace_id,
               or_(within(Ticket.first_responded_at), within(Ticket.resolved_at)))
        .limit(DURATION_ROWS_MAX)).all()
    responses = [r.first_responded_at - r.created_at for r in durations
                 if r.first_responded_at and start <= _aware(r.first_responded_at) < end]
    resolutions = [r.resolved_at - r.created_at for r in durations
                   if r.resolved_at and start <= _aware(r.resolved_at) < end]
    mean, rated = db.session.execute(
        select(func.avg(Rating.score), func.count(Rating.id))
        .where(Rating.workspace_id == workspace_id, within(Rating.created_at))).one()
    categories = db.session.execute(
        select(Ticket.category, func.count(Ticket.id))
        .where(Ticket.workspace_id == workspace_id, within(Ticket.created_at))
        .group_by(Ticket.category).order_by(func.count(Ticket.id).desc(), Ticket.category).limit(3)).all()
    iso = start.date().isocalendar()
    return WeekFigures(
        week=f"{iso.year}-W{iso.week:02d}", start=start.date().isoformat(),
        opened=int(counts.opened), resolved=int(counts.resolved), closed=int(counts.closed),
        resolved_week_before=int(counts.resolved_before),
        first_response_minutes=_mean_minutes(responses), resolution_minutes=_mean_minutes(resolutions),
        sla_breaches=int(counts.breaches),
        satisfaction=str(Decimal(str(mean)).quantize(Decimal("0.01"))) if rated else None, ratings=int(rated),
        top_categories=[[str(category), int(n)] for category, n in categories])


def do_send_weekly_summary(workspace_id: int, *, now: datetime) -> int:
    """On Monday morning (local time), the past ISO week's figures to every admin, once."""
    workspace = db.session.get(Workspace, workspace_id)
    tz = ZoneInfo(workspace.timezone)
    local = now.astimezone(tz)
    this_week, _end = week_bounds(local.date(), tz)
    if local < this_week + timedelta(hours=DIGEST_HOUR):
        return 0  # Monday before the morning: the past week is summed up a little later
    start, end = week_bounds(local.date() - timedelta(days=7), tz)
    admins = admins_of(workspace_id)
    if not admins:
        return 0
    figures = week_figures(workspace_id, start, end)
    sent = sum(1 for admin in admins if notify(
        admin, workspace_id=workspace_id, kind=NotificationKind.WEEKLY_SUMMARY, data=asdict(figures),
        dedupe_key=f"weekly-{figures.week}"))
    outbox.commit()
    if sent:
        log.info("weekly summary workspace_id=%s week=%s admins=%s", workspace_id, figures.week, sent)
    return sent


def _mean_minutes(durations: list[timedelta]) -> int | None:
    if not durations:
        return None
    return round(sum(durations, timedelta()).total_seconds() / 60 / len(durations))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
