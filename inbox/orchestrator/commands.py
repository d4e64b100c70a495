"""Telegram bot commands answered automatically (issue 3's ticket commands, /start, /help…).

`handle_command(message)` is the routing step's first stop: True when the message was a
command this module answered (nothing else should then happen to it), False otherwise
(not a command, or one that belongs to someone else: /rdv, /nouveau_rdv, /annuler).

Who is asking decides what they may do:
- a customer, in a private chat, acts on their own tickets only (matched by the contact of
  their Telegram identity); a ticket of anyone else is "not found", as if it did not exist;
- the team, in the channel's notification group (meta["notification_group"], set by the
  adapter), may list tickets and read stats; from there the ticket replies and closings are
  refused because a Telegram account is not tied to an agent.
Answers go back on the same channel as bot messages (in the group, as a reply to the command).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import (
    Contact, Message, Priority, Ticket, TicketEvent, TicketEventKind, TicketSource, TicketStatus, Workspace, utcnow,
)
from ..models.ticket import parse_reference, status_text

log = logging.getLogger(__name__)

TICKET_COMMANDS = ("ticket_create", "ticket_list", "ticket_view", "ticket_reply", "ticket_close", "ticket_stats")
GENERAL_COMMANDS = ("start", "help", "info", "contact")
LIST_LIMIT = 10
SUBJECT_CUT = 120


@dataclass(frozen=True, slots=True)
class Ask:
    """One command as received: who asks (a customer or the team), with what arguments."""

    message: Message
    command: str
    args: str
    staff: bool
    workspace: Workspace
    locale: str

    @property
    def contact(self) -> Contact:
        return self.message.contact

    def when(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        return format_datetime(value, "d MMM y, HH:mm", tzinfo=ZoneInfo(self.workspace.timezone), locale=self.locale)


def handle_command(message: Message | None) -> bool:
    """Answer a Telegram bot command; True when it was one of ours (the message is handled)."""
    meta = (message.meta or {}) if message is not None else {}
    command = meta.get("command")
    if not command or command not in (*GENERAL_COMMANDS, *TICKET_COMMANDS):
        return False
    if message.channel is None or message.channel.kind != ChannelKind.TELEGRAM:
        return False
    workspace = db.session.get(Workspace, message.workspace_id)
    staff = bool(meta.get("notification_group"))
    locale = workspace.default_locale if staff else (message.contact.locale or workspace.default_locale)
    ask = Ask(message, command, str(meta.get("args") or "").strip(), staff, workspace, locale)
    with force_locale(locale):
        try:
            text = HANDLERS[command](ask)
        except (ValidationError, NotAllowed) as exc:
            db.session.rollback()
            text = _messages_of(exc)
    _answer(ask, text)
    log.info("telegram command answered message_id=%s command=%s staff=%s", message.id, command, staff)
    return True


def _answer(ask: Ask, text: str) -> None:
    from ..actions.conversations import do_send_bot_reply

    message, meta = ask.message, ask.message.meta or {}
    stored: dict = {"command_of": message.id}
    if ask.staff:  # the group, not the staff member's private chat; as a reply to the command
        stored["deliver_to"] = str(meta["chat_id"])
        stored["send"] = {"reply_to": f"{meta['chat_id']}:{meta['message_id']}"}
    conversation = message.conversation
    if ask.command != "contact" and conversation.unread_count:
        conversation.unread_count -= 1  # answered by the bot: nothing for the team to read
    do_send_bot_reply(conversation, text, channel=message.channel, meta=stored)


def _messages_of(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return "\n".join(errors.values())
    return getattr(exc, "message", None) or str(exc)


# -- general -----------------------------------------------------------------------------------
def _start(ask: Ask) -> str:
    if ask.staff:
        return _staff_help(ask)
    return _("Hello! You are talking to %(workspace)s. Write your question here and we will answer you. "
             "Send /help to see what I can do.", workspace=ask.workspace.name)


def _help(ask: Ask) -> str:
    if ask.staff:
        return _staff_help(ask)
    from ..channels.telegram import answered_commands

    answered = answered_commands((ask.message.channel.settings or {}).get("bot_commands"))
    lines = [
        ("ticket_create", _("/ticket_create <subject> — open a ticket (add details on the next lines)")),
        ("ticket_view", _("/ticket_view <number> — where your ticket stands")),
        ("ticket_reply", _("/ticket_reply <number> <message> — add a message to your ticket")),
        ("ticket_close", _("/ticket_close <number> — close your ticket")),
        ("contact", _("/contact — talk to a person")),
        ("info", _("/info — about us")),
    ]
    # Only what this channel's list keeps (an admin may have taken some off in settings).
    return "\n".join([_("What I can do:"), *(line for command, line in lines if command in answered)])


def _staff_help(ask: Ask) -> str:
    return "\n".join([
        _("Team commands:"),
        _("/ticket_list [open | in_progress | waiting_on_customer | resolved | closed | unassigned | critical | late]"),
        _("/ticket_view <number>"),
        _("/ticket_stats"),
        _("Replies and status changes are made in the inbox: %(url)s", url=_inbox_url()),
    ])


def _info(ask: Ask) -> str:
    text = _("%(workspace)s customer support. We answer during business hours; a person reads every message.",
             workspace=ask.workspace.name)
    if not ask.staff:
        count = len(Ticket.active_of_contact(ask.workspace.id, ask.contact.id))
        if count:
            text += "\n" + _("You have %(n)d ticket(s) in progress: /ticket_view <number> to follow one.", n=count)
    return text


def _contact(ask: Ask) -> str:
    if ask.staff:
        return _("This command is for customers: you are in the team's group.")
    return _("A person from our team will answer you here as soon as possible.")


# -- tickets, for customers ----------------------------------------------------------------------
def _create(ask: Ask) -> str:
    from ..actions.tickets import customer_text, do_create_ticket

    if ask.staff:
        return _staff_only_in_inbox()
    if not ask.args:
        return _("Tell me what it is about: /ticket_create <subject>, with details on the next lines if you like.")
    first, _sep, rest = ask.args.partition("\n")
    subject, description = " ".join(first.split()), rest.strip()
    if len(subject) > SUBJECT_CUT:
        description = "\n\n".join(filter(None, [subject, description]))
        subject = subject[:SUBJECT_CUT].rsplit(" ", 1)[0] + "…"
    ticket = do_create_ticket(ask.contact, subject=subject, description=description, source=TicketSource.TELEGRAM,
                              conversation=ask.message.conversation, notify_customer=False)
    text = customer_text(ticket, "confirmation", channel=ask.message.channel, workspace=ask.workspace,
                         locale=ask.locale)
    return text + "\n" + _("Follow it with /ticket_view %(ref)s.", ref=ticket.reference)


def _view(ask: Ask) -> str:
    ref, _rest = _split_ref(ask.args)
    if ref is None:
        return _which_ticket(ask, "/ticket_view")
    ticket = _ticket_for(ask, ref)
    if ticket is None:
        return _not_found(ref)
    lines = [f"{ticket.reference} · {ticket.subject}",
             _("Status: %(status)s · Priority: %(priority)s", status=status_text(ticket.status),
               priority=_priority_text(ticket.priority)),
             _("Opened: %(when)s", when=ask.when(ticket.created_at))]
    if ask.staff:
        lines.append(_("Client: %(name)s · Assigned to: %(agent)s", name=ticket.contact.display_name,
                       agent=ticket.assignee.name if ticket.assignee else _("nobody")))
        deadline = ticket.next_deadline()
        if deadline:
            lines.append(_("Next deadline: %(when)s", when=ask.when(deadline[1])))
        lines.append(_inbox_url(f"/tickets/{ticket.id}"))
        return "\n".join(lines)
    if ticket.resolution:
        lines.append(_("Resolution: %(text)s", text=ticket.resolution))
    latest = db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.internal.is_(False),
                                  TicketEvent.kind == TicketEventKind.PUBLIC_REPLY)
        .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc()).limit(1)).first()
    if latest is not None:
        lines.append(_("Our latest answer (%(when)s): %(text)s", when=ask.when(latest.created_at),
                       text=_clip(latest.body or (latest.message.body if latest.message else ""), 600)))
    if ticket.status != TicketStatus.CLOSED:
        lines.append(_("To add a message: /ticket_reply %(ref)s <your message>", ref=ticket.reference))
    return "\n".join(lines)


def _reply(ask: Ask) -> str:
    from ..actions.tickets import do_add_customer_reply

    if ask.staff:
        return _staff_only_in_inbox()
    ref, text = _split_ref(ask.args)
    if ref is None:
        return _which_ticket(ask, "/ticket_reply", example=_("your message"))
    ticket = _ticket_for(ask, ref)
    if ticket is None:
        return _not_found(ref)
    if not text:
        return _("Write your message after the number: /ticket_reply %(ref)s <your message>", ref=ticket.reference)
    do_add_customer_reply(ticket, text, source="telegram")
    return _("Your message was added to ticket %(ref)s. The team has been told.", ref=ticket.reference)


def _close(ask: Ask) -> str:
    from ..actions.tickets import do_change_status

    if ask.staff:
        return _staff_only_in_inbox()
    ref, _rest = _split_ref(ask.args)
    if ref is None:
        return _which_ticket(ask, "/ticket_close")
    ticket = _ticket_for(ask, ref)
    if ticket is None:
        return _not_found(ref)
    do_change_status(ticket, TicketStatus.CLOSED, actor=None, notify_customer=False)
    return _("Ticket %(ref)s is closed. Thank you! Write to us anytime if you need help again.",
             ref=ticket.reference)


# -- tickets, for the team ------------------------------------------------------------------------
def _list(ask: Ask) -> str:
    from ..models.ticket_queries import STATUS_ACTIVE, TicketFilter, tickets_page

    if not ask.staff:
        return _agents_only()
    word = ask.args.split()[0].lower() if ask.args else ""
    filters = TicketFilter(status=STATUS_ACTIVE, sort="due")
    if word in set(TicketStatus):
        filters = TicketFilter(status=word, sort="due")
    elif word == "unassigned":
        filters = TicketFilter(assignee="none", sort="due")
    elif word == "critical":
        filters = TicketFilter(priority=Priority.CRITICAL, sort="due")
    elif word in ("late", "breached"):
        filters = TicketFilter(breached=True, sort="due")
    elif word:
        return _("Unknown filter “%(word)s”.", word=word) + "\n" + _staff_help(ask)
    rows, more = tickets_page(ask.workspace.id, filters, user_id=0, now=utcnow(), after=None, limit=LIST_LIMIT)
    if not rows:
        return _("No ticket matches.")
    lines = [f"{t.reference} · {_priority_text(t.priority)} · {status_text(t.status)} · {_clip(t.subject, 60)} "
             f"({t.contact.display_name}{' → ' + t.assignee.name if t.assignee else ''})" for t in rows]
    if more:
        lines.append(_("More in the inbox: %(url)s", url=_inbox_url("/tickets")))
    return "\n".join(lines)


def _stats(ask: Ask) -> str:
    from ..models.ticket_queries import ticket_kpis
    from ..models.ticket_stats import ticket_stats

    if not ask.staff:
        return _agents_only()
    now = utcnow()
    stats, kpis = ticket_stats(ask.workspace.id, now=now), ticket_kpis(ask.workspace.id, now=now)
    lines = [
        _("%(active)d active tickets: %(unassigned)d unassigned, %(critical)d critical, %(late)d late.",
          active=stats.active, unassigned=kpis.unassigned, critical=kpis.open_critical, late=kpis.breached),
        " · ".join(f"{status_text(s)} {stats.by_status[str(s)]}" for s in TicketStatus),
        _("Last %(days)d days: first response %(first)s, resolution %(resolution)s.", days=stats.window_days,
          first=_duration(stats.mean_first_response_minutes), resolution=_duration(stats.mean_resolution_minutes)),
    ]
    if stats.satisfaction_count:
        lines.append(_("Satisfaction: %(mean)s/5 (%(n)d ratings).", mean=stats.satisfaction_mean,
                       n=stats.satisfaction_count))
    return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------------
def _split_ref(args: str) -> tuple[str | None, str]:
    match = re.match(r"^(\S+)\s*(.*)$", args or "", re.DOTALL)
    if not match or parse_reference(match.group(1)) is None:
        return None, (args or "").strip()
    return match.group(1), match.group(2).strip()


def _ticket_for(ask: Ask, ref: str) -> Ticket | None:
    """The ticket named, if the asker may see it: any of the workspace for the team, only
    their own for a customer (someone else's is simply not found)."""
    ticket = Ticket.by_reference(ask.workspace.id, ref)
    if ticket is None or (not ask.staff and ticket.contact_id != ask.contact.id):
        return None
    return ticket


def _which_ticket(ask: Ask, command: str, example: str = "") -> str:
    text = _("Which ticket? Add its number, e.g. %(command)s TKT-000123 %(example)s",
             command=command, example=example).rstrip()
    if not ask.staff:
        mine = Ticket.active_of_contact(ask.workspace.id, ask.contact.id, limit=5)
        if mine:
            text += "\n" + _("Your tickets in progress:") + "\n" + "\n".join(
                f"{t.reference} · {_clip(t.subject, 60)}" for t in mine)
    return text


def _not_found(ref: str) -> str:
    return _("I cannot find ticket %(ref)s among your tickets.", ref=ref)


def _agents_only() -> str:
    return _("Sorry, this command is reserved for the support team. To follow one of your tickets: "
             "/ticket_view <number>.")


def _staff_only_in_inbox() -> str:
    return _("From the team's group, do this in the inbox (your Telegram account is not linked to an agent): "
             "%(url)s", url=_inbox_url("/tickets"))


def _priority_text(priority: Priority) -> str:
    return {Priority.LOW: _("Low"), Priority.MEDIUM: _("Normal"), Priority.HIGH: _("High"),
            Priority.CRITICAL: _("Critical")}[Priority(priority)]


def _duration(minutes: int | None) -> str:
    if minutes is None:
        return "–"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h", d=days, h=hours)
    if hours:
        return _("%(h)d h %(m)02d", h=hours, m=mins)
    return _("%(m)d min", m=mins)


def _clip(text: str, length: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[:length - 1] + "…"


def _inbox_url(path: str = "/inbox") -> str:
    return current_app.config["PUBLIC_BASE_URL"] + path


HANDLERS: dict[str, Callable[[Ask], str]] = {
    "start": _start, "help": _help, "info": _info, "contact": _contact,
    "ticket_create": _create, "ticket_list": _list, "ticket_view": _view, "ticket_reply": _reply,
    "ticket_close": _close, "ticket_stats": _stats,
}
