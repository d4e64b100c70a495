"""Email: SMTP out; raw MIME in from SendGrid Inbound Parse, a Mailgun route, or an IMAP mailbox.

Everything here is provider I/O or a pure function of its arguments: no database, no Flask.

Configuration (`ChannelConfig`); each key is looked up in `credentials`, then in `settings`:

    smtp_host, smtp_port, smtp_security ("starttls" | "tls" | "none"), smtp_username, smtp_password
    imap_host, imap_port, imap_security ("tls" | "starttls" | "none"), imap_username, imap_password,
    imap_mailbox (default INBOX)
    mailgun_signing_key                       Mailgun route (settings["inbound"] == "mailgun")
    sendgrid_token | sendgrid_username + sendgrid_password   SendGrid Inbound Parse ("sendgrid")
    reply_token_secret                        signs the support+<token>@ Reply-To address
    tls_ca_file                               extra CA bundle (a self-signed test server)
    settings: from_address (default config.address), display_name, signature (text),
              inbound ("sendgrid" | "mailgun" | "imap"), helo_hostname, smtp_timeout, imap_timeout,
              plus_addressing (default true: Reply-To support+<token>@ when meta has
              conversation_id or reply_token), envelope_from, default_subject
OutboundMessage.meta also honours list_unsubscribe (an https URL): List-Unsubscribe and
List-Unsubscribe-Post: List-Unsubscribe=One-Click headers (RFC 2369, RFC 8058) for bulk mail.

`config.api_base_url` may be "smtp://127.0.0.1:2525": every send then goes, unauthenticated and
in clear, to that local server (the sandbox in demos), like the Twilio adapter's fake API.

Provider documentation this follows:
- SendGrid Inbound Parse, "POST the raw, full MIME message": multipart/form-data whose field
  `email` is the message as received, beside `to`, `from`, `subject`, `envelope` (JSON with the
  SMTP `to` list and `from`), `dkim`, `SPF`, `charsets`, `spam_score`, `sender_ip`
  (https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook).
  Classic Inbound Parse signs nothing: we authenticate a secret `?token=` in the URL we register
  (and/or HTTP basic auth credentials put in that URL), compared in constant time. SendGrid now
  offers optional "security policies" (ECDSA signature / OAuth) for Parse; not implemented here.
- Mailgun routes, forward() to a URL ending in "mime": form fields `recipient`, `sender`, `from`,
  `subject`, `body-mime`, plus `timestamp`, `token`, `signature` = hex HMAC-SHA256(webhook signing
  key, timestamp + token) (https://documentation.mailgun.com/docs/mailgun/user-manual/
  receive-forward-store/receive-http and .../webhooks/securing-webhooks). Mailgun answers 200 as
  success, 406 as "rejected, do not retry", anything else is retried for 8 hours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as html_lib
import imaplib
import json
import logging
import re
import smtplib
import ssl
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid
from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3

from ..errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, TransientDeliveryError,
)
from ..kinds import ChannelKind, DeliveryStatus, Provider
from .base import (
    ConfigField,
    ChannelConfig, DeliveryReceipt, InboundMedia, InboundMessage, OutboundMessage, StatusUpdate,
    WebhookReply, WebhookRequest,
)

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # larger raw messages are refused (MalformedPayload)
MAX_PROVIDER_ID = 128  # Message.provider_message_id is String(128)
MAILGUN_MAX_AGE_SECONDS = 300
SMTP_TIMEOUT_SECONDS = 20
IMAP_TIMEOUT_SECONDS = 30
REFERENCES_KEPT = 20  # RFC 5322 §3.6.4 allows trimming the middle of a long References chain
INBOUND_MODES = ("sendgrid", "mailgun", "imap")
SECURITY_MODES = ("starttls", "tls", "none")
_PARSER = BytesParser(policy=policy.default)


# =============================================================================================
# The adapter
# =============================================================================================
class EmailChannel:
    kind = ChannelKind.EMAIL
    provider = Provider.SMTP
    config_fields = (
        ConfigField("smtp_host", target="settings"),
        ConfigField("smtp_port", target="settings", required=False),
        ConfigField("smtp_security", target="settings", required=False),
        ConfigField("smtp_username", target="settings", required=False),
        ConfigField("smtp_password", secret=True, required=False),
        ConfigField("inbound", target="settings"),
        ConfigField("sendgrid_token", secret=True, required=False),
        ConfigField("mailgun_signing_key", secret=True, required=False),
        ConfigField("imap_host", target="settings", required=False),
        ConfigField("imap_username", target="settings", required=False),
        ConfigField("imap_password", secret=True, required=False),
        ConfigField("display_name", target="settings", required=False),
        ConfigField("signature", target="settings", required=False),
    )

    def __init__(self, config: ChannelConfig):
        self.config = config

    # -- configuration ----------------------------------------------------------------------
    def option(self, name: str, default=None):
        return _option(self.config, name, default)

    @property
    def inbound_mode(self) -> str:
        mode = str(self.option("inbound", "sendgrid")).lower()
        if mode not in INBOUND_MODES:
            raise ChannelError(f"unknown inbound mode {mode!r}: expected one of {', '.join(INBOUND_MODES)}")
        return mode

    @property
    def from_address(self) -> str:
        return str(self.option("from_address") or self.config.address).strip()

    # -- inbound ----------------------------------------------------------------------------
    def handshake(self, request: WebhookRequest) -> WebhookReply | None:
        return None  # neither SendGrid nor Mailgun checks the URL before posting

    def verify(self, request: WebhookRequest) -> None:
        mode = self.inbound_mode
        if mode == "mailgun":
            verify_mailgun_signature(
                str(self.option("mailgun_signing_key") or ""), request.form.get("timestamp"),
                request.form.get("token"), request.form.get("signature"))
        elif mode == "sendgrid":
            self._verify_sendgrid(request)
        else:
            raise InvalidSignature("this channel reads its mail over IMAP and accepts no webhook")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        mode = self.inbound_mode
        if mode == "mailgun":
            raw = _raw_field(request, "body-mime")
            if raw is None:
                raise MalformedPayload("body-mime is missing: the Mailgun route must forward to a URL ending in 'mime'")
            envelope_to = [a for _, a in getaddresses([request.form.get("recipient") or ""]) if a]
            message = self.parse_raw(raw, envelope_to=envelope_to,
                                     envelope_from=request.form.get("sender"))
            token = request.form.get("token") or ""
            return [_with_meta(message, inbound="mailgun", replay_key=f"mailgun:{token}" if token else None)]
        if mode == "sendgrid":
            raw = _raw_field(request, "email")
            if raw is None:
                raise MalformedPayload(
                    "the `email` field is missing: tick 'POST the raw, full MIME message' in SendGrid Inbound Parse")
            try:
                envelope = json.loads(request.form.get("envelope") or "{}")
            except ValueError:
                raise MalformedPayload("envelope is not JSON") from None
            if not isinstance(envelope, dict):
                raise MalformedPayload("envelope is not a JSON object")
            envelope_to = envelope.get("to") or []
            if isinstance(envelope_to, str):
                envelope_to = [envelope_to]
            message = self.parse_raw(raw, envelope_to=[str(a) for a in envelope_to],
                                     envelope_from=envelope.get("from"))
            return [_with_meta(message, inbound="sendgrid", replay_key=None)]
        raise MalformedPayload("this channel reads its mail over IMAP")

    def parse_raw(self, raw: bytes, *, envelope_to: Sequence[str] = (),
                  envelope_from: str | None = None) -> InboundMessage:
        """`parse_raw` with this channel's address and reply-token secret."""
        return parse_raw(raw, our_address=self.config.address, envelope_to=envelope_to,
                         envelope_from=envelope_from,
                         reply_secret=self.option("reply_token_secret") or None)

    def parse_imap(self, uidvalidity: int, uid: int, raw: bytes) -> InboundMessage:
        """One message from `fetch_unseen`, with its IMAP key as meta["replay_key"]."""
        mailbox = str(self.option("imap_mailbox") or "INBOX")
        return _with_meta(self.parse_raw(raw), inbound="imap",
                          replay_key=imap_key(mailbox, uidvalidity, uid),
                          imap={"mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid})

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        return []  # bounces arrive as inbound mail: see meta["bounce"] and parse_bounce()

    def webhook_reply(self) -> WebhookReply:
        return WebhookReply("", "text/plain", 200)

    def _verify_sendgrid(self, request: WebhookRequest) -> None:
        token = str(self.option("sendgrid_token") or "")
        user = str(self.option("sendgrid_username") or "")
        password = str(self.option("sendgrid_password") or "")
        if not token and not user:
            raise InvalidSignature("no SendGrid webhook secret is configured for this channel")
        if token:
            given = str(request.query.get("token") or "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise InvalidSignature("the URL token does not match")
        if user:
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            given = _header(request.headers, "Authorization") or ""
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise InvalidSignature("basic authentication failed")

    # -- outbound ---------------------------------------------------------------------------
    def build_message(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message `send` would transmit (pure: no network)."""
        from_address = self.from_address
        domain = from_address.rpartition("@")[2] or "localhost"
        try:
            sender = Address(display_name=str(self.option("display_name") or ""), addr_spec=from_address)
            recipient = Address(addr_spec=message.to.strip())
            if not sender.domain or not recipient.domain or not recipient.username:
                raise ValueError(f"{message.to!r} is not an email address")
        except (ValueError, IndexError) as exc:
            raise PermanentDeliveryError(f"invalid email address: {exc}", code="address") from None
        meta = message.meta or {}
        msg = EmailMessage(policy=policy.SMTP)
        try:
            msg["From"] = sender
            msg["To"] = recipient
            msg["Subject"] = message.subject or str(self.option("default_subject") or "")
            msg["Date"] = format_datetime(datetime.now(UTC))
            msg["Message-ID"] = make_msgid(domain=domain)
            in_reply_to = normalize_msgid(meta.get("in_reply_to"))
            references = build_references(meta.get("references"), in_reply_to)
            if in_reply_to:
                msg["In-Reply-To"] = in_reply_to
            if references:
                msg["References"] = " ".join(references)
            reply_to = self._reply_to(meta)
            if reply_to:
                msg["Reply-To"] = Address(display_name=sender.display_name, addr_spec=reply_to)
            if meta.get("auto_submitted"):  # a bot's answer: RFC 3834, so vacation replies stay quiet
                msg["Auto-Submitted"] = "auto-replied"
                msg["X-Auto-Response-Suppress"] = "All"
            if meta.get("list_unsubscribe"):  # bulk mail: RFC 2369 link + RFC 8058 one-click POST
                msg["List-Unsubscribe"] = f"<{meta['list_unsubscribe']}>"
                msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        except (ValueError, TypeError) as exc:  # CR/LF in a header value, malformed address…
            raise PermanentDeliveryError(f"invalid header: {exc}", code="header") from None

        signature = str(self.option("signature") or "").strip()
        text = message.body.rstrip()
        html_body = message.html or text_to_html(text)
        if signature and not meta.get("no_signature"):
            text = f"{text}\n\n-- \n{signature}"
            html_body = _append_html(html_body, '<div class="signature">-- <br>'
                                     + html_lib.escape(signature).replace("\n", "<br>\n") + "</div>")
        msg.set_content(text + "\n", cte="quoted-printable")
        msg.add_alternative(html_body, subtype="html", cte="quoted-printable")
        for attachment in message.attachments:
            maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
            msg.add_attachment(attachment.content, maintype=maintype or "application",
                               subtype=subtype or "octet-stream",
                               filename=safe_filename(attachment.filename, attachment.content_type))
        return msg

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        msg = self.build_message(message)
        to = msg["To"].addresses[0].addr_spec
        envelope_from = str(self.option("envelope_from") or self.from_address)
        self._transmit(msg, envelope_from=envelope_from, to=to)
        return DeliveryReceipt(provider_message_id=str(msg["Message-ID"]), status=DeliveryStatus.SENT)

    def _reply_to(self, meta: Mapping[str, object]) -> str | None:
        if meta.get("reply_to"):
            return str(meta["reply_to"])
        if str(self.option("plus_addressing", "true")).lower() in ("false", "0", "no", "off"):
            return None  # the mailbox provider does not deliver support+token@ addresses
        token = meta.get("reply_token")
        secret = self.option("reply_token_secret")
        if not token and secret and isinstance(meta.get("conversation_id"), int):
            token = make_reply_token(meta["conversation_id"], secret)
        return reply_address(self.config.address, str(token)) if token else None

    def test_connection(self) -> str:
        """Open an SMTP session (TLS and login as configured) and close it; nothing is sent."""
        try:
            host, port, security, authenticate = self._smtp_endpoint()
            context = _tls_context(self.config)
            timeout = float(self.option("smtp_timeout") or SMTP_TIMEOUT_SECONDS)
            smtp = (smtplib.SMTP_SSL(host, port, timeout=timeout, context=context) if security == "tls"
                    else smtplib.SMTP(host, port, timeout=timeout))
            with smtp:
                smtp.ehlo()
                if security == "starttls":
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if authenticate:
                    smtp.login(str(self.option("smtp_username")), str(self.option("smtp_password") or ""))
                return f"SMTP {host}:{port} OK"
        except (PermanentDeliveryError, OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"SMTP: {exc}") from exc

    def _smtp_endpoint(self) -> tuple[str, int, str, bool]:
        """host, port, security, authenticate?"""
        if self.config.api_base_url:
            parts = urlsplit(self.config.api_base_url)
            if parts.scheme == "smtp" and parts.hostname:
                return parts.hostname, parts.port or 25, "none", False
        security = str(self.option("smtp_security", "starttls")).lower()
        if security not in SECURITY_MODES:
            raise PermanentDeliveryError(f"unknown smtp_security {security!r}", code="config")
        host = str(self.option("smtp_host") or "")
        if not host:
            raise PermanentDeliveryError("no SMTP server is configured for this channel", code="config")
        port = int(self.option("smtp_port") or {"tls": 465, "starttls": 587, "none": 25}[security])
        return host, port, security, bool(self.option("smtp_username"))

    def _transmit(self, msg: EmailMessage, *, envelope_from: str, to: str) -> None:
        host, port, security, authenticate = self._smtp_endpoint()
        timeout = float(self.option("smtp_timeout") or SMTP_TIMEOUT_SECONDS)
        helo = str(self.option("helo_hostname") or envelope_from.rpartition("@")[2] or "localhost")
        utf8 = not (envelope_from.isascii() and to.isascii())
        payload = _dot_stuff(msg.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP))
        phase = "connect"  # after "final-reply" a failure is ambiguous: the server may have the mail
        smtp: smtplib.SMTP | None = None
        try:
            context = _tls_context(self.config)
            if security == "tls":
                smtp = smtplib.SMTP_SSL(host, port, local_hostname=helo, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, port, local_hostname=helo, timeout=timeout)
            phase = "session"
            smtp.ehlo()
            if security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise PermanentDeliveryError("the SMTP server does not offer STARTTLS", code="config")
                smtp.starttls(context=context)
                smtp.ehlo()
            if authenticate:
                smtp.login(str(self.option("smtp_username")), str(self.option("smtp_password") or ""))
            options = ["SMTPUTF8"] if utf8 else []
            if utf8 and not smtp.has_extn("smtputf8"):
                raise PermanentDeliveryError("the SMTP server cannot send to non-ASCII addresses", code="smtputf8")
            _expect(smtp.mail(envelope_from, options), 250)
            _expect(smtp.rcpt(to), 250, 251)
            _expect(smtp.docmd("DATA"), 354)
            phase = "data"
            smtp.send(payload)
            phase = "final-reply"
            _expect(smtp.getreply(), 250)
            phase = "done"
        except (PermanentDeliveryError, TransientDeliveryError):
            raise
        except smtplib.SMTPServerDisconnected as exc:
            raise _network_error(phase, exc) from exc
        except smtplib.SMTPResponseException as exc:  # login refused, connect refused with a code…
            raise _smtp_error(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(f"the SMTP server does not support {exc}", code="config") from exc
        except smtplib.SMTPException as exc:  # e.g. "No suitable authentication method found"
            raise PermanentDeliveryError(f"SMTP: {exc}", code="config") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentDeliveryError(f"the SMTP server's certificate could not be verified: {exc.verify_message}",
                                         code="tls") from exc
        except OSError as exc:  # refused, unreachable, timed out, TLS hiccup
            raise _network_error(phase, exc) from exc
        finally:
            if smtp is not None:
                try:
                    smtp.quit() if phase == "done" else smtp.close()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        log.info("email sent channel_address=%s provider_id=%s", self.config.address, msg["Message-ID"])


def _network_error(phase: str, exc: Exception) -> Exception:
    if phase == "final-reply":
        # DATA was complete; only the server's answer is missing. Retrying could send it twice.
        return PermanentDeliveryError(
            "the mail server did not confirm the message; it may have been sent — check before resending",
            code="timeout")
    return TransientDeliveryError(f"could not talk to the SMTP server ({type(exc).__name__}: {exc})")


def _smtp_error(code: int, text: bytes | str) -> Exception:
    reason = (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)).strip()
    reason = " ".join(reason.split())[:500]
    if 400 <= code < 500:
        return TransientDeliveryError(f"the mail server answered {code} {reason}")
    return PermanentDeliveryError(f"the mail server refused the message: {code} {reason}", code=str(code))


def _expect(reply: tuple[int, bytes], *ok: int) -> None:
    code, text = reply
    if code not in ok:
        raise _smtp_error(code, text)


def _dot_stuff(data: bytes) -> bytes:
    """DATA payload: CRLF line ends, leading dots doubled, terminated by CRLF.CRLF."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _append_html(document: str, fragment: str) -> str:
    match = re.search(r"</body\s*>", document, re.IGNORECASE)
    if match:
        return document[:match.start()] + fragment + document[match.start():]
    return document + fragment


# =============================================================================================
# Configuration helpers
# =============================================================================================
def _option(config: ChannelConfig, name: str, default=None):
    for source in (config.credentials, config.settings):
        if source and source.get(name) not in (None, ""):
            return source.get(name)
    return default


def _tls_context(config: ChannelConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca_file = _option(config, "tls_ca_file")
    if ca_file:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _with_meta(message: InboundMessage, **extra) -> InboundMessage:
    return replace(message, meta={**message.meta, **extra})


# =============================================================================================
# Webhook authentication and payload helpers
# =============================================================================================
def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def verify_mailgun_signature(signing_key: str, timestamp: str | None, token: str | None,
                             signature: str | None, *, now: float | None = None,
                             max_age: int = MAILGUN_MAX_AGE_SECONDS) -> None:
    """Raise InvalidSignature unless Mailgun signed (timestamp, token) within `max_age` seconds.

    Replays inside the window are not caught here (an adapter stores nothing): the orchestrator
    must refuse a second use of meta["replay_key"] ("mailgun:<token>").
    """
    if not signing_key:
        raise InvalidSignature("no Mailgun signing key is configured for this channel")
    if not (timestamp and token and signature):
        raise InvalidSignature("timestamp, token or signature is missing")
    try:
        issued = int(timestamp)
    except ValueError:
        raise InvalidSignature("timestamp is not a number") from None
    expected = mailgun_signature(signing_key, timestamp, token)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise InvalidSignature("signature does not match")
    if abs((time.time() if now is None else now) - issued) > max_age:
        raise InvalidSignature("timestamp is more than 5 minutes away from now (replayed?)")


def _raw_field(request: WebhookRequest, name: str) -> bytes | None:
    """A form field's bytes exactly as posted (the raw MIME), falling back to the decoded form."""
    content_type = _header(request.headers, "Content-Type") or ""
    if request.body and content_type.lower().startswith("multipart/form-data"):
        raw = multipart_field(request.body, content_type, name)
        if raw is not None:
            return raw
    value = request.form.get(name) if request.form else None
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if hasattr(value, "read"):  # a file part
        return value.read()
    return str(value).encode("utf-8", "surrogateescape")


def multipart_field(body: bytes, content_type: str, name: str) -> bytes | None:
    """One field of a multipart/form-data body, undecoded."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    container = BytesParser(policy=policy.compat32).parsebytes(head + body)
    if not container.is_multipart():
        return None
    for part in container.get_payload():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


# =============================================================================================
# Inbound parsing (pure)
# =============================================================================================
def parse_raw(raw: bytes, *, our_address: str | None = None, envelope_to: Sequence[str] = (),
              envelope_from: str | None = None, reply_secret: str | bytes | None = None) -> InboundMessage:
    """An RFC 5322 message as an InboundMessage.

    body is the reply-visible text (quotes and signature stripped); meta carries:
      message_id, in_reply_to, references (list, oldest first), reply_token (the part after "+"
      in support+<token>@ among To/Cc/Delivered-To/X-Original-To and the envelope recipients),
      reply_conversation_id (when reply_secret is given and the token is genuine), reply_to,
      cc, full_text (only when something was stripped), automated_reason, bounce
      ({"original_message_id", "reason", "status", "recipient"}) for delivery reports,
      message_id_hash (when the Message-ID was too long or missing).
    """
    if not isinstance(raw, bytes | bytearray):
        raise MalformedPayload("the raw message must be bytes")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedPayload(f"the message is larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MB")
    if not raw.strip():
        raise MalformedPayload("the message is empty")
    msg = _PARSER.parsebytes(bytes(raw))
    if not msg.keys():
        raise MalformedPayload("no header could be read")

    sender_name, sender = _first_address(msg, "From") or _first_address(msg, "Sender") or (None, None)
    if not sender:
        raise MalformedPayload("From is missing or has no address")

    message_id = normalize_msgid(_header_str(msg, "Message-ID"))
    meta: dict[str, object] = {}
    if message_id and len(message_id) <= MAX_PROVIDER_ID:
        provider_id = message_id
    else:
        provider_id = "sha256:" + hashlib.sha256(message_id.encode() if message_id else bytes(raw)).hexdigest()
        meta["message_id_hash"] = provider_id
    references = parse_msgids(_header_str(msg, "References"))
    in_reply_to = (parse_msgids(_header_str(msg, "In-Reply-To")) or [None])[-1]

    plain_part, html_part, extra_text, media = _walk(msg)
    html_text = _part_text(html_part) if html_part is not None else None
    if plain_part is not None:
        full_text = "\n\n".join([_part_text(plain_part), *extra_text])
    else:
        full_text = html_to_text(html_text) if html_text else "\n\n".join(extra_text)
    full_text = _normalize_newlines(full_text).strip()
    body = strip_quoted(full_text)

    recipients = [a for _, a in _addresses(msg, "To", "Cc", "Delivered-To", "X-Original-To")]
    token = plus_token([*envelope_to, *recipients], our_address) if our_address else None
    bounce = bounce_info(msg)
    automated = automated_reason(msg, sender=sender, envelope_from=envelope_from)

    meta.update({
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": references,
        "reply_token": token,
        "reply_to": [a for _, a in _addresses(msg, "Reply-To")],
        "cc": [a for _, a in _addresses(msg, "Cc")],
    })
    if token and reply_secret:
        meta["reply_conversation_id"] = read_reply_token(token, reply_secret)
    if body != full_text:
        meta["full_text"] = full_text
    if automated:
        meta["automated_reason"] = automated
    if bounce:
        meta["bounce"] = bounce
    return InboundMessage(
        provider_message_id=provider_id,
        sender=sender,
        recipient=our_address or (recipients[0] if recipients else ""),
        body=body,
        sender_name=sender_name,
        media=tuple(media),
        sent_at=_date(msg),
        subject=_header_str(msg, "Subject"),
        html=html_text,
        meta=meta,
        automated=automated is not None,
    )


def _header_str(msg: EmailMessage, name: str) -> str | None:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError, AttributeError):  # a header the parser chokes on
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _addresses(msg: EmailMessage, *names: str) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = []
    for name in names:
        for value in msg.get_all(name) or []:
            try:
                addresses = [(a.display_name or None, a.addr_spec) for a in value.addresses]
            except (AttributeError, ValueError, IndexError, TypeError):
                addresses = [(n or None, a) for n, a in getaddresses([str(value)])]
            found.extend((n, a.strip().lower()) for n, a in addresses if a and "@" in a)
    return found


def _first_address(msg: EmailMessage, name: str) -> tuple[str | None, str] | None:
    addresses = _addresses(msg, name)
    return addresses[0] if addresses else None


def _date(msg: EmailMessage) -> datetime | None:
    try:
        header = msg.get("Date")
        value = header.datetime if header is not None else None
    except (AttributeError, ValueError, TypeError, IndexError):
        return None
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_REPORT_PARTS = {"message/delivery-status", "message/disposition-notification", "message/feedback-report",
                 "text/rfc822-headers"}


def _walk(msg: EmailMessage):
    """(plain body part, html body part, extra inline texts, attachments)."""
    plain = _body_part(msg, "plain")
    html = _body_part(msg, "html")
    bodies = {id(p) for p in (plain, html) if p is not None}
    extra_text: list[str] = []
    media: list[InboundMedia] = []
    in_report = msg.get_content_type() == "multipart/report"

    def visit(part: EmailMessage) -> None:
        ctype = part.get_content_type()
        if id(part) in bodies or (in_report and ctype in _REPORT_PARTS):
            return
        if ctype in ("message/rfc822", "message/global"):
            if in_report:
                return  # the copy of our own message inside a bounce
            inner = part.get_payload(0) if part.is_multipart() else None
            content = inner.as_bytes(policy=policy.SMTP) if inner is not None else b""
            subject = _header_str(inner, "Subject") if inner is not None else None
            media.append(InboundMedia(url=None, content_type="message/rfc822",
                                      filename=safe_filename(part.get_filename() or f"{subject or 'message'}.eml",
                                                             "message/rfc822"),
                                      content=content, content_id=_content_id(part)))
            return
        if part.is_multipart():
            if ctype.startswith("multipart/"):
                for sub in part.iter_parts():
                    visit(sub)
            return  # message/delivery-status and the like outside a report: machine-readable only
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if ctype == "text/plain" and disposition != "attachment" and not filename and plain is not None:
            extra_text.append(_part_text(part))  # Apple Mail splits a body around inline images
            return
        try:
            content = part.get_payload(decode=True) or b""
        except (ValueError, TypeError):
            content = b""
        media.append(InboundMedia(url=None, content_type=ctype, filename=safe_filename(filename, ctype),
                                  content=content, content_id=_content_id(part)))

    visit(msg)
    return plain, html, extra_text, media


def _body_part(msg: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = msg.get_body(preferencelist=(subtype,))
    except (KeyError, ValueError, TypeError):
        part = None
    if part is None and msg.get_content_type() == "multipart/report":
        first = next(iter(msg.iter_parts()), None)  # RFC 6522: the human-readable part comes first
        if first is not None and first.get_content_type() == f"text/{subtype}":
            part = first
    if part is not None and part.get_content_type() != f"text/{subtype}":
        return None
    return part


def _part_text(part: EmailMessage) -> str:
    try:
        text = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    text = _normalize_newlines(text)
    if part.get_content_type() == "text/plain" and str(part.get_param("format") or "").lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (those ending in a space)."""
    out: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line == "-- ":  # the signature delimiter is never soft-broken
            if pending:
                out.append(pending)
                pending = ""
            out.append(line)
            continue
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and not line.startswith(">"):
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _content_id(part: EmailMessage) -> str | None:
    value = part.get("Content-ID")
    if value is None:
        return None
    return str(value).strip().strip("<>").strip() or None


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- Message-IDs ------------------------------------------------------------------------------
_MSGID = re.compile(r"<([^<>\s]+)>")


def normalize_msgid(value: object) -> str | None:
    """"<id@host>" (angle brackets kept), or None for anything that is not one Message-ID."""
    if value is None:
        return None
    text = str(value).strip()
    match = _MSGID.search(text)
    if match:
        return f"<{match.group(1)}>"
    if text and not re.search(r"[\s<>]", text) and "@" in text:
        return f"<{text}>"
    return None


def parse_msgids(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        ids = [normalize_msgid(v) for v in value]
        return [i for i in ids if i]
    return [f"<{m}>" for m in _MSGID.findall(str(value))]


def build_references(references: object, in_reply_to: str | None) -> list[str]:
    """The References of a reply: the parent's chain plus the parent, trimmed in the middle."""
    chain = parse_msgids(references)
    if in_reply_to and (not chain or chain[-1] != in_reply_to):
        chain.append(in_reply_to)
    if len(chain) > REFERENCES_KEPT:
        chain = chain[:1] + chain[-(REFERENCES_KEPT - 1):]
    return chain


def reply_subject(subject: str | None) -> str:
    """"Re: <subject>" unless it already starts with a reply prefix (Re, RE, AW, TR… )."""
    subject = " ".join((subject or "").split())
    if re.match(r"^(re|aw|sv|antw|réf)\s*(\[\d+\])?\s*:", subject, re.IGNORECASE):
        return subject
    return f"Re: {subject}" if subject else "Re:"


# -- Automated mail and bounces ----------------------------------------------------------------
_SYSTEM_SENDERS = {"mailer-daemon", "postmaster"}


def automated_reason(msg: EmailMessage, *, sender: str | None = None,
                     envelope_from: str | None = None) -> str | None:
    """Why this mail must never get an automatic answer, or None for a person's mail."""
    auto = (_header_str(msg, "Auto-Submitted") or "").lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    precedence = (_header_str(msg, "Precedence") or "").lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Auto-Response"):
        if msg.get(name) is not None:
            return f"{name} header"
    for name in ("List-Id", "List-Unsubscribe"):
        if msg.get(name) is not None:
            return f"mailing list ({name})"
    if msg.get_content_type() == "multipart/report":
        return "delivery or read report"
    if sender is None:
        first = _first_address(msg, "From")
        sender = first[1] if first else None
    if sender and sender.partition("@")[0].lower() in _SYSTEM_SENDERS:
        return f"system sender {sender}"
    return_path = _header_str(msg, "Return-Path")
    if (return_path or "").strip() == "<>" or (envelope_from is not None and envelope_from.strip() in ("", "<>")):
        return "null return path (a bounce)"
    return None


def bounce_info(msg: EmailMessage) -> dict[str, object] | None:
    """A delivery-status report (RFC 3464) as facts, whether or not the original id was found."""
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type") or "").lower() != "delivery-status":
        return None
    parts = list(msg.iter_parts())
    original_id = None
    status = diagnostic = recipient = None
    action = None
    for part in parts:
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload() if part.is_multipart() else []
            for block in blocks[1:] or blocks:
                block_action = (block.get("Action") or "").strip().lower()
                if action is None or block_action == "failed":
                    action = block_action or action
                    status = " ".join((block.get("Status") or "").split()) or status
                    diagnostic = " ".join((block.get("Diagnostic-Code") or "").split()) or diagnostic
                    final = str(block.get("Final-Recipient") or "")
                    recipient = final.partition(";")[2].strip().lower() or recipient
        elif ctype in ("message/rfc822", "message/global", "message/rfc822-headers"):
            inner = part.get_payload(0) if part.is_multipart() else None
            if inner is not None:
                original_id = original_id or normalize_msgid(inner.get("Message-ID"))
        elif ctype == "text/rfc822-headers":
            headers = _PARSER.parsebytes(_part_text(part).encode("utf-8", "replace"), headersonly=True)
            original_id = original_id or normalize_msgid(headers.get("Message-ID"))
    if action not in (None, "failed"):
        return None  # "delayed", "delivered", "relayed", "expanded": not a failure
    if diagnostic:
        kind, _, text = diagnostic.partition(";")
        reason = text.strip() if text and kind.strip().lower() in ("smtp", "x-postfix", "x-unix") else diagnostic
    elif status:
        reason = f"delivery failed (status {status})"
    else:
        reason = "delivery failed"
    return {"original_message_id": original_id, "reason": reason, "status": status, "recipient": recipient}


def parse_bounce(raw: bytes | EmailMessage) -> tuple[str, str] | None:
    """(Message-ID of the mail that failed, reason) for a failed-delivery report, else None.

    Delay notices and reports whose original Message-ID cannot be found give None.
    """
    msg = raw if isinstance(raw, EmailMessage) else _PARSER.parsebytes(bytes(raw))
    info = bounce_info(msg)
    if not info or not info["original_message_id"]:
        return None
    return str(info["original_message_id"]), str(info["reason"])


# =============================================================================================
# Reply-visible text
# =============================================================================================
_ATTRIBUTIONS = [
    re.compile(r"^Le\b.*\ba\s+écrit\s*:$", re.IGNORECASE),
    re.compile(r"^On\b.*\bwrote\s*:$", re.IGNORECASE),
    re.compile(r"^Am\b.*\bschrieb\b.*:$", re.IGNORECASE),
    re.compile(r"^El\b.*\bescribió\s*:$", re.IGNORECASE),
    re.compile(r"^Il\b.*\bha\s+scritto\s*:$", re.IGNORECASE),
    re.compile(r"^Op\b.*\bschreef\b.*:$", re.IGNORECASE),
]
_SEPARATORS = re.compile(
    r"^-{2,}\s*(original message|message d['’]origine|ursprüngliche nachricht|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht)\s*-{2,}$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\*?(from|de|von|van|da)\s*:", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\*?(sent|date|envoyé|gesendet|verzonden|enviado|inviato)\s*:", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^_{10,}$")
_MOBILE = re.compile(
    r"^((sent|envoyé|envoye) (from|de|depuis|à partir de) (my|mon|ma) .{1,40}"
    r"|sent from (outlook|mail|yahoo mail|gmail)\b.{0,40}"
    r"|(get|obtenir|télécharger) outlook (for|pour) (ios|android)"
    r"|envoyé à partir de (outlook|courrier)\b.{0,40})$", re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """The part of a reply the customer wrote: no quoted history, no signature.

    Cuts at an attribution line ("Le … a écrit :", "On … wrote:", possibly wrapped on up to three
    lines), an Outlook separator or header block, a "-- " signature delimiter or a mobile
    signature ("Envoyé de mon iPhone"); drops lines starting with ">". An inline reply (answers
    between quoted lines) keeps its answers. Returns the text unchanged if nothing would remain.
    """
    original = _normalize_newlines(text or "").strip()
    lines = [line.rstrip() for line in original.split("\n")]
    clean = [line.strip().replace("\xa0", " ") for line in lines]
    cut = len(lines)
    for i, line in enumerate(clean):
        if line in ("--", "-- ") or _MOBILE.match(line) or _SEPARATORS.match(line):
            cut = i
            break
        if _UNDERSCORES.match(line) and i + 1 < len(clean) and _HEADER_FROM.match(clean[i + 1]):
            cut = i
            break
        if _HEADER_FROM.match(line) and any(_HEADER_SENT.match(c) for c in clean[i + 1:i + 5]):
            cut = i
            break
        span = _attribution_span(clean, i)
        if span:
            if _is_inline_reply(clean[i + span:]):
                del lines[i:i + span]  # keep the answers, drop only the attribution
                return strip_quoted("\n".join(lines)) if lines else original
            cut = i
            break
    kept = [line for line in lines[:cut] if not line.lstrip().startswith(">")]
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return result or original


def _attribution_span(lines: list[str], i: int) -> int:
    if not lines[i] or len(lines[i]) > 300 or lines[i].startswith(">"):
        return 0
    for n in (1, 2, 3):
        if i + n > len(lines):
            break
        candidate = " ".join(lines[i:i + n])
        if len(candidate) > 400:
            break
        if re.search(r"\d", candidate) and any(p.match(candidate) for p in _ATTRIBUTIONS):
            return n
    return 0


def _is_inline_reply(rest: list[str]) -> bool:
    """Quoted lines with the writer's own lines between them (not only before or after)."""
    seen_quote = answer_after_quote = False
    for line in rest:
        if line.startswith(">"):
            if answer_after_quote:
                return True
            seen_quote = True
        elif line and seen_quote and not (line in ("--", "-- ") or _MOBILE.match(line)):
            answer_after_quote = True
    return False


# =============================================================================================
# HTML
# =============================================================================================
_BLOCK_TAGS = {"p", "div", "li", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "hr", "section", "article", "header", "footer", "dt", "dd", "address", "center", "form"}
_SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript", "xml"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.newlines = 2  # trailing newlines already written (2 at the start: no leading blank)
        self.skip = 0
        self.pre = 0

    def _break(self, count: int) -> None:
        if self.newlines < count:
            self.out.append("\n" * (count - self.newlines))
            self.newlines = count

    def _write(self, text: str) -> None:
        if text:
            self.out.append(text)
            self.newlines = len(text) - len(text.rstrip("\n")) if text.strip(" ") else self.newlines

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif self.skip:
            return
        elif tag == "br":
            self.out.append("\n")
            self.newlines += 1
        elif tag == "blockquote":
            self._break(1)
            self.out.append("\x00>+\n")
        elif tag in _BLOCK_TAGS:
            self._break(2 if tag in ("p", "table", "ul", "ol", "pre", "h1", "h2", "h3") else 1)
            if tag == "li":
                self._write("- ")
            elif tag == "pre":
                self.pre += 1
        elif tag in ("td", "th") and self.newlines == 0:
            self._write(" ")

    def handle_startendtag(self, tag, attrs):
        if tag not in _SKIP_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif self.skip:
            return
        elif tag == "blockquote":
            self._break(1)
            self.out.append("\x00>-\n")
        elif tag in ("p", "table", "ul", "ol", "pre", "h1", "h2", "h3"):
            self._break(2)
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag in _BLOCK_TAGS:
            self._break(1)

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            self._write(data)
            return
        text = re.sub(r"\s+", " ", data)
        if self.newlines:
            text = text.lstrip(" ")
        self._write(text)


def html_to_text(html: str) -> str:
    """Readable text from an HTML mail body; blockquotes become "> " lines."""
    parser = _TextExtractor()
    try:
        parser.feed(html or "")
        parser.close()
    except (AssertionError, ValueError):
        pass
    depth = 0
    entries: list[tuple[int, str]] = []  # (quote depth, text); "" is a blank line
    for line in "".join(parser.out).split("\n"):
        if line == "\x00>+":
            depth += 1
        elif line == "\x00>-":
            depth = max(0, depth - 1)
        else:
            entries.append((depth, line.strip()))
    lines: list[str] = []
    previous: tuple[int, str] | None = None
    pending_blank = False
    for depth, text in entries:
        if not text:
            pending_blank = previous is not None
            continue
        if pending_blank:
            lines.append(("> " * min(depth, previous[0])).rstrip())
            pending_blank = False
        lines.append(("> " * depth + text).rstrip())
        previous = (depth, text)
    return "\n".join(lines)


_URL = re.compile(r"https?://[^\s<>\"']+")


def text_to_html(text: str) -> str:
    """A minimal HTML alternative for a plain-text body: paragraphs, line breaks, links."""
    paragraphs = [p for p in re.split(r"\n\s*\n", _normalize_newlines(text).strip()) if p.strip()]

    def linkify(match: re.Match) -> str:
        url = match.group(0).rstrip(".,;:!?)")
        tail = match.group(0)[len(url):]
        return f'<a href="{url}">{url}</a>{tail}'

    body = "\n".join(
        "<p>" + _URL.sub(linkify, html_lib.escape(p, quote=False)).replace("\n", "<br>\n") + "</p>"
        for p in paragraphs)
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
            f'<body><div dir="auto">{body}</div></body></html>')


_EMAIL_TAGS = set(nh3.ALLOWED_TAGS) | {"font"}
_EMAIL_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag in ("table", "td", "th", "tr", "tbody", "thead", "tfoot"):
    _EMAIL_ATTRIBUTES.setdefault(_tag, set()).update({"bgcolor", "valign", "width", "height", "border",
                                                      "cellpadding", "cellspacing"})
_EMAIL_ATTRIBUTES.setdefault("font", set()).update({"color", "face", "size"})
_EMAIL_ATTRIBUTES.setdefault("*", set()).update({"style", "dir", "lang", "title", "align"})
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "line-height", "margin", "margin-top", "margin-bottom",
    "margin-left", "margin-right", "padding", "padding-top", "padding-bottom", "padding-left",
    "padding-right", "border", "border-collapse", "border-color", "border-style", "border-width",
    "width", "height", "max-width", "vertical-align", "white-space", "display",
}  # no url()-bearing property (background, background-image, list-style-image…): no CSS beacons
_URL_ATTRIBUTES = {"href", "src", "cite"}


def sanitize_html(html: str, cid_map: Mapping[str, str] | None = None, *, allow_remote_images: bool = False,
                  blocked_image_src: str | None = None) -> str:
    """Safe HTML for display (inside a sandboxed iframe with a strict CSP, still).

    nh3 removes scripts, event handlers, `javascript:` and other unknown URL schemes, forms and
    embeds. On top of that: remote images (tracking pixels) lose their src unless
    allow_remote_images (or get `blocked_image_src`, e.g. a local placeholder); `cid:` references
    become the URL cid_map gives for that Content-ID (without angle brackets), else disappear;
    `data:` URLs are refused; links get rel="noopener noreferrer nofollow" and target _blank.
    """
    cids = {str(k).strip("<> ").lower(): v for k, v in (cid_map or {}).items()}

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES:
            return value
        lowered = value.strip().lower()
        if lowered.startswith("cid:"):
            target = cids.get(value.strip()[4:].strip("<> ").lower())
            return target if target and _is_safe_target(target) else None
        if tag == "img" and attribute == "src" and lowered.startswith(("http:", "https:", "//")):
            return value if allow_remote_images else blocked_image_src
        if lowered.startswith("//"):
            return None
        return value

    return nh3.clean(
        html or "",
        tags=_EMAIL_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_EMAIL_ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    )


def _is_safe_target(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("", "http", "https") and not url.strip().startswith("//")


# =============================================================================================
# Attachments
# =============================================================================================
_EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
               "text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics", "message/rfc822": ".eml"}
_SAFE_PUNCTUATION = set(" ._-()+,=@°'&!€£")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_filename(name: str | None, content_type: str | None = None, *, max_length: int = 150) -> str:
    """A display name that can never be used as a path: basename only, letters, digits and
    " ._-()+,=@°'&!€£", no leading dot, no Windows device name, at most `max_length` characters."""
    name = unicodedata.normalize("NFKC", str(name or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c if (c.isalnum() or c in _SAFE_PUNCTUATION) else "_" for c in name)
    name = re.sub(r"_+", "_", name).strip(" ._")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.lower() in _RESERVED:
        stem = f"_{stem}"
    if not stem:
        stem = "attachment"
        ext = ext or _EXTENSIONS.get((content_type or "").lower(), ".bin").lstrip(".")
    ext = ext[:16]
    stem = stem[:max(1, max_length - len(ext) - 1)]
    return f"{stem}.{ext}" if ext else stem


# =============================================================================================
# Signed reply tokens (support+<token>@domain)
# =============================================================================================
_TOKEN = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{16})$")


def _secret_bytes(secret: str | bytes) -> bytes:
    if not secret:
        raise ValueError("a reply-token secret is required")
    return secret if isinstance(secret, bytes) else str(secret).encode()


def _token_mac(ident: str, secret: str | bytes) -> str:
    digest = hmac.new(_secret_bytes(secret), b"coccinelle/reply-token/v1:" + ident.encode(), hashlib.sha256)
    return base64.b32encode(digest.digest()[:10]).decode().lower()  # 80 bits, 16 characters


def make_reply_token(conversation_id: int, secret: str | bytes) -> str:
    """A short token naming a conversation, e.g. "9ix-k5v2…": lower-case letters, digits and one
    hyphen, so it survives mail systems that lower-case local parts, and is URL-safe."""
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int) or conversation_id < 0:
        raise ValueError("conversation_id must be a non-negative integer")
    ident = _base36(conversation_id)
    return f"{ident}-{_token_mac(ident, secret)}"


def read_reply_token(token: str | None, secret: str | bytes) -> int | None:
    """The conversation id a genuine token names, else None."""
    match = _TOKEN.match((token or "").strip().lower())
    if not match:
        return None
    ident, mac = match.groups()
    if not hmac.compare_digest(mac.encode(), _token_mac(ident, secret).encode()):
        return None
    return int(ident, 36)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def reply_address(address: str, token: str) -> str:
    """support@acme.test + token → support+token@acme.test"""
    local, _, domain = address.strip().rpartition("@")
    if not local or not domain:
        raise ValueError(f"not an email address: {address!r}")
    return f"{local.partition('+')[0]}+{token}@{domain}"


def plus_token(addresses: Iterable[str], our_address: str) -> str | None:
    """The "+token" part of the first of `addresses` that is a plus-address of ours."""
    local, _, domain = our_address.strip().lower().rpartition("@")
    local = local.partition("+")[0]
    if not local or not domain:
        return None
    for address in addresses:
        a_local, _, a_domain = str(address).strip().strip("<>").lower().rpartition("@")
        if a_domain == domain and a_local.startswith(local + "+") and len(a_local) > len(local) + 1:
            return a_local[len(local) + 1:]
    return None


# =============================================================================================
# IMAP (pure-ish: one connection per call, nothing kept)
# =============================================================================================
def imap_key(mailbox: str, uidvalidity: int, uid: int) -> str:
    """What identifies one IMAP message for good: a UID means nothing without its UIDVALIDITY."""
    return f"imap:{mailbox}:{uidvalidity}:{uid}"


class _Imap:
    def __init__(self, config: ChannelConfig):
        self.config = config
        self.conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> imaplib.IMAP4:
        config = self.config
        host = str(_option(config, "imap_host") or "")
        if not host:
            raise ChannelError("no IMAP server is configured for this channel")
        security = str(_option(config, "imap_security", "tls")).lower()
        if security not in SECURITY_MODES:
            raise ChannelError(f"unknown imap_security {security!r}")
        port = int(_option(config, "imap_port") or (993 if security == "tls" else 143))
        timeout = float(_option(config, "imap_timeout") or IMAP_TIMEOUT_SECONDS)
        try:
            context = _tls_context(config)
            if security == "tls":
                self.conn = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
            else:
                self.conn = imaplib.IMAP4(host, port, timeout=timeout)
                if security == "starttls":
                    self.conn.starttls(ssl_context=context)
            self.conn.login(str(_option(config, "imap_username") or config.address),
                            str(_option(config, "imap_password") or ""))
        except imaplib.IMAP4.error as exc:
            self._close()
            raise ChannelError(f"IMAP login failed: {_imap_text(exc)}") from exc
        except OSError as exc:
            self._close()
            raise ChannelError(f"could not reach the IMAP server ({type(exc).__name__}: {exc})") from exc
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.conn is not None and exc_type is None:
            try:
                self.conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
        self._close()

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.shutdown()
            except (OSError, imaplib.IMAP4.error, AttributeError):
                pass
            self.conn = None


def _imap_text(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    return text.removeprefix("b'").removesuffix("'") if text.startswith("b'") else text


def _quote_mailbox(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _select(conn: imaplib.IMAP4, mailbox: str, *, readonly: bool) -> int:
    try:
        typ, data = conn.select(_quote_mailbox(mailbox), readonly=readonly)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ChannelError(f"IMAP: cannot open {mailbox}: {_imap_text(exc)}") from exc
    if typ != "OK":
        raise ChannelError(f"IMAP: cannot open {mailbox}: {data!r}")
    _, values = conn.response("UIDVALIDITY")
    try:
        return int(values[-1])
    except (TypeError, ValueError, IndexError):
        raise ChannelError("IMAP: the server did not report UIDVALIDITY") from None


def fetch_unseen(config: ChannelConfig, *, limit: int = 50) -> list[tuple[int, int, bytes]]:
    """Up to `limit` unseen messages as (uidvalidity, uid, raw bytes), oldest UID first.

    The mailbox is opened read-only (EXAMINE) and bodies fetched with BODY.PEEK[]: nothing is
    marked seen. Call mark_seen() after the messages are committed to the database.
    """
    mailbox = str(_option(config, "imap_mailbox") or "INBOX")
    with _Imap(config) as conn:
        uidvalidity = _select(conn, mailbox, readonly=True)
        try:
            typ, data = conn.uid("SEARCH", "UNSEEN")
            if typ != "OK":
                raise ChannelError(f"IMAP: UID SEARCH failed: {data!r}")
            uids = sorted({int(u) for u in b" ".join(d for d in data if d).split()})[:limit]
            if not uids:
                return []
            typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        except (imaplib.IMAP4.error, OSError) as exc:
            raise ChannelError(f"IMAP: fetch failed: {_imap_text(exc)}") from exc
        if typ != "OK":
            raise ChannelError(f"IMAP: UID FETCH failed: {data!r}")
        fetched: dict[int, bytes] = {}
        for i, item in enumerate(data):
            if not isinstance(item, tuple):
                continue
            match = re.search(rb"\bUID (\d+)", item[0])
            if match is None and i + 1 < len(data) and isinstance(data[i + 1], bytes):
                match = re.search(rb"\bUID (\d+)", data[i + 1])  # UID after the literal
            if match is not None:
                fetched[int(match.group(1))] = item[1]
    return [(uidvalidity, uid, fetched[uid]) for uid in sorted(fetched)]


def mark_seen(config: ChannelConfig, uids: Iterable[int], *, uidvalidity: int | None = None) -> None:
    """Flag messages \\Seen. With `uidvalidity`, refuse if the mailbox was renumbered since."""
    uids = sorted({int(u) for u in uids})
    if not uids:
        return
    mailbox = str(_option(config, "imap_mailbox") or "INBOX")
    with _Imap(config) as conn:
        current = _select(conn, mailbox, readonly=False)
        if uidvalidity is not None and current != uidvalidity:
            raise ChannelError(f"IMAP: UIDVALIDITY of {mailbox} changed ({uidvalidity} → {current}); "
                               "those UIDs name other messages now")
        try:
            typ, data = conn.uid("STORE", ",".join(map(str, uids)), "+FLAGS.SILENT", r"(\Seen)")
        except (imaplib.IMAP4.error, OSError) as exc:
            raise ChannelError(f"IMAP: cannot mark seen: {_imap_text(exc)}") from exc
        if typ != "OK":
            raise ChannelError(f"IMAP: cannot mark seen: {data!r}")
