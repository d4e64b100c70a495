"""How a channel behaves with the customers who write to it, in the route job.

Read from `Channel.settings` (the admin sets them in the channel's "Behaviour" section):

    availability        seven lists (Monday first) of ["HH:MM", "HH:MM"]: when the team answers on
                        this channel, wall clock in the workspace's time zone (its holidays are
                        closed too). Absent: always available.
    closed_reply        true: outside the availability hours, the customer is told when we answer,
                        once per conversation per closed period (Chatwoot's "out of office" message).
    closed_reply_text   the admin's text, "{opening}" standing for the next opening; blank: a
                        default text in the customer's language.
    forward_to          an email address that receives a copy of each inbound message.
    assign_to           a member's id: new conversations started on this channel are theirs
                        (Chatwoot's per-inbox assignment, Zendesk's "assign to" trigger).

Forwarding rules see every inbound message (a STOP, a /command too); the closed reply is for
messages a person would answer, so routing calls it after consent keywords and bot commands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import outbox
from ..business_time import BusinessCalendar, Week, week_from_json
from ..channels.registry import can_send_text
from ..errors import PermanentDeliveryError
from ..extensions import db
from ..jobs import job
from ..models import Channel, Direction, Message, User, Workspace, utcnow

log = logging.getLogger(__name__)
FORWARD_JOB = "inbox.orchestrator.channel_behaviour.send_forwarded_copy"
FORWARD_RETRY_INTERVALS = [30, 120, 600, 1800]  # a mail server down for a while: seconds between tries
CLOSED_REPLY_KEY = "closed-hours-{channel}-{period:%Y%m%d%H%M}"
OPENING_FORMAT = "EEEE d MMMM, HH:mm"


@dataclass(frozen=True, slots=True)
class Behaviour:
    week: Week | None = None  # None: always available
    closed_reply: bool = False
    closed_reply_text: str = ""
    forward_to: str = ""
    assign_to: int | None = None

    @classmethod
    def of(cls, channel: Channel) -> Behaviour:
        settings = channel.settings or {}
        try:
            week = week_from_json(settings["availability"]) if settings.get("availability") else None
        except (TypeError, ValueError):
            week = None  # a hand-edited value: treated as always available rather than failing the route job
        assign = settings.get("assign_to")
        return cls(week=week if week and any(week) else None, closed_reply=bool(settings.get("closed_reply")),
                   closed_reply_text=str(settings.get("closed_reply_text") or ""),
                   forward_to=str(settings.get("forward_to") or ""),
                   assign_to=int(assign) if str(assign or "").isdigit() else None)


# -- availability ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    since: datetime  # when the channel last closed (aware UTC): names the period
    opening: datetime  # when it opens again


def calendar_for(channel: Channel, week: Week) -> BusinessCalendar:
    from ..models.sla import calendar_of

    return calendar_of(channel.workspace_id, week=week)


def closed_period(calendar: BusinessCalendar, now: datetime) -> ClosedPeriod | None:
    """None while open; otherwise the closed stretch `now` falls in (a week with no opening is
    refused by the settings form, so both ends exist within a fortnight, holidays aside)."""
    if calendar.is_never_open or calendar.is_open(now):
        return None
    today = calendar.local_date(now)
    intervals = [span for offset in range(-15, 16) for span in calendar.openings(today + timedelta(days=offset))]
    # Closed for more than a fortnight (long holidays): the period is named by its day, so still once a day at most.
    fallback = datetime.combine(today - timedelta(days=15), time(), tzinfo=UTC)
    since = max((closes for _opens, closes in intervals if closes <= now), default=fallback)
    opening = min((opens for opens, _closes in intervals if opens > now), default=None)
    return None if opening is None else ClosedPeriod(since=since, opening=opening)


def reply_when_closed(message: Message, *, now: datetime | None = None) -> bool:
    """Outside the channel's availability hours, tell the customer when the team answers: once
    per conversation and closed period (a unique key on the message guards concurrent jobs).
    Sent as a bot reply; routing then goes on (Sara may still answer what she can)."""
    channel = message.channel
    if channel is None or not channel.enabled or not can_send_text(channel.kind, channel.provider) \
            or _from_team(message):
        return False
    behaviour = Behaviour.of(channel)
    if behaviour.week is None or not behaviour.closed_reply:
        return False
    now = now or utcnow()
    calendar = calendar_for(channel, behaviour.week)
    period = closed_period(calendar, now)
    if period is None or not _automated_allowed(channel, now, calendar.timezone):
        return False
    key = CLOSED_REPLY_KEY.format(channel=channel.id, period=period.since)
    conversation = message.conversation
    if db.session.scalar(select(Message.id).where(Message.conversation_id == conversation.id,
                                                  Message.idempotency_key == key)) is not None:
        return False
    from ..actions.conversations import do_send_bot_reply

    text = closed_reply_text(behaviour, message, period, calendar.timezone)
    try:
        reply = do_send_bot_reply(conversation, text, channel=channel, meta={"auto": "closed_hours"}, commit=False)
        reply.idempotency_key = key
        db.session.flush()
        outbox.commit()
    except IntegrityError:  # another job answered this conversation in the same period
        outbox.discard()
        return False
    log.info("closed-hours reply message_id=%s conversation_id=%s opening=%s", message.id, conversation.id,
             period.opening.isoformat())
    return True


def _automated_allowed(channel: Channel, now: datetime, timezone: str) -> bool:
    """The channel's sending rules bind everything automated (sending_rules.py): outside its
    allowed sending hours, or past its daily limit, no closed-hours reply. Held until the
    opening it would be pointless: by then the team answers."""
    from .sending_rules import SendRules, allowed_at, auto_reply_room

    return allowed_at(SendRules.of(channel), now, timezone) and auto_reply_room(channel, now, timezone) != 0


def _from_team(message: Message) -> bool:
    return bool((message.meta or {}).get("notification_group"))  # the team's Telegram group, not a customer


def closed_reply_text(behaviour: Behaviour, message: Message, period: ClosedPeriod, timezone: str) -> str:
    """The admin's text, or the default one, in the customer's language when we know it."""
    workspace = db.session.get(Workspace, message.workspace_id)
    locale = (message.contact.locale if message.contact else None) or workspace.default_locale
    opening = format_datetime(period.opening, OPENING_FORMAT, tzinfo=ZoneInfo(timezone), locale=locale)
    if behaviour.closed_reply_text.strip():
        return behaviour.closed_reply_text.replace("{opening}", opening)
    with force_locale(locale):
        return _("Thank you for your message. We are closed at the moment; we will answer from %(opening)s.",
                 opening=opening)


# -- forwarding rules ------------------------------------------------------------------------------
def apply_forwarding_rules(message: Message) -> None:
    """A copy by email (a job, after commit) and the assignment of a new conversation."""
    channel = message.channel
    if channel is None or message.direction != Direction.INBOUND or _from_team(message):
        return
    behaviour = Behaviour.of(channel)
    if not behaviour.forward_to and behaviour.assign_to is None:
        return
    if behaviour.forward_to:
        outbox.enqueue_job(FORWARD_JOB, message.id, job_id=f"forward-{message.id}",
                           workspace_id=message.workspace_id, retry_intervals=FORWARD_RETRY_INTERVALS)
    if behaviour.assign_to is not None:
        _assign_new_conversation(message, channel, behaviour.assign_to)
    outbox.commit()


def _assign_new_conversation(message: Message, channel: Channel, user_id: int) -> None:
    conversation = message.conversation
    if conversation.assignee_id is not None:
        return
    first = db.session.scalar(select(func.min(Message.id)).where(
        Message.conversation_id == conversation.id, Message.direction == Direction.INBOUND))
    agent = db.session.get(User, user_id)
    if first != message.id or agent is None or agent.workspace_id != channel.workspace_id \
            or not agent.is_active_member:
        return  # an ongoing conversation keeps its owner; a member who left takes nothing
    from ..actions.conversations import system_line

    conversation.assignee_id = agent.id
    system_line(conversation, {"kind": "assigned", "actor": channel.name, "agent": agent.name},
                f"{channel.name} assigned the conversation to {agent.name}")
    log.info("channel rule assigned conversation_id=%s to user_id=%s", conversation.id, agent.id)


@job
def send_forwarded_copy(message_id: int) -> bool:
    """The job: email a copy of one inbound message, once (the message remembers it). A refused
    address is logged, not retried; a server that is down is retried by RQ."""
    from ..mailer import Email, get_mailer
    from .outbound import public_url

    message = db.session.get(Message, message_id)
    if message is None or (message.meta or {}).get("forwarded_to") or message.channel is None:
        return False
    target = Behaviour.of(message.channel).forward_to
    if not target:
        return False  # the rule was removed before the job ran
    workspace = db.session.get(Workspace, message.workspace_id)
    name = message.contact.display_name if message.contact else ""
    with force_locale(workspace.default_locale):
        subject = _("[%(channel)s] Message from %(name)s", channel=message.channel.name, name=name)
        lines = [message.subject or "", message.body or "", ""]
        if message.attachments:
            lines.append(ngettext("%(num)d attachment: open the conversation to see it.",
                                  "%(num)d attachments: open the conversation to see them.",
                                  len(message.attachments)))
        lines.append(_("Answer in Coccinelle: %(url)s", url=public_url(f"/inbox/c/{message.conversation_id}")))
    try:
        get_mailer().send(Email(to=target, subject=subject, body="\n".join(lines).strip()))
    except PermanentDeliveryError as exc:
        log.warning("forwarded copy refused message_id=%s: %s", message.id, exc.message)
        return False
    message.meta = {**(message.meta or {}), "forwarded_to": target}
    db.session.commit()
    return True
