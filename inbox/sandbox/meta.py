"""A fake WhatsApp Cloud API (Graph API) and builders of webhook bodies signed as Meta signs them.

Payload shapes follow Meta's webhook references
(https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/…
for text, image, document, audio, video, location, contacts, interactive, button and status) and
the Messages API (https://developers.facebook.com/documentation/business-messaging/whatsapp/reference/whatsapp-business-phone-number/message-api).

Bodies are encoded like Meta's: compact JSON with non-ASCII characters and "/" escaped
(`\\u00e9`, `\\/`), so a receiver that re-serializes before hashing fails, as it would in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from .twilio import fetch_url

DEMO_ACCESS_TOKEN = "EAAdemo-coccinelle-access-token-0001"
DEMO_APP_SECRET = "demo-app-secret-coccinelle-0001"
DEMO_VERIFY_TOKEN = "demo-verify-token-coccinelle"
DEMO_PHONE_NUMBER_ID = "106540352242922"
DEMO_DISPLAY_NUMBER = "33757000303"
DEMO_WABA_ID = "102290129340398"
GRAPH_VERSION = "v21.0"
MESSAGE_TYPES = ("text", "image", "document", "audio", "video", "sticker", "location", "contacts",
                 "interactive", "template", "reaction")


def new_wamid() -> str:
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(24)).decode()


def encode(payload: dict) -> bytes:
    """JSON as Meta sends it: compact, ASCII-only with \\u escapes, and "/" written "\\/"."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(payload: dict, *, app_secret: str = DEMO_APP_SECRET) -> tuple[bytes, dict[str, str]]:
    body = encode(payload)
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(app_secret, body)}


def post_signed(url: str, payload: dict, *, app_secret: str = DEMO_APP_SECRET, timeout: float = 10) -> requests.Response:
    body, headers = signed_request(payload, app_secret=app_secret)
    return requests.post(url, data=body, headers=headers, timeout=timeout)


# -- webhook bodies -----------------------------------------------------------------------------
def envelope(*values: dict, waba_id: str = DEMO_WABA_ID) -> dict:
    """One POST: one entry whose changes each carry a `value` (Meta may batch several)."""
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": v, "field": "messages"} for v in values]}]}


def value(*, messages: list[dict] = (), statuses: list[dict] = (), contacts: list[tuple[str, str]] = (),
          phone_number_id: str = DEMO_PHONE_NUMBER_ID, display_phone_number: str = DEMO_DISPLAY_NUMBER) -> dict:
    result: dict = {"messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}}
    if contacts:
        result["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in contacts]
    if messages:
        result["messages"] = list(messages)
    if statuses:
        result["statuses"] = list(statuses)
    return result


def inbound_payload(*messages: dict, name: str = "Camille Martin", **kw) -> dict:
    """The webhook for customer messages, with the senders' profiles in value.contacts."""
    senders = list(dict.fromkeys(m["from"] for m in messages))
    return envelope(value(messages=list(messages), contacts=[(s, name) for s in senders], **kw))


def status_payload(*statuses: dict, **kw) -> dict:
    return envelope(value(statuses=list(statuses), **kw))


def _message(sender: str, kind: str, content, *, wamid: str | None = None, timestamp: int | None = None,
             context: dict | None = None) -> dict:
    message = {"from": sender.lstrip("+"), "id": wamid or new_wamid(),
               "timestamp": str(timestamp or int(time.time())), "type": kind}
    if context:
        message["context"] = context
    if kind == "contacts":
        message["contacts"] = content
    else:
        message[kind] = content
    return message


def text_message(sender: str, body: str, **kw) -> dict:
    return _message(sender, "text", {"body": body}, **kw)


def media_message(sender: str, kind: str, *, media_id: str, mime_type: str, caption: str | None = None,
                  filename: str | None = None, voice: bool | None = None, **kw) -> dict:
    content = {"mime_type": mime_type, "sha256": hashlib.sha256(media_id.encode()).hexdigest(), "id": media_id}
    if caption is not None:
        content["caption"] = caption
    if filename is not None:
        content["filename"] = filename
    if voice is not None:
        content["voice"] = voice
    return _message(sender, kind, content, **kw)


def location_message(sender: str, *, latitude: float, longitude: float, name: str | None = None,
                     address: str | None = None, **kw) -> dict:
    content = {"latitude": latitude, "longitude": longitude}
    if name:
        content["name"] = name
    if address:
        content["address"] = address
    return _message(sender, "location", content, **kw)


def contacts_message(sender: str, cards: list[dict], **kw) -> dict:
    return _message(sender, "contacts", cards, **kw)


def button_reply_message(sender: str, *, reply_id: str, title: str, context_id: str, **kw) -> dict:
    return _message(sender, "interactive", {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
                    context={"from": DEMO_DISPLAY_NUMBER, "id": context_id}, **kw)


def list_reply_message(sender: str, *, reply_id: str, title: str, description: str | None = None,
                       context_id: str, **kw) -> dict:
    reply = {"id": reply_id, "title": title}
    if description:
        reply["description"] = description
    return _message(sender, "interactive", {"type": "list_reply", "list_reply": reply},
                    context={"from": DEMO_DISPLAY_NUMBER, "id": context_id}, **kw)


def status(wamid: str, value_: str, *, recipient: str, error: tuple[int, str, str, str] | None = None,
           timestamp: int | None = None) -> dict:
    """A statuses[] item; `error` is (code, title, message, details) for failed ones."""
    result: dict = {"id": wamid, "status": value_, "timestamp": str(timestamp or int(time.time())),
                    "recipient_id": recipient.lstrip("+")}
    if value_ in ("sent", "delivered", "read"):
        result["pricing"] = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "service"}
    if error:
        code, title, message, details = error
        result["errors"] = [{"code": code, "title": title, "message": message, "error_data": {"details": details},
                             "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
    return result


# -- the fake Graph API ---------------------------------------------------------------------------
@dataclass
class Failure:
    status: int
    code: int
    message: str
    details: str | None
    remaining: int
    skip: int = 0  # calls let through first (fail the second part of a long text)


@dataclass
class FakeMeta:
    """`POST /{version}/{phone-number-id}/messages`, media lookup and download, recording what
    it receives. `auto_status` posts signed status webhooks to `webhook_url` for each accepted
    message (the demo wants it; tests drive statuses themselves)."""

    access_token: str = DEMO_ACCESS_TOKEN
    phone_number_id: str = DEMO_PHONE_NUMBER_ID
    app_secret: str = DEMO_APP_SECRET
    webhook_url: str | None = None
    auto_status: tuple[str, ...] = ()
    auto_status_delay: float = 0.5
    host: str = "127.0.0.1"
    port: int = 0
    sent: list[dict] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # Fetch each outbound media `link` as Meta does; recorded under "media_fetched" in `sent`.
    fetch_media: bool = False
    _failures: list[Failure] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def fail_next(self, *, status: int, code: int = 131000, message: str = "Something went wrong",
                  details: str | None = None, times: int = 1, skip: int = 0) -> None:
        with self._lock:
            self._failures.append(Failure(status, code, message, details, times, skip))

    def add_media(self, media_id: str, content: bytes, mime_type: str) -> None:
        self.media[media_id] = (content, mime_type)

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()
            self._failures.clear()

    def start(self) -> FakeMeta:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-meta").start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- called by the handler -----------------------------------------------------------------
    def _next_failure(self) -> Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            if failure.skip:
                failure.skip -= 1
                return None
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            return failure

    def _accept(self, payload: dict) -> dict:
        wamid = new_wamid()
        content = payload.get(payload.get("type") or "")
        fetched = ({"media_fetched": fetch_url(content["link"])}
                   if self.fetch_media and isinstance(content, dict) and content.get("link") else {})
        with self._lock:
            self.sent.append({"id": wamid, **payload, **fetched})
        if self.auto_status and self.webhook_url:
            threading.Thread(target=self._statuses, args=(wamid, payload["to"]), daemon=True).start()
        message = {"id": wamid}
        if payload.get("type") == "template":
            message["message_status"] = "accepted"
        to = str(payload["to"])
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [message]}

    def _statuses(self, wamid: str, to: str) -> None:
        for value_ in self.auto_status:
            time.sleep(self.auto_status_delay)
            try:
                post_signed(self.webhook_url, status_payload(status(wamid, value_, recipient=to),
                                                             phone_number_id=self.phone_number_id),
                            app_secret=self.app_secret)
            except requests.RequestException:
                return


def _invalid(payload: dict) -> tuple[int, str] | None:
    """The checks Meta makes before accepting a message: (code, message) when refused."""
    if payload.get("messaging_product") != "whatsapp":
        return 100, "(#100) The parameter messaging_product is required."
    if not payload.get("to"):
        return 131008, "(#131008) Required parameter is missing"
    kind = payload.get("type", "text")
    if kind not in MESSAGE_TYPES or not isinstance(payload.get(kind), (dict, list)):
        return 131009, "(#131009) Parameter value is not valid"
    content = payload[kind]
    if kind == "text" and not (content.get("body") and len(content["body"]) <= 4096):
        return 100, "(#100) Param text['body'] must be between 1 and 4096 characters"
    if kind in ("image", "document", "audio", "video") and not (content.get("link") or content.get("id")):
        return 131008, "(#131008) Required parameter is missing"
    if kind == "template" and not (content.get("name") and content.get("language", {}).get("code")):
        return 131008, "(#131008) Required parameter is missing"
    if kind == "interactive":
        action = content.get("action") or {}
        if content.get("type") == "button" and not 1 <= len(action.get("buttons") or []) <= 3:
            return 131009, "(#131009) Parameter value is not valid"
        if content.get("type") == "list" and not action.get("sections"):
            return 131009, "(#131009) Parameter value is not valid"
    return None


def _handler_for(fake: FakeMeta):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
            if len(parts) != 3 or parts[2] != "messages" or not parts[0].startswith("v"):
                return self._error(400, 100, "Unknown path components")
            if not self._authorized():
                return self._error(401, 190, "Invalid OAuth access token - Cannot parse access token")
            if parts[1] != fake.phone_number_id:
                return self._error(400, 100, f"Unsupported post request. Object with ID '{parts[1]}' does not exist")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self._error(400, 100, "(#100) Invalid JSON")
            failure = fake._next_failure()
            if failure:
                return self._error(failure.status, failure.code, failure.message, failure.details)
            problem = _invalid(payload)
            if problem:
                return self._error(400, *problem)
            self._json(200, fake._accept(payload))

        def do_GET(self):  # noqa: N802
            parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
            if not self._authorized():
                return self._error(401, 190, "Invalid OAuth access token - Cannot parse access token")
            if len(parts) == 2 and parts[0] == "media-download" and parts[1] in fake.media:
                content, mime_type = fake.media[parts[1]]
                self.send_response(200)
                self.send_header("Content-Type", mime_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                return self.wfile.write(content)
            if len(parts) == 2 and parts[0].startswith("v") and parts[1] in fake.media:
                content, mime_type = fake.media[parts[1]]
                return self._json(200, {"messaging_product": "whatsapp", "url": f"{fake.base_url}/media-download/{parts[1]}",
                                        "mime_type": mime_type, "sha256": hashlib.sha256(content).hexdigest(),
                                        "file_size": len(content), "id": parts[1]})
            self._error(400, 100, "Unsupported get request. Object does not exist")

        def _authorized(self) -> bool:
            return hmac.compare_digest(self.headers.get("Authorization", "").encode(),
                                       f"Bearer {fake.access_token}".encode())

        def _error(self, status: int, code: int, message: str, details: str | None = None):
            error = {"message": message, "type": "OAuthException", "code": code,
                     "fbtrace_id": "A" + secrets.token_hex(10)}
            if details:
                error["error_data"] = {"messaging_product": "whatsapp", "details": details}
            self._json(status, {"error": error})

        def _json(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
