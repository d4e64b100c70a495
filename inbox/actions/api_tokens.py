"""REST API tokens: create (the secret is returned once), revoke, and authenticate a request.

Admins create tokens in settings for any member of the workspace or for one customer; the
CLI (`flask api-token create --email …`) does the same from a shell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from ..extensions import db, write_apart
from ..models import ApiToken, Contact, ContactIdentity, User, utcnow
from ..models.api_token import DISPLAY_PREFIX_LENGTH, hash_token, new_token
from .audit import record

log = logging.getLogger(__name__)
NAME_MAX = 80
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most once a minute per token


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an API request speaks for: a member of the team, or one customer (contact)."""

    token_id: int
    workspace_id: int
    user: User | None = None
    contact: Contact | None = None

    @property
    def is_customer(self) -> bool:
        return self.contact is not None

    @property
    def is_agent(self) -> bool:
        return self.user is not None


# -- access ------------------------------------------------------------------------------------
def access_api_token(token_id: int, user: User) -> ApiToken:
    return get_in_workspace(ApiToken, token_id, user.workspace_id)


def authenticate(secret: str | None, *, now: datetime | None = None) -> Principal | None:
    """The principal behind a bearer token; None for an unknown, revoked or orphaned one
    (a deactivated member, a member moved to another workspace)."""
    token = ApiToken.find((secret or "").strip())
    if token is None or token.revoked_at is not None:
        return None
    if token.user_id is not None:
        user = token.user
        if user is None or not user.is_active or user.workspace_id != token.workspace_id:
            return None
        principal = Principal(token.id, token.workspace_id, user=user)
    else:
        contact = token.contact
        if contact is None or contact.workspace_id != token.workspace_id:
            return None
        principal = Principal(token.id, token.workspace_id, contact=contact)
    _touch(token, now or utcnow())
    return principal


def _touch(token: ApiToken, now: datetime) -> None:
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    with write_apart():  # every API call passes here, GETs included: they read without the lock
        token.last_used_at = now


# -- check -------------------------------------------------------------------------------------
def check_token_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(_("Give the token a name, e.g. the tool that will use it."), field="name")
    if len(name) > NAME_MAX:
        raise ValidationError(_("The name is limited to %(n)d characters.", n=NAME_MAX), field="name")
    return name


def check_customer_email(workspace_id: int, email: str | None) -> Contact:
    """The one customer of the workspace with this email (for a customer token)."""
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError(_("Enter the customer's email address."), field="contact_email")
    by_identity = select(ContactIdentity.contact_id).where(
        ContactIdentity.workspace_id == workspace_id, ContactIdentity.kind == "email",
        func.lower(ContactIdentity.address) == email)
    contacts = list(db.session.scalars(
        select(Contact).where(Contact.workspace_id == workspace_id,
                              (func.lower(Contact.email) == email) | Contact.id.in_(by_identity))
        .order_by(Contact.id).limit(2)))
    if not contacts:
        raise ValidationError(_("No customer of this workspace has this email address."), field="contact_email")
    if len(contacts) > 1:
        raise ValidationError(_("Several customers share this email address: merge them first."),
                              field="contact_email")
    return contacts[0]


# -- do ----------------------------------------------------------------------------------------
def do_create_api_token(workspace_id: int, *, name: str, user: User | None = None, contact: Contact | None = None,
                        actor: User | None = None) -> tuple[ApiToken, str]:
    """A new token for a member or a customer; returns it with its secret (shown once, never stored)."""
    name = check_token_name(name)
    if (user is None) == (contact is None):
        raise ValueError("a token belongs to a member or to a customer")
    owner = user or contact
    if owner.workspace_id != workspace_id:
        raise ValidationError(_("This person does not belong to the workspace."), field="owner")
    if user is not None and not user.is_active:
        raise ValidationError(_("This agent does not exist or is deactivated."), field="owner")
    secret = new_token()
    token = ApiToken(workspace_id=workspace_id, user_id=user.id if user else None,
                     contact_id=contact.id if contact else None, name=name, token_hash=hash_token(secret),
                     prefix=secret[:DISPLAY_PREFIX_LENGTH], created_by_id=actor.id if actor else None,
                     created_at=utcnow())
    db.session.add(token)
    record(actor, "api_token.create", token, None,
           {"name": name, "prefix": token.prefix, "user_id": token.user_id, "contact_id": token.contact_id},
           workspace_id=workspace_id)
    outbox.commit()
    log.info("api token created token_id=%s workspace_id=%s customer=%s", token.id, workspace_id, contact is not None)
    return token, secret


def do_revoke_api_token(token: ApiToken, *, actor: User | None) -> ApiToken:
    """Revoke for good (idempotent): the next request with it gets a 401."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(actor, "api_token.revoke", token, None, {"name": token.name, "prefix": token.prefix},
               workspace_id=token.workspace_id)
        outbox.commit()
        log.info("api token revoked token_id=%s", token.id)
    return token
