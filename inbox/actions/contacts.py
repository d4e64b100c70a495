"""One person, several identities: merging two contacts, and matching an identity a customer
claims on a new channel to the contact it belongs to — only when the claim is verified.

Verified means a provider or an agent vouches for the address: the number an SMS or a WhatsApp
message came from (WhatsApp itself verified it), a Telegram user sharing their own phone number
with the contact button (Telegram sets the card's user_id to theirs), an address an agent typed.
Not verified: an email From header, a phone number or an email typed in a message, somebody
else's contact card. An unverified claim never merges anything and adds no identity (it would
let whoever claims an address read the history of the person it belongs to).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from flask_babel import gettext as _
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import (
    Contact, ContactIdentity, Conversation, ConversationStatus, DeliveryStatus, Direction, Message, SenderKind,
    User, utcnow,
)
from ..models.conversation import LAST_MESSAGE_COLUMNS
from ..models.message import refresh_answered_at

log = logging.getLogger(__name__)
PHONE_KINDS = (ChannelKind.SMS, ChannelKind.WHATSAPP, ChannelKind.VOICE)
CONTACT_FIELDS = ("company", "email", "phone", "whatsapp", "telegram_id", "preferred_channel", "locale")


class ClaimOutcome(StrEnum):
    KNOWN = "known"  # the contact already has this identity
    ADDED = "added"  # a verified identity nobody had: now the contact's
    MERGED = "merged"  # a verified identity of another contact: the two are one now
    IGNORED = "ignored"  # unverified: nothing changed


# -- access / check ----------------------------------------------------------------------------
def access_contact(contact_id: int | None, user: User) -> Contact:
    return get_in_workspace(Contact, contact_id, user.workspace_id)


def check_merge(kept: Contact, other: Contact) -> None:
    if kept.workspace_id != other.workspace_id:
        raise ValidationError(_("These contacts are not in the same workspace."), field="other_id")
    if kept.id == other.id:
        raise ValidationError(_("Pick another contact to merge with."), field="other_id")


def merge_candidates(contact: Contact, query: str, *, limit: int = 10) -> list[Contact]:
    """Contacts of the same workspace matching a name, company, email or phone fragment."""
    query = (query or "").strip()
    if len(query) < 2:
        return []
    pattern = f"%{query.replace('%', '').replace('_', '')}%"
    by_identity = select(ContactIdentity.contact_id).where(
        ContactIdentity.workspace_id == contact.workspace_id, ContactIdentity.address.ilike(pattern))
    stmt = select(Contact).where(
        Contact.workspace_id == contact.workspace_id, Contact.id != contact.id,
        Contact.name.ilike(pattern) | Contact.company.ilike(pattern) | Contact.email.ilike(pattern)
        | Contact.phone.ilike(pattern) | Contact.id.in_(by_identity),
    ).order_by(Contact.name).limit(limit)
    return list(db.session.scalars(stmt))


# -- do ----------------------------------------------------------------------------------------
def do_merge_contacts(kept: Contact, other: Contact, *, actor: User | None,
                      identity_kind: ChannelKind | None = None, commit: bool = True) -> Contact:
    """Everything `other` owns moves to `kept` (identities, conversations and their messages,
    tickets, and any other row pointing at the contact), `other` is deleted, and a system line in
    `kept`'s conversation records it. When both have an open conversation, `other`'s messages join
    `kept`'s and `other`'s (now empty) is resolved. A row both contacts have and that may
    exist once (a consent per channel, a label) keeps `kept`'s, except that an opt-out wins."""
    check_merge(kept, other)
    other_name, other_id = other.display_name, other.id
    try:
        kept_active = Conversation.active_for_contact(kept.id)
        other_active = Conversation.active_for_contact(other.id)
        if kept_active is not None and other_active is not None:
            kept_active.unread_count = (kept_active.unread_count or 0) + (other_active.unread_count or 0)
            if other_active.last_activity_at and other_active.last_activity_at > kept_active.last_activity_at:
                kept_active.last_activity_at = other_active.last_activity_at
                for column in LAST_MESSAGE_COLUMNS:
                    setattr(kept_active, column, getattr(other_active, column))
            # One open thread: other's messages join kept's open conversation.
            db.session.execute(update(Message).where(Message.conversation_id == other_active.id)
                               .values(conversation_id=kept_active.id))
            # One thread now: an answer in either may answer the other's received messages first.
            refresh_answered_at(db.session.connection(), kept_active.id)
            other_active.status = ConversationStatus.RESOLVED
            other_active.resolved_at = utcnow()
            db.session.flush()
        for field in CONTACT_FIELDS:  # what kept lacks, other may know
            if getattr(kept, field) in (None, "") and getattr(other, field) not in (None, ""):
                setattr(kept, field, getattr(other, field))
        db.session.flush()
        _repoint_references(kept.id, other.id)
        db.session.expire(kept, ["identities"])
        db.session.execute(delete(Contact).where(Contact.id == other_id))
        conversation = Conversation.active_for_contact(kept.id) or db.session.scalar(
            select(Conversation).where(Conversation.contact_id == kept.id)
            .order_by(Conversation.last_activity_at.desc()).limit(1))
        if conversation is not None:
            _system_line(conversation, {"kind": "contacts_merged", "actor": actor.name if actor else None,
                                        "other": other_name, "other_id": other_id,
                                        "identity_kind": str(identity_kind) if identity_kind else None},
                         f"contact {other_name} merged into this one")
        outbox.publish_event(kept.workspace_id, "conversation-changed",
                             conversation_id=conversation.id if conversation else None)
    except IntegrityError:
        outbox.discard()
        raise ValidationError(_("These contacts cannot be merged automatically; "
                                "remove what they both have (a budget for the same period…) first."),
                              field="other_id") from None
    if commit:
        outbox.commit()
    log.info("contacts merged kept=%s removed=%s actor=%s", kept.id, other_id, actor.id if actor else None)
    return kept


def do_claim_identity(contact: Contact, kind: ChannelKind, address: str, *, verified: bool,
                      commit: bool = True) -> ClaimOutcome:
    """The customer behind `contact` says `address` on `kind` is theirs. Verified: the identity
    becomes theirs, and if another contact owned it (verified too) the two contacts are merged
    into that older one. Unverified: nothing changes."""
    address = (address or "").strip()
    if not address:
        return ClaimOutcome.IGNORED
    owner = ContactIdentity.find(contact.workspace_id, kind, address)
    if owner is None and kind in PHONE_KINDS:  # the number may be known on another phone channel
        owner = db.session.scalar(select(ContactIdentity).where(
            ContactIdentity.workspace_id == contact.workspace_id, ContactIdentity.kind.in_(PHONE_KINDS),
            ContactIdentity.address == address).order_by(ContactIdentity.verified.desc(), ContactIdentity.id).limit(1))
    if owner is not None and owner.contact_id == contact.id:
        return ClaimOutcome.KNOWN
    if not verified:
        log.info("unverified identity claim ignored contact=%s kind=%s", contact.id, kind)
        return ClaimOutcome.IGNORED
    if owner is None:
        db.session.add(ContactIdentity(workspace_id=contact.workspace_id, contact_id=contact.id, kind=kind,
                                       address=address, verified=True))
        if commit:
            outbox.commit()
        return ClaimOutcome.ADDED
    if not owner.verified:
        return ClaimOutcome.IGNORED  # nobody vouched for the other side: do not join them
    do_merge_contacts(owner.contact, contact, actor=None, identity_kind=kind, commit=commit)
    return ClaimOutcome.MERGED


def verified_phone_owner(workspace_id: int, number: str) -> Contact | None:
    """The contact who owns this phone number through a verified identity on any phone channel
    (SMS, WhatsApp, voice): the same number on another of them is the same person."""
    stmt = select(ContactIdentity).where(
        ContactIdentity.workspace_id == workspace_id, ContactIdentity.kind.in_(PHONE_KINDS),
        ContactIdentity.address == number, ContactIdentity.verified.is_(True)).order_by(ContactIdentity.id).limit(1)
    identity = db.session.scalar(stmt)
    return identity.contact if identity is not None else None


# -- helpers -----------------------------------------------------------------------------------
def _repoint_references(kept_id: int, other_id: int) -> None:
    """Every column of every table that references contact.id now says kept_id, whatever module
    defined the table (tickets, budgets, consents, labels, appointments…)."""
    for table in db.metadata.sorted_tables:
        if table.name == "contact":
            continue
        for column in table.columns:
            if not any(fk.column.table.name == "contact" and fk.column.name == "id" for fk in column.foreign_keys):
                continue
            try:
                with db.session.begin_nested():
                    db.session.execute(update(table).where(column == other_id).values({column.name: kept_id}))
            except IntegrityError:
                _repoint_row_by_row(table, column, kept_id, other_id)


def _repoint_row_by_row(table, column, kept_id: int, other_id: int) -> None:
    """A unique key such as (contact_id, kind): move what does not clash, settle what does."""
    keys = list(table.primary_key.columns)
    rows = db.session.execute(select(table).where(column == other_id)).mappings().all()
    for row in rows:
        where = [key == row[key.name] for key in keys]
        try:
            with db.session.begin_nested():
                db.session.execute(update(table).where(*where).values({column.name: kept_id}))
        except IntegrityError:
            if table.name == "consent" and row.get("status") == "opted_out":
                # An opt-out is never lost: it replaces kept's row for that channel.
                with db.session.begin_nested():
                    db.session.execute(delete(table).where(column == kept_id, table.c.kind == row["kind"]))
                    db.session.execute(update(table).where(*where).values({column.name: kept_id}))
            else:
                with db.session.begin_nested():  # kept's row stays; other's duplicate goes
                    db.session.execute(delete(table).where(*where))


def _system_line(conversation: Conversation, event: dict, text: str) -> Message:
    from ..orchestrator.ingest import announce_message

    now = utcnow()
    message = Message(
        workspace_id=conversation.workspace_id, conversation_id=conversation.id,
        contact_id=conversation.contact_id, direction=Direction.OUTBOUND, sender_kind=SenderKind.SYSTEM,
        body=text, internal=True, event=event, delivery_status=DeliveryStatus.READ, status_changed_at=now,
        created_at=now,
    )
    db.session.add(message)
    db.session.flush()
    announce_message(message)
    return message
