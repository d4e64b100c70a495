"""WhatsApp through Twilio: the SMS adapter's signed webhooks and Messages API, plus what WhatsApp adds.

Inherited from `TwilioSms` (not copied): the X-Twilio-Signature check, the AccountSid check,
MessageSid validation, MediaUrl<n> parsing, the status mapping (`read` included) and the REST
client. What is WhatsApp's own: `whatsapp:` addresses, the sender's profile name, location and
contact cards inbound, approved templates (ContentSid + ContentVariables) outbound, and the
24-hour customer-service window: free text outside it fails with Twilio error 63016.

Docs: https://www.twilio.com/docs/messaging/guides/webhook-request (WhatsApp parameters),
https://www.twilio.com/docs/whatsapp/api, https://www.twilio.com/docs/content/send-templates-created-with-the-content-template-builder,
https://www.twilio.com/docs/whatsapp/key-concepts#the-24-hour-window-or-24-hour-session,
https://www.twilio.com/docs/api/errors/63016

Addresses. Twilio writes WhatsApp numbers `whatsapp:+33612345678`; this adapter hands the
orchestrator plain E.164 numbers (`+33612345678`) as sender and recipient, so a customer has one
WhatsApp identity whichever provider carries the channel, and `send()` accepts either form.

InboundMessage.meta (keys present only when the payload has them):
    wa_id           the sender's WhatsApp id (WaId)
    message_type    Twilio's MessageType (text, image, location, button, interactive…)
    location        {"latitude": float, "longitude": float, "address": str|None, "label": str|None}
    contacts        [{"vcard_url": str}]  contact cards arrive as text/vcard media (also in `media`)
    button          {"text": str, "payload": str|None}  a tapped quick-reply button
    list_reply      {"id": str, "title": str|None}       a list-picker selection
    reply_to        the MessageSid the customer replied to (OriginalRepliedMessageSid)
    forwarded       True when WhatsApp flags the message as forwarded
    referral        {"source_url": …, "source_id": …, …}  click-to-WhatsApp ad data

OutboundMessage.meta (all optional):
    content_sid         HX… of an approved Content template (also how quick-reply/list content
                        types are sent); when set, Body is not sent: the template is the message
    content_variables   dict (JSON-encoded for Twilio) or an already encoded JSON string
    quick_replies       ["Oui", "Non"]: without a content_sid Twilio cannot send ad-hoc buttons,
                        so the choices are appended to the text as a numbered list
    location            {"latitude", "longitude", "label"} sent as a geo: PersistentAction
    last_inbound_at     datetime (or ISO 8601 string) of the customer's last message: free text
                        outside the window is refused before calling Twilio (code "63016")
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import requests
from twilio.base.exceptions import TwilioRestException

from ..errors import MalformedPayload, PermanentDeliveryError, RateLimited, TransientDeliveryError
from ..kinds import ChannelKind, DeliveryStatus, Provider
from .base import DeliveryReceipt, InboundMedia, InboundMessage, OutboundMessage, StatusUpdate, WebhookRequest
from .twilio_sms import ERROR_REASONS, RATE_LIMIT_CODES, SMS_BODY_LIMIT, STATUS_MAP, TRANSIENT_HTTP, TwilioSms

WHATSAPP_PREFIX = "whatsapp:"
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW_CODE = "63016"
VCARD_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory"})

# WhatsApp error codes in words an agent can act on (https://www.twilio.com/docs/api/errors).
WHATSAPP_ERROR_REASONS = {
    "63016": ("Outside the 24-hour customer-service window: WhatsApp only accepts an approved "
              "template until the customer writes again"),
    "63003": "This number cannot be reached on WhatsApp",
    "63007": "No WhatsApp sender is configured for this From address",
    "63015": "The WhatsApp sandbox only sends to numbers that joined it",
    "63018": "WhatsApp rate limit exceeded for this sender",
    "63024": "Invalid WhatsApp recipient",
    "63049": "Meta chose not to deliver this marketing message",
    "21655": "The template (ContentSid) is invalid",
    "21656": "The template variables (ContentVariables) are invalid",
}
TRANSIENT_CODES = frozenset({"63018"})


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """True while free-form messages may be sent: less than 24 h since the customer's last message.

    Pure. Naive datetimes are taken as UTC (the product stores UTC). A customer who never wrote
    has no window. A last message slightly in the future (clock skew) keeps the window open.
    """
    if last_inbound_at is None:
        return False
    return _utc(now) - _utc(last_inbound_at) < CUSTOMER_SERVICE_WINDOW


def window_closes_at(last_inbound_at: datetime) -> datetime:
    return _utc(last_inbound_at) + CUSTOMER_SERVICE_WINDOW


def whatsapp_address(number: str) -> str:
    """`+336…` or `whatsapp:+336…` → `whatsapp:+336…` (Twilio's channel address)."""
    number = number.strip()
    return number if number.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + number


def plain_number(address: str) -> str:
    return address.strip().removeprefix(WHATSAPP_PREFIX)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def as_datetime(value: object) -> datetime:
    """A `last_inbound_at` from meta: a datetime, or an ISO 8601 string (job payloads are JSON)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise PermanentDeliveryError(f"last_inbound_at must be a datetime or an ISO 8601 string, not {value!r}",
                                 code="invalid_request")


class TwilioWhatsApp(TwilioSms):
    kind = ChannelKind.WHATSAPP
    provider = Provider.TWILIO
    config_fields = TwilioSms.config_fields

    # -- inbound ---------------------------------------------------------------------------
    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        [message] = super().parse(request)  # signature-independent checks: sid, account, media
        form = request.form
        if not (form.get("From") or "").strip().startswith(WHATSAPP_PREFIX):
            raise MalformedPayload("From is not a WhatsApp address (is an SMS number pointed at this channel?)")
        meta: dict[str, object] = {}
        if form.get("WaId"):
            meta["wa_id"] = form["WaId"]
        if form.get("MessageType"):
            meta["message_type"] = form["MessageType"]
        body = message.body
        location = self._location(form)
        if location:
            meta["location"] = location
            body = body or ", ".join(v for v in (location["label"], location["address"]) if v) or (
                f"{location['latitude']}, {location['longitude']}")
        media = tuple(self._name_vcard(m) for m in message.media)
        vcards = [m for m in media if _bare_type(m.content_type) in VCARD_TYPES]
        if vcards:
            meta["contacts"] = [{"vcard_url": m.url} for m in vcards]
        if form.get("ButtonText") or form.get("ButtonPayload"):
            meta["button"] = {"text": form.get("ButtonText") or "", "payload": form.get("ButtonPayload") or None}
            body = body or form.get("ButtonText") or ""
        if form.get("ListId"):
            meta["list_reply"] = {"id": form["ListId"], "title": form.get("ListTitle") or None}
            body = body or form.get("ListTitle") or ""
        if form.get("OriginalRepliedMessageSid"):
            meta["reply_to"] = form["OriginalRepliedMessageSid"]
        if (form.get("Forwarded") or "").lower() == "true":
            meta["forwarded"] = True
        referral = {_snake(k.removeprefix("Referral")): v for k, v in form.items()
                    if k.startswith("Referral") and k != "ReferralNumMedia" and v}
        if referral:
            meta["referral"] = referral
        return [replace(
            message, sender=plain_number(message.sender), recipient=plain_number(message.recipient),
            sender_name=(form.get("ProfileName") or "").strip() or None, body=body, media=media, meta=meta,
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        updates = super().parse_status(request)
        return [replace(u, error_message=WHATSAPP_ERROR_REASONS[u.error_code])
                if u.error_code in WHATSAPP_ERROR_REASONS else u for u in updates]

    @staticmethod
    def _location(form) -> dict | None:
        lat, lon = form.get("Latitude"), form.get("Longitude")
        if not lat and not lon:
            return None
        try:
            latitude, longitude = float(lat), float(lon)
        except (TypeError, ValueError):
            raise MalformedPayload("Latitude/Longitude are not numbers") from None
        return {"latitude": latitude, "longitude": longitude,
                "address": form.get("Address") or None, "label": form.get("Label") or None}

    @staticmethod
    def _name_vcard(media: InboundMedia) -> InboundMedia:
        if _bare_type(media.content_type) in VCARD_TYPES and not media.filename:
            return replace(media, filename="contact.vcf")
        return media

    # -- outbound --------------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        meta = message.meta or {}
        content_sid = meta.get("content_sid")
        last_inbound = meta.get("last_inbound_at")
        if (not content_sid and last_inbound is not None
                and not window_open(as_datetime(last_inbound), datetime.now(UTC))):
            raise PermanentDeliveryError(WHATSAPP_ERROR_REASONS[OUTSIDE_WINDOW_CODE], code=OUTSIDE_WINDOW_CODE)
        params: dict[str, object] = {"to": whatsapp_address(message.to)}
        if self.config.settings.get("messaging_service_sid"):
            params["messaging_service_sid"] = self.config.settings["messaging_service_sid"]
        else:
            params["from_"] = whatsapp_address(self.config.address)
        if message.status_callback_url:
            params["status_callback"] = message.status_callback_url
        if content_sid:
            params["content_sid"] = content_sid
            variables = meta.get("content_variables")
            if variables:
                params["content_variables"] = variables if isinstance(variables, str) else json.dumps(
                    {str(k): str(v) for k, v in dict(variables).items()}, ensure_ascii=False)
        else:
            body = _with_choices(message.body, meta.get("quick_replies") or ())
            location = meta.get("location")
            if location:
                params["persistent_action"] = [_geo(location)]
                body = body or location.get("label") or f"{location['latitude']},{location['longitude']}"
            if len(body) > SMS_BODY_LIMIT:
                raise PermanentDeliveryError(f"WhatsApp messages through Twilio are limited to {SMS_BODY_LIMIT} characters",
                                             code="too_long")
            if body:
                params["body"] = body
        media = list(message.media_urls)
        if media:
            params["media_url"] = [media[0]]  # WhatsApp carries one media per message
        if not any(k in params for k in ("body", "media_url", "content_sid")):
            raise PermanentDeliveryError("Nothing to send: no text, media or template", code="empty")
        created = self._create(params)
        # Further files follow as separate messages; the receipt is the first one's. Once the
        # first is out a retry would send it twice, so a later failure is permanent and says so.
        base = {k: v for k, v in params.items() if k in ("to", "from_", "messaging_service_sid", "status_callback")}
        for sent, url in enumerate(media[1:], start=1):
            try:
                self._create({**base, "media_url": [url]})
            except (TransientDeliveryError, PermanentDeliveryError) as exc:
                raise PermanentDeliveryError(
                    f"Only {sent} of {len(media)} files were sent (first message {created.sid}): {exc}",
                    code="partial") from exc
        return DeliveryReceipt(provider_message_id=created.sid,
                               status=STATUS_MAP.get(created.status, DeliveryStatus.ACCEPTED))

    def _create(self, params: dict):
        try:
            return self._client().messages.create(**params)
        except TwilioRestException as exc:
            code = str(exc.code) if exc.code else None
            if exc.status == 429 or code in RATE_LIMIT_CODES:
                raise RateLimited(f"Twilio answered {exc.status} ({code}): too many requests") from exc
            if exc.status in TRANSIENT_HTTP or code in TRANSIENT_CODES:
                raise TransientDeliveryError(f"Twilio answered {exc.status} ({code})") from exc
            reason = (WHATSAPP_ERROR_REASONS.get(code or "") or ERROR_REASONS.get(code or "") or exc.msg
                      or f"Twilio error {code}")
            raise PermanentDeliveryError(reason, code=code) from exc
        except (requests.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
            raise TransientDeliveryError("could not reach Twilio") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise PermanentDeliveryError(
                "Twilio did not answer in time; the message may have been sent — check before resending",
                code="timeout",
            ) from exc


def _with_choices(body: str, choices) -> str:
    if not choices:
        return body
    lines = [f"{i}. {choice}" for i, choice in enumerate(choices, start=1)]
    return "\n".join([body, "", *lines]) if body else "\n".join(lines)


def _geo(location) -> str:
    try:
        lat, lon = float(location["latitude"]), float(location["longitude"])
    except (KeyError, TypeError, ValueError):
        raise PermanentDeliveryError("location needs numeric latitude and longitude", code="invalid_request") from None
    label = location.get("label") or location.get("name") or location.get("address") or ""
    return f"geo:{lat},{lon}" + (f"|{label}" if label else "")


def _bare_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
