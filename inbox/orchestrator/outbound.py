"""Messages we start ourselves (scheduled, campaign, follow-up): which channel, which text, and
the one way they become queued Messages.

Delivery policy lives here, not in the adapters: the contact's preferred channel with fallback,
consent, the WhatsApp 24-hour window (outside it only an approved template may open a
conversation), and the templates' variables. Nothing here commits: callers own the transaction.
"""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..channels.registry import can_send_text
from ..channels.whatsapp_twilio import window_open
from ..extensions import db
from ..kinds import ChannelKind, Provider
from ..models import (
    Channel, Consent, ConsentStatus, Contact, ContactIdentity, Conversation, ConversationStatus,
    DeliveryStatus, Direction, Message, OutboundTemplate, SenderKind, utcnow,
)
from ..models.outbound import VARIABLE
from .delivery import schedule_delivery
from .ingest import announce_message, touch_conversation

DEFAULT_CHANNEL_ORDER = (ChannelKind.WHATSAPP, ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.TELEGRAM)


# -- text ---------------------------------------------------------------------------------------
def render(text: str | None, values: dict[str, str], *, as_html: bool = False) -> str:
    """{{name}} → its value (HTML-escaped in HTML); an unknown variable becomes empty.
    Deliberately not Jinja: a template written by an admin must not run code."""
    def value(match):
        raw = str(values.get(match.group(1), ""))
        return html_lib.escape(raw) if as_html else raw
    return VARIABLE.sub(value, text or "")


def contact_values(contact: Contact, *, workspace_name: str = "", extra: dict | None = None) -> dict[str, str]:
    name = contact.name or contact.display_name
    values = {
        "prospect_name": name, "contact_name": name, "first_name": (name.split() or [""])[0],
        "company": contact.company or "", "email": contact.email or "", "phone": contact.phone or "",
        "workspace_name": workspace_name,
    }
    values.update({k: str(v) for k, v in (extra or {}).items() if k not in values or v})
    return values


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    send_meta: dict | None = None  # OutboundMessage.meta additions (provider template, List-Unsubscribe)


def render_template(template: OutboundTemplate, channel: Channel, values: dict[str, str], *,
                    unsubscribe_url: str | None = None) -> Rendered:
    """The template as this channel sends it. Email gets its unsubscribe link (text, HTML and
    the List-Unsubscribe header); WhatsApp gets the approved template when there is one."""
    values = {**values, "unsubscribe_url": unsubscribe_url or ""}
    body = render(template.body, values).strip()
    send_meta: dict = {}
    if channel.kind == ChannelKind.EMAIL:
        html = render(template.html, values, as_html=True) if template.html else None
        if unsubscribe_url:
            send_meta["list_unsubscribe"] = unsubscribe_url
            if "unsubscribe_url" not in (template.body or ""):
                body = f"{body}\n\n--\n{_unsubscribe_line()} {unsubscribe_url}"
            if html and "unsubscribe_url" not in (template.html or ""):
                html = _append_footer(html, unsubscribe_url)
        return Rendered(body=body, subject=render(template.subject, values) or None, html=html,
                        send_meta=send_meta or None)
    if channel.kind == ChannelKind.WHATSAPP and template.whatsapp_ready:
        send_meta.update(provider_template_meta(template, channel, values))
    return Rendered(body=body, send_meta=send_meta or None)


def _unsubscribe_line() -> str:
    from flask_babel import gettext as _

    return _("Unsubscribe:")


def _append_footer(document: str, url: str) -> str:
    from flask_babel import gettext as _

    link = (f'<p style="font-size:12px;color:#666"><a href="{html_lib.escape(url)}">'
            f'{html_lib.escape(_("Unsubscribe"))}</a></p>')
    lower = document.lower()
    index = lower.rfind("</body>")
    return document[:index] + link + document[index:] if index >= 0 else document + link


def provider_template_meta(template: OutboundTemplate, channel: Channel, values: dict[str, str]) -> dict:
    pt = template.provider_template or {}
    params = [values.get(name, "") for name in template.variables or []]
    if channel.provider == Provider.META and pt.get("name"):
        return {"template": {"name": pt["name"], "language": pt.get("language") or "fr",
                             "parameters": params}}
    if pt.get("content_sid"):
        return {"content_sid": pt["content_sid"],
                "content_variables": {str(i): v for i, v in enumerate(params, start=1)}}
    return {}


# -- channels -----------------------------------------------------------------------------------
def sendable_channels(workspace_id: int) -> dict[ChannelKind, Channel]:
    """The first enabled channel of each kind that can carry text (one query)."""
    stmt = select(Channel).where(Channel.workspace_id == workspace_id, Channel.enabled.is_(True)).order_by(Channel.id)
    found: dict[ChannelKind, Channel] = {}
    for channel in db.session.scalars(stmt):
        if can_send_text(channel.kind, channel.provider):
            found.setdefault(channel.kind, channel)
    return found


@dataclass(frozen=True, slots=True)
class Choice:
    channel: Channel | None
    reason: str | None = None  # no_channel, opted_out, no_opt_in


def choose_channel(contact: Contact, *, channels: dict[ChannelKind, Channel],
                   consents: dict[tuple[int, ChannelKind], Consent], template: OutboundTemplate,
                   order: list[str] | tuple = (), require_opt_in: bool = False) -> Choice:
    """The contact's preferred channel, else the first usable one in `order`.

    Usable: the workspace has the channel, the contact has an address there, the template fits
    it, WhatsApp has an approved template (a campaign opens the conversation), and consent
    allows it. A contact who opted out everywhere they can be reached is "opted_out".
    """
    kinds = [ChannelKind(k) for k in order if k in set(ChannelKind)] or list(DEFAULT_CHANNEL_ORDER)
    if contact.preferred_channel:
        kinds = [contact.preferred_channel, *[k for k in kinds if k != contact.preferred_channel]]
    addresses = {identity.kind for identity in contact.identities}
    refusal = None
    for kind in kinds:
        channel = channels.get(kind)
        if channel is None or kind not in addresses or not template.fits(kind):
            continue
        if kind == ChannelKind.WHATSAPP and not template.whatsapp_ready:
            continue
        consent = consents.get((contact.id, kind))
        if consent is not None and consent.status == ConsentStatus.OPTED_OUT:
            refusal = refusal or "opted_out"
            continue
        if require_opt_in and (consent is None or consent.status != ConsentStatus.OPTED_IN):
            refusal = refusal or "no_opt_in"
            continue
        return Choice(channel)
    return Choice(None, refusal or "no_channel")


def last_inbound_at(contact_id: int, channel_id: int) -> datetime | None:
    return db.session.scalar(
        select(Message.created_at).where(Message.contact_id == contact_id, Message.channel_id == channel_id,
                                         Message.direction == Direction.INBOUND)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def whatsapp_needs_template(contact_id: int, channel: Channel, at: datetime) -> bool:
    """Free text on WhatsApp only inside the 24-hour window that the customer's message opens."""
    return channel.kind == ChannelKind.WHATSAPP and not window_open(last_inbound_at(contact_id, channel.id), at)


def has_address(contact_id: int, kind: ChannelKind) -> bool:
    return ContactIdentity.find_for_contact(contact_id, kind) is not None


# -- the one way out ----------------------------------------------------------------------------
def conversation_for(contact: Contact, *, new_status: ConversationStatus) -> Conversation:
    """The contact's active conversation, or a new one (resolved for bulk sends, so 500
    recipients do not flood the open inbox; the customer's reply opens a normal conversation)."""
    active = Conversation.active_for_contact(contact.id)
    if active is not None:
        return active
    conversation = Conversation(workspace_id=contact.workspace_id, contact_id=contact.id, status=new_status,
                                resolved_at=utcnow() if new_status == ConversationStatus.RESOLVED else None)
    db.session.add(conversation)
    db.session.flush()
    return conversation


def queue_message(conversation: Conversation, channel: Channel, rendered: Rendered, *,
                  sender_kind: SenderKind, sender_user_id: int | None = None, meta: dict | None = None,
                  idempotency_key: str | None = None) -> Message:
    """Store a QUEUED outbound message and promise its delivery (the caller commits)."""
    now = utcnow()
    stored_meta = dict(meta or {})
    if rendered.send_meta:
        stored_meta["send"] = rendered.send_meta
    message = Message(
        workspace_id=conversation.workspace_id, conversation=conversation, contact_id=conversation.contact_id,
        channel_id=channel.id, direction=Direction.OUTBOUND, sender_kind=sender_kind,
        sender_user_id=sender_user_id, body=rendered.body, subject=rendered.subject, html=rendered.html,
        meta=stored_meta or None, idempotency_key=idempotency_key, delivery_status=DeliveryStatus.QUEUED,
        status_changed_at=now, created_at=now,
    )
    db.session.add(message)
    touch_conversation(conversation, message, channel_id=channel.id)
    db.session.flush()
    schedule_delivery(message)
    announce_message(message)
    return message


def public_url(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path
