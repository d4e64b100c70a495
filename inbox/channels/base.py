"""The contract every channel adapter fulfils. Adapters do provider I/O only: no database.

    handshake(request)     -> WebhookReply | None  (subscription checks such as Meta's GET)
    verify(request)        raise InvalidSignature unless the provider signed this request
    parse(request)         -> list[InboundMessage]   (raise MalformedPayload with a reason)
    parse_status(request)  -> list[StatusUpdate]
    send(message)          -> DeliveryReceipt        (raise Transient/PermanentDeliveryError)
    webhook_reply()        the body the provider expects back (empty TwiML, JSON…)
    test_connection()      -> str, a call to the provider proving the credentials work
    config_fields          what an admin enters in settings (secrets encrypted, shown masked)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..errors import TransientDeliveryError
from ..kinds import ChannelKind, DeliveryStatus, Provider


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request as the provider sent it, free of any web framework."""

    url: str  # the public URL the provider called (signatures cover it)
    headers: Mapping[str, str]
    form: Mapping[str, str]  # a MultiDict for form posts
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookReply:
    body: str
    content_type: str
    status: int = 200


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """What an adapter needs to know about one configured channel."""

    kind: ChannelKind
    provider: Provider
    address: str
    credentials: Mapping[str, str]
    settings: Mapping[str, object] = field(default_factory=dict)
    api_base_url: str | None = None  # a fake provider in tests and demos


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One value an admin enters for a channel; secrets are stored encrypted and shown masked."""

    name: str
    secret: bool = False
    target: str = "credentials"  # or "settings"
    required: bool = True


@dataclass(frozen=True, slots=True)
class InboundMedia:
    """A file the customer sent: either a provider URL to fetch later, or its bytes (email)."""

    url: str | None
    content_type: str
    filename: str | None = None
    content: bytes | None = None
    content_id: str | None = None  # email cid: references from the HTML body


@dataclass(frozen=True, slots=True)
class InboundMessage:
    provider_message_id: str
    sender: str  # the customer's address on this channel
    recipient: str  # our address
    body: str
    sender_name: str | None = None
    media: tuple[InboundMedia, ...] = ()
    sent_at: datetime | None = None
    subject: str | None = None  # email
    html: str | None = None  # email, raw: the orchestrator sanitizes it before storing
    # Channel-specific facts kept with the message (email Message-ID / In-Reply-To / References,
    # call duration and recording URL, location, contact cards, Telegram command…).
    meta: Mapping[str, object] = field(default_factory=dict)
    # Auto-replies, bounces and bulk mail must never trigger an automatic answer.
    automated: bool = False


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    to: str
    body: str
    status_callback_url: str | None = None
    media_urls: tuple[str, ...] = ()
    subject: str | None = None  # email
    html: str | None = None  # email
    attachments: tuple[OutboundAttachment, ...] = ()
    # Channel-specific: email In-Reply-To / References, WhatsApp template + variables,
    # quick-reply buttons, location…
    meta: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    provider_message_id: str  # the first part's id: status callbacks for it move the message
    status: DeliveryStatus
    # Every message the provider created, in order, when a long text went out in several parts
    # (Telegram, WhatsApp): each has its own id; empty for a single message.
    message_ids: tuple[str, ...] = ()


class PartlySent(TransientDeliveryError):
    """The first parts of a long message went out, then the provider failed in a way worth
    retrying. `sent_ids` are the parts already out, in order: the delivery keeps them and the
    next attempt passes them back in OutboundMessage.meta["parts_sent"], so only the rest is
    sent — no part ever twice."""

    def __init__(self, message: str, *, sent_ids: tuple[str, ...]):
        super().__init__(message)
        self.sent_ids = sent_ids


class ChannelAdapter(Protocol):
    kind: ChannelKind
    provider: Provider
    config_fields: tuple[ConfigField, ...]

    def __init__(self, config: ChannelConfig) -> None: ...
    def handshake(self, request: WebhookRequest) -> WebhookReply | None: ...
    def verify(self, request: WebhookRequest) -> None: ...
    def parse(self, request: WebhookRequest) -> list[InboundMessage]: ...
    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]: ...
    def send(self, message: OutboundMessage) -> DeliveryReceipt: ...
    def webhook_reply(self) -> WebhookReply: ...
    def test_connection(self) -> str: ...  # what the provider says about the account, or ChannelError
