"""Tickets: create, move through the status flow, assign, discuss, reopen, auto-close, SLA.

access_* fetch with a permission check (404 across workspaces), check_* validate input with
messages a person can act on, do_* change state, commit through the outbox and emit events.
Every do_* takes an optional `now` so jobs and tests decide what time it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import abort
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from . import get_in_workspace
from .. import outbox
from ..business_time import week_from_json
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..models import (
    Channel, Contact, Conversation, ConversationStatus, Direction, Message,
    NotificationKind, Priority, SenderKind, Ticket, TicketCategory, TicketConversation,
    TicketAttachment, TicketEvent, TicketEventKind, TicketSettings, TicketSource, TicketStatus, User,
    Workspace, utcnow,
)
from ..models.sla import SlaPolicy, calendar_of, deadlines, paused_time, resumed_deadline, targets_for
from ..models.ticket import check_transition, raised_priority
from .conversations import check_reply, do_send_bot_reply, do_send_reply, pick_reply_channel
from .notifications import admins_of, notify, notify_many
from . import team_alerts

log = logging.getLogger(__name__)

SUBJECT_MAX = 200
DESCRIPTION_MAX = 20_000
TAG_MAX, TAGS_MAX = 32, 10
ANNOUNCE_JOB = "inbox.jobs.tickets.announce_new_ticket"
TICKET_NUMBER_LOCK = 7001  # PostgreSQL advisory lock class: (this, workspace id) orders its new tickets


class FieldErrors(ValidationError):
    """Several fields are wrong at once: `errors` maps each field to its message (API: 422)."""

    def __init__(self, errors: dict[str, str]):
        field_name, message = next(iter(errors.items()))
        super().__init__(message, field=field_name)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class TicketInput:
    subject: str
    description: str
    category: TicketCategory
    priority: Priority
    tags: tuple[str, ...] = field(default_factory=tuple)


# -- access ------------------------------------------------------------------------------------
def access_ticket(ticket_id: int, user: User) -> Ticket:
    """The ticket if the user's workspace owns it; 404 otherwise (existence never leaks)."""
    return get_in_workspace(Ticket, ticket_id, user.workspace_id)


def access_ticket_page(ticket_id: int, user: User) -> Ticket:
    """access_ticket, with what the page's side panel shows besides the ticket read in the same
    query: its rating and the conversations it is linked to (their number and last activity:
    nothing of theirs is loaded further). The page never lists the contact's identities."""
    ticket = get_in_workspace(Ticket, ticket_id, user.workspace_id, options=(
        joinedload(Ticket.contact).lazyload(Contact.identities), joinedload(Ticket.rating),
        joinedload(Ticket.links).joinedload(TicketConversation.conversation).lazyload("*")))
    if "conversations" not in ticket.__dict__:  # not loaded earlier in this session
        set_committed_value(ticket, "conversations", [link.conversation for link in ticket.links])
    return ticket


def access_ticket_attachment(ticket: Ticket, attachment_id: int) -> TicketAttachment:
    """A file of this ticket (the caller already checked the ticket with access_ticket): agents
    see every file, the customer's and the agents-only ones; another ticket's file is a 404."""
    attachment = db.session.get(TicketAttachment, attachment_id)
    if attachment is None or attachment.ticket_id != ticket.id or attachment.workspace_id != ticket.workspace_id:
        abort(404)
    return attachment


def files_by_event(ticket: Ticket) -> dict[int | None, list[TicketAttachment]]:
    """The ticket's files for its page, grouped by the history line they came with (one query)."""
    files: dict[int | None, list[TicketAttachment]] = {}
    for attachment in TicketAttachment.of_ticket(ticket.id, public_only=False):
        files.setdefault(attachment.event_id, []).append(attachment)
    return files


def check_admin(user: User) -> None:
    if not user.is_admin:
        abort(403)


# -- check -------------------------------------------------------------------------------------
def check_ticket_input(*, subject: str | None, description: str | None = "", category: str | None = None,
                       priority: str | None = None, tags: Iterable[str] | str | None = ()) -> TicketInput:
    """Validate a new ticket's fields; all wrong fields are reported together (FieldErrors)."""
    errors: dict[str, str] = {}
    subject = " ".join((subject or "").split())
    description = (description or "").strip()
    if not subject:
        errors["subject"] = _("Give the ticket a subject.")
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = _("The subject is limited to %(n)d characters.", n=SUBJECT_MAX)
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = _("The description is limited to %(n)d characters.", n=DESCRIPTION_MAX)
    try:
        category_value = TicketCategory(category or TicketCategory.GENERAL)
    except ValueError:
        errors["category"] = _("Unknown category.")
        category_value = TicketCategory.GENERAL
    try:
        priority_value = Priority(priority or Priority.MEDIUM)
    except ValueError:
        errors["priority"] = _("Unknown priority.")
        priority_value = Priority.MEDIUM
    try:
        tag_values = check_tags(tags)
    except ValidationError as exc:
        errors["tags"] = exc.message
        tag_values = ()
    if errors:
        raise FieldErrors(errors)
    return TicketInput(subject, description, category_value, priority_value, tag_values)


def check_tags(tags: Iterable[str] | str | None) -> tuple[str, ...]:
    raw = tags.split(",") if isinstance(tags, str) else list(tags or ())
    values = []
    for tag in raw:
        tag = " ".join(str(tag).split()).lower()
        if not tag or tag in values:
            continue
        if len(tag) > TAG_MAX:
            raise ValidationError(_("A tag is limited to %(n)d characters.", n=TAG_MAX), field="tags")
        values.append(tag)
    if len(values) > TAGS_MAX:
        raise ValidationError(_("At most %(n)d tags.", n=TAGS_MAX), field="tags")
    return tuple(values)


def check_ticket_status(value: str) -> TicketStatus:
    try:
        return TicketStatus(value)
    except ValueError:
        raise ValidationError(_("Unknown status."), field="status") from None


def check_category(value: str) -> TicketCategory:
    try:
        return TicketCategory(value)
    except ValueError:
        raise ValidationError(_("Unknown category."), field="category") from None


def check_ticket_priority(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise ValidationError(_("Unknown priority."), field="priority") from None


# -- create ------------------------------------------------------------------------------------
def do_create_ticket(
    contact: Contact, *, subject: str, description: str = "",
    category: TicketCategory | str = TicketCategory.GENERAL, priority: Priority | str = Priority.MEDIUM,
    actor: User | None = None, source: TicketSource | str = TicketSource.AGENT,
    conversation: Conversation | None = None, assignee: User | None = None,
    tags: Iterable[str] = (), notify_customer: bool = True, announce_later: bool = False,
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket for a client (agents, escalation, API, portal, Telegram, the AI agent).

    SLA deadlines are computed in business time and stored; the ticket is auto-assigned when
    the workspace says so and nobody was named; a critical ticket pages the on-call agent;
    the customer gets the number and the promised answer time on their channel.

    `announce_later`: telling people (dispatchers or the on-call agent, the team's group, the
    customer) goes to a job promised in the same transaction (the API answers with the stored
    ticket; what it says does not depend on those messages). Elsewhere they are sent at once:
    the agent who opened the ticket sees the confirmation on the page they land on.
    """
    data = check_ticket_input(subject=subject, description=description, category=category,
                              priority=priority, tags=tags)
    now = now or utcnow()
    settings = TicketSettings.of(contact.workspace_id)
    ticket = Ticket(
        workspace_id=contact.workspace_id, contact_id=contact.id, subject=data.subject,
        description=data.description, category=data.category, priority=data.priority,
        status=TicketStatus.OPEN, source=TicketSource(source), tags=list(data.tags),
        created_by_id=actor.id if actor else None, created_at=now, updated_at=now,
        status_changed_at=now,
    )
    ticket.contact = contact
    _set_deadlines(ticket, start=now, settings=settings)
    _insert_with_number(ticket)
    _event(ticket, TicketEventKind.CREATED, actor=actor, internal=False, body=data.description,
           data={"source": str(ticket.source), "actor": actor.name if actor else None}, now=now)
    if conversation is not None:
        _link(ticket, conversation)
    if assignee is not None:
        _assign(ticket, assignee, actor=actor, now=now)
    elif settings.auto_assign:
        from .assignment import auto_assign
        auto_assign(ticket, now=now)
    if announce_later:
        outbox.enqueue_job(ANNOUNCE_JOB, ticket.id, notify_customer, job_id=f"ticket-{ticket.id}-announce",
                           workspace_id=ticket.workspace_id, retry_intervals=[10, 60, 300])
    else:
        _announce(ticket, settings, actor=actor, notify_customer=notify_customer, now=now)
    _changed(ticket)
    outbox.commit()
    log.info("ticket created ticket_id=%s workspace_id=%s source=%s", ticket.id, ticket.workspace_id, ticket.source)
    return ticket


def do_announce_new_ticket(ticket_id: int, *, notify_customer: bool) -> None:
    """The announcements of a ticket created with `announce_later` (a job). Run twice, it tells
    nobody twice: notifications and team alerts are keyed, and the confirmation is sent only
    when the ticket's history has none yet. Its history line keeps the creation's time."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return
    confirmed = any((e.data or {}).get("what") == "confirmation" for e in db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                  TicketEvent.kind == TicketEventKind.CUSTOMER_NOTIFIED)))
    actor = db.session.get(User, ticket.created_by_id) if ticket.created_by_id else None
    _announce(ticket, TicketSettings.of(ticket.workspace_id), actor=actor,
              notify_customer=notify_customer and not confirmed, now=ticket.created_at)
    _changed(ticket)  # an open page shows the confirmation line
    outbox.commit()


def _announce(ticket: Ticket, settings: TicketSettings, *, actor: User | None, notify_customer: bool,
              now: datetime) -> None:
    """Who hears of a new ticket: the on-call agent for a critical one, else the dispatchers if
    nobody owns it; the customer (their confirmation); the team's group."""
    if ticket.priority == Priority.CRITICAL:
        _page_on_call(ticket, settings)
    elif ticket.assignee_id is None:
        _tell_dispatchers(ticket, actor=actor)
    if notify_customer and settings.confirm_new_tickets:
        _tell_customer(ticket, "confirmation", now=now)
    team_alerts.ticket_created(ticket)


def _tell_dispatchers(ticket: Ticket, *, actor: User | None) -> None:
    """A new ticket nobody owns yet: the admins (who dispatch) hear of it in the bell and by
    email. An assigned one already told its assignee; a critical one paged the on-call agent."""
    admins = [a for a in admins_of(ticket.workspace_id) if actor is None or a.id != actor.id]
    notify_many(admins, workspace_id=ticket.workspace_id, kind=NotificationKind.NEW_TICKET, ticket=ticket,
                dedupe_key=f"new-ticket-{ticket.id}",
                data={"contact": ticket.contact.display_name, "source": str(ticket.source)})


def _insert_with_number(ticket: Ticket) -> None:
    """Give the ticket the workspace's next number. Creations in one workspace take their numbers one
    after the other, until each commits: on SQLite the transaction already holds the database's one
    write lock (`BEGIN IMMEDIATE`); on PostgreSQL it takes the workspace's ticket-number advisory lock.
    (Retrying on the unique key instead, 8 creations at once made some fail after 5 tries: each retry
    waited for another creation's commit and then met the next one.) The unique key stays the guard."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(TICKET_NUMBER_LOCK, ticket.workspace_id)))
    ticket.number = (db.session.scalar(
        select(func.max(Ticket.number)).where(Ticket.workspace_id == ticket.workspace_id)) or 0) + 1
    db.session.add(ticket)
    db.session.flush()


def _set_deadlines(ticket: Ticket, *, start: datetime, settings: TicketSettings | None = None) -> None:
    """`settings`: the workspace's, when the caller holds them (defaults are a transient row,
    which the session cannot hand out again without asking the database)."""
    targets = targets_for(SlaPolicy.of_workspace(ticket.workspace_id), ticket.category, ticket.priority)
    week = week_from_json(settings.business_hours) if settings is not None else None
    first_response, resolution = deadlines(calendar_of(ticket.workspace_id, week=week), start, targets,
                                           paused=timedelta(seconds=ticket.sla_paused_seconds or 0))
    if ticket.first_responded_at is None and ticket.first_response_breached_at is None:
        if ticket.first_response_due_at != first_response:
            ticket.first_response_reminded_at = None
        ticket.first_response_due_at = first_response
    if ticket.resolved_at is None and ticket.resolution_breached_at is None:
        if ticket.resolution_due_at != resolution:
            ticket.resolution_reminded_at = None
        ticket.resolution_due_at = resolution


def _pause_sla(ticket: Ticket, now: datetime) -> None:
    """Waiting on the customer: the SLA clock stops (the sweeps skip the ticket)."""
    if ticket.sla_paused_at is None:
        ticket.sla_paused_at = now


def _resume_sla(ticket: Ticket, now: datetime) -> timedelta:
    """The ticket stops waiting: the deadlines not yet met (nor missed) move by the business
    time of the pause, which is also added to the total so a later recomputation keeps it."""
    if ticket.sla_paused_at is None:
        return timedelta(0)
    calendar = calendar_of(ticket.workspace_id)
    paused = paused_time(calendar, ticket.sla_paused_at, now)
    ticket.sla_paused_at = None
    ticket.sla_paused_seconds = (ticket.sla_paused_seconds or 0) + int(paused.total_seconds())
    if paused <= timedelta(0):
        return paused
    if ticket.first_response_due_at and ticket.first_responded_at is None and ticket.first_response_breached_at is None:
        ticket.first_response_due_at = resumed_deadline(calendar, ticket.first_response_due_at, paused)
        ticket.first_response_reminded_at = None
    if ticket.resolution_due_at and ticket.resolved_at is None and ticket.resolution_breached_at is None:
        ticket.resolution_due_at = resumed_deadline(calendar, ticket.resolution_due_at, paused)
        ticket.resolution_reminded_at = None
    return paused


# -- status ------------------------------------------------------------------------------------
def do_change_status(ticket: Ticket, status: TicketStatus | str, *, actor: User | None,
                     resolution: str | None = None, notify_customer: bool = True,
                     now: datetime | None = None) -> Ticket:
    """Move the ticket along the flow; illegal moves raise NotAllowed with the reason.

    Resolving asks the customer for a 1–5 rating on their channel; closing tells them (and
    asks for the rating if that was not done yet); reopening a resolved ticket counts it.
    """
    status = TicketStatus(status)
    check_transition(ticket.status, status)
    now = now or utcnow()
    previous = ticket.status
    resolution = (resolution or "").strip() or None
    if resolution and len(resolution) > DESCRIPTION_MAX:
        raise ValidationError(_("The resolution is limited to %(n)d characters.", n=DESCRIPTION_MAX),
                              field="resolution")
    _set_status(ticket, status, actor=actor, now=now)
    if resolution:
        ticket.resolution = resolution
    if status == TicketStatus.IN_PROGRESS and ticket.assignee_id is None and actor is not None:
        _assign(ticket, actor, actor=actor, now=now)  # whoever starts it owns it
    if previous == TicketStatus.RESOLVED and status in TicketStatus.active():
        ticket.reopened_count += 1
    if notify_customer and status == TicketStatus.RESOLVED:
        _tell_customer(ticket, "resolved", now=now)
    elif notify_customer and status == TicketStatus.CLOSED:
        _tell_customer(ticket, "closed", now=now)
    _changed(ticket)
    outbox.commit()
    return ticket


def _set_status(ticket: Ticket, status: TicketStatus, *, actor: User | None, now: datetime,
                data: dict | None = None) -> None:
    previous = ticket.status
    paused = timedelta(0)
    if status == TicketStatus.WAITING_ON_CUSTOMER:
        _pause_sla(ticket, now)
    elif previous == TicketStatus.WAITING_ON_CUSTOMER:
        paused = _resume_sla(ticket, now)  # before resolved_at is set: the resolution deadline moves too
    ticket.status = status
    ticket.status_changed_at = ticket.updated_at = now
    if status == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    elif status == TicketStatus.CLOSED:
        ticket.closed_at = now
    elif previous == TicketStatus.RESOLVED:
        ticket.resolved_at = None
    facts = {"from": str(previous), "to": str(status), "actor": actor.name if actor else None, **(data or {})}
    if paused > timedelta(0):
        facts["sla_paused_minutes"] = int(paused.total_seconds() // 60)
    _event(ticket, TicketEventKind.STATUS, actor=actor, now=now, data=facts)


# -- assignment, priority, category ------------------------------------------------------------
def do_assign_ticket(ticket: Ticket, assignee: User | None, *, actor: User | None,
                     now: datetime | None = None) -> Ticket:
    if ticket.assignee_id == (assignee.id if assignee else None):
        return ticket
    if assignee is not None and (assignee.workspace_id != ticket.workspace_id or not assignee.is_active):
        raise ValidationError(_("This agent does not exist or is deactivated."), field="assignee")
    _assign(ticket, assignee, actor=actor, now=now or utcnow())
    _changed(ticket)
    outbox.commit()
    return ticket


def _assign(ticket: Ticket, assignee: User | None, *, actor: User | None, now: datetime,
            auto: bool = False) -> None:
    ticket.assignee_id = assignee.id if assignee else None
    ticket.assignee = assignee
    ticket.updated_at = now
    _event(ticket, TicketEventKind.ASSIGNED, actor=actor, now=now,
           data={"actor": actor.name if actor else None, "agent": assignee.name if assignee else None,
                 "auto": auto})
    if assignee is not None:
        assignee.last_assigned_at = now
        if actor is None or actor.id != assignee.id:
            notify(assignee, workspace_id=ticket.workspace_id, kind=NotificationKind.ASSIGNED, ticket=ticket,
                   data={"actor": actor.name if actor else None})


def do_set_ticket_priority(ticket: Ticket, priority: Priority | str, *, actor: User | None,
                           now: datetime | None = None) -> Ticket:
    """Change the priority; deadlines not yet met are recomputed from the ticket's creation."""
    priority = Priority(priority)
    if ticket.priority == priority:
        return ticket
    now = now or utcnow()
    previous = ticket.priority
    ticket.priority = priority
    ticket.updated_at = now
    _set_deadlines(ticket, start=ticket.created_at)
    _event(ticket, TicketEventKind.PRIORITY, actor=actor, now=now,
           data={"from": str(previous), "to": str(priority), "actor": actor.name if actor else None})
    if priority == Priority.CRITICAL:
        _page_on_call(ticket, TicketSettings.of(ticket.workspace_id))
    _changed(ticket)
    outbox.commit()
    return ticket


def do_set_ticket_category(ticket: Ticket, category: TicketCategory | str, *, actor: User | None,
                           now: datetime | None = None) -> Ticket:
    category = TicketCategory(category)
    if ticket.category == category:
        return ticket
    now = now or utcnow()
    previous = ticket.category
    ticket.category = category
    ticket.updated_at = now
    _set_deadlines(ticket, start=ticket.created_at)
    _event(ticket, TicketEventKind.CATEGORY, actor=actor, now=now,
           data={"from": str(previous), "to": str(category), "actor": actor.name if actor else None})
    _changed(ticket)
    outbox.commit()
    return ticket


def do_set_tags(ticket: Ticket, tags: Iterable[str] | str, *, actor: User | None) -> Ticket:
    ticket.tags = list(check_tags(tags))
    ticket.updated_at = utcnow()
    _changed(ticket)
    outbox.commit()
    return ticket


def do_link_conversation(ticket: Ticket, conversation: Conversation, *, actor: User | None) -> None:
    if conversation.workspace_id != ticket.workspace_id or conversation.contact_id != ticket.contact_id:
        raise ValidationError(_("This conversation belongs to another contact."), field="conversation")
    if _link(ticket, conversation):
        _event(ticket, TicketEventKind.LINKED, actor=actor, data={"conversation_id": conversation.id})
        _changed(ticket)
    outbox.commit()


# -- discussion --------------------------------------------------------------------------------
def do_add_ticket_note(ticket: Ticket, text: str, *, actor: User, internal: bool,
                       channel_id: int | None = None, idempotency_key: str | None = None,
                       now: datetime | None = None) -> TicketEvent:
    """An internal note (agents only, never sent) or a public reply, sent to the customer on
    their conversation's channel through the inbox's own reply path."""
    now = now or utcnow()
    idempotency_key = (idempotency_key or "")[:40] or None
    if idempotency_key:
        existing = db.session.scalar(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.idempotency_key == idempotency_key))
        if existing is not None:
            return existing
    if internal:
        text = check_reply(text, None)
        event = _event(ticket, TicketEventKind.INTERNAL_NOTE, actor=actor, body=text, now=now)
        event.idempotency_key = idempotency_key
        ticket.updated_at = now
        _changed(ticket)
        outbox.commit()
        return event
    conversation = _conversation_for(ticket, automated=False)
    channel = pick_reply_channel(conversation, ticket.contact, channel_id)
    text = check_reply(text, channel)
    if conversation.id is None:
        conversation.assignee_id = ticket.assignee_id or actor.id
        db.session.add(conversation)
        db.session.flush()
    _link(ticket, conversation)
    message = do_send_reply(conversation, text, actor=actor, channel=channel,
                            idempotency_key=f"ticket-{ticket.id}-{idempotency_key}" if idempotency_key else None)
    existing = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                           TicketEvent.message_id == message.id))
    if existing is not None:
        return existing
    event = _event(ticket, TicketEventKind.PUBLIC_REPLY, actor=actor, internal=False, body=text,
                   message=message, now=now)
    event.idempotency_key = idempotency_key
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
    ticket.last_agent_reply_at = now
    ticket.updated_at = now
    if ticket.assignee_id is None:
        _assign(ticket, actor, actor=actor, now=now)
    if ticket.status == TicketStatus.OPEN:
        _set_status(ticket, TicketStatus.IN_PROGRESS, actor=actor, now=now)
    _changed(ticket)
    outbox.commit()
    return event


def do_add_customer_reply(ticket: Ticket, text: str, *, source: str = "portal",
                          now: datetime | None = None) -> TicketEvent:
    """The customer wrote on the ticket itself (portal, customer API): same effects as a message."""
    if ticket.status == TicketStatus.CLOSED:
        raise NotAllowed(_("This ticket is closed: create a new ticket instead."))
    text = check_reply(text, None)
    now = now or utcnow()
    event = _event(ticket, TicketEventKind.CUSTOMER_MESSAGE, internal=False, body=text, now=now,
                   data={"source": source})
    _customer_activity(ticket, at=now, now=now, dedupe=f"reply-event-{event.id}")
    _changed(ticket)
    outbox.commit()
    return event


def on_customer_message(conversation: Conversation, message: Message, *, commit: bool = True,
                        now: datetime | None = None) -> list[Ticket]:
    """Call after an inbound customer message is stored. Idempotent.

    The tickets discussed in this conversation (or, on a new conversation, the contact's most
    recent ticket still in play) record the message; a ticket waiting on the customer goes back
    to the team, a resolved one reopens within the workspace's reopen window, and the assignee
    is notified. A bare 1–5 digit answering a rating request does not reopen anything: the
    routing step records it with `do_record_rating`. With commit=False the caller commits.
    """
    if message.direction != Direction.INBOUND or message.sender_kind != SenderKind.CUSTOMER:
        return []
    now = now or utcnow()
    tickets = list(db.session.scalars(
        select(Ticket).join(TicketConversation, TicketConversation.ticket_id == Ticket.id)
        .where(TicketConversation.conversation_id == conversation.id, Ticket.status != TicketStatus.CLOSED)
        .order_by(Ticket.id)))
    if not tickets:
        latest = db.session.scalars(
            select(Ticket).where(Ticket.workspace_id == conversation.workspace_id,
                                 Ticket.contact_id == conversation.contact_id,
                                 Ticket.status != TicketStatus.CLOSED)
            .order_by(Ticket.status_changed_at.desc(), Ticket.id.desc()).limit(1)).first()
        if latest is not None and (latest.status != TicketStatus.RESOLVED or _within_reopen_window(latest, now)):
            _link(latest, conversation)
            tickets = [latest]
    from .ratings import is_rating_reply

    touched = []
    for ticket in tickets:
        if db.session.scalar(select(TicketEvent.id).where(TicketEvent.ticket_id == ticket.id,
                                                          TicketEvent.message_id == message.id)):
            continue
        if ticket.status == TicketStatus.RESOLVED and ticket.rating_requested_at and ticket.rating is None \
                and is_rating_reply(message.body):
            continue
        _event(ticket, TicketEventKind.CUSTOMER_MESSAGE, internal=False, message=message,
               now=message.created_at, data={"source": str(message.channel.kind) if message.channel else None})
        _customer_activity(ticket, at=message.created_at, now=now, dedupe=f"reply-{message.id}")
        _changed(ticket)
        touched.append(ticket)
    if commit:
        outbox.commit()
    else:
        db.session.flush()
    return touched


def _within_reopen_window(ticket: Ticket, now: datetime) -> bool:
    days = TicketSettings.of(ticket.workspace_id).reopen_window_days
    return ticket.resolved_at is not None and now - ticket.resolved_at <= timedelta(days=days)


def _customer_activity(ticket: Ticket, *, at: datetime, now: datetime, dedupe: str) -> None:
    if ticket.last_customer_message_at is None or at > ticket.last_customer_message_at:
        ticket.last_customer_message_at = at
    ticket.updated_at = now
    back_to = TicketStatus.IN_PROGRESS if ticket.assignee_id else TicketStatus.OPEN
    reopened = False
    if ticket.status == TicketStatus.WAITING_ON_CUSTOMER:
        _set_status(ticket, back_to, actor=None, now=now, data={"by": "customer"})
    elif ticket.status == TicketStatus.RESOLVED and _within_reopen_window(ticket, now):
        _set_status(ticket, back_to, actor=None, now=now, data={"by": "customer"})
        ticket.reopened_count += 1
        _event(ticket, TicketEventKind.REOPENED, now=now, data={"by": "customer"})
        reopened = True
    if ticket.assignee_id:
        notify(ticket.assignee_id, workspace_id=ticket.workspace_id, kind=NotificationKind.CUSTOMER_REPLIED,
               ticket=ticket, dedupe_key=dedupe,
               data={"contact": ticket.contact.display_name, "reopened": reopened})
    elif TicketSettings.of(ticket.workspace_id).auto_assign and ticket.is_active:
        from .assignment import auto_assign
        auto_assign(ticket, now=now)


# -- automation: auto-close, SLA ---------------------------------------------------------------
def auto_close_reference(ticket: Ticket) -> datetime:
    """The clock auto-close counts from: the customer's last message, not the last update
    (when the customer never wrote: the moment the ticket started waiting / was resolved)."""
    return ticket.last_customer_message_at or ticket.status_changed_at


def do_auto_close(ticket: Ticket, *, now: datetime | None = None) -> bool:
    """Close a ticket waiting on the customer (or resolved) after N days without a customer reply;
    the customer is told on their channel. Safe to run twice."""
    now = now or utcnow()
    days = TicketSettings.of(ticket.workspace_id).auto_close_days
    if days <= 0 or ticket.status not in (TicketStatus.WAITING_ON_CUSTOMER, TicketStatus.RESOLVED):
        return False
    if auto_close_reference(ticket) > now - timedelta(days=days):
        return False
    previous = ticket.status
    claimed = db.session.execute(
        update(Ticket).where(Ticket.id == ticket.id, Ticket.status == previous)
        .values(status=TicketStatus.CLOSED, closed_at=now, status_changed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    _resume_sla(ticket, now)  # closed while waiting: its deadlines do not count the wait
    ticket.status, ticket.closed_at, ticket.status_changed_at, ticket.updated_at = (
        TicketStatus.CLOSED, now, now, now)
    _event(ticket, TicketEventKind.AUTO_CLOSED, now=now, data={"days": days, "from": str(previous)})
    _tell_customer(ticket, "auto_closed", now=now, days=days)
    _changed(ticket)
    outbox.commit()
    log.info("ticket auto-closed ticket_id=%s after %s days", ticket.id, days)
    return True


SLA_TARGETS = ("first_response", "resolution")


def do_sla_reminder(ticket: Ticket, target: str, *, now: datetime | None = None) -> bool:
    """Warn the assignee that a deadline is near (once per deadline); the admins when nobody
    is assigned, since then nobody else would hear of it."""
    now = now or utcnow()
    due, met, reminded_column = _sla_columns(ticket, target)
    if due is None or met is not None or not ticket.is_active or due <= now or ticket.sla_paused:
        return False
    hours = TicketSettings.of(ticket.workspace_id).sla_reminder_hours
    if due - now > timedelta(hours=hours):
        return False
    claimed = db.session.execute(
        update(Ticket).where(Ticket.id == ticket.id, reminded_column.is_(None), Ticket.sla_paused_at.is_(None))
        .values({reminded_column: now}).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    setattr(ticket, reminded_column.key, now)
    notify_many([ticket.assignee] if ticket.assignee_id else admins_of(ticket.workspace_id),
                workspace_id=ticket.workspace_id, kind=NotificationKind.SLA_WARNING, ticket=ticket,
                dedupe_key=f"sla-warning-{target}-{ticket.id}-{int(due.timestamp())}",
                data={"target": target, "hours": hours, "due": due.isoformat()})
    team_alerts.sla_warning(ticket, target, due=due, hours=hours)
    _changed(ticket)
    outbox.commit()
    return True


def do_escalate_breach(ticket: Ticket, target: str, *, now: datetime | None = None) -> bool:
    """A deadline passed: record it, raise the priority one step, tell the admins and the
    assignee, and show it in the inbox (the linked conversation's priority follows)."""
    now = now or utcnow()
    due, met, _reminded = _sla_columns(ticket, target)
    if due is None or met is not None or due > now or not ticket.is_active or ticket.sla_paused:
        return False
    breached_column = Ticket.first_response_breached_at if target == "first_response" else Ticket.resolution_breached_at
    previous = ticket.priority
    raised = raised_priority(previous)
    claimed = db.session.execute(
        update(Ticket).where(Ticket.id == ticket.id, breached_column.is_(None), Ticket.sla_paused_at.is_(None))
        .values({breached_column: now, Ticket.priority: raised, Ticket.updated_at: now})
        .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    setattr(ticket, breached_column.key, now)
    ticket.priority, ticket.updated_at = raised, now
    _event(ticket, TicketEventKind.SLA_BREACHED, now=now,
           data={"target": target, "due": due.isoformat(), "from": str(previous), "to": str(raised)})
    recipients = admins_of(ticket.workspace_id)
    if ticket.assignee is not None:
        recipients.append(ticket.assignee)
    notify_many(recipients, workspace_id=ticket.workspace_id, kind=NotificationKind.SLA_BREACHED, ticket=ticket,
                dedupe_key=f"sla-breach-{target}-{ticket.id}", data={"target": target, "priority": str(raised)})
    team_alerts.sla_breached(ticket, target)
    if raised == Priority.CRITICAL and previous != Priority.CRITICAL:
        _page_on_call(ticket, TicketSettings.of(ticket.workspace_id))
    for conversation in ticket.conversations:
        if conversation.is_active and _rank(conversation.priority) < _rank(raised):
            conversation.priority = raised
            outbox.publish_event(conversation.workspace_id, "conversation-changed", conversation_id=conversation.id)
    _changed(ticket)
    outbox.commit()
    log.info("ticket SLA breached ticket_id=%s target=%s priority=%s", ticket.id, target, raised)
    return True


def sync_first_responses(*, workspace_id: int | None = None) -> int:
    """A reply sent from the inbox on a ticket's conversation is a first response too."""
    first_reply = (
        select(func.min(Message.created_at))
        .join(TicketConversation, TicketConversation.conversation_id == Message.conversation_id)
        .where(TicketConversation.ticket_id == Ticket.id, Message.direction == Direction.OUTBOUND,
               Message.sender_kind == SenderKind.AGENT, Message.internal.is_(False),
               Message.created_at >= Ticket.created_at)
        .correlate(Ticket).scalar_subquery())
    stmt = select(Ticket, first_reply).where(Ticket.first_responded_at.is_(None),
                                             Ticket.status.in_(list(TicketStatus.active())),
                                             first_reply.is_not(None))
    if workspace_id is not None:
        stmt = stmt.where(Ticket.workspace_id == workspace_id)
    count = 0
    for ticket, replied_at in db.session.execute(stmt).all():
        ticket.first_responded_at = _aware(replied_at)
        ticket.last_agent_reply_at = max(filter(None, [ticket.last_agent_reply_at, ticket.first_responded_at]))
        _changed(ticket)
        count += 1
    outbox.commit()
    return count


def _aware(value: datetime) -> datetime:
    from datetime import UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _sla_columns(ticket: Ticket, target: str):
    if target == "first_response":
        return ticket.first_response_due_at, ticket.first_responded_at, Ticket.first_response_reminded_at
    if target == "resolution":
        return ticket.resolution_due_at, ticket.resolved_at or ticket.closed_at, Ticket.resolution_reminded_at
    raise ValueError(f"unknown SLA target {target!r}")


def _rank(priority: Priority) -> int:
    from ..models.ticket import PRIORITY_LADDER
    return PRIORITY_LADDER.index(Priority(priority))


def _page_on_call(ticket: Ticket, settings: TicketSettings) -> None:
    """A critical ticket pages the on-call agent (or, when nobody is on call, the admins)."""
    on_call = db.session.get(User, settings.on_call_user_id) if settings.on_call_user_id else None
    recipients = [on_call] if on_call is not None and on_call.is_active else admins_of(ticket.workspace_id)
    notify_many(recipients, workspace_id=ticket.workspace_id, kind=NotificationKind.CRITICAL_TICKET,
                ticket=ticket, dedupe_key=f"critical-{ticket.id}")
    team_alerts.critical_ticket(ticket)


# -- talking to the customer -------------------------------------------------------------------
def _conversation_for(ticket: Ticket, *, automated: bool) -> Conversation:
    """Where a message to the customer goes: their active conversation; for automated notices
    the latest conversation of the ticket will do; otherwise a new one (not yet added)."""
    conversation = Conversation.active_for_contact(ticket.contact_id)
    if conversation is None and automated:
        conversation = db.session.scalars(
            select(Conversation).join(TicketConversation, TicketConversation.conversation_id == Conversation.id)
            .where(TicketConversation.ticket_id == ticket.id).order_by(Conversation.id.desc()).limit(1)).first()
    if conversation is None:
        conversation = Conversation(workspace_id=ticket.workspace_id, contact_id=ticket.contact_id,
                                    status=ConversationStatus.PENDING, priority=ticket.priority,
                                    last_activity_at=utcnow(), last_message_preview="", unread_count=0)
    return conversation


def _tell_customer(ticket: Ticket, what: str, *, now: datetime, **facts) -> Message | None:
    """An automated message to the customer, in their language, on their channel. Skipped (and
    logged) when no channel reaches them: the ticket's history says so."""
    conversation = _conversation_for(ticket, automated=True)
    try:
        channel = pick_reply_channel(conversation, ticket.contact, None)
    except ValidationError:
        log.info("customer not told ticket_id=%s what=%s: no channel reaches the contact", ticket.id, what)
        _event(ticket, TicketEventKind.CUSTOMER_NOTIFIED, now=now, data={"what": what, "sent": False})
        return None
    workspace = db.session.get(Workspace, ticket.workspace_id)
    locale = ticket.contact.locale or workspace.default_locale
    with force_locale(locale):
        text = customer_text(ticket, what, channel=channel, workspace=workspace, locale=locale, **facts)
    if conversation.id is None:
        db.session.add(conversation)
        db.session.flush()
    _link(ticket, conversation)
    message = do_send_bot_reply(conversation, text, channel=channel, commit=False)  # the caller commits
    _event(ticket, TicketEventKind.CUSTOMER_NOTIFIED, internal=False, message=message, now=now,
           data={"what": what, "sent": True})
    if what in ("resolved", "closed") and ticket.rating_requested_at is None and ticket.rating is None \
            and TicketSettings.of(ticket.workspace_id).request_ratings:
        ticket.rating_requested_at = now
    return message


def customer_text(ticket: Ticket, what: str, *, channel: Channel, workspace: Workspace, locale: str, **facts) -> str:
    """The wording of automated messages to customers (the current locale is theirs)."""
    ref = ticket.reference
    ask_rating = (what in ("resolved", "closed") and ticket.rating is None and ticket.rating_requested_at is None
                  and TicketSettings.of(ticket.workspace_id).request_ratings)
    if what == "confirmation":
        due = ticket.first_response_due_at
        when = format_datetime(due, "EEEE d MMMM, HH:mm", tzinfo=ZoneInfo(workspace.timezone), locale=locale) if due else ""
        return _("We have opened ticket %(ref)s about “%(subject)s”. We will get back to you by %(when)s.",
                 ref=ref, subject=ticket.subject, when=when)
    if what == "auto_closed":
        return _("Your ticket %(ref)s was closed after %(days)d days without news from you. "
                 "Write to us anytime if you still need help.", ref=ref, days=facts.get("days", 0))
    if what == "resolved":
        text = _("Your ticket %(ref)s is resolved.", ref=ref)
    else:
        text = _("Your ticket %(ref)s is closed.", ref=ref)
    if ticket.resolution:
        text += " " + ticket.resolution
    if ask_rating:
        if channel.kind == "email":
            from .ratings import rating_url
            text += "\n\n" + _("How would you rate our help? Choose from 1 to 5 here: %(url)s", url=rating_url(ticket))
        else:
            text += "\n\n" + _("How would you rate our help, from 1 (poor) to 5 (excellent)? Reply with a single digit.")
    return text


# -- helpers -----------------------------------------------------------------------------------
def _event(ticket: Ticket, kind: TicketEventKind, *, actor: User | None = None, internal: bool = True,
           body: str = "", message: Message | None = None, data: Mapping | None = None,
           now: datetime | None = None) -> TicketEvent:
    event = TicketEvent(workspace_id=ticket.workspace_id, ticket_id=ticket.id, kind=kind,
                        actor_id=actor.id if actor else None, internal=internal, body=body,
                        message_id=message.id if message else None, data=dict(data or {}),
                        created_at=now or utcnow())
    event.actor, event.message = actor, message
    db.session.add(event)
    db.session.flush()
    return event


def _link(ticket: Ticket, conversation: Conversation) -> bool:
    if conversation.id is None:
        db.session.add(conversation)
        db.session.flush()
    exists = db.session.get(TicketConversation, (ticket.id, conversation.id))
    if exists is not None:
        return False
    db.session.add(TicketConversation(ticket_id=ticket.id, conversation_id=conversation.id, created_at=utcnow()))
    db.session.flush()
    db.session.expire(ticket, ["conversations"])
    outbox.publish_event(ticket.workspace_id, "conversation-changed", conversation_id=conversation.id)
    return True


def _changed(ticket: Ticket) -> None:
    """Live events: ticket lists refresh, an open ticket page refreshes its panels."""
    outbox.publish_event(ticket.workspace_id, "ticket-changed", ticket_id=ticket.id)
    outbox.publish_event(ticket.workspace_id, f"ticket-{ticket.id}-changed", ticket_id=ticket.id)


def open_tickets_of_contact(workspace_id: int, contact_id: int) -> list[Ticket]:
    return Ticket.active_of_contact(workspace_id, contact_id)
