"""Scheduled messages: written now, sent later by the worker ("envoyer demain à 9h").

A scheduled message is a `ScheduledMessage` row, not a Message: it can be edited or cancelled
until it leaves. When it is due, `release_due(now)` turns it into a QUEUED Message in the same
transaction that marks it sent (conditional UPDATE), so it leaves exactly once. On the way out
the channel's rules apply: outside the allowed hours it waits for the next opening; on WhatsApp
outside the 24-hour window only an approved template may go, otherwise it is blocked and the
thread says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import select, update

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import (
    Channel, Contact, Conversation, ConversationStatus, OutboundTemplate, ScheduledMessage, ScheduledStatus,
    SenderKind, User, Workspace, utcnow,
)
from ..orchestrator.outbound import (
    Rendered, contact_values, conversation_for, last_inbound_at, queue_message, render_template,
    whatsapp_needs_template,
)
from ..orchestrator.delivery import rank_channels
from ..orchestrator.sending_rules import SendRules, allowed_at, next_allowed
from ..channels.whatsapp_twilio import window_closes_at
from .conversations import check_reply, reachable_channels

log = logging.getLogger(__name__)
MAX_AHEAD = timedelta(days=366)
QUICK_CHOICES = ("in_1h", "tomorrow_9", "tomorrow_14", "monday_9")


# -- access / check -------------------------------------------------------------------------------
def access_scheduled(scheduled_id: int, user: User) -> ScheduledMessage:
    return get_in_workspace(ScheduledMessage, scheduled_id, user.workspace_id)


def access_template(template_id: int | None, user: User) -> OutboundTemplate | None:
    if not template_id:
        return None
    template = db.session.get(OutboundTemplate, template_id)
    if template is None or template.workspace_id != user.workspace_id:
        raise ValidationError(_("This template does not exist."), field="template")
    return template


def contact_channels(contact: Contact) -> list[Channel]:
    """Where a new message to the contact can go (the client page's "new message later"):
    the channels they have an address on, their preferred kind first."""
    return rank_channels(reachable_channels(contact.workspace_id, contact.id), last_used_channel_id=None,
                         preferred_kind=contact.preferred_channel, recent_channel_ids=[])


def access_contact_channel(contact: Contact, channel_id: int | None) -> Channel:
    """The channel asked for among the contact's; the preferred one when none was asked."""
    for channel in contact_channels(contact):
        if channel_id is None or channel.id == channel_id:
            return channel
    raise ValidationError(_("This contact cannot be reached on that channel."), field="channel")


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    text: str
    template: OutboundTemplate | None
    send_at: datetime


def check_schedule_form(form, channel: Channel, user: User, *, now: datetime) -> ScheduleInput:
    """The "send later" form, from the composer or the client page: a text (or a template, which
    then replaces it), and a quick choice or a date and time in the workspace's zone."""
    template = access_template(form.get("template_id", type=int), user)
    body = form.get("body", "")
    text = body if template else check_reply(body, channel)
    send_at = check_send_at(form.get("send_at"), form.get("when"), timezone=user.workspace.timezone, now=now)
    return ScheduleInput(text=text, template=template, send_at=send_at)


@dataclass(frozen=True, slots=True)
class QuickChoice:
    key: str
    at: datetime  # aware UTC


def quick_choices(timezone: str, now: datetime) -> list[QuickChoice]:
    """"In 1 hour", "tomorrow 9:00", "tomorrow 14:00", "Monday 9:00", in the workspace's zone."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)

    def at(day, hour):
        return datetime.combine(day, time(hour), zone).astimezone(now.tzinfo)

    tomorrow = local.date() + timedelta(days=1)
    monday = local.date() + timedelta(days=(7 - local.weekday()) or 7)
    in_1h = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    return [QuickChoice("in_1h", in_1h), QuickChoice("tomorrow_9", at(tomorrow, 9)),
            QuickChoice("tomorrow_14", at(tomorrow, 14)), QuickChoice("monday_9", at(monday, 9))]


def check_send_at(raw: str | None, when: str | None, *, timezone: str, now: datetime) -> datetime:
    """A quick choice, or a datetime-local value read in the workspace's time zone → aware UTC."""
    if when:
        for choice in quick_choices(timezone, now):
            if choice.key == when:
                return choice.at
        raise ValidationError(_("Pick when to send the message."), field="send_at")
    try:
        naive = datetime.fromisoformat((raw or "").strip())
    except ValueError:
        raise ValidationError(_("Pick when to send the message."), field="send_at") from None
    local = naive.replace(tzinfo=ZoneInfo(timezone)) if naive.tzinfo is None else naive
    send_at = local.astimezone(now.tzinfo)
    if send_at <= now + timedelta(minutes=1):
        raise ValidationError(_("Pick a time in the future."), field="send_at")
    if send_at > now + MAX_AHEAD:
        raise ValidationError(_("A message can be scheduled up to one year ahead."), field="send_at")
    return send_at


def check_whatsapp_window(contact_id: int, channel: Channel, send_at: datetime,
                          template: OutboundTemplate | None) -> None:
    """Say it now rather than fail later: free text cannot leave after the window closes."""
    if channel.kind != ChannelKind.WHATSAPP or (template is not None and template.whatsapp_ready):
        return
    if whatsapp_needs_template(contact_id, channel, send_at):
        last = last_inbound_at(contact_id, channel.id)
        if last is None:
            message = _("This contact never wrote on WhatsApp: only an approved template can be sent. "
                        "Pick a template.")
        else:
            message = _("The WhatsApp 24-hour window closes at %(time)s: after that only an approved template "
                        "can be sent. Send earlier, or pick a template.",
                        time=format_datetime(window_closes_at(last), "short"))
        raise ValidationError(message, field="send_at")


# -- do -------------------------------------------------------------------------------------------
def do_schedule_message(conversation: Conversation | None, text: str, *, contact: Contact, actor: User,
                        channel: Channel, send_at: datetime, template: OutboundTemplate | None = None
                        ) -> ScheduledMessage:
    """Schedule a reply (conversation given) or a new message to the contact (conversation None)."""
    if template is not None:
        text = _template_text(template, contact, channel)
    check_whatsapp_window(contact.id, channel, send_at, template)
    item = ScheduledMessage(
        workspace_id=contact.workspace_id, conversation_id=conversation.id if conversation else None,
        contact_id=contact.id, channel_id=channel.id, author_id=actor.id, body=text,
        template_id=template.id if template else None, send_at=send_at, status=ScheduledStatus.SCHEDULED,
    )
    db.session.add(item)
    _announce(item)
    outbox.commit()
    return item


def do_update_scheduled(item: ScheduledMessage, text: str, *, send_at: datetime, actor: User) -> ScheduledMessage:
    """Change the text or the time, as long as the message has not left."""
    check_whatsapp_window(item.contact_id, item.channel, send_at, item.template)
    result = db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == item.id, ScheduledMessage.status == ScheduledStatus.SCHEDULED)
        .values(body=text, send_at=send_at, postponed_from=None, updated_at=utcnow()))
    if result.rowcount != 1:
        outbox.discard()
        raise ValidationError(_("This message has already left and can no longer be changed."), field="body")
    _announce(item)
    outbox.commit()
    db.session.refresh(item)
    return item


def do_cancel_scheduled(item: ScheduledMessage, *, actor: User) -> None:
    result = db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == item.id,
               ScheduledMessage.status.in_([ScheduledStatus.SCHEDULED, ScheduledStatus.BLOCKED]))
        .values(status=ScheduledStatus.CANCELLED, updated_at=utcnow()))
    if result.rowcount != 1:
        outbox.discard()
        raise ValidationError(_("This message has already left and can no longer be cancelled."), field="body")
    _announce(item)
    outbox.commit()
    db.session.refresh(item)


def release_due(now: datetime, *, limit: int = 500) -> int:
    """Send every scheduled message whose time has come (the periodic job). Returns how many left."""
    due = db.session.scalars(
        select(ScheduledMessage.id).where(ScheduledMessage.status == ScheduledStatus.SCHEDULED,
                                          ScheduledMessage.send_at <= now)
        .order_by(ScheduledMessage.send_at, ScheduledMessage.id).limit(limit)).all()
    released = 0
    for item_id in due:
        try:
            released += _release(db.session.get(ScheduledMessage, item_id), now)
        except Exception:
            outbox.discard()
            log.exception("scheduled message release failed scheduled_id=%s", item_id)
    return released


def _release(item: ScheduledMessage, now: datetime) -> int:
    channel = item.channel
    workspace = db.session.get(Workspace, item.workspace_id)
    if not channel.enabled:
        return _block(item, "channel_disabled")
    rules = SendRules.of(channel)
    if not allowed_at(rules, now, workspace.timezone):  # quiet hours: wait for the next opening
        db.session.execute(
            update(ScheduledMessage)
            .where(ScheduledMessage.id == item.id, ScheduledMessage.status == ScheduledStatus.SCHEDULED)
            .values(send_at=next_allowed(rules, now, workspace.timezone),
                    postponed_from=item.postponed_from or item.send_at))
        _announce(item)
        outbox.commit()
        log.info("scheduled message postponed (allowed hours) scheduled_id=%s", item.id)
        return 0
    template = item.template
    if whatsapp_needs_template(item.contact_id, channel, now) and not (template and template.whatsapp_ready):
        return _block(item, "whatsapp_window")
    claimed = db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == item.id, ScheduledMessage.status == ScheduledStatus.SCHEDULED,
               ScheduledMessage.send_at <= now)
        .values(status=ScheduledStatus.SENT, updated_at=utcnow()))
    if claimed.rowcount != 1:  # edited to later, cancelled, or another run took it
        db.session.rollback()
        return 0
    contact = db.session.get(Contact, item.contact_id)
    conversation = (db.session.get(Conversation, item.conversation_id) if item.conversation_id
                    else conversation_for(contact, new_status=ConversationStatus.PENDING))
    send_meta = None
    if template is not None:
        send_meta = render_template(template, channel, contact_values(contact, workspace_name=workspace.name)).send_meta
    message = queue_message(conversation, channel, Rendered(body=item.body, send_meta=send_meta),
                            sender_kind=SenderKind.AGENT, sender_user_id=item.author_id,
                            meta={"scheduled_id": item.id}, idempotency_key=f"scheduled-{item.id}")
    item.message_id = message.id
    _announce(item)
    outbox.commit()
    log.info("scheduled message released scheduled_id=%s message_id=%s", item.id, message.id)
    return 1


def _block(item: ScheduledMessage, reason: str) -> int:
    result = db.session.execute(
        update(ScheduledMessage)
        .where(ScheduledMessage.id == item.id, ScheduledMessage.status == ScheduledStatus.SCHEDULED)
        .values(status=ScheduledStatus.BLOCKED, error=reason, updated_at=utcnow()))
    if result.rowcount == 1:
        _announce(item)
        outbox.commit()
        log.info("scheduled message blocked scheduled_id=%s reason=%s", item.id, reason)
    else:
        db.session.rollback()
    return 0


def _announce(item: ScheduledMessage) -> None:
    outbox.publish_event(item.workspace_id, f"contact-{item.contact_id}-scheduled", scheduled_id=item.id)


def _template_text(template: OutboundTemplate, contact: Contact, channel: Channel) -> str:
    workspace = db.session.get(Workspace, contact.workspace_id)
    if not template.fits(channel.kind):
        raise ValidationError(_("This template is not meant for this channel."), field="template")
    return render_template(template, channel, contact_values(contact, workspace_name=workspace.name)).body
