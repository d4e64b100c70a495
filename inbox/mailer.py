"""Outgoing notification email, behind one small interface (as Warehouse's email services).

    MAIL_URL unset               → ConsoleMailer: logs each message and keeps the last ones
                                   in memory (development, tests, the demo)
    MAIL_URL=smtp://user:pass@host:587          → SMTP with STARTTLS when the server offers it
    MAIL_URL=smtps://user:pass@host:465         → SMTP over TLS
    MAIL_URL=smtp://host:25?starttls=false      → plain SMTP (a local relay)
    MAIL_FROM="Coccinelle <support@example.com>" (default: no-reply@<PUBLIC_BASE_URL host>)

Both are read from the app config first, then the environment. SMTP failures are sorted as
in delivery: a refused recipient is permanent, a server that is down or says 4xx is transient
(the job is retried).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage as MIMEMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from .errors import PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str  # plain text; every mail client reads it


class Mailer(Protocol):
    def send(self, email: Email) -> str:
        """Send one message; returns its Message-ID. Raises Transient/PermanentDeliveryError."""


class ConsoleMailer:
    """Prints instead of sending; `sent` keeps the latest messages (tests read it)."""

    def __init__(self, sender: str, keep: int = 200):
        self.sender = sender
        self.sent: deque[Email] = deque(maxlen=keep)

    def send(self, email: Email) -> str:
        _check(email)
        message_id = make_msgid(domain="coccinelle.console")
        self.sent.append(email)
        log.info("mail (console) to=%s subject=%r message_id=%s", email.to, email.subject, message_id)
        return message_id


class SmtpMailer:
    def __init__(self, url: str, sender: str, timeout: float = 15):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("MAIL_URL must start with smtp:// or smtps://")
        query = parse_qs(parts.query)
        self.host = parts.hostname or "localhost"
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = (query.get("starttls", ["auto"])[0]).lower()  # auto / true / false
        self.sender = sender
        self.timeout = timeout

    def __repr__(self) -> str:  # never the password
        return f"<SmtpMailer {self.host}:{self.port}>"

    def send(self, email: Email) -> str:
        _check(email)
        message = MIMEMessage()
        message["From"], message["To"], message["Subject"] = self.sender, email.to, email.subject
        message["Message-ID"] = make_msgid(domain=self.host)
        message.set_content(email.body)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"recipient refused: {exc.recipients}", code="smtp-refused") from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientDeliveryError(f"SMTP {exc.smtp_code}") from exc
            raise PermanentDeliveryError(f"SMTP {exc.smtp_code}", code=str(exc.smtp_code)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientDeliveryError(f"SMTP unavailable: {type(exc).__name__}") from exc
        if refused:
            raise PermanentDeliveryError(f"recipient refused: {sorted(refused)}", code="smtp-refused")
        log.info("mail sent to=%s message_id=%s", email.to, message["Message-ID"])
        return message["Message-ID"]

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if self.starttls == "true" or (self.starttls == "auto" and smtp.has_extn("starttls")):
            smtp.starttls(context=context)
            smtp.ehlo()
        return smtp


def _check(email: Email) -> None:
    if "@" not in email.to or "\n" in email.to or "\n" in email.subject:
        raise PermanentDeliveryError("invalid recipient or subject", code="invalid")


def _setting(name: str) -> str | None:
    return current_app.config.get(name) or os.environ.get(name) or None


def build_mailer(url: str | None, sender: str) -> Mailer:
    return SmtpMailer(url, sender) if url else ConsoleMailer(sender)


def get_mailer() -> Mailer:
    """The app's mailer, built once from MAIL_URL / MAIL_FROM."""
    mailer = current_app.extensions.get("mailer")
    if mailer is None:
        host = urlsplit(current_app.config.get("PUBLIC_BASE_URL", "")).hostname or "localhost"
        sender = _setting("MAIL_FROM") or f"Coccinelle <no-reply@{host}>"
        mailer = current_app.extensions["mailer"] = build_mailer(_setting("MAIL_URL"), sender)
    return mailer
