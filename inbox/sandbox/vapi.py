"""A fake VAPI REST API and builders for the webhooks VAPI sends to a "server URL".

Shapes follow https://docs.vapi.ai/server-url/events (ServerMessageEndOfCallReport), the Call
resource of https://docs.vapi.ai/api-reference/calls/get and the credential types of
https://docs.vapi.ai/server-url/server-authentication (Bearer token, X-Vapi-Secret, HMAC).

The signing code here is written from the provider's side on purpose, independently of the
adapter, so a test that passes proves the two agree rather than that a function equals itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

DEMO_VAPI_API_KEY = "demo-vapi-private-key-coccinelle-0001"
DEMO_VAPI_WEBHOOK_SECRET = "demo-vapi-webhook-secret-0001"
DEMO_ORG_ID = "0b1c2d3e-4f50-4617-8a9b-c0cc1e11e000"
DEMO_PHONE_NUMBER_ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"


def new_call_id() -> str:
    return str(uuid.uuid4())


def iso(moment: datetime) -> str:
    """VAPI's date-time format: ISO 8601, UTC, milliseconds, 'Z'."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def call_object(*, customer_number: str | None, phone_number: str = "+33757000202",
                call_id: str | None = None, transcript: str = "", summary: str | None = None,
                recording_url: str | None = None, customer_name: str | None = None,
                started_at: datetime | None = None, duration_seconds: float = 42.0,
                ended_reason: str = "customer-ended-call", status: str = "ended",
                call_type: str = "inboundPhoneCall") -> dict:
    """A Call resource as ``GET /call/{id}`` returns it."""
    call_id = call_id or new_call_id()
    started = started_at or datetime.now(UTC) - timedelta(seconds=duration_seconds + 5)
    ended = started + timedelta(seconds=duration_seconds)
    recording_url = recording_url or f"https://storage.vapi.ai/{call_id}-mono.wav"
    stereo_url = recording_url.replace("-mono.wav", "-stereo.wav")
    customer = {"number": customer_number} if customer_number else {}
    if customer_name:
        customer["name"] = customer_name
    call = {
        "id": call_id, "orgId": DEMO_ORG_ID, "type": call_type, "status": status,
        "createdAt": iso(started - timedelta(seconds=2)), "updatedAt": iso(ended),
        "startedAt": iso(started), "phoneNumberId": DEMO_PHONE_NUMBER_ID,
        "phoneCallProvider": "twilio", "phoneCallTransport": "pstn",
        "phoneNumber": {"number": phone_number}, "customer": customer,
        "assistantId": "7e1c2a4b-3d5f-4e6a-9b8c-0d1e2f3a4b5c",
    }
    if status == "ended":
        call.update({
            "endedAt": iso(ended), "endedReason": ended_reason, "cost": 0.0917,
            "artifact": {
                "transcript": transcript,
                "messages": _messages(transcript),
                "recording": {"stereoUrl": stereo_url, "mono": {"combinedUrl": recording_url}},
                "recordingUrl": recording_url, "stereoRecordingUrl": stereo_url,
            },
            "analysis": {"summary": summary} if summary else {},
        })
    return call


def end_of_call_report(call: dict, *, legacy: bool = False) -> dict:
    """The ``end-of-call-report`` server message for an ended call.

    `legacy` gives the older layout that put transcript, summary, recordingUrl and
    durationSeconds directly under ``message`` (still met on long-lived assistants).
    """
    artifact = call.get("artifact") or {}
    started = datetime.fromisoformat(call["startedAt"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(call["endedAt"].replace("Z", "+00:00"))
    message = {
        "type": "end-of-call-report",
        "timestamp": int(ended.timestamp() * 1000) + 1500,
        "endedReason": call.get("endedReason"),
        "startedAt": call["startedAt"], "endedAt": call["endedAt"],
        "cost": call.get("cost"),
        "phoneNumber": call.get("phoneNumber"),
        "customer": call.get("customer"),
        "call": {k: v for k, v in call.items() if k not in ("artifact", "analysis")},
    }
    if legacy:
        message.update({
            "transcript": artifact.get("transcript", ""),
            "summary": (call.get("analysis") or {}).get("summary"),
            "recordingUrl": artifact.get("recordingUrl"),
            "stereoRecordingUrl": artifact.get("stereoRecordingUrl"),
            "messages": artifact.get("messages", []),
            "durationSeconds": round((ended - started).total_seconds(), 3),
        })
    else:
        message.update({"artifact": artifact, "analysis": call.get("analysis") or {}})
    return {"message": message}


def server_message(message_type: str, call: dict, **fields) -> dict:
    """Any other server message (status-update, transcript, hang, speech-update…)."""
    return {"message": {"type": message_type, "timestamp": int(time.time() * 1000),
                        "call": {k: v for k, v in call.items() if k not in ("artifact", "analysis")},
                        **fields}}


def encode(payload: dict) -> bytes:
    """The body as VAPI sends it: UTF-8 JSON, accents and emoji unescaped."""
    return json.dumps(payload, ensure_ascii=False).encode()


def hmac_signature(body: bytes, *, secret: str, timestamp: str = "", url: str = "",
                   algorithm: str = "sha256", payload_format: str = "{timestamp}.{body}",
                   encoding: str = "hex", prefix: str = "", secret_is_base64: bool = False,
                   message_id: str = "") -> str:
    """What VAPI's HMAC credential puts in the signature header."""
    signed = (payload_format.encode()
              .replace(b"{timestamp}", timestamp.encode()).replace(b"{method}", b"POST")
              .replace(b"{url}", url.encode()).replace(b"{svix-id}", message_id.encode()))
    signed = signed.replace(b"{body}", body)  # last: the body may contain "{timestamp}"
    key = base64.b64decode(secret) if secret_is_base64 else secret.encode()
    digest = hmac.new(key, signed, getattr(hashlib, algorithm)).digest()
    return prefix + (base64.b64encode(digest).decode() if encoding == "base64" else digest.hex())


def auth_headers(body: bytes, *, mode: str, secret: str, timestamp: str | None = None,
                 signature_header: str = "x-signature", timestamp_header: str = "x-timestamp",
                 **hmac_options) -> dict:
    """The headers a VAPI credential of this mode adds to a server-URL request."""
    headers = {"Content-Type": "application/json"}
    if mode == "bearer":
        headers["Authorization"] = f"Bearer {secret}"
    elif mode == "secret":
        headers["X-Vapi-Secret"] = secret
    elif mode == "hmac":
        timestamp = timestamp if timestamp is not None else str(int(time.time() * 1000))
        headers[timestamp_header] = timestamp
        headers[signature_header] = hmac_signature(body, secret=secret, timestamp=timestamp,
                                                   **hmac_options)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return headers


def post_webhook(url: str, payload: dict, *, mode: str = "bearer",
                 secret: str = DEMO_VAPI_WEBHOOK_SECRET, timeout: float = 10,
                 **hmac_options) -> requests.Response:
    """POST a server message to a server URL the way VAPI does (once: VAPI does not retry)."""
    body = encode(payload)
    headers = auth_headers(body, mode=mode, secret=secret, url=url, **hmac_options)
    return requests.post(url, data=body, headers=headers, timeout=timeout)


def _messages(transcript: str) -> list[dict]:
    messages, seconds = [], 1.0
    for line in transcript.splitlines():
        speaker, _, text = line.partition(": ")
        if not text:
            continue
        role = "bot" if speaker.strip().upper() in ("AI", "ASSISTANT", "BOT") else "user"
        messages.append({"role": role, "message": text, "secondsFromStart": seconds})
        seconds += 4.5
    return messages


@dataclass
class FakeVapi:
    """The Calls endpoints of the VAPI REST API (``GET /call/{id}``, ``GET /call``)."""

    api_key: str = DEMO_VAPI_API_KEY
    host: str = "127.0.0.1"
    port: int = 0
    calls: dict[str, dict] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths, query strings included
    _failures: list[int] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def add_call(self, call: dict) -> dict:
        with self._lock:
            self.calls[call["id"]] = call
        return call

    def fail_next(self, status: int, *, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def start(self) -> FakeVapi:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-vapi").start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- called by the handler -----------------------------------------------------------------
    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _list(self, query: dict[str, str]) -> list[dict]:
        with self._lock:
            calls = list(self.calls.values())
        for param, keep in (("createdAtGt", lambda c, v: c > v), ("createdAtGe", lambda c, v: c >= v),
                            ("createdAtLt", lambda c, v: c < v), ("createdAtLe", lambda c, v: c <= v)):
            if param in query:
                bound = _parse_iso(query[param])
                calls = [c for c in calls if keep(_parse_iso(c["createdAt"]), bound)]
        for param, key in (("phoneNumberId", "phoneNumberId"), ("assistantId", "assistantId"),
                           ("id", "id")):
            if param in query:
                calls = [c for c in calls if c.get(key) == query[param]]
        calls.sort(key=lambda c: c["createdAt"], reverse=True)  # newest first
        return calls[:int(float(query.get("limit", 100)))]


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _handler_for(fake: FakeVapi):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802 (http.server's naming)
            fake.requests.append(self.path)
            path, _, query_string = self.path.partition("?")
            parts = path.strip("/").split("/")
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                return self._json(401, {"message": "Invalid Key. Hot tip, you may be using the "
                                        "private key instead of the public key, or vice versa.",
                                        "error": "Unauthorized", "statusCode": 401})
            failure = fake._next_failure()
            if failure:
                return self._json(failure, {"message": "Fake failure", "statusCode": failure})
            if parts == ["call"]:
                try:
                    calls = fake._list(dict(urllib.parse.parse_qsl(query_string)))
                except ValueError:
                    return self._json(400, {"message": ["invalid query"], "error": "Bad Request",
                                            "statusCode": 400})
                return self._json(200, calls)
            if len(parts) == 2 and parts[0] == "call":
                call = fake.calls.get(urllib.parse.unquote(parts[1]))
                if call is None:
                    return self._json(404, {"message": "Not Found", "statusCode": 404})
                return self._json(200, call)
            self._json(404, {"message": f"Cannot GET {path}", "error": "Not Found", "statusCode": 404})

        def _json(self, status: int, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
