"""GDPR: export a client's personal data (JSON), or erase it while keeping the statistics.

Export: what the client told us and what we told them: their details and addresses, the
messages of their conversations (not the agents' internal notes nor system lines), their
tickets with the public part of each history, their ratings and appointments. Never another
client's data, nor agent-only facts (notes, tags, time, costs, budgets, assignees).

Erase (irreversible, audit-logged): the contact row stays as an anonymous tombstone so that
counts and amounts (tickets, time, costs, ratings' scores, messages per channel) are unchanged;
names, addresses, message bodies, subjects, attachments (files included), comments and notes
are wiped. Active work is stopped: conversations resolved, tickets closed, queued messages
failed.

Features that keep more personal data about a client (labels, consents, portal logins…)
plug in with `register_personal_data(name, export=..., erase=...)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from .. import outbox, storage
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..kinds import DeliveryStatus
from ..models import (
    Appointment, Attachment, Contact, ContactErasure, ContactIdentity, Conversation, ConversationStatus,
    Message, Notification, Rating, SenderKind, Ticket, TicketAttachment, TicketEvent, TicketStatus, TimeEntry,
    User, Workspace, utcnow,
)
from ..models.ticket import format_reference
from .audit import record

log = logging.getLogger(__name__)
EXPORT_FORMAT = "coccinelle.contact-export/1"
_WIPED_EVENT_FACTS = ("contact", "subject", "body", "text", "preview", "email", "phone", "address", "name")

Exporter = Callable[[Contact], Any]
Eraser = Callable[[Contact], None]
_REGISTRY: dict[str, tuple[Exporter | None, Eraser | None]] = {}


def register_personal_data(name: str, *, export: Exporter | None = None, erase: Eraser | None = None) -> None:
    """Add a feature's own personal data to the export (under `name`) and to the erasure.
    An eraser runs inside the erasure's transaction and must not commit."""
    _REGISTRY[name] = (export, erase)


# -- export ------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_contact_data(contact: Contact, *, now: datetime | None = None) -> dict:
    workspace = db.session.get(Workspace, contact.workspace_id)
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(now or utcnow()),
        "controller": workspace.name,
        "contact": {
            "id": contact.id, "name": contact.name, "company": contact.company, "email": contact.email,
            "phone": contact.phone, "whatsapp": contact.whatsapp, "telegram_id": contact.telegram_id,
            "preferred_channel": str(contact.preferred_channel) if contact.preferred_channel else None,
            "language": contact.locale, "created_at": _iso(contact.created_at),
        },
        "identities": [{"channel": str(i.kind), "address": i.address, "created_at": _iso(i.created_at)}
                       for i in sorted(contact.identities, key=lambda i: i.id)],
        "messages": _export_messages(contact),
        "tickets": _export_tickets(contact),
        "ratings": _export_ratings(contact),
        "appointments": _export_appointments(contact),
    }
    for name, (exporter, _eraser) in sorted(_REGISTRY.items()):
        if exporter is not None:
            data[name] = exporter(contact)
    return data


def _export_messages(contact: Contact) -> list[dict]:
    stmt = (select(Message).where(Message.workspace_id == contact.workspace_id, Message.contact_id == contact.id,
                                  Message.internal.is_(False), Message.sender_kind != SenderKind.SYSTEM)
            .order_by(Message.created_at, Message.id))
    return [{
        "id": m.id, "conversation_id": m.conversation_id, "created_at": _iso(m.created_at),
        "channel": str(m.channel.kind) if m.channel else None, "direction": str(m.direction),
        "from": "you" if m.sender_kind == SenderKind.CUSTOMER else "support",
        "subject": m.subject, "body": m.body, "delivery_status": str(m.delivery_status),
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in m.attachments],
    } for m in db.session.scalars(stmt)]


def _export_tickets(contact: Contact) -> list[dict]:
    tickets = list(db.session.scalars(
        select(Ticket).where(Ticket.workspace_id == contact.workspace_id, Ticket.contact_id == contact.id)
        .order_by(Ticket.id)))
    events: dict[int, list[dict]] = {t.id: [] for t in tickets}
    files: dict[int, list[dict]] = {t.id: [] for t in tickets}
    if tickets:
        ids = list(events)
        for e in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids),
                                                              TicketEvent.internal.is_(False))
                                    .order_by(TicketEvent.created_at, TicketEvent.id)):
            events[e.ticket_id].append({"kind": str(e.kind), "created_at": _iso(e.created_at), "body": e.body})
        for a in db.session.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id.in_(ids),
                                                                   TicketAttachment.internal.is_(False))
                                    .order_by(TicketAttachment.id)):
            files[a.ticket_id].append({"filename": a.filename, "content_type": a.content_type, "size": a.size})
    return [{
        "reference": t.reference, "subject": t.subject, "description": t.description, "status": str(t.status),
        "category": str(t.category), "priority": str(t.priority), "created_at": _iso(t.created_at),
        "resolved_at": _iso(t.resolved_at), "closed_at": _iso(t.closed_at), "resolution": t.resolution,
        "history": events[t.id], "attachments": files[t.id],
    } for t in tickets]


def _export_ratings(contact: Contact) -> list[dict]:
    stmt = (select(Rating, Ticket.number).join(Ticket, Ticket.id == Rating.ticket_id)
            .where(Ticket.workspace_id == contact.workspace_id, Ticket.contact_id == contact.id)
            .order_by(Rating.created_at))
    return [{"ticket": format_reference(number), "score": r.score, "comment": r.comment,
             "created_at": _iso(r.created_at)} for r, number in db.session.execute(stmt)]


def _export_appointments(contact: Contact) -> list[dict]:
    stmt = (select(Appointment).where(Appointment.workspace_id == contact.workspace_id,
                                      Appointment.contact_id == contact.id).order_by(Appointment.starts_at))
    return [{"starts_at": _iso(a.starts_at), "duration_minutes": a.duration_minutes, "subject": a.subject,
             "location": a.location, "status": str(a.status)} for a in db.session.scalars(stmt)]


def do_record_export(contact: Contact, *, actor: User) -> None:
    """Who downloaded a client's data, and when (no personal data in the log)."""
    record(actor, "contact.export", contact, None, {"contact_id": contact.id})
    outbox.commit()


# -- erase -------------------------------------------------------------------------------------
def check_erase_confirmation(contact: Contact, typed: str | None) -> None:
    """The person types the client's name, as shown, to confirm."""
    if " ".join((typed or "").split()).casefold() != " ".join(contact.display_name.split()).casefold():
        raise ValidationError(_("Type the client's name exactly as shown to confirm."), field="confirm")


def anonymous_name(contact: Contact) -> str:
    """What an erased client is called from then on: no personal data, the same in every language."""
    return f"#{contact.id}"


def do_erase_contact(contact: Contact, *, actor: User, confirmation: str | None,
                     now: datetime | None = None) -> ContactErasure:
    if ContactErasure.of_contact(contact.id) is not None:
        raise NotAllowed(_("This client's personal data was already erased."))
    check_erase_confirmation(contact, confirmation)
    now = now or utcnow()
    ws, cid = contact.workspace_id, contact.id
    files: list[str] = []

    # The person: details and addresses.
    for name in ("company", "email", "phone", "whatsapp", "telegram_id", "locale"):
        setattr(contact, name, None)
    contact.name = anonymous_name(contact)
    identities = _bulk(delete(ContactIdentity).where(ContactIdentity.contact_id == cid))
    db.session.expire(contact, ["identities"])

    # What they wrote and what was written to them (notes about them included).
    message_ids = select(Message.id).where(Message.workspace_id == ws, Message.contact_id == cid)
    files += [k for k in db.session.scalars(select(Attachment.storage_key).where(
        Attachment.message_id.in_(message_ids), Attachment.storage_key.is_not(None)))]
    attachments = _bulk(delete(Attachment).where(Attachment.message_id.in_(message_ids)))
    theirs = (Message.workspace_id == ws, Message.contact_id == cid)
    _bulk(update(Message).where(*theirs, Message.delivery_status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING]))
          .values(delivery_status=DeliveryStatus.FAILED, failed_at=now, status_changed_at=now, error_code="erased"))
    messages = _bulk(update(Message).where(*theirs).values(body="", subject=None, html=None, meta=None,
                                                           thread_ref=None, error_message=None))
    conversations = list(db.session.scalars(select(Conversation).where(Conversation.workspace_id == ws,
                                                                        Conversation.contact_id == cid)))
    for conversation in conversations:
        conversation.last_message_preview = ""
        if conversation.is_active:
            conversation.status, conversation.resolved_at = ConversationStatus.RESOLVED, now
        outbox.publish_event(ws, "conversation-changed", conversation_id=conversation.id)

    # Tickets keep their numbers, dates, statuses, categories, time and ratings' scores.
    tickets = list(db.session.scalars(select(Ticket).where(Ticket.workspace_id == ws, Ticket.contact_id == cid)))
    ticket_ids = [t.id for t in tickets]
    for ticket in tickets:
        ticket.subject, ticket.description, ticket.resolution = ticket.reference, "", None
        if ticket.is_active:
            ticket.status, ticket.closed_at, ticket.status_changed_at = TicketStatus.CLOSED, now, now
        ticket.updated_at = now
    if ticket_ids:
        for event in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids))):
            event.body = ""
            if event.data and any(k in event.data for k in _WIPED_EVENT_FACTS):
                event.data = {k: v for k, v in event.data.items() if k not in _WIPED_EVENT_FACTS}
        _bulk(update(Rating).where(Rating.ticket_id.in_(ticket_ids)).values(comment=None))
        files += list(db.session.scalars(select(TicketAttachment.storage_key).where(
            TicketAttachment.ticket_id.in_(ticket_ids))))
        _bulk(delete(TicketAttachment).where(TicketAttachment.ticket_id.in_(ticket_ids)))
    _bulk(update(TimeEntry).where(TimeEntry.workspace_id == ws, TimeEntry.contact_id == cid).values(note=""))
    for appointment in db.session.scalars(select(Appointment).where(Appointment.workspace_id == ws,
                                                                    Appointment.contact_id == cid)):
        appointment.subject, appointment.location = "", ""
    for notification in db.session.scalars(select(Notification).where(Notification.workspace_id == ws,
                                                                      Notification.contact_id == cid)):
        notification.data = {k: v for k, v in (notification.data or {}).items() if k not in _WIPED_EVENT_FACTS}
    for name, (_exporter, eraser) in sorted(_REGISTRY.items()):
        if eraser is not None:
            eraser(contact)

    erasure = ContactErasure(workspace_id=ws, contact_id=cid, erased_by_id=actor.id, created_at=now)
    db.session.add(erasure)
    record(actor, "contact.erase", contact, None, {
        "identities": identities, "messages": messages, "attachments": attachments,
        "conversations": len(conversations), "tickets": len(tickets)})
    outbox.publish_event(ws, "contact-changed", contact_id=cid)
    for ticket_id in ticket_ids:
        outbox.publish_event(ws, "ticket-changed", ticket_id=ticket_id)
    outbox.commit()
    db.session.expire_all()  # bulk updates bypassed the objects already loaded
    _remove_files(files)
    log.info("contact erased contact_id=%s messages=%s tickets=%s", cid, messages, len(tickets))
    return erasure


def _bulk(statement) -> int:
    """A bulk UPDATE / DELETE; the objects already loaded are expired after the commit."""
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _remove_files(keys: list[str]) -> None:
    """After the commit: a file left behind by a crash holds no reference any more."""
    for key in keys:
        try:
            storage.path_of(key).unlink(missing_ok=True)
        except (FileNotFoundError, OSError) as exc:
            log.warning("erase: could not remove a stored file (%s)", type(exc).__name__)
