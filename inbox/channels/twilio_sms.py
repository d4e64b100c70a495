"""SMS through Twilio: signed form webhooks in, the REST Messages API out.

Docs: https://www.twilio.com/docs/messaging/guides/webhook-request and
https://www.twilio.com/docs/usage/security#validating-requests
"""

from __future__ import annotations

import re
import urllib.parse

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, compare
from twilio.rest import Client

from ..errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, RateLimited, TransientDeliveryError,
)
from ..kinds import ChannelKind, DeliveryStatus, Provider
from .base import (
    ChannelConfig, ConfigField, DeliveryReceipt, InboundMedia, InboundMessage, OutboundMessage, StatusUpdate,
    WebhookReply, WebhookRequest,
)

MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
SMS_BODY_LIMIT = 1600
HTTP_TIMEOUT_SECONDS = 15

# Twilio's MessageStatus values → ours. "received"/"receiving" concern inbound messages.
STATUS_MAP = {
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.ACCEPTED,
    "queued": DeliveryStatus.ACCEPTED,
    "sending": DeliveryStatus.ACCEPTED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

# The error codes people meet most, in words an agent can act on (others show the code).
ERROR_REASONS = {
    "21211": "Invalid 'To' phone number",
    "21408": "Sending to this region is not enabled",
    "21610": "The recipient replied STOP and unsubscribed",
    "21614": "The number is not a mobile number",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked by the recipient or carrier",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Filtered by the carrier as spam",
    "30008": "Unknown error from the carrier",
}
TRANSIENT_HTTP = {429, 500, 502, 503, 504}
# "Too many requests" (20429) and "WhatsApp rate limit exceeded" (63018): Twilio gives no delay,
# so the delivery policy waits its configured rate-limit delay before the next attempt.
RATE_LIMIT_CODES = frozenset({"20429", "63018"})
# Media URLs Twilio hands us live on its API host (then redirect to its CDN, without our credentials).
TWILIO_MEDIA_HOSTS = ("api.twilio.com",)
MEDIA_CHUNK_BYTES = 64 * 1024


class TwilioSms:
    kind = ChannelKind.SMS
    provider = Provider.TWILIO
    config_fields = (
        ConfigField("account_sid"),
        ConfigField("auth_token", secret=True),
        ConfigField("messaging_service_sid", target="settings", required=False),
    )

    def __init__(self, config: ChannelConfig):
        self.config = config
        self.account_sid = config.credentials.get("account_sid", "")
        self.auth_token = config.credentials.get("auth_token", "")

    # -- inbound ---------------------------------------------------------------------------
    def handshake(self, request: WebhookRequest) -> WebhookReply | None:
        return None  # Twilio needs no subscription check

    def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.auth_token:
            raise InvalidSignature("missing X-Twilio-Signature")
        validator = RequestValidator(self.auth_token)
        # One HMAC for the URL as configured (the usual case); the library's validate() always
        # computes two (with and without the port), so it is kept for the other case only.
        if compare(validator.compute_signature(request.url, request.form), signature):
            return
        if not validator.validate(request.url, request.form, signature):
            raise InvalidSignature("X-Twilio-Signature does not match")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
        if not MESSAGE_SID.match(sid):
            raise MalformedPayload("MessageSid is missing or is not a Twilio message SID")
        self._check_account(form)
        sender = (form.get("From") or "").strip()
        if not sender:
            raise MalformedPayload("From is missing")
        return [InboundMessage(
            provider_message_id=sid,
            sender=sender,
            recipient=(form.get("To") or self.config.address).strip(),
            body=form.get("Body") or "",
            media=self._media(form),
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        form = request.form
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        if not MESSAGE_SID.match(sid):
            raise MalformedPayload("MessageSid is missing or is not a Twilio message SID")
        self._check_account(form)
        raw = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if raw in ("received", "receiving"):
            return []
        if raw not in STATUS_MAP:
            raise MalformedPayload(f"unknown MessageStatus {raw!r}")
        code = form.get("ErrorCode") or None
        return [StatusUpdate(
            provider_message_id=sid, status=STATUS_MAP[raw], error_code=code,
            error_message=(form.get("ErrorMessage") or ERROR_REASONS.get(code or "", None)
                           or (f"Twilio error {code}" if code else None)),
        )]

    def webhook_reply(self) -> WebhookReply:
        # An empty TwiML document: we answer asynchronously through the API.
        return WebhookReply('<?xml version="1.0" encoding="UTF-8"?><Response></Response>', "text/xml")

    def _check_account(self, form) -> None:
        if form.get("AccountSid") != self.account_sid:
            raise MalformedPayload("AccountSid does not belong to this channel")

    @staticmethod
    def _media(form) -> tuple[InboundMedia, ...]:
        try:
            count = int(form.get("NumMedia") or 0)
        except ValueError:
            raise MalformedPayload("NumMedia is not a number") from None
        if not 0 <= count <= 10:
            raise MalformedPayload("NumMedia must be between 0 and 10")
        media = []
        for i in range(count):
            url = form.get(f"MediaUrl{i}")
            if not url:
                raise MalformedPayload(f"MediaUrl{i} is missing")
            media.append(InboundMedia(url=url, content_type=form.get(f"MediaContentType{i}") or "application/octet-stream"))
        return tuple(media)

    # -- outbound --------------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if len(message.body) > SMS_BODY_LIMIT:
            raise PermanentDeliveryError(f"SMS bodies are limited to {SMS_BODY_LIMIT} characters")
        params = {"to": message.to, "body": message.body}
        if self.config.settings.get("messaging_service_sid"):
            params["messaging_service_sid"] = self.config.settings["messaging_service_sid"]
        else:
            params["from_"] = self.config.address
        if message.status_callback_url:
            params["status_callback"] = message.status_callback_url
        if message.media_urls:
            params["media_url"] = list(message.media_urls)
        try:
            created = self._client().messages.create(**params)
        except TwilioRestException as exc:
            if exc.status == 429 or str(exc.code) in RATE_LIMIT_CODES:
                raise RateLimited(f"Twilio answered {exc.status} ({exc.code}): too many requests") from exc
            if exc.status in TRANSIENT_HTTP:
                raise TransientDeliveryError(f"Twilio answered {exc.status}") from exc
            code = str(exc.code) if exc.code else None
            reason = ERROR_REASONS.get(code or "") or exc.msg or f"Twilio error {code}"
            raise PermanentDeliveryError(reason, code=code) from exc
        except (requests.ConnectionError, requests.exceptions.ConnectTimeout) as exc:
            # Nothing reached Twilio: safe to try again.
            raise TransientDeliveryError("could not reach Twilio") from exc
        except requests.exceptions.ReadTimeout as exc:
            # The request went out but no answer came: retrying could send it twice.
            raise PermanentDeliveryError(
                "Twilio did not answer in time; the message may have been sent — check before resending",
                code="timeout",
            ) from exc
        return DeliveryReceipt(provider_message_id=created.sid,
                               status=STATUS_MAP.get(created.status, DeliveryStatus.ACCEPTED))

    def fetch_media(self, url: str, *, max_bytes: int | None = None) -> tuple[bytes, str]:
        """Download an inbound MediaUrl<n> with the account's credentials (HTTP basic auth, which
        Twilio requires when media protection is on). Credentials go only to Twilio's API host
        (or the configured fake); Twilio's redirect to its CDN drops them, as requests does for
        another host. More than `max_bytes` is refused without reading the rest."""
        parts = urllib.parse.urlsplit(url)
        allowed = {*TWILIO_MEDIA_HOSTS}
        if self.config.api_base_url:
            allowed.add(urllib.parse.urlsplit(self.config.api_base_url).netloc)
        if parts.scheme not in ("https", "http") or parts.netloc not in allowed or (
                parts.scheme == "http" and parts.netloc in TWILIO_MEDIA_HOSTS):
            raise PermanentDeliveryError("not a Twilio media URL", code="invalid_media_url")
        try:
            with requests.get(url, auth=(self.account_sid, self.auth_token), stream=True,
                              timeout=HTTP_TIMEOUT_SECONDS) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise TransientDeliveryError(f"Twilio answered {response.status_code} for a media file")
                if response.status_code >= 400:
                    raise PermanentDeliveryError(f"Twilio answered {response.status_code} for a media file",
                                                 code=str(response.status_code))
                content = bytearray()
                for chunk in response.iter_content(MEDIA_CHUNK_BYTES):
                    content.extend(chunk)
                    if max_bytes is not None and len(content) > max_bytes:
                        break
                return bytes(content), response.headers.get("Content-Type", "")
        except requests.RequestException as exc:  # a read-only call: always safe to retry
            raise TransientDeliveryError("could not reach Twilio for a media file") from exc

    def test_connection(self) -> str:
        try:
            account = self._client().api.v2010.accounts(self.account_sid).fetch()
        except TwilioRestException as exc:
            raise ChannelError(f"Twilio refused the credentials ({exc.status}: {exc.msg})") from exc
        except requests.RequestException as exc:
            raise ChannelError("could not reach Twilio") from exc
        return f"{account.friendly_name} ({account.status})"

    def _client(self) -> Client:
        client = Client(self.account_sid, self.auth_token,
                        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_SECONDS))
        if self.config.api_base_url:
            client.api.base_url = self.config.api_base_url
        return client
