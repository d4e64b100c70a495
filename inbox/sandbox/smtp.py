"""A local SMTP server that records what it receives, plus inbound-mail webhook payloads.

Standard library only (socketserver threads), so tests and the demo need no extra package. It
speaks enough ESMTP (RFC 5321) for Python's smtplib and most clients: EHLO/HELO, STARTTLS
(RFC 3207) when given a TLS context, implicit TLS ("SMTPS"), AUTH PLAIN and LOGIN (RFC 4954),
MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, VRFY, QUIT. It can be told to refuse the next
messages (451 / 550 at RCPT or at the end of DATA) or to stall, to exercise retry decisions.

The webhook helpers build what SendGrid Inbound Parse (raw mode) and a Mailgun "mime" route
post, signed as Mailgun signs; see inbox/channels/email.py for the documentation links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

MAX_MESSAGE_BYTES = 50 * 1024 * 1024
_ADDRESS = re.compile(r"^\s*<([^<>]*)>(.*)$")


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message as transmitted, dot-unstuffed, CRLF line ends
    auth_user: str | None
    tls: bool
    helo: str | None

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)


@dataclass
class _Failure:
    code: int
    text: str
    stage: str
    remaining: int


@dataclass
class FakeSmtp:
    """An SMTP server on 127.0.0.1. `username`/`password` turn on (and require) AUTH;
    `tls_context` offers STARTTLS (`require_tls` refuses MAIL before it); `implicit_tls` wraps
    the connection at once, like port 465."""

    host: str = "127.0.0.1"
    port: int = 0
    username: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    require_tls: bool = False
    hostname: str = "sandbox.smtp.coccinelle.test"
    messages: list[ReceivedMail] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _stalls: dict[str, float] = field(default_factory=dict)
    _server: socketserver.ThreadingTCPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _received: threading.Condition | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    # -- control --------------------------------------------------------------------------------
    def start(self) -> FakeSmtp:
        if self.implicit_tls and self.tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self._received = threading.Condition(self._lock)
        self._server = _Server((self.host, self.port), _SmtpHandler, fake=self)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-smtp").start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeSmtp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self._server.server_address[1]

    @property
    def url(self) -> str:
        """For ChannelConfig.api_base_url: the email adapter then sends everything here."""
        return f"smtp://{self.host}:{self.address[1]}"

    def fail_next(self, code: int = 451, text: str = "4.3.0 Try again later", *, times: int = 1,
                  stage: str = "data") -> None:
        """Answer `code text` instead of accepting the next `times` messages, at RCPT or after DATA."""
        if stage not in ("rcpt", "data"):
            raise ValueError("stage is 'rcpt' or 'data'")
        with self._lock:
            self._failures.append(_Failure(code, text, stage, times))

    def stall_next(self, stage: str, seconds: float) -> None:
        """Say nothing for `seconds` at the next 'greeting' or before the reply that ends 'data'."""
        if stage not in ("greeting", "data"):
            raise ValueError("stage is 'greeting' or 'data'")
        with self._lock:
            self._stalls[stage] = seconds

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        with self._received:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.messages)} message(s) received, {count} expected")
                self._received.wait(remaining)
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self._failures.clear()
            self._stalls.clear()

    # -- called by the handler -----------------------------------------------------------------
    def _take_failure(self, stage: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.stage == stage:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
            return None

    def _take_stall(self, stage: str) -> float:
        with self._lock:
            return self._stalls.pop(stage, 0.0)

    def _record(self, mail: ReceivedMail) -> None:
        with self._received:
            self.messages.append(mail)
            self._received.notify_all()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, *, fake):
        self.fake = fake
        super().__init__(address, handler)


class _SmtpHandler(socketserver.BaseRequestHandler):
    fake: FakeSmtp

    def setup(self) -> None:
        self.fake = self.server.fake
        self.conn = self.request
        self.conn.settimeout(30)
        self.tls = False
        self.helo: str | None = None
        self.auth_user: str | None = None
        self._reset()

    def _reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_tos: list[str] = []

    def reply(self, code: int, *lines: str) -> None:
        lines = lines or ("",)
        text = "".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines))
        self.conn.sendall(text.encode("utf-8"))

    def readline(self) -> bytes:
        return self.reader.readline(65536)

    def handle(self) -> None:
        try:
            if self.fake.implicit_tls:
                self.conn = self.fake.tls_context.wrap_socket(self.conn, server_side=True)
                self.tls = True
            self.reader = self.conn.makefile("rb")
            stall = self.fake._take_stall("greeting")
            if stall and self.fake._stopping.wait(stall):
                return
            self.reply(220, f"{self.fake.hostname} ESMTP Coccinelle sandbox")
            while True:
                line = self.readline()
                if not line:
                    return
                verb, _, arg = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
                handler = getattr(self, f"smtp_{verb.upper()}", None)
                if handler is None:
                    self.reply(502, "5.5.2 Error: command not recognized")
                elif handler(arg.strip()) is False:
                    return
        except (OSError, ssl.SSLError, ValueError):
            return  # the client went away, or sent garbage

    # -- commands --------------------------------------------------------------------------------
    def smtp_EHLO(self, arg: str):  # noqa: N802 (protocol verbs)
        self.helo = arg
        self._reset()
        lines = [f"{self.fake.hostname} greets {arg or 'you'}", "8BITMIME", "SMTPUTF8",
                 f"SIZE {MAX_MESSAGE_BYTES}"]
        if self.fake.tls_context is not None and not self.tls:
            lines.append("STARTTLS")
        if self.fake.username is not None:
            lines.append("AUTH PLAIN LOGIN")
        lines.append("HELP")
        self.reply(250, *lines)

    def smtp_HELO(self, arg: str):  # noqa: N802
        self.helo = arg
        self._reset()
        self.reply(250, self.fake.hostname)

    def smtp_STARTTLS(self, arg: str):  # noqa: N802
        if self.fake.tls_context is None or self.tls:
            return self.reply(502, "5.5.1 STARTTLS not available")
        self.reply(220, "2.0.0 Ready to start TLS")
        self.conn = self.fake.tls_context.wrap_socket(self.conn, server_side=True)
        self.reader = self.conn.makefile("rb")
        self.tls = True
        self.helo = self.auth_user = None  # RFC 3207: forget everything learnt before TLS
        self._reset()

    def smtp_AUTH(self, arg: str):  # noqa: N802
        if self.fake.username is None:
            return self.reply(502, "5.5.1 AUTH not available")
        if self.auth_user is not None:
            return self.reply(503, "5.5.1 Already authenticated")
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        try:
            if mechanism == "PLAIN":
                response = initial or self._challenge("")
                if response is None:
                    return None
                _, user, password = base64.b64decode(response, validate=True).decode().split("\0")
            elif mechanism == "LOGIN":
                user_b64 = initial or self._challenge(base64.b64encode(b"Username:").decode())
                if user_b64 is None:
                    return None
                password_b64 = self._challenge(base64.b64encode(b"Password:").decode())
                if password_b64 is None:
                    return None
                user = base64.b64decode(user_b64, validate=True).decode()
                password = base64.b64decode(password_b64, validate=True).decode()
            else:
                return self.reply(504, "5.5.4 Unrecognized authentication type")
        except (ValueError, UnicodeDecodeError):
            return self.reply(501, "5.5.2 Cannot decode response")
        if hmac.compare_digest(f"{user}\0{password}".encode(),
                               f"{self.fake.username}\0{self.fake.password}".encode()):
            self.auth_user = user
            return self.reply(235, "2.7.0 Authentication successful")
        return self.reply(535, "5.7.8 Authentication credentials invalid")

    def _challenge(self, text: str) -> str | None:
        self.reply(334, text)
        answer = self.readline().decode("ascii", "replace").strip()
        if answer == "*":
            self.reply(501, "5.0.0 Authentication cancelled")
            return None
        return answer

    def smtp_MAIL(self, arg: str):  # noqa: N802
        if self.fake.require_tls and not self.tls:
            return self.reply(530, "5.7.0 Must issue a STARTTLS command first")
        if self.fake.username is not None and self.auth_user is None:
            return self.reply(530, "5.7.0 Authentication required")
        if self.mail_from is not None:
            return self.reply(503, "5.5.1 Error: nested MAIL command")
        match = _ADDRESS.match(arg[5:]) if arg.upper().startswith("FROM:") else None
        if match is None:
            return self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
        self.mail_from = match.group(1)
        self.reply(250, "2.1.0 Ok")

    def smtp_RCPT(self, arg: str):  # noqa: N802
        if self.mail_from is None:
            return self.reply(503, "5.5.1 Error: need MAIL command")
        match = _ADDRESS.match(arg[3:]) if arg.upper().startswith("TO:") else None
        if match is None or not match.group(1):
            return self.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
        failure = self.fake._take_failure("rcpt")
        if failure:
            return self.reply(failure.code, failure.text)
        self.rcpt_tos.append(match.group(1))
        self.reply(250, "2.1.5 Ok")

    def smtp_DATA(self, arg: str):  # noqa: N802
        if not self.rcpt_tos:
            return self.reply(503, "5.5.1 Error: need RCPT command")
        self.reply(354, "End data with <CR><LF>.<CR><LF>")
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.reader.readline(1_000_000)
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size <= MAX_MESSAGE_BYTES:
                chunks.append(line)
        stall = self.fake._take_stall("data")
        if stall and self.fake._stopping.wait(stall):
            return False
        if size > MAX_MESSAGE_BYTES:
            self._reset()
            return self.reply(552, "5.3.4 Message size exceeds fixed limit")
        failure = self.fake._take_failure("data")
        if failure:
            self._reset()
            return self.reply(failure.code, failure.text)
        self.fake._record(ReceivedMail(mail_from=self.mail_from, rcpt_tos=tuple(self.rcpt_tos),
                                       data=b"".join(chunks), auth_user=self.auth_user, tls=self.tls,
                                       helo=self.helo))
        self._reset()
        self.reply(250, f"2.0.0 Ok: queued as {secrets.token_hex(5).upper()}")

    def smtp_RSET(self, arg: str):  # noqa: N802
        self._reset()
        self.reply(250, "2.0.0 Ok")

    def smtp_NOOP(self, arg: str):  # noqa: N802
        self.reply(250, "2.0.0 Ok")

    def smtp_VRFY(self, arg: str):  # noqa: N802
        self.reply(252, "2.0.0 Cannot VRFY user, but will accept message")

    def smtp_QUIT(self, arg: str):  # noqa: N802
        self.reply(221, "2.0.0 Bye")
        return False


# =============================================================================================
# TLS for the sandboxes (the SMTP and IMAP servers share it)
# =============================================================================================
def self_signed_certificate(directory: Path | str, *, hostname: str = "localhost") -> tuple[Path, Path]:
    """(certificate, key) PEM files valid for `hostname` and 127.0.0.1, for 30 days.

    The certificate is its own CA: clients trust it through the channel's `tls_ca_file`.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Coccinelle sandbox ({hostname})")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sandbox-cert.pem", directory / "sandbox-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def server_tls_context(cert_path: Path | str, key_path: Path | str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


# =============================================================================================
# Inbound webhook payloads, as SendGrid and Mailgun post them
# =============================================================================================
SENDGRID_BOUNDARY = "xYzZY"  # the boundary SendGrid's Inbound Parse posts use


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def mailgun_mime_form(raw: bytes, *, signing_key: str, recipient: str, sender: str,
                      from_header: str | None = None, subject: str = "",
                      timestamp: int | None = None, token: str | None = None) -> dict[str, str | bytes]:
    """The fields a Mailgun route's forward() posts to a URL ending in "mime"."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)  # "randomly generated string with length of 50"
    return {
        "recipient": recipient, "sender": sender, "from": from_header or sender, "subject": subject,
        "body-mime": raw, "timestamp": timestamp_text, "token": token,
        "signature": mailgun_signature(signing_key, timestamp_text, token),
    }


def sendgrid_raw_form(raw: bytes, *, to: str, from_header: str, subject: str = "",
                      envelope_from: str | None = None) -> dict[str, str | bytes]:
    """The fields SendGrid Inbound Parse posts with "POST the raw, full MIME message" ticked."""
    return {
        "dkim": "{@example.com : pass}",
        "email": raw,
        "to": to,
        "from": from_header,
        "sender_ip": "192.0.2.10",
        "spam_report": "",
        "envelope": json.dumps({"to": [to], "from": envelope_from or from_header}),
        "subject": subject,
        "spam_score": "0.1",
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "SPF": "pass",
    }


def encode_multipart(fields: dict[str, str | bytes], *, boundary: str = SENDGRID_BOUNDARY) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data post; bytes values are sent untouched."""
    out = bytearray()
    for name, value in fields.items():
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
