"""In-app notifications (the header bell, live over SSE) and their email copies."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from flask import current_app
from flask_babel import force_locale, format_decimal
from flask_babel import gettext as _
from sqlalchemy import select, update

from .. import outbox
from ..extensions import db
from ..mailer import Email, get_mailer
from ..models import Notification, NotificationKind, Role, Ticket, TicketSettings, User, Workspace, utcnow

log = logging.getLogger(__name__)
EMAIL_JOB = "inbox.jobs.tickets.email_notification"
EMAIL_RETRY_INTERVALS = [30, 120, 600, 1800]


def bell_event(user_id: int) -> str:
    """The SSE event a user's bell listens to ("notifications-7")."""
    return f"notifications-{user_id}"


def notify(user: User | int, *, workspace_id: int, kind: NotificationKind, ticket: Ticket | None = None,
           contact_id: int | None = None, data: dict | None = None, dedupe_key: str | None = None,
           email: bool = True) -> Notification | None:
    """Add a notification to the session (the caller commits). None when already sent."""
    user_id = user if isinstance(user, int) else user.id
    if dedupe_key and db.session.scalar(select(Notification.id).where(
            Notification.user_id == user_id, Notification.dedupe_key == dedupe_key)):
        return None
    facts = dict(data or {})
    if ticket is not None:
        facts.setdefault("ref", ticket.reference)
        facts.setdefault("subject", ticket.subject)
    notification = Notification(
        workspace_id=workspace_id, user_id=user_id, kind=kind, data=facts, dedupe_key=dedupe_key,
        ticket_id=ticket.id if ticket is not None else None,
        contact_id=contact_id if contact_id is not None else (ticket.contact_id if ticket is not None else None),
        created_at=utcnow(),
    )
    db.session.add(notification)
    db.session.flush()
    outbox.publish_event(workspace_id, bell_event(user_id))
    if email and TicketSettings.of(workspace_id).email_notifications:
        outbox.enqueue_job(EMAIL_JOB, notification.id, job_id=f"mail-notification-{notification.id}",
                           workspace_id=workspace_id, retry_intervals=EMAIL_RETRY_INTERVALS)
    return notification


def notify_many(users: Iterable[User], **kwargs) -> list[Notification]:
    return [n for u in {u.id: u for u in users if u is not None}.values() if (n := notify(u, **kwargs))]


def admins_of(workspace_id: int) -> list[User]:
    stmt = select(User).where(User.workspace_id == workspace_id, User.role == Role.ADMIN,
                              User.is_active_member.is_(True)).order_by(User.id)
    return list(db.session.scalars(stmt))


def notification_text(n: Notification) -> str:
    """The notification in the current locale (the bell, the list and the email subject)."""
    d = n.data or {}
    kind = n.kind
    if kind == NotificationKind.ASSIGNED:
        return _("%(actor)s assigned you %(ref)s: %(subject)s", actor=d.get("actor") or _("Auto-assignment"),
                 ref=d.get("ref", ""), subject=d.get("subject", ""))
    if kind == NotificationKind.CUSTOMER_REPLIED:
        if d.get("reopened"):
            return _("%(contact)s replied and reopened %(ref)s", contact=d.get("contact", ""), ref=d.get("ref", ""))
        return _("%(contact)s replied on %(ref)s", contact=d.get("contact", ""), ref=d.get("ref", ""))
    if kind == NotificationKind.SLA_WARNING:
        if d.get("target") == "first_response":
            return _("%(ref)s: first response due in less than %(hours)s h", ref=d.get("ref", ""), hours=d.get("hours", ""))
        return _("%(ref)s: resolution due in less than %(hours)s h", ref=d.get("ref", ""), hours=d.get("hours", ""))
    if kind == NotificationKind.SLA_BREACHED:
        if d.get("target") == "first_response":
            return _("%(ref)s missed its first-response deadline; priority is now %(priority)s",
                     ref=d.get("ref", ""), priority=priority_text(d.get("priority")))
        return _("%(ref)s missed its resolution deadline; priority is now %(priority)s",
                 ref=d.get("ref", ""), priority=priority_text(d.get("priority")))
    if kind == NotificationKind.CRITICAL_TICKET:
        return _("Critical ticket %(ref)s: %(subject)s", ref=d.get("ref", ""), subject=d.get("subject", ""))
    if kind == NotificationKind.BUDGET_ALERT:
        return _("%(contact)s has used %(percent)s%% of its %(period)s budget (%(spent)s of %(amount)s %(currency)s)",
                 contact=d.get("contact", ""), percent=d.get("percent", ""), period=period_text(d.get("period")),
                 spent=d.get("spent", ""), amount=d.get("amount", ""), currency=d.get("currency", ""))
    if kind == NotificationKind.NEW_TICKET:
        return _("New unassigned ticket %(ref)s from %(contact)s: %(subject)s", ref=d.get("ref", ""),
                 contact=d.get("contact", ""), subject=d.get("subject", ""))
    if kind == NotificationKind.PENDING_REMINDER:
        mine, unassigned = int(d.get("mine") or 0), int(d.get("unassigned") or 0)
        if mine and unassigned:
            return _("Tickets waiting for more than 24 h: %(mine)d yours, %(unassigned)d unassigned",
                     mine=mine, unassigned=unassigned)
        if unassigned:
            return _("Tickets waiting for more than 24 h: %(n)d unassigned", n=unassigned)
        return _("Tickets waiting for more than 24 h: %(n)d yours", n=mine)
    if kind == NotificationKind.WEEKLY_SUMMARY:
        return _("Weekly summary (%(week)s): %(resolved)d resolved (%(before)d the week before), %(opened)d opened",
                 week=d.get("week", ""), resolved=d.get("resolved", 0), before=d.get("resolved_week_before", 0),
                 opened=d.get("opened", 0))
    return str(kind)


def notification_details(n: Notification) -> list[str]:
    """The lines under the headline, for the digests (the email body and the notifications page)."""
    d = n.data or {}
    if n.kind == NotificationKind.PENDING_REMINDER:
        lines = []
        for t in d.get("tickets") or []:
            line = _("%(ref)s · %(subject)s — waiting for %(hours)d h", ref=t.get("ref", ""),
                     subject=t.get("subject", ""), hours=t.get("hours", 0))
            lines.append(line + (" · " + _("unassigned") if t.get("unassigned") else ""))
        more = int(d.get("mine") or 0) + int(d.get("unassigned") or 0) - len(lines)
        if more > 0:
            lines.append(_("… and %(n)d more", n=more))
        return lines
    if n.kind == NotificationKind.WEEKLY_SUMMARY:
        satisfaction = (_("Satisfaction: %(score)s/5 over %(n)d ratings",
                          score=format_decimal(Decimal(d["satisfaction"]), "0.0#"), n=d.get("ratings", 0))
                        if d.get("satisfaction") else _("Satisfaction: no rating this week"))
        categories = ", ".join(f"{category_text(c)} ({count})" for c, count in d.get("top_categories") or [])
        return [
            _("Tickets opened: %(n)d", n=d.get("opened", 0)),
            _("Tickets resolved: %(n)d (week before: %(before)d)", n=d.get("resolved", 0),
              before=d.get("resolved_week_before", 0)),
            _("Tickets closed: %(n)d", n=d.get("closed", 0)),
            _("Mean first response: %(time)s", time=duration_text(d.get("first_response_minutes"))),
            _("Mean resolution time: %(time)s", time=duration_text(d.get("resolution_minutes"))),
            _("SLA breaches: %(n)d", n=d.get("sla_breaches", 0)),
            satisfaction,
            _("Top categories: %(list)s", list=categories or "–"),
        ]
    return []


def duration_text(minutes: int | None) -> str:
    if minutes is None:
        return "–"
    hours, rest = divmod(int(minutes), 60)
    return _("%(h)d h %(m)02d", h=hours, m=rest) if hours else _("%(m)d min", m=rest)


def category_text(value: str | None) -> str:
    return {"general": _("General"), "billing": _("Billing"), "technical": _("Technical"),
            "bug_report": _("Bug report"), "account": _("Account"),
            "suggestion": _("Suggestion")}.get(value or "", value or "")


def priority_text(value: str | None) -> str:
    return {"low": _("Low"), "medium": _("Normal"), "high": _("High"), "critical": _("Critical")}.get(value or "", value or "")


def period_text(value: str | None) -> str:
    return {"month": _("monthly"), "quarter": _("quarterly"), "year": _("yearly")}.get(value or "", value or "")


def notification_path(n: Notification) -> str:
    """Where the notification leads: its ticket, its client, or the list it is about."""
    if n.ticket_id:
        return f"/tickets/{n.ticket_id}"
    if n.contact_id:
        return f"/contacts/{n.contact_id}"
    if n.kind == NotificationKind.PENDING_REMINDER:
        return "/tickets?assignee=me" if (n.data or {}).get("mine") else "/tickets?assignee=none"
    return "/notifications"


def notification_url(n: Notification) -> str:
    return current_app.config["PUBLIC_BASE_URL"] + notification_path(n)


def do_mark_read(user: User, *, notification_ids: list[int] | None = None) -> int:
    """Mark some (or all) of the user's notifications read; the bell updates live."""
    stmt = (update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
            .values(read_at=utcnow()))
    if notification_ids is not None:
        stmt = stmt.where(Notification.id.in_(notification_ids))
    count = db.session.execute(stmt).rowcount
    if count:
        outbox.publish_event(user.workspace_id, bell_event(user.id))
    outbox.commit()
    return count


def send_notification_email(notification_id: int, *, now: datetime | None = None) -> bool:
    """Email one notification to its user, once. Transient SMTP errors propagate (RQ retries)."""
    n = db.session.get(Notification, notification_id)
    if n is None or n.emailed_at is not None or not n.user.is_active:
        return False
    workspace = db.session.get(Workspace, n.workspace_id)
    with force_locale(n.user.locale or workspace.default_locale):
        subject = f"[Coccinelle] {notification_text(n)}"
        details = notification_details(n)
        body = "\n".join([
            _("Hello %(name)s,", name=n.user.name), "", notification_text(n), "",
            *([f"- {line}" for line in details] + [""] if details else []),
            _("Open it: %(url)s", url=notification_url(n)), "",
            _("You receive this email because you are a member of %(workspace)s on Coccinelle.",
              workspace=workspace.name),
        ])
    get_mailer().send(Email(to=n.user.email, subject=subject, body=body))
    n.emailed_at = now or utcnow()
    db.session.commit()
    return True
