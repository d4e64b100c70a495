"""WhatsApp through Twilio: payload builders and a fake Messages API that knows templates.

Extends `inbox.sandbox.twilio` (imported, not edited). Payload shapes follow the WhatsApp
parameters of https://www.twilio.com/docs/messaging/guides/webhook-request and the status
callbacks of https://www.twilio.com/docs/messaging/guides/track-outbound-message-status.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

import requests

from .twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, FakeTwilio, _handler_for, new_sid, post_signed, sign

__all__ = [
    "DEMO_ACCOUNT_SID", "DEMO_AUTH_TOKEN", "DEMO_WHATSAPP_NUMBER", "FakeTwilioWhatsApp", "button_payload",
    "contact_payload", "inbound_whatsapp_payload", "location_payload", "post_signed", "sign",
    "whatsapp_status_payload",
]

DEMO_WHATSAPP_NUMBER = "+33757000202"
PREFIX = "whatsapp:"


def _wa(number: str) -> str:
    return number if number.startswith(PREFIX) else PREFIX + number


def inbound_whatsapp_payload(*, account_sid: str = DEMO_ACCOUNT_SID, sender: str, to: str = DEMO_WHATSAPP_NUMBER,
                             body: str = "", profile_name: str = "", message_sid: str | None = None,
                             media: list[tuple[str, str]] = (), message_type: str | None = None,
                             extra: dict | None = None) -> dict:
    """The form Twilio POSTs for an incoming WhatsApp message (numbers get their `whatsapp:`)."""
    sid = message_sid or new_sid("MM" if media else "SM")
    wa_id = sender.removeprefix(PREFIX).lstrip("+")
    payload = {
        "SmsMessageSid": sid, "NumMedia": str(len(media)), "ProfileName": profile_name,
        "MessageType": message_type or ("image" if media else "text"), "SmsSid": sid, "WaId": wa_id,
        "SmsStatus": "received", "Body": body, "To": _wa(to), "NumSegments": "1", "ReferralNumMedia": "0",
        "MessageSid": sid, "AccountSid": account_sid, "From": _wa(sender), "ApiVersion": "2010-04-01",
    }
    for i, (url, content_type) in enumerate(media):
        payload[f"MediaUrl{i}"] = url
        payload[f"MediaContentType{i}"] = content_type
    payload.update(extra or {})
    return payload


def location_payload(*, latitude: float, longitude: float, address: str | None = None, label: str | None = None,
                     **kw) -> dict:
    extra = {"Latitude": str(latitude), "Longitude": str(longitude)}
    if address:
        extra["Address"] = address
    if label:
        extra["Label"] = label
    return inbound_whatsapp_payload(message_type="location", extra=extra, **kw)


def contact_payload(*, vcard_url: str, **kw) -> dict:
    """Contact cards reach Twilio webhooks as a text/vcard media item."""
    return inbound_whatsapp_payload(media=[(vcard_url, "text/vcard")], message_type="contacts", **kw)


def button_payload(*, text: str, payload: str, **kw) -> dict:
    """A tapped quick-reply button: Body carries the button text."""
    return inbound_whatsapp_payload(body=text, message_type="button",
                                    extra={"ButtonText": text, "ButtonPayload": payload}, **kw)


def whatsapp_status_payload(*, account_sid: str = DEMO_ACCOUNT_SID, message_sid: str, status: str, sender: str,
                            to: str, error_code: str | None = None) -> dict:
    """The form Twilio POSTs to a WhatsApp message's StatusCallback."""
    payload = {
        "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01", "MessageStatus": status, "SmsSid": message_sid,
        "SmsStatus": status, "ChannelInstallSid": "XE" + "0" * 32, "To": _wa(to), "From": _wa(sender),
        "MessageSid": message_sid, "StructuredMessage": "false", "AccountSid": account_sid,
        "ChannelToAddress": to.removeprefix(PREFIX)[:-4] + "XXXX",
    }
    if error_code:
        payload["ErrorCode"] = error_code
    return payload


@dataclass
class FakeTwilioWhatsApp(FakeTwilio):
    """FakeTwilio plus what a WhatsApp sender adds: Content templates rendered into the recorded
    Body, unknown ContentSid refused (21655), mixed `whatsapp:`/SMS address pairs refused
    (21910), and WhatsApp-shaped status callbacks when `auto_status` is set (read included)."""

    templates: dict[str, str] = field(default_factory=lambda: {
        "HX" + "0" * 31 + "1": "Bonjour {{1}}, votre rendez-vous du {{2}} est confirmé.",
        "HX" + "0" * 31 + "2": "Votre avis compte : êtes-vous satisfait ? (Oui / Non)",
    })

    def add_template(self, content_sid: str, text: str) -> None:
        self.templates[content_sid] = text

    def reset(self) -> None:
        """Forget sent messages and pending failures (for a server shared by several tests)."""
        with self._lock:
            self.sent.clear()
            self._failures.clear()

    def start(self) -> FakeTwilioWhatsApp:
        base = _handler_for(self)
        fake = self

        class Handler(base):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                pairs = urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)
                form = dict(pairs)
                refusal = fake._refusal(form)
                if refusal:
                    status, code, message = refusal
                    return self._json(status, {"code": code, "message": message, "status": status,
                                               "more_info": f"https://www.twilio.com/docs/errors/{code}"})
                if form.get("ContentSid") and not form.get("Body"):
                    pairs.append(("Body", fake._render(form)))
                raw = urllib.parse.urlencode(pairs).encode()
                self.rfile = io.BytesIO(raw)
                self.headers.replace_header("Content-Length", str(len(raw)))
                super().do_POST()

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-twilio-whatsapp").start()
        return self

    def _refusal(self, form: dict) -> tuple[int, int, str] | None:
        to, sender = form.get("To", ""), form.get("From")
        if sender is not None and to.startswith(PREFIX) != sender.startswith(PREFIX):
            return 400, 21910, "Invalid From and To pair. From and To should be of the same channel"
        content_sid = form.get("ContentSid")
        if content_sid and content_sid not in self.templates:
            return 400, 21655, "The ContentSid is Invalid"
        if form.get("ContentVariables"):
            try:
                json.loads(form["ContentVariables"])
            except ValueError:
                return 400, 21656, "The ContentVariables Parameter is invalid"
        return None

    def _render(self, form: dict) -> str:
        variables = json.loads(form.get("ContentVariables") or "{}")
        return re.sub(r"\{\{(\w+)\}\}", lambda m: str(variables.get(m.group(1), m.group(0))),
                      self.templates[form["ContentSid"]])

    def _callbacks(self, sid: str, form: dict) -> None:
        for status in self.auto_status:
            time.sleep(self.auto_status_delay)
            params = whatsapp_status_payload(account_sid=self.account_sid, message_sid=sid, status=status,
                                             sender=form.get("From", ""), to=form.get("To", ""))
            try:
                post_signed(form["StatusCallback"], params, auth_token=self.auth_token)
            except requests.RequestException:
                return
