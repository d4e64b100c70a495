"""Helpers that speak like Twilio (signed form posts built from documented payload shapes), and
one that records the SQL a request runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from inbox.extensions import db
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import twilio as fake
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

from .conftest import PUBLIC_BASE_URL, SMS_NUMBER


def signed_post(client, channel, params: dict, *, suffix: str = "", token: str = DEMO_AUTH_TOKEN,
                signature: str | None = None):
    """POST through the Flask test client, signed for the public URL Twilio would call."""
    url = webhook_url(channel, suffix)
    path = url.removeprefix(PUBLIC_BASE_URL)
    sig = fake.sign(token, url, params) if signature is None else signature
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig} if sig else {})


def other_workspace_sms_channel(slug: str):
    """Another workspace ("Concurrent") with its own Twilio SMS number: what must never show here."""
    from inbox.actions.workspace import do_create_channel, do_create_workspace
    from inbox.kinds import ChannelKind, Provider

    other = do_create_workspace("Concurrent", slug=slug)
    return do_create_channel(other, kind=ChannelKind.SMS, provider=Provider.TWILIO, name="SMS", address="+33799999999",
                             credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN})


def inbound(sender: str = "+33612345678", body: str = "Bonjour", **kw) -> dict:
    return fake.inbound_sms_payload(account_sid=DEMO_ACCOUNT_SID, sender=sender, to=SMS_NUMBER,
                                    body=body, **kw)


def status(message_sid: str, value: str, *, to: str = "+33612345678", error_code: str | None = None) -> dict:
    return fake.status_payload(account_sid=DEMO_ACCOUNT_SID, message_sid=message_sid, status=value,
                               sender=SMS_NUMBER, to=to, error_code=error_code)


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """The SQL statements run inside the block, in order (for query-count bounds)."""
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
