"""Setting up a workspace: used by the seed, the tests and (later) the settings pages."""

from __future__ import annotations

import re
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from ..errors import ValidationError
from ..extensions import db
from ..kinds import ChannelKind, Provider
from ..models import Channel, Contact, ContactIdentity, Role, User, Workspace

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def do_create_workspace(name: str, *, slug: str, timezone: str = "Europe/Paris",
                        default_locale: str = "fr") -> Workspace:
    workspace = Workspace(name=name, slug=slug, timezone=timezone, default_locale=default_locale)
    db.session.add(workspace)
    db.session.commit()
    return workspace


def check_new_user(email: str, password: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        raise ValidationError(_("Enter a valid email address."), field="email")
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise ValidationError(_("A user with this email already exists."), field="email")
    if len(password or "") < 10:
        raise ValidationError(_("The password must be at least 10 characters long."), field="password")
    return email


def do_create_user(workspace: Workspace, *, email: str, name: str, password: str,
                   role: Role = Role.AGENT, hourly_cost: Decimal = Decimal("0"),
                   locale: str | None = None) -> User:
    email = check_new_user(email, password)
    user = User(workspace_id=workspace.id, email=email, name=name, role=role,
                hourly_cost=hourly_cost, locale=locale)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def do_create_channel(workspace: Workspace, *, kind: ChannelKind, provider: Provider, name: str,
                      address: str, credentials: dict, settings: dict | None = None,
                      enabled: bool = True) -> Channel:
    channel = Channel(workspace_id=workspace.id, kind=kind, provider=provider, name=name,
                      address=address, settings=settings or {}, enabled=enabled)
    channel.credentials = credentials
    db.session.add(channel)
    db.session.commit()
    return channel


def do_create_contact(workspace: Workspace, *, name: str, company: str | None = None,
                      identities: dict[ChannelKind, str] | None = None,
                      preferred_channel: ChannelKind | None = None, **fields) -> Contact:
    """A CRM client with its addresses; each identity lets inbound messages find them."""
    contact = Contact(workspace_id=workspace.id, name=name, company=company,
                      preferred_channel=preferred_channel, **fields)
    db.session.add(contact)
    for kind, address in (identities or {}).items():
        db.session.add(ContactIdentity(workspace_id=workspace.id, contact=contact, kind=kind,
                                       address=address))
    db.session.commit()
    return contact
