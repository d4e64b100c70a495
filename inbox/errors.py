"""One exception hierarchy for the whole product."""

from __future__ import annotations


class InboxError(Exception):
    """Base of every error the product raises on purpose."""


class ValidationError(InboxError):
    """Input a person can correct; the message is shown to them as is."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotAllowed(InboxError):
    """The action is forbidden in the object's current state (e.g. illegal transition)."""


class ChannelError(InboxError):
    """Something went wrong talking to a provider."""


class InvalidSignature(ChannelError):
    """A webhook whose signature does not match: answered 403, nothing stored."""


class MalformedPayload(ChannelError):
    """A signed webhook we cannot understand: answered 400 with the reason."""


class TransientDeliveryError(ChannelError):
    """The provider may accept the message later: the job is retried with backoff."""


class RateLimited(TransientDeliveryError):
    """The provider asked us to slow down (HTTP 429, Telegram flood control): the send is tried
    again after `retry_after` seconds (a default delay when the provider gave none)."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(ChannelError):
    """The provider refused the message for good: it is marked failed with this reason."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
