"""A fake Twilio REST API and helpers that build webhooks exactly as Twilio signs them.

Payload shapes follow https://www.twilio.com/docs/messaging/guides/webhook-request and the
Message resource (https://www.twilio.com/docs/messaging/api/message-resource).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from twilio.request_validator import RequestValidator

DEMO_ACCOUNT_SID = "AC" + "c0cc1e11e" * 3 + "00000"  # 34 characters, like a real one
DEMO_AUTH_TOKEN = "demo-auth-token-coccinelle-0001"


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: dict) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


def inbound_sms_payload(*, account_sid: str, sender: str, to: str, body: str,
                        message_sid: str | None = None, media: list[tuple[str, str]] = ()) -> dict:
    """The form Twilio POSTs for an incoming SMS/MMS."""
    sid = message_sid or new_sid("MM" if media else "SM")
    payload = {
        "ToCountry": "FR", "ToState": "", "SmsMessageSid": sid, "NumMedia": str(len(media)),
        "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": "FR", "To": to, "ToZip": "",
        "NumSegments": "1", "MessageSid": sid, "AccountSid": account_sid, "From": sender,
        "ApiVersion": "2010-04-01",
    }
    for i, (url, content_type) in enumerate(media):
        payload[f"MediaUrl{i}"] = url
        payload[f"MediaContentType{i}"] = content_type
    return payload


def status_payload(*, account_sid: str, message_sid: str, status: str, sender: str, to: str,
                   error_code: str | None = None) -> dict:
    """The form Twilio POSTs to a message's StatusCallback."""
    payload = {"SmsSid": message_sid, "SmsStatus": status, "MessageStatus": status, "To": to,
               "MessageSid": message_sid, "AccountSid": account_sid, "From": sender,
               "ApiVersion": "2010-04-01"}
    if error_code:
        payload["ErrorCode"] = error_code
    return payload


def post_signed(url: str, params: dict, *, auth_token: str, signed_url: str | None = None,
                timeout: float = 10) -> requests.Response:
    """POST a form as Twilio does; `signed_url` is the public URL when it differs from `url`."""
    signature = sign(auth_token, signed_url or url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=timeout)


@dataclass
class Failure:
    status: int
    code: int
    message: str
    remaining: int


@dataclass
class FakeTwilio:
    """The Messages endpoint of the Twilio REST API, recording what it receives.

    `auto_status` makes it call each message's StatusCallback (sent, then delivered) like the
    real service does, which is what the demo wants; tests drive callbacks themselves.
    """

    account_sid: str = DEMO_ACCOUNT_SID
    auth_token: str = DEMO_AUTH_TOKEN
    auto_status: tuple[str, ...] = ()
    auto_status_delay: float = 0.5
    host: str = "127.0.0.1"
    port: int = 0
    sent: list[dict] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path → (content, type)
    # Fetch each outbound MediaUrl as Twilio does (a test's app must then be reachable over HTTP);
    # what came back is recorded under "media_fetched", and a URL that fails refuses the message.
    fetch_media: bool = False
    _failures: list[Failure] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def add_media(self, content: bytes, content_type: str, *, message_sid: str | None = None) -> str:
        """Host a file as Twilio hosts inbound media (basic auth required); returns its MediaUrl."""
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid or new_sid('MM')}/Media/{new_sid('ME')}"
        self.media[path] = (content, content_type)
        return self.base_url + path

    def fail_next(self, *, status: int, code: int = 20500, message: str = "Internal error",
                  times: int = 1) -> None:
        with self._lock:
            self._failures.append(Failure(status, code, message, times))

    def start(self) -> FakeTwilio:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-twilio").start()
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
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            return failure

    def _create_message(self, account_sid: str, form: dict, media: dict | None = None) -> dict:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        sid = new_sid("SM")
        record = {"sid": sid, **form, **(media or {})}
        with self._lock:
            self.sent.append(record)
        if self.auto_status and form.get("StatusCallback"):
            threading.Thread(target=self._callbacks, args=(sid, form), daemon=True).start()
        return {
            "account_sid": account_sid, "api_version": "2010-04-01", "body": form.get("Body", ""),
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": "1", "price": None, "price_unit": "EUR", "sid": sid, "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
            "to": form.get("To"), "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }

    def _callbacks(self, sid: str, form: dict) -> None:
        for status in self.auto_status:
            time.sleep(self.auto_status_delay)
            params = status_payload(account_sid=self.account_sid, message_sid=sid, status=status,
                                    sender=form.get("From", ""), to=form.get("To", ""))
            try:
                post_signed(form["StatusCallback"], params, auth_token=self.auth_token)
            except requests.RequestException:
                return


def fetch_url(url: str) -> tuple[int, str, bytes]:
    """GET a file the way a provider fetches an outbound media URL: (status, type, bytes)."""
    try:
        response = requests.get(url, timeout=10)
    except requests.RequestException:
        return 0, "", b""
    return response.status_code, response.headers.get("Content-Type", ""), response.content


def _handler_for(fake: FakeTwilio):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802 — the Account resource, for "test connection"; media files
            path = self.path.split("?")[0]
            if path in fake.media:
                if not self._authorized(fake.account_sid):
                    return self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                content, content_type = fake.media[path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                return self.wfile.write(content)
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) != 3 or parts[1] != "Accounts" or not parts[2].endswith(".json"):
                return self._json(404, {"code": 20404, "message": "Not found", "status": 404})
            sid = parts[2].removesuffix(".json")
            if not self._authorized(sid):
                return self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            self._json(200, {"sid": sid, "friendly_name": "Coccinelle sandbox", "status": "active",
                             "type": "Full", "uri": f"/2010-04-01/Accounts/{sid}.json"})

        def do_POST(self):  # noqa: N802 (http.server's naming)
            parts = self.path.split("?")[0].strip("/").split("/")
            # /2010-04-01/Accounts/{AccountSid}/Messages.json
            if len(parts) != 4 or parts[0] != "2010-04-01" or parts[3] != "Messages.json":
                return self._json(404, {"code": 20404, "message": "The requested resource was not found",
                                        "status": 404})
            if not self._authorized(parts[2]):
                return self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            length = int(self.headers.get("Content-Length") or 0)
            pairs = urllib.parse.parse_qsl(self.rfile.read(length).decode())
            form = dict(pairs)
            media_urls = [v for k, v in pairs if k == "MediaUrl"]  # repeated, one per file
            failure = fake._next_failure()
            if failure:
                return self._json(failure.status, {"code": failure.code, "message": failure.message,
                                                   "more_info": f"https://www.twilio.com/docs/errors/{failure.code}",
                                                   "status": failure.status})
            if not form.get("To") or not (form.get("Body") or form.get("MediaUrl")):
                return self._json(400, {"code": 21602, "message": "Message body is required.", "status": 400})
            media: dict = {"MediaUrls": media_urls} if media_urls else {}
            if media_urls and fake.fetch_media:
                media["media_fetched"] = [fetch_url(url) for url in media_urls]
                if any(status != 200 for status, _type, _content in media["media_fetched"]):
                    return self._json(400, {"code": 21620, "message": "Invalid media URL(s)", "status": 400,
                                            "more_info": "https://www.twilio.com/docs/errors/21620"})
            self._json(201, fake._create_message(parts[2], form, media))

        def _authorized(self, account_sid: str) -> bool:
            expected = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
            return account_sid == fake.account_sid and self.headers.get("Authorization") == f"Basic {expected}"

        def _json(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
