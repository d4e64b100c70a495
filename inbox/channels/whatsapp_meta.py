"""WhatsApp Cloud API (Meta): a GET subscription check, signed JSON webhooks in, Graph API out.

Docs: https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview
(verification requests, X-Hub-Signature-256), .../webhooks/reference/messages/{text,image,document,
audio,video,location,contacts,interactive,button}, .../webhooks/reference/messages/status,
.../messages/{text,image,document,location,interactive-reply-buttons,interactive-list,template}-messages
and .../support/error-codes.

Configuration: credentials `access_token` (Graph API bearer token), `app_secret` (signs webhook
bodies), `verify_token` (the subscription check); `settings["phone_number_id"]`, or the channel
address when it holds the id. Optional settings: `graph_version` (default v21.0),
`template_language` (default "fr").

One URL receives everything. Meta POSTs messages and statuses to the same callback, batched: one
body may hold several entry[].changes[].value with both `messages[]` and `statuses[]`. The
webhook view must therefore call both `parse()` and `parse_status()` on each POST (each returns
[] when its half is absent). Changes for another phone number of the same app are skipped
(logged with the phone_number_id), so several numbers may share an app callback.

Addresses: Meta writes the customer's number as digits (`33612345678`); the sender handed to the
orchestrator is E.164 (`+33612345678`), like the Twilio WhatsApp adapter, and `meta["wa_id"]`
keeps Meta's value. `send()` accepts either.

Inbound media: Meta gives a media id, not a public URL. The id lives 30 days and is resolved
with `GET /{version}/{media-id}` (which answers a short-lived URL that itself needs the bearer
token). So `InboundMedia.url` is the pseudo-URL `meta-media:<id>` — storable, and self-describing
enough that `fetch_media(url)` (or a later job) can download the bytes; `meta["media"]` keeps id,
sha256, mime type and the webhook's short-lived `url` when Meta includes one.

InboundMessage.meta: `type`, `wa_id`, and per type `media`, `location` {latitude, longitude,
name, address, url}, `contacts` (Meta's contact cards as sent), `interactive` {type, id, title,
description} for button/list replies, `button` {text, payload} for template quick replies,
`reaction` {message_id, emoji}, `context` {id, from} and `reply_to` when the customer replied to
a message, `referral` for click-to-WhatsApp ads, `unsupported` + `errors`. Reactions and
system notices (number changed) are flagged `automated=True`: they must not trigger an answer.

OutboundMessage.meta (all optional):
    template        {"name": str, "language": "fr", "components": [...]} and/or "parameters": [...]
                    (shortcut for body parameters); sendable outside the 24-hour window
    quick_replies   ["Oui", "Non"] or [{"id", "title", "description"}]: ≤ 3 become reply buttons
                    (title ≤ 20 chars), 4–10 an interactive list (title ≤ 24 chars)
    list_button     label of the list's button (≤ 20 chars), default "☰"
    location        {"latitude", "longitude", "name", "address"}
    media_type      image | document | video | audio (else guessed from the URL's extension)
    reply_to        a wamid to quote (context.message_id)
    preview_url     True to let WhatsApp render a link preview
    last_inbound_at datetime or ISO string: free text outside the window is refused before
                    calling Meta, with code "131047" (Meta's own code for it)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import posixpath
import urllib.parse
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import requests

from ..errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, RateLimited, TransientDeliveryError,
)
from ..kinds import ChannelKind, DeliveryStatus, Provider
from .base import (
    ConfigField,
    ChannelConfig, DeliveryReceipt, InboundMedia, InboundMessage, OutboundMessage, PartlySent, StatusUpdate,
    WebhookReply, WebhookRequest,
)
from .text_split import split_text
from .whatsapp_twilio import as_datetime, window_open

log = logging.getLogger(__name__)

GRAPH_BASE_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v21.0"
MEDIA_SCHEME = "meta-media:"
SIGNATURE_HEADER = "X-Hub-Signature-256"
HTTP_TIMEOUT_SECONDS = 15
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
INTERACTIVE_BODY_LIMIT = 1024
OUTSIDE_WINDOW_CODE = "131047"
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")

STATUS_MAP = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.READ,  # voice messages
    "failed": DeliveryStatus.FAILED,
}

# Where Meta's own text is cryptic, words an agent can act on; otherwise Meta's message is shown.
ERROR_REASONS = {
    "131047": ("More than 24 hours have passed since the customer last wrote: only an approved "
               "template can be sent until they write again"),
    "131026": ("Message undeliverable: the number may not use WhatsApp, or the customer must "
               "update WhatsApp or accept its terms"),
    "131030": "This recipient is not in the test number's allowed list",
    "131049": "Meta chose not to deliver this marketing message",
    "131050": "The customer stopped marketing messages from this business",
    "132000": "The number of template parameters does not match the template",
    "132001": "This template does not exist in this language or is not approved",
    "190": "The WhatsApp access token has expired or is invalid",
}
# Throttling (API calls, business-use-case, pair rate limit): sent again after a delay.
RATE_LIMIT_CODES = frozenset({"4", "80007", "130429", "131056"})
# Rate limits and Meta-side outages, whatever the HTTP status they come with.
TRANSIENT_CODES = frozenset({"1", "2", "4", "80007", "130429", "131000", "131016", "131056", "133004"})

EXTENSION_TYPES = {
    ".jpg": "image", ".jpeg": "image", ".png": "image",
    ".mp4": "video", ".3gp": "video",
    ".aac": "audio", ".amr": "audio", ".mp3": "audio", ".m4a": "audio", ".ogg": "audio", ".opus": "audio",
}


class WhatsAppMeta:
    kind = ChannelKind.WHATSAPP
    provider = Provider.META
    config_fields = (
        ConfigField("access_token", secret=True),
        ConfigField("app_secret", secret=True),
        ConfigField("verify_token", secret=True),
        ConfigField("phone_number_id", target="settings"),
    )
    # Meta posts statuses to the message URL: the webhook view must call parse_status() there too.
    statuses_in_inbound_webhook = True

    def __init__(self, config: ChannelConfig):
        self.config = config
        self.access_token = config.credentials.get("access_token", "")
        self.app_secret = config.credentials.get("app_secret", "")
        self.verify_token = config.credentials.get("verify_token", "")
        self.phone_number_id = str(config.settings.get("phone_number_id") or config.address or "")
        self.graph_version = str(config.settings.get("graph_version") or GRAPH_VERSION)
        self.api_base = (config.api_base_url or GRAPH_BASE_URL).rstrip("/")

    # -- inbound ---------------------------------------------------------------------------
    def handshake(self, request: WebhookRequest) -> WebhookReply | None:
        """Meta's GET subscription check: echo hub.challenge when hub.verify_token is ours."""
        query = request.query
        token, challenge = query.get("hub.verify_token"), query.get("hub.challenge")
        if (query.get("hub.mode") == "subscribe" and self.verify_token and token is not None and challenge
                and hmac.compare_digest(token.encode(), self.verify_token.encode())):
            return WebhookReply(challenge, "text/plain", 200)
        return WebhookReply("Forbidden", "text/plain", 403)

    def verify(self, request: WebhookRequest) -> None:
        header = _header(request.headers, SIGNATURE_HEADER)
        if not header or not self.app_secret:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER}")
        scheme, _, digest = header.strip().partition("=")
        if scheme.lower() != "sha256" or not digest:
            raise InvalidSignature(f"{SIGNATURE_HEADER} is not sha256=<hex>")
        # Over the raw bytes as received: Meta escapes non-ASCII and "/" in its JSON, so a
        # re-serialized body would not match.
        expected = hmac.new(self.app_secret.encode(), request.body or b"", hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
            raise InvalidSignature(f"{SIGNATURE_HEADER} does not match")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        messages = []
        for value in self._values(request):
            profiles = {str(c.get("wa_id")): (c.get("profile") or {}).get("name")
                        for c in value.get("contacts") or [] if isinstance(c, dict)}
            display = (value.get("metadata") or {}).get("display_phone_number")
            recipient = _e164(str(display)) if display else self.config.address
            for raw in _list(value, "messages"):
                messages.append(self._message(raw, profiles, recipient))
        return messages

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        updates = []
        for value in self._values(request):
            for raw in _list(value, "statuses"):
                wamid, status = raw.get("id"), raw.get("status")
                if not wamid or not isinstance(wamid, str):
                    raise MalformedPayload("a status has no message id")
                if status not in STATUS_MAP:
                    # Meta adds statuses over time; refusing the batch would make it retry for days.
                    log.info("whatsapp status ignored provider_id=%s status=%s", wamid, status)
                    continue
                code = message = None
                errors = [e for e in raw.get("errors") or [] if isinstance(e, dict)]
                if errors:
                    code = str(errors[0]["code"]) if errors[0].get("code") is not None else None
                    message = ERROR_REASONS.get(code or "") or _error_text(errors[0])
                updates.append(StatusUpdate(provider_message_id=wamid, status=STATUS_MAP[status],
                                            error_code=code, error_message=message))
        return updates

    def webhook_reply(self) -> WebhookReply:
        return WebhookReply("", "text/plain", 200)  # anything but 200 is retried for days

    def _values(self, request: WebhookRequest) -> Iterator[Mapping]:
        """Every `value` of a `messages` change addressed to this phone number."""
        try:
            payload = json.loads(request.body or b"")
        except ValueError:
            raise MalformedPayload("the body is not JSON") from None
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise MalformedPayload("object is not whatsapp_business_account")
        for entry in _list(payload, "entry"):
            for change in _list(entry, "changes"):
                if change.get("field") != "messages":
                    continue  # template status, account updates…: not ours to handle here
                value = change.get("value")
                if not isinstance(value, dict):
                    raise MalformedPayload("a messages change has no value")
                metadata = value.get("metadata") or {}
                if not self._ours(metadata):
                    log.warning("whatsapp change for another number skipped phone_number_id=%s",
                                metadata.get("phone_number_id"))
                    continue
                yield value

    def _ours(self, metadata: Mapping) -> bool:
        pid = str(metadata.get("phone_number_id") or "")
        if pid and pid == self.phone_number_id:
            return True
        display = _digits(str(metadata.get("display_phone_number") or ""))
        return bool(display) and display == _digits(self.config.address)

    def _message(self, raw: Mapping, profiles: Mapping, recipient: str) -> InboundMessage:
        wamid, sender = raw.get("id"), raw.get("from")
        if not wamid or not isinstance(wamid, str):
            raise MalformedPayload("a message has no id")
        if not sender:
            raise MalformedPayload(f"message {wamid} has no sender")
        sender = str(sender)
        kind = str(raw.get("type") or "unknown")
        content = raw.get(kind) if isinstance(raw.get(kind), dict) else {}
        meta: dict[str, object] = {"type": kind, "wa_id": sender}
        body, media, automated = "", (), False
        if kind == "text":
            body = content.get("body") or ""
        elif kind in MEDIA_TYPES:
            if not content.get("id"):
                raise MalformedPayload(f"message {wamid}: {kind} has no media id")
            body = content.get("caption") or ""
            media = (InboundMedia(url=MEDIA_SCHEME + str(content["id"]),
                                  content_type=content.get("mime_type") or "application/octet-stream",
                                  filename=content.get("filename")),)
            meta["media"] = [{k: content[k] for k in ("id", "mime_type", "sha256", "url", "voice", "animated")
                              if k in content}]
        elif kind == "location":
            try:
                latitude, longitude = float(content["latitude"]), float(content["longitude"])
            except (KeyError, TypeError, ValueError):
                raise MalformedPayload(f"message {wamid}: location without coordinates") from None
            meta["location"] = {"latitude": latitude, "longitude": longitude, "name": content.get("name"),
                                "address": content.get("address"), "url": content.get("url")}
            body = ", ".join(v for v in (content.get("name"), content.get("address")) if v) or (
                f"{latitude}, {longitude}")
        elif kind == "contacts":
            cards = [c for c in raw.get("contacts") or [] if isinstance(c, dict)]
            meta["contacts"] = cards
            body = "; ".join(_card_summary(c) for c in cards)
        elif kind == "interactive":
            reply_type = content.get("type")
            reply = content.get(reply_type) if isinstance(content.get(reply_type), dict) else {}
            meta["interactive"] = {"type": reply_type, "id": reply.get("id"), "title": reply.get("title"),
                                   "description": reply.get("description")}
            body = reply.get("title") or reply.get("body") or ""
        elif kind == "button":
            meta["button"] = {"text": content.get("text"), "payload": content.get("payload")}
            body = content.get("text") or ""
        elif kind == "reaction":
            meta["reaction"] = {"message_id": content.get("message_id"), "emoji": content.get("emoji")}
            body, automated = content.get("emoji") or "", True
        elif kind == "system":
            meta["system"] = dict(content)
            body, automated = content.get("body") or "", True
        else:
            meta["unsupported"] = True
            if raw.get("errors"):
                meta["errors"] = raw["errors"]
        context = raw.get("context")
        if isinstance(context, dict) and context.get("id"):
            meta["context"] = {"id": context.get("id"), "from": context.get("from")}
            meta["reply_to"] = context["id"]
        if raw.get("referral"):
            meta["referral"] = raw["referral"]
        name = profiles.get(sender) or (next(iter(profiles.values())) if len(profiles) == 1 else None)
        return InboundMessage(
            provider_message_id=wamid, sender=_e164(sender), recipient=recipient, body=body,
            sender_name=name or None, media=media, sent_at=_timestamp(raw.get("timestamp")), meta=meta,
            automated=automated,
        )

    # -- outbound --------------------------------------------------------------------------
    def test_connection(self) -> str:
        """Read the phone number's profile from the Graph API: proves the token and the id."""
        try:
            response = self._graph("GET", f"/{self.graph_version}/{self.phone_number_id}")
        except (TransientDeliveryError, PermanentDeliveryError) as exc:
            raise ChannelError(f"Meta refused: {exc}") from exc
        data = response.json()
        return str(data.get("display_phone_number") or data.get("verified_name") or self.phone_number_id)

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        meta = message.meta or {}
        if not self.phone_number_id:
            raise PermanentDeliveryError("The WhatsApp channel has no phone_number_id", code="invalid_config")
        last_inbound = meta.get("last_inbound_at")
        if (not meta.get("template") and last_inbound is not None
                and not window_open(as_datetime(last_inbound), datetime.now(UTC))):
            raise PermanentDeliveryError(ERROR_REASONS[OUTSIDE_WINDOW_CODE], code=OUTSIDE_WINDOW_CODE)
        parts = self._payloads(message, meta)
        # A retry after a transient failure mid-message resumes after the parts already out.
        wamids = [str(wamid) for wamid in meta.get("parts_sent") or ()][:len(parts)]
        for payload in parts[len(wamids):]:
            try:
                wamids.append(self._post_message(payload))
            except TransientDeliveryError as exc:
                if not wamids:
                    raise
                raise PartlySent(f"{len(wamids)} of {len(parts)} parts were sent; the rest will be retried: {exc}",
                                 sent_ids=tuple(wamids)) from exc
            except PermanentDeliveryError as exc:
                if not wamids:
                    raise
                # Nothing more will go out (a timeout may even have sent it): say what was sent.
                raise PermanentDeliveryError(
                    f"Only {len(wamids)} of {len(parts)} parts were sent (first message {wamids[0]}): {exc}",
                    code="partial") from exc
        return DeliveryReceipt(provider_message_id=wamids[0], status=DeliveryStatus.ACCEPTED,
                               message_ids=tuple(wamids) if len(wamids) > 1 else ())

    def fetch_media(self, url: str) -> tuple[bytes, str]:
        """Download an inbound `meta-media:<id>`: resolve the id, then fetch with the token."""
        media_id = url.removeprefix(MEDIA_SCHEME)
        answer = self._graph("GET", f"/{self.graph_version}/{urllib.parse.quote(media_id, safe='')}")
        try:
            info = answer.json()
            location = str(info["url"])
        except (ValueError, KeyError, TypeError):
            raise PermanentDeliveryError(f"Meta gave no download URL for media {media_id}",
                                         code="unexpected_answer") from None
        response = self._request("GET", location)
        return response.content, info.get("mime_type") or response.headers.get("Content-Type", "")

    def _payloads(self, message: OutboundMessage, meta: Mapping) -> list[dict]:
        base: dict[str, object] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                   "to": _digits(message.to) or message.to}
        if meta.get("reply_to"):
            base["context"] = {"message_id": str(meta["reply_to"])}
        if meta.get("template"):
            return [{**base, "type": "template", "template": self._template(meta["template"])}]
        body, media = message.body, list(message.media_urls)
        choices = meta.get("quick_replies") or ()
        parts: list[dict] = []
        captioned = bool(media) and bool(body) and not choices and len(body) <= CAPTION_LIMIT and (
            _media_type(media[0], meta) != "audio")
        if body and not captioned and not choices:
            # Longer than WhatsApp takes: several messages, cut where a reader would pause.
            parts.extend({**base, "type": "text", "text": {"body": text, "preview_url": bool(meta.get("preview_url"))}}
                         for text in split_text(body, TEXT_LIMIT))
        for i, url in enumerate(media):
            kind = _media_type(url, meta)
            obj: dict[str, object] = {"link": url}
            if kind == "document":
                obj["filename"] = posixpath.basename(urllib.parse.urlsplit(url).path) or "document"
            if i == 0 and captioned:
                obj["caption"] = body
            parts.append({**base, "type": kind, kind: obj})
        if choices:
            parts.append({**base, "type": "interactive", "interactive": _interactive(body, choices, meta)})
        if meta.get("location"):
            parts.append({**base, "type": "location", "location": _location(meta["location"])})
        if not parts:
            raise PermanentDeliveryError("Nothing to send: no text, media, template or location", code="empty")
        return parts

    def _template(self, template) -> dict:
        if not isinstance(template, Mapping) or not template.get("name"):
            raise PermanentDeliveryError("A template needs a name", code="invalid_request")
        language = template.get("language") or self.config.settings.get("template_language") or "fr"
        components = [dict(c) for c in template.get("components") or []]
        if template.get("parameters"):
            components.append({"type": "body", "parameters": [
                p if isinstance(p, Mapping) else {"type": "text", "text": str(p)} for p in template["parameters"]]})
        result: dict[str, object] = {
            "name": template["name"],
            "language": dict(language) if isinstance(language, Mapping) else {"code": str(language)},
        }
        if components:
            result["components"] = components
        return result

    def _post_message(self, payload: dict) -> str:
        response = self._graph("POST", f"/{self.graph_version}/{self.phone_number_id}/messages", json=payload)
        try:
            return str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise PermanentDeliveryError(
                "Meta accepted the request but answered without a message id; check before resending",
                code="unexpected_answer") from None

    def _graph(self, method: str, path: str, **kwargs) -> requests.Response:
        return self._request(method, self.api_base + path, **kwargs)

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            response = requests.request(method, url, headers={"Authorization": f"Bearer {self.access_token}"},
                                        timeout=HTTP_TIMEOUT_SECONDS, **kwargs)
        except (requests.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
            raise TransientDeliveryError("could not reach Meta") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise PermanentDeliveryError(
                "Meta did not answer in time; the message may have been sent — check before resending",
                code="timeout") from exc
        if response.ok:
            return response
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        code = str(error["code"]) if error.get("code") is not None else None
        text = _error_text(error) or f"Meta answered {response.status_code}"
        if response.status_code == 429 or code in RATE_LIMIT_CODES:
            raise RateLimited(f"Meta answered {response.status_code} ({code}): {text}",
                              retry_after=_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 500 or code in TRANSIENT_CODES:
            raise TransientDeliveryError(f"Meta answered {response.status_code} ({code}): {text}")
        raise PermanentDeliveryError(ERROR_REASONS.get(code or "") or text, code=code or str(response.status_code))


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (Meta rarely sends it; then the delivery policy's default applies)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 24 * 3600 else None


def _interactive(body: str, choices, meta: Mapping) -> dict:
    if not body:
        raise PermanentDeliveryError("Quick replies need a question text", code="invalid_request")
    if len(body) > INTERACTIVE_BODY_LIMIT:
        raise PermanentDeliveryError(
            f"A question with quick replies is limited to {INTERACTIVE_BODY_LIMIT} characters", code="too_long")
    options = [dict(c) if isinstance(c, Mapping) else {"id": str(c), "title": str(c)} for c in choices]
    if len(options) <= 3:
        _check_titles(options, 20)
        return {"type": "button", "body": {"text": body}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": str(o.get("id") or o["title"])[:256], "title": o["title"]}}
            for o in options]}}
    if len(options) > 10:
        raise PermanentDeliveryError("WhatsApp lists hold at most 10 choices", code="invalid_request")
    _check_titles(options, 24)
    rows = [{"id": str(o.get("id") or o["title"])[:200], "title": o["title"],
             **({"description": o["description"][:72]} if o.get("description") else {})} for o in options]
    return {"type": "list", "body": {"text": body},
            "action": {"button": str(meta.get("list_button") or "☰")[:20], "sections": [{"rows": rows}]}}


def _check_titles(options: list[dict], limit: int) -> None:
    for option in options:
        if not option.get("title") or len(option["title"]) > limit:
            raise PermanentDeliveryError(f"Each quick reply needs a title of at most {limit} characters: "
                                         f"{option.get('title')!r}", code="invalid_request")


def _location(location) -> dict:
    try:
        result = {"latitude": float(location["latitude"]), "longitude": float(location["longitude"])}
    except (KeyError, TypeError, ValueError):
        raise PermanentDeliveryError("A location needs numeric latitude and longitude", code="invalid_request") from None
    for key in ("name", "address"):
        if location.get(key):
            result[key] = str(location[key])
    return result


def _media_type(url: str, meta: Mapping) -> str:
    if meta.get("media_type") in ("image", "document", "video", "audio"):
        return str(meta["media_type"])
    extension = posixpath.splitext(urllib.parse.urlsplit(url).path)[1].lower()
    return EXTENSION_TYPES.get(extension, "document")


def _error_text(error: Mapping) -> str | None:
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    return details or error.get("message") or error.get("title") or None


def _card_summary(card: Mapping) -> str:
    name = (card.get("name") or {}).get("formatted_name") or ""
    phones = [p.get("phone") for p in card.get("phones") or [] if isinstance(p, dict) and p.get("phone")]
    return " ".join(v for v in (name, phones[0] if phones else "") if v)


def _list(container: Mapping, key: str) -> list[dict]:
    items = container.get(key) or []
    if not isinstance(items, list):
        raise MalformedPayload(f"{key} is not a list")
    return [item for item in items if isinstance(item, dict)]


def _timestamp(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _e164(value: str) -> str:
    """Meta's `33612345678` → `+33612345678`; anything that is not a bare number stays as it is."""
    value = value.strip()
    return "+" + value if value.isdigit() else value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value
