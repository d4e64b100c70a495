"""In-app notifications (the header bell, live over SSE) and their email copies."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from flask_babel import force_locale
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
    return str(kind)


def priority_text(value: str | None) -> str:
    return {"low": _("Low"), "medium": _("Normal"), "high": _("High"), "critical": _("Critical")}.get(value or "", value or "")


def period_text(value: str | None) -> str:
    return {"month": _("monthly"), "quarter": _("quarterly"), "year": _("yearly")}.get(value or "", value or "")


def notification_url(n: Notification) -> str:
    base = current_app.config["PUBLIC_BASE_URL"]
    if n.ticket_id:
        return f"{base}/tickets/{n.ticket_id}"
    if n.contact_id:
        return f"{base}/contacts/{n.contact_id}"
    return f"{base}/notifications"


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
        body = "\n".join([
            _("Hello %(name)s,", name=n.user.name), "", notification_text(n), "",
            _("Open it: %(url)s", url=notification_url(n)), "",
            _("You receive this email because you are a member of %(workspace)s on Coccinelle.",
              workspace=workspace.name),
        ])
    get_mailer().send(Email(to=n.user.email, subject=subject, body=body))
    n.emailed_at = now or utcnow()
    db.session.commit()
    return True
