"""CRM clients: create and edit a client and their addresses per channel (agents and admins).

An identity is what lets an inbound message find its client, so addresses are normalised the
way the channel adapters deliver them: E.164 phone numbers, lower-case email addresses.
(Merging two clients and verified identity claims live in actions/contacts.py.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import select

from .. import outbox
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import Contact, ContactErasure, ContactIdentity, User
from .tickets import FieldErrors
from .workspace import EMAIL

PHONE = re.compile(r"^\+[1-9][0-9]{5,14}$")
TELEGRAM_ID = re.compile(r"^-?[0-9]{3,20}$|^@?[A-Za-z0-9_]{5,32}$")
LOCALES = ("fr", "en")
# Which identities a client's contact fields give: a phone number answers SMS and calls.
IDENTITY_FIELDS: dict[str, tuple[ChannelKind, ...]] = {
    "email": (ChannelKind.EMAIL,),
    "phone": (ChannelKind.SMS, ChannelKind.VOICE),
    "whatsapp": (ChannelKind.WHATSAPP,),
    "telegram_id": (ChannelKind.TELEGRAM,),
}


@dataclass(frozen=True, slots=True)
class ContactInput:
    name: str
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    telegram_id: str | None = None
    preferred_channel: ChannelKind | None = None
    locale: str | None = None


# -- access ------------------------------------------------------------------------------------
def access_identity(identity_id: int, contact: Contact) -> ContactIdentity:
    identity = db.session.get(ContactIdentity, identity_id)
    if identity is None or identity.contact_id != contact.id or identity.workspace_id != contact.workspace_id:
        abort(404)
    return identity


def is_erased(contact: Contact) -> bool:
    return ContactErasure.of_contact(contact.id) is not None


def check_not_erased(contact: Contact) -> None:
    if is_erased(contact):
        raise NotAllowed(_("This client's personal data was erased: the record cannot be edited."))


# -- check -------------------------------------------------------------------------------------
def normalize_phone(value: str | None) -> str:
    return re.sub(r"[\s.\-()]", "", value or "").removeprefix("whatsapp:")


def check_address(kind: ChannelKind | str, value: str | None, *, field: str = "address") -> str:
    """An address as the channel's adapter would report it, or a ValidationError."""
    try:
        kind = ChannelKind(kind)
    except ValueError:
        raise ValidationError(_("Choose a channel."), field="kind") from None
    raw = (value or "").strip()
    if not raw:
        raise ValidationError(_("Enter an address."), field=field)
    if kind == ChannelKind.EMAIL:
        address = raw.lower()
        if not EMAIL.match(address) or len(address) > 254:
            raise ValidationError(_("Enter a valid email address."), field=field)
        return address
    if kind == ChannelKind.TELEGRAM:
        if not TELEGRAM_ID.match(raw):
            raise ValidationError(_("Enter the Telegram chat id (digits) or @username."), field=field)
        return raw
    address = normalize_phone(raw)
    if not PHONE.match(address):
        raise ValidationError(_("Enter the number in international format, such as +33612345678."), field=field)
    return address


def check_contact_form(form: Mapping) -> ContactInput:
    """Every wrong field is reported at once (FieldErrors)."""
    errors: dict[str, str] = {}
    name = " ".join((form.get("name") or "").split())
    if not name:
        errors["name"] = _("Give the client a name.")
    elif len(name) > 160:
        errors["name"] = _("The name is limited to %(n)d characters.", n=160)
    company = " ".join((form.get("company") or "").split()) or None
    if company and len(company) > 160:
        errors["company"] = _("The company is limited to %(n)d characters.", n=160)
    values: dict[str, str | None] = {}
    for field, kinds in IDENTITY_FIELDS.items():
        raw = (form.get(field) or "").strip()
        if not raw:
            values[field] = None
            continue
        try:
            values[field] = check_address(kinds[0], raw, field=field)
        except ValidationError as exc:
            errors[field] = exc.message
    preferred = form.get("preferred_channel") or None
    if preferred is not None and preferred not in set(ChannelKind):
        errors["preferred_channel"] = _("Choose a channel.")
    locale = form.get("locale") or None
    if locale is not None and locale not in LOCALES:
        errors["locale"] = _("Choose a language.")
    if errors:
        raise FieldErrors(errors)
    return ContactInput(name=name, company=company, preferred_channel=ChannelKind(preferred) if preferred else None,
                        locale=locale, **values)


def _check_free(workspace_id: int, kind: ChannelKind, address: str, *, field: str,
                contact_id: int | None = None) -> None:
    taken = ContactIdentity.find(workspace_id, kind, address)
    if taken is not None and taken.contact_id != contact_id:
        raise ValidationError(_("%(address)s already belongs to the client %(name)s.", address=address,
                                name=taken.contact.display_name), field=field)


# -- do ----------------------------------------------------------------------------------------
def do_create_contact_from_form(workspace_id: int, data: ContactInput, *, actor: User) -> Contact:
    """A new client, with an identity for each address given (so their messages find them)."""
    errors: dict[str, str] = {}
    for field, kinds in IDENTITY_FIELDS.items():
        address = getattr(data, field)
        for kind in kinds if address else ():
            try:
                _check_free(workspace_id, kind, address, field=field)
            except ValidationError as exc:
                errors.setdefault(field, exc.message)
    if errors:
        raise FieldErrors(errors)
    contact = Contact(workspace_id=workspace_id, **asdict(data))
    db.session.add(contact)
    for field, kinds in IDENTITY_FIELDS.items():
        address = getattr(data, field)
        for kind in kinds if address else ():
            db.session.add(ContactIdentity(workspace_id=workspace_id, contact=contact, kind=kind, address=address))
    db.session.flush()
    outbox.publish_event(workspace_id, "contact-changed", contact_id=contact.id)
    outbox.commit()
    return contact


def do_update_contact(contact: Contact, data: ContactInput, *, actor: User) -> Contact:
    """The client's details. Their identities are managed one by one (do_add_identity…):
    changing the phone shown on the card does not re-route anybody's messages."""
    check_not_erased(contact)
    for name, value in asdict(data).items():
        setattr(contact, name, value)
    outbox.publish_event(contact.workspace_id, "contact-changed", contact_id=contact.id)
    outbox.commit()
    return contact


def do_add_identity(contact: Contact, kind: ChannelKind | str, address: str, *, actor: User) -> ContactIdentity:
    check_not_erased(contact)
    address = check_address(kind, address)
    kind = ChannelKind(kind)
    existing = ContactIdentity.find(contact.workspace_id, kind, address)
    if existing is not None and existing.contact_id == contact.id:
        return existing
    _check_free(contact.workspace_id, kind, address, field="address")
    identity = ContactIdentity(workspace_id=contact.workspace_id, contact=contact, kind=kind, address=address)
    db.session.add(identity)
    db.session.flush()
    outbox.publish_event(contact.workspace_id, "contact-changed", contact_id=contact.id)
    outbox.commit()
    return identity


def do_update_identity(identity: ContactIdentity, address: str, *, actor: User) -> ContactIdentity:
    contact = identity.contact
    check_not_erased(contact)
    address = check_address(identity.kind, address)
    if address != identity.address:
        _check_free(identity.workspace_id, identity.kind, address, field="address", contact_id=contact.id)
        if ContactIdentity.find(identity.workspace_id, identity.kind, address) is not None:
            raise ValidationError(_("This client already has this address."), field="address")
        identity.address = address
    outbox.publish_event(contact.workspace_id, "contact-changed", contact_id=contact.id)
    outbox.commit()
    return identity


def do_remove_identity(identity: ContactIdentity, *, actor: User) -> None:
    """Messages from this address will start a new client (the history stays with this one)."""
    contact = identity.contact
    check_not_erased(contact)
    db.session.delete(identity)
    outbox.publish_event(contact.workspace_id, "contact-changed", contact_id=contact.id)
    outbox.commit()


def identities_by_kind(contact: Contact) -> dict[ChannelKind, list[ContactIdentity]]:
    order = list(ChannelKind)
    grouped: dict[ChannelKind, list[ContactIdentity]] = {}
    for identity in sorted(contact.identities, key=lambda i: (order.index(i.kind), i.id)):
        grouped.setdefault(identity.kind, []).append(identity)
    return grouped


def companies_of(workspace_id: int, limit: int = 300) -> list[str]:
    """Company names for the list's filter (suggestions)."""
    stmt = (select(Contact.company).where(Contact.workspace_id == workspace_id, Contact.company.is_not(None))
            .distinct().order_by(Contact.company).limit(limit))
    return [c for c in db.session.scalars(stmt) if c]
