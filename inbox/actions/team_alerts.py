"""The team's Telegram group: a short post when a ticket is created, when a critical ticket
arrives, and when an SLA deadline is near or missed.

A Telegram channel whose settings name a `notification_chat_id` (the group's chat id) gets the
posts, through the same adapter as customer messages, from a job. Each post is a `TeamAlert`
row written in the ticket's own transaction (the ticket code calls the functions below and
commits): unique per channel and event, so an event raised twice posts once, and claimed
queued → sending by the worker before it talks to Telegram, so a repeated job never posts it
twice. Transient errors are retried with the delivery backoff; Telegram's flood control is
waited out; an ambiguous failure (sent or not, we cannot tell) is not retried.

Why not a bot Message with meta["deliver_to"] (the path commands.py uses to answer in the
group): a message lives in a customer's conversation, shows in its thread and waits behind its
sends; an alert belongs to the team, not to the customer's history.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import outbox
from ..channels.base import OutboundMessage
from ..errors import PermanentDeliveryError, RateLimited, TransientDeliveryError
from ..extensions import db
from ..kinds import ChannelKind, DeliveryStatus
from ..models import Channel, Notification, NotificationKind, Priority, Ticket, Workspace, utcnow
from ..models.team_alert import TeamAlert, TeamAlertKind
from .gdpr import register_personal_data
from .notifications import notification_text, priority_text

log = logging.getLogger(__name__)
SEND_JOB = "inbox.jobs.channels.send_team_alert"
GROUP_SETTING = "notification_chat_id"
RATE_LIMIT_GIVE_UP = timedelta(hours=6)  # an alert still held back by flood control is no news any more
HEADLINE_MARKS = {TeamAlertKind.TICKET_CREATED: "🆕", TeamAlertKind.CRITICAL_TICKET: "🚨",
                  TeamAlertKind.SLA_WARNING: "⏰", TeamAlertKind.SLA_BREACHED: "🔥"}


# -- raised by the ticket code (inside its transaction; it commits) ------------------------------
def ticket_created(ticket: Ticket) -> list[TeamAlert]:
    if ticket.priority == Priority.CRITICAL:
        return []  # critical_ticket() posts it, once, as critical
    return _alert(ticket, TeamAlertKind.TICKET_CREATED, key=f"created-{ticket.id}")


def critical_ticket(ticket: Ticket) -> list[TeamAlert]:
    """A ticket created critical, or raised to critical (by hand or by an SLA breach)."""
    return _alert(ticket, TeamAlertKind.CRITICAL_TICKET, key=f"critical-{ticket.id}")


def sla_warning(ticket: Ticket, target: str, *, due: datetime, hours: int | float) -> list[TeamAlert]:
    return _alert(ticket, TeamAlertKind.SLA_WARNING, key=f"sla-warning-{target}-{ticket.id}-{int(due.timestamp())}",
                  data={"target": target, "hours": hours})


def sla_breached(ticket: Ticket, target: str) -> list[TeamAlert]:
    return _alert(ticket, TeamAlertKind.SLA_BREACHED, key=f"sla-breach-{target}-{ticket.id}",
                  data={"target": target, "priority": str(ticket.priority)})


def group_channels(workspace_id: int) -> list[Channel]:
    """The workspace's enabled Telegram channels that have a team group."""
    channels = db.session.scalars(select(Channel).where(
        Channel.workspace_id == workspace_id, Channel.kind == ChannelKind.TELEGRAM, Channel.enabled.is_(True)))
    return [c for c in channels if str((c.settings or {}).get(GROUP_SETTING) or "").strip()]


def _alert(ticket: Ticket, kind: TeamAlertKind, *, key: str, data: dict | None = None) -> list[TeamAlert]:
    channels = group_channels(ticket.workspace_id)
    if not channels:
        return []
    text = alert_text(ticket, kind, data or {})
    alerts = []
    for channel in channels:
        if db.session.scalar(select(TeamAlert.id).where(TeamAlert.channel_id == channel.id, TeamAlert.key == key)):
            continue
        alert = TeamAlert(workspace_id=ticket.workspace_id, channel_id=channel.id, ticket_id=ticket.id, kind=kind,
                          key=key, chat_id=str(channel.settings[GROUP_SETTING]).strip(), text=text,
                          status=DeliveryStatus.QUEUED, created_at=utcnow())
        try:
            with db.session.begin_nested():  # a concurrent job raised the same event: it posts
                db.session.add(alert)
                db.session.flush()
        except IntegrityError:
            continue
        outbox.enqueue_job(SEND_JOB, alert.id, job_id=f"team-alert-{alert.id}", workspace_id=ticket.workspace_id,
                           retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])
        alerts.append(alert)
    return alerts


def alert_text(ticket: Ticket, kind: TeamAlertKind, data: dict) -> str:
    """Ref, subject, priority and the ticket's page, in the workspace's language."""
    workspace = db.session.get(Workspace, ticket.workspace_id)
    facts = {"ref": ticket.reference, "subject": ticket.subject, **data}
    with force_locale(workspace.default_locale):
        if kind == TeamAlertKind.TICKET_CREATED:
            headline = _("New ticket %(ref)s: %(subject)s", ref=ticket.reference, subject=ticket.subject)
        else:  # the bell's wording for the same event
            headline = notification_text(Notification(kind=NotificationKind(str(kind)), data=facts))
        lines = [f"{HEADLINE_MARKS[kind]} {headline}"]
        if kind in (TeamAlertKind.SLA_WARNING, TeamAlertKind.SLA_BREACHED):
            lines.append(ticket.subject)
        lines.append(_("Priority: %(priority)s", priority=priority_text(str(ticket.priority))))
    lines.append(f"{current_app.config['PUBLIC_BASE_URL']}/tickets/{ticket.id}")
    return "\n".join(lines)


# -- the job -------------------------------------------------------------------------------------
def do_send_team_alert(alert_id: int) -> None:
    """Post one alert. Safe to run twice: only the run that claims it (queued → sending) posts."""
    from ..orchestrator.delivery import adapter_for

    claimed = db.session.execute(
        update(TeamAlert).where(TeamAlert.id == alert_id, TeamAlert.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.SENDING, attempts=TeamAlert.attempts + 1)).rowcount
    db.session.commit()
    if claimed != 1:
        log.info("team alert skipped alert_id=%s: not queued (already sent or in flight)", alert_id)
        return
    alert = db.session.get(TeamAlert, alert_id)
    channel = alert.channel
    adapter = adapter_for(channel)
    db.session.commit()  # no transaction (SQLite write lock) held while Telegram answers
    try:
        if not channel.enabled:
            raise PermanentDeliveryError("the channel is disabled", code="disabled")
        receipt = adapter.send(OutboundMessage(to=alert.chat_id, body=alert.text))
    except RateLimited as exc:
        _wait(alert, exc)
        return
    except TransientDeliveryError as exc:
        if alert.attempts <= len(current_app.config["DELIVERY_RETRY_INTERVALS"]):
            _finish(alert, DeliveryStatus.QUEUED, error=str(exc))
            raise  # RQ retries with the backoff the job was enqueued with
        _finish(alert, DeliveryStatus.FAILED, error=f"{exc} ({alert.attempts} attempts)")
        return
    except PermanentDeliveryError as exc:
        _finish(alert, DeliveryStatus.FAILED, error=exc.message)
        log.warning("team alert failed alert_id=%s channel=%s code=%s", alert.id, channel.id, exc.code)
        return
    alert.provider_message_id = receipt.provider_message_id
    alert.sent_at = utcnow()
    _finish(alert, DeliveryStatus.SENT, error=None)
    log.info("team alert sent alert_id=%s channel=%s provider_id=%s", alert.id, channel.id, alert.provider_message_id)


def _finish(alert: TeamAlert, status: DeliveryStatus, *, error: str | None) -> None:
    alert.status = status
    alert.error_message = error
    db.session.commit()


def _wait(alert: TeamAlert, exc: RateLimited) -> None:
    """Flood control: post again after the delay Telegram gave; a wait does not use up a retry."""
    if utcnow() - alert.created_at > RATE_LIMIT_GIVE_UP:
        _finish(alert, DeliveryStatus.FAILED, error=str(exc))
        return
    alert.status = DeliveryStatus.QUEUED
    alert.attempts -= 1
    alert.error_message = str(exc)
    delay = min(max(float(exc.retry_after or current_app.config.get("DELIVERY_RATE_LIMIT_DELAY", 30)), 1.0), 3600.0)
    outbox.enqueue_job(SEND_JOB, alert.id, job_id=f"team-alert-{alert.id}-wait-{int(utcnow().timestamp())}",
                       workspace_id=alert.workspace_id, delay=delay,
                       retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])
    outbox.commit()


# -- GDPR ----------------------------------------------------------------------------------------
def _erase(contact) -> None:
    """The client's tickets lose their subject: so do the posts about them (a post still queued
    goes out with the reference and the link only). What Telegram already shows stays there."""
    base = current_app.config["PUBLIC_BASE_URL"]
    rows = db.session.execute(
        select(TeamAlert, Ticket).join(Ticket, Ticket.id == TeamAlert.ticket_id)
        .where(Ticket.workspace_id == contact.workspace_id, Ticket.contact_id == contact.id)).all()
    for alert, ticket in rows:
        alert.text = f"{HEADLINE_MARKS[alert.kind]} {ticket.reference}\n{base}/tickets/{ticket.id}"


register_personal_data("team_alerts", erase=_erase)
