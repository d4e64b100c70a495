"""Consent changes (STOP / START, the email unsubscribe link, an agent on the contact card) and
the signed unsubscribe links put in every bulk email."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from ..models import Consent, ConsentSource, ConsentStatus, Contact, User, utcnow
from ..orchestrator.outbound import public_url

log = logging.getLogger(__name__)
_SALT = "coccinelle-unsubscribe-v1"


def do_set_consent(contact: Contact, kind: ChannelKind, status: ConsentStatus, *, source: ConsentSource,
                   detail: str | None = None, now: datetime | None = None, commit: bool = True) -> bool:
    """Record the contact's choice for one channel kind; returns False when it was already so."""
    now = now or utcnow()
    consent = Consent.of_contact(contact.id).get(kind)
    if consent is not None and consent.status == status:
        return False
    if consent is None:
        consent = Consent(workspace_id=contact.workspace_id, contact_id=contact.id, kind=kind)
        db.session.add(consent)
    consent.status, consent.source, consent.changed_at = status, source, now
    consent.detail = (detail or "")[:120] or None
    outbox.publish_event(contact.workspace_id, f"contact-{contact.id}-consent", kind=str(kind), status=str(status))
    log.info("consent contact_id=%s kind=%s status=%s source=%s", contact.id, kind, status, source)
    if commit:
        outbox.commit()
    return True


def check_consent_form(kind: str, status: str) -> tuple[ChannelKind, ConsentStatus]:
    try:
        return ChannelKind(kind), ConsentStatus(status)
    except ValueError:
        raise ValidationError(_("Unknown channel or consent."), field="consent") from None


def do_agent_set_consent(contact: Contact, kind: ChannelKind, status: ConsentStatus, *, actor: User) -> bool:
    return do_set_consent(contact, kind, status, source=ConsentSource.AGENT, detail=actor.name)


# -- signed unsubscribe links ---------------------------------------------------------------------
def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_token(contact: Contact, kind: ChannelKind = ChannelKind.EMAIL, *, campaign_id: int | None = None) -> str:
    return _serializer().dumps([contact.workspace_id, contact.id, str(kind), campaign_id])


def unsubscribe_url(contact: Contact, kind: ChannelKind = ChannelKind.EMAIL, *, campaign_id: int | None = None) -> str:
    return public_url(f"/u/{unsubscribe_token(contact, kind, campaign_id=campaign_id)}")


def read_unsubscribe_token(token: str) -> tuple[Contact, ChannelKind, int | None] | None:
    """The contact and kind a link was made for, or None when forged, altered or stale."""
    try:
        workspace_id, contact_id, kind, campaign_id = _serializer().loads(token)
        kind = ChannelKind(kind)
    except (BadSignature, ValueError, TypeError):
        return None
    contact = db.session.get(Contact, int(contact_id))
    if contact is None or contact.workspace_id != workspace_id:
        return None
    return contact, kind, campaign_id


def do_unsubscribe(token: str) -> tuple[Contact, ChannelKind] | None:
    """The one-click unsubscribe (the page's button, or the mail client's RFC 8058 POST)."""
    found = read_unsubscribe_token(token)
    if found is None:
        return None
    contact, kind, campaign_id = found
    do_set_consent(contact, kind, ConsentStatus.OPTED_OUT, source=ConsentSource.UNSUBSCRIBE_LINK,
                   detail=f"campaign:{campaign_id}" if campaign_id else None)
    return contact, kind
