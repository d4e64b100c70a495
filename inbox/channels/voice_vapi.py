"""Voice through VAPI: "server URL" webhooks in, the REST API for reconciliation, no text out.

Docs (checked against the VapiAI/docs sources and the published OpenAPI schemas):
- Server events: https://docs.vapi.ai/server-url/events — every request is
  ``POST {"message": {"type": ..., "call": {...}, ...}}``; only ``end-of-call-report`` matters
  to us, every other type (status-update, transcript, hang, speech-update…) is acknowledged
  with 200 and ignored.
- End-of-call report (ServerMessageEndOfCallReport): ``endedReason``, ``startedAt``,
  ``endedAt``, ``customer``, ``phoneNumber``, ``call``, ``analysis.summary``,
  ``artifact.transcript`` and ``artifact.recording.mono.combinedUrl`` (``artifact.recordingUrl``
  is deprecated). Older payloads carried ``transcript``, ``summary``, ``recordingUrl``,
  ``stereoRecordingUrl`` and ``durationSeconds`` directly under ``message``: both are read.
- Server authentication: https://docs.vapi.ai/server-url/server-authentication — a
  credential is either a Bearer Token (header ``Authorization: Bearer <token>`` by default;
  the header name and the "Bearer " prefix are configurable, and the legacy inline ``secret``
  arrives as ``X-Vapi-Secret: <secret>``), OAuth 2.0 (a bearer token we would have to
  introspect: not supported), or HMAC (HMACAuthenticationPlan: ``algorithm`` sha256 | sha512 |
  sha1, ``signatureHeader`` default ``x-signature``, ``timestampHeader`` default
  ``x-timestamp``, ``signaturePrefix``, ``includeTimestamp`` default true, ``payloadFormat``
  default ``{timestamp}.{body}`` with ``{body} {timestamp} {method} {url} {svix-id}``,
  ``signatureEncoding`` hex | base64, ``secretIsBase64``).
- VAPI does not retry a failed delivery: a report that never arrived is recovered with
  ``GET /call/{id}`` (``fetch_call``); ``GET /call?createdAtGt=…`` lists candidates
  (``list_calls``).

Channel configuration
    credentials["webhook_secret"]  the token / secret / HMAC key of the VAPI credential
    credentials["api_key"]         a VAPI private API key (reconciliation only)
    settings["auth_mode"]          "bearer" (default) | "secret" (X-Vapi-Secret) | "hmac"
    settings["token_header"], settings["bearer_prefix"]      bearer mode (Authorization, True)
    settings["hmac_*"]             the HMAC plan: algorithm, signature_header, timestamp_header,
                                   signature_prefix, include_timestamp, payload_format,
                                   signature_encoding, secret_is_base64, message_id_header,
                                   tolerance_seconds (300; 0 disables the replay window)
    settings["phone_number_id"], settings["assistant_id"]    optional list_calls filters

Voice has no outbound text: ``send`` raises PermanentDeliveryError so the delivery policy
picks another channel (SMS) for the answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests

from ..errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, TransientDeliveryError,
)
from ..kinds import ChannelKind, Provider
from .base import (
    ConfigField,
    ChannelConfig, DeliveryReceipt, InboundMessage, OutboundMessage, StatusUpdate, WebhookReply,
    WebhookRequest,
)
from .voice_twilio import missed_call_body

DEFAULT_API_BASE_URL = "https://api.vapi.ai"
HTTP_TIMEOUT_SECONDS = 15
REPORT_TYPE = "end-of-call-report"
# A report in which the caller said nothing (no answer, silence, hung up during the greeting) is
# a missed call: meta["missed_call"], its body in the workspace's language (voice_twilio's).
BOT_SPEAKERS = frozenset({"ai", "assistant", "bot"})
USER_SPEAKERS = frozenset({"user", "customer"})
TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}

AUTH_MODES = ("bearer", "secret", "hmac")
SECRET_HEADER = "X-Vapi-Secret"
HMAC_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512, "sha1": hashlib.sha1}
HMAC_DEFAULTS = {
    "algorithm": "sha256",
    "signature_header": "x-signature",
    "timestamp_header": "x-timestamp",
    "signature_prefix": "",
    "include_timestamp": True,
    "payload_format": None,  # "{timestamp}.{body}", or "{body}" without a timestamp
    "signature_encoding": "hex",
    "secret_is_base64": False,
    "message_id_header": None,
    "tolerance_seconds": 300,
}
_PLACEHOLDER = re.compile(r"\{(body|timestamp|method|url|svix-id)\}")


class VoiceVapi:
    kind = ChannelKind.VOICE
    provider = Provider.VAPI
    can_send_text = False
    config_fields = (
        ConfigField("webhook_secret", secret=True),
        ConfigField("api_key", secret=True, required=False),
        ConfigField("auth_mode", target="settings", required=False),
    )

    def __init__(self, config: ChannelConfig):
        self.config = config
        self.webhook_secret = config.credentials.get("webhook_secret", "")
        self.api_key = config.credentials.get("api_key", "")
        self.auth_mode = str(config.settings.get("auth_mode") or "bearer").lower()
        self.api_base_url = (config.api_base_url or DEFAULT_API_BASE_URL).rstrip("/")
        self.clock = time.time  # injectable "now" for the HMAC replay window

    # -- inbound ---------------------------------------------------------------------------
    def handshake(self, request: WebhookRequest) -> WebhookReply | None:
        return None  # VAPI makes no subscription check

    def verify(self, request: WebhookRequest) -> None:
        if not self.webhook_secret:
            raise InvalidSignature("no VAPI webhook credential is configured for this channel")
        if self.auth_mode == "secret":
            self._verify_token(_header(request.headers, SECRET_HEADER), name=SECRET_HEADER)
        elif self.auth_mode == "bearer":
            header = str(self.config.settings.get("token_header") or "Authorization")
            value = _header(request.headers, header)
            if value and self.config.settings.get("bearer_prefix", True):
                scheme, _, token = value.partition(" ")
                value = token.strip() if scheme.lower() == "bearer" else ""
                if not value:
                    raise InvalidSignature(f"{header} is not a Bearer token")
            self._verify_token(value, name=header)
        elif self.auth_mode == "hmac":
            self._verify_hmac(request)
        else:
            raise InvalidSignature(f"unknown VAPI auth_mode {self.auth_mode!r} (use one of {AUTH_MODES})")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        message = _server_message(request.body)
        if message.get("type") != REPORT_TYPE:
            return []  # status-update, transcript, hang…: acknowledged, nothing stored
        call = message.get("call")
        if not isinstance(call, Mapping):
            raise MalformedPayload("message.call is missing")
        return [self._report(message, call, source="webhook")]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        return []  # voice sends nothing, so there are no delivery statuses to follow

    def webhook_reply(self) -> WebhookReply:
        # Informational messages expect no answer; 200 with an empty object acknowledges them.
        return WebhookReply("{}", "application/json")

    # -- reconciliation (VAPI does not retry: recover reports that never arrived) -----------
    def fetch_call(self, call_id: str) -> InboundMessage | None:
        """The end-of-call report rebuilt from ``GET /call/{id}``.

        None when the call is unknown (404), not ended yet, or has no customer phone number
        (web calls): there is nothing to store for it. The provider_message_id is the one the
        webhook would have produced, so a late webhook and a reconciliation dedupe each other.
        """
        if not call_id:
            raise ValueError("call_id is required")
        response = self._get(f"/call/{quote(call_id, safe='')}")
        if response.status_code == 404:
            return None
        call = _json(response)
        if not isinstance(call, Mapping) or not call.get("id"):
            raise ChannelError("VAPI returned a call without an id")
        if call.get("status") not in (None, "ended"):
            return None
        if not _customer_number(call, call):
            return None
        return self._report(call, call, source="api")

    def list_calls(self, created_after: datetime, *, created_before: datetime | None = None,
                   limit: int = 100) -> list[str]:
        """Ids of the calls created after `created_after` (``GET /call?createdAtGt=…``).

        One page of at most `limit` calls: run the reconciliation over short windows (the
        job remembers the last window it covered) rather than over days.
        """
        params: dict[str, str | int] = {"createdAtGt": _iso(created_after), "limit": limit}
        if created_before is not None:
            params["createdAtLt"] = _iso(created_before)
        for setting, param in (("phone_number_id", "phoneNumberId"), ("assistant_id", "assistantId")):
            if self.config.settings.get(setting):
                params[param] = str(self.config.settings[setting])
        data = _json(self._get("/call", params=params))
        calls = data.get("results") if isinstance(data, Mapping) else data
        if not isinstance(calls, list):
            raise ChannelError("VAPI returned an unexpected call list")
        return [str(call["id"]) for call in calls if isinstance(call, Mapping) and call.get("id")]

    # -- outbound --------------------------------------------------------------------------
    def test_connection(self) -> str:
        ids = self.list_calls(datetime.now(UTC) - timedelta(days=1), limit=1)
        return f"VAPI API OK ({len(ids)} call(s) in the last day)"

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        # A phone call cannot carry a text reply; answering the caller is the delivery
        # policy's job (fallback to SMS / WhatsApp / email on the same contact).
        raise PermanentDeliveryError("voice channels cannot send text", code="unsupported")

    # -- internals -------------------------------------------------------------------------
    def _verify_token(self, value: str | None, *, name: str) -> None:
        if not value:
            raise InvalidSignature(f"missing {name}")
        if not hmac.compare_digest(value.encode(), self.webhook_secret.encode()):
            raise InvalidSignature(f"{name} does not match")

    def _verify_hmac(self, request: WebhookRequest) -> None:
        plan = {**HMAC_DEFAULTS, **{k[5:]: v for k, v in self.config.settings.items()
                                    if k.startswith("hmac_") and v is not None}}
        algorithm = HMAC_ALGORITHMS.get(str(plan["algorithm"]).lower())
        if algorithm is None:
            raise InvalidSignature(f"unsupported HMAC algorithm {plan['algorithm']!r}")
        received = _header(request.headers, str(plan["signature_header"]))
        if not received:
            raise InvalidSignature(f"missing {plan['signature_header']} header")
        include_timestamp = _truthy(plan["include_timestamp"])
        payload_format = plan["payload_format"] or ("{timestamp}.{body}" if include_timestamp else "{body}")
        timestamp = _header(request.headers, str(plan["timestamp_header"])) or ""
        if include_timestamp or "{timestamp}" in payload_format:
            if not timestamp:
                raise InvalidSignature(f"missing {plan['timestamp_header']} header")
            self._check_freshness(timestamp, _seconds(plan["tolerance_seconds"]))
        message_id = ""
        if plan["message_id_header"]:
            message_id = _header(request.headers, str(plan["message_id_header"])) or ""
        values = {"body": request.body, "timestamp": timestamp.encode(), "method": b"POST",
                  "url": request.url.encode(), "svix-id": message_id.encode()}
        # The body is used as received: re-serialised JSON would differ (accents, spacing).
        signed = _signed_payload(payload_format, values)
        key = self.webhook_secret.encode()
        if _truthy(plan["secret_is_base64"]):
            try:
                key = base64.b64decode(self.webhook_secret, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidSignature("the HMAC secret is not valid base64") from None
        digest = hmac.new(key, signed, algorithm).digest()
        as_base64 = str(plan["signature_encoding"]).lower() == "base64"
        encoded = base64.b64encode(digest).decode() if as_base64 else digest.hex()
        prefix = str(plan["signature_prefix"] or "")
        if prefix and not received.startswith(prefix):
            raise InvalidSignature(f"{plan['signature_header']} lacks the {prefix!r} prefix")
        received = received[len(prefix):].strip()
        if not as_base64:
            received = received.lower()
        if not hmac.compare_digest(received.encode(), encoded.encode()):
            raise InvalidSignature(f"{plan['signature_header']} does not match")

    def _check_freshness(self, timestamp: str, tolerance: float) -> None:
        try:
            value = float(timestamp)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InvalidSignature("the HMAC timestamp is not a number")
        if value > 1e11:  # VAPI does not document the unit: accept milliseconds too
            value /= 1000
        if tolerance and abs(self.clock() - value) > tolerance:
            raise InvalidSignature("the HMAC timestamp is outside the allowed window (replay?)")

    def _report(self, message: Mapping, call: Mapping, *, source: str) -> InboundMessage:
        """One InboundMessage from an end-of-call report (webhook) or a Call (REST API)."""
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise MalformedPayload("message.call.id is missing")
        sender = _customer_number(message, call)
        if not sender:
            raise MalformedPayload("customer phone number is missing (message.customer.number "
                                   "or message.call.customer.number)")
        artifact = _mapping(message.get("artifact")) or _mapping(call.get("artifact"))
        analysis = _mapping(message.get("analysis")) or _mapping(call.get("analysis"))
        transcript = _text(artifact.get("transcript")) or _text(message.get("transcript")) or ""
        summary = _text(analysis.get("summary")) or _text(message.get("summary"))
        recording = _mapping(artifact.get("recording"))
        recording_url = (_text(_mapping(recording.get("mono")).get("combinedUrl"))
                         or _text(artifact.get("recordingUrl")) or _text(message.get("recordingUrl")))
        stereo_url = (_text(recording.get("stereoUrl")) or _text(artifact.get("stereoRecordingUrl"))
                      or _text(message.get("stereoRecordingUrl")))
        started_at = _datetime(message.get("startedAt") or call.get("startedAt"), "startedAt")
        ended_at = _datetime(message.get("endedAt") or call.get("endedAt"), "endedAt")
        customer = _mapping(message.get("customer")) or _mapping(call.get("customer"))
        meta = {
            "call_id": call_id,
            "event": REPORT_TYPE,
            "source": source,  # "webhook" or "api" (reconciliation)
            "call_type": _text(call.get("type")),
            "transcript": transcript,
            "summary": summary,
            "duration_seconds": _duration(message, started_at, ended_at),
            "recording_url": recording_url or stereo_url,
            "stereo_recording_url": stereo_url,
            "ended_reason": _text(message.get("endedReason")) or _text(call.get("endedReason")),
            "started_at": started_at.isoformat() if started_at else None,
            "ended_at": ended_at.isoformat() if ended_at else None,
        }
        body = f"{summary}\n\n{transcript}" if summary and transcript else (transcript or summary or "")
        missed = not _customer_spoke(transcript, artifact.get("messages") or message.get("messages"))
        if missed:  # nobody to answer, but the team should call back: kept as a missed call
            meta["missed_call"] = True
            body = missed_call_body(self.config.settings)
        return InboundMessage(
            provider_message_id=f"{call_id}:{REPORT_TYPE}",
            sender=sender,
            recipient=_our_number(message, call) or self.config.address,
            body=body,
            sender_name=_text(customer.get("name")),
            sent_at=ended_at,
            meta=meta,
            automated=missed,
        )

    def _get(self, path: str, *, params: Mapping | None = None) -> requests.Response:
        if not self.api_key:
            raise ChannelError("no VAPI API key is configured for this channel")
        try:
            response = requests.get(self.api_base_url + path, params=params, timeout=HTTP_TIMEOUT_SECONDS,
                                    headers={"Authorization": f"Bearer {self.api_key}",
                                             "Accept": "application/json"})
        except requests.RequestException as exc:  # a read-only call: always safe to retry
            raise TransientDeliveryError("could not reach VAPI") from exc
        if response.status_code in TRANSIENT_HTTP:
            raise TransientDeliveryError(f"VAPI answered {response.status_code}")
        if response.status_code in (401, 403):
            raise ChannelError(f"VAPI refused the API key (HTTP {response.status_code})")
        if response.status_code >= 400 and response.status_code != 404:
            raise ChannelError(f"VAPI answered {response.status_code}")
        return response


# -- helpers -----------------------------------------------------------------------------------

def _customer_spoke(transcript: str, messages: object) -> bool:
    """Whether the caller said anything: a "user" turn in artifact.messages, or a "User:" line
    in the transcript. A transcript in another shape (no speaker prefixes) counts as speech."""
    if isinstance(messages, list) and any(
            isinstance(m, Mapping) and m.get("role") == "user" and _text(m.get("message")) for m in messages):
        return True
    for line in filter(None, (line.strip() for line in transcript.splitlines())):
        speaker, colon, said = line.partition(":")
        if not colon or speaker.strip().lower() not in BOT_SPEAKERS | USER_SPEAKERS:
            return True
        if speaker.strip().lower() in USER_SPEAKERS and said.strip():
            return True
    return False


def _signed_payload(payload_format: str, values: Mapping[str, bytes]) -> bytes:
    """The payload format with its placeholders replaced by the raw bytes they stand for."""
    pieces, last = [], 0
    for match in _PLACEHOLDER.finditer(payload_format):
        pieces += [payload_format[last:match.start()].encode(), values[match.group(1)]]
        last = match.end()
    pieces.append(payload_format[last:].encode())
    return b"".join(pieces)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive; werkzeug's Headers is not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _seconds(value: object) -> float:
    try:
        return max(0.0, float(value or 0))
    except (TypeError, ValueError):
        return float(HMAC_DEFAULTS["tolerance_seconds"])


def _server_message(body: bytes) -> Mapping:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedPayload("body is not JSON") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise MalformedPayload("body must be a JSON object with a 'message' object")
    message = data["message"]
    if not isinstance(message.get("type"), str) or not message["type"]:
        raise MalformedPayload("message.type is missing")
    return message


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        raise ChannelError("VAPI answered with something that is not JSON") from None


def _mapping(value: object) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _customer_number(message: Mapping, call: Mapping) -> str | None:
    return (_text(_mapping(message.get("customer")).get("number"))
            or _text(_mapping(call.get("customer")).get("number")))


def _our_number(message: Mapping, call: Mapping) -> str | None:
    return (_text(_mapping(message.get("phoneNumber")).get("number"))
            or _text(_mapping(call.get("phoneNumber")).get("number")))


def _datetime(value: object, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"{name} is not an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload(f"{name} is not an ISO 8601 date-time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _duration(message: Mapping, started_at: datetime | None, ended_at: datetime | None) -> float | None:
    for key, scale in (("durationSeconds", 1), ("durationMs", 1000)):
        value = message.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return round(value / scale, 3)
    if started_at and ended_at and ended_at >= started_at:
        return round((ended_at - started_at).total_seconds(), 3)
    return None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
