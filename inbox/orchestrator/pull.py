"""Inbound we fetch ourselves rather than receive: IMAP mailboxes, and VAPI calls whose
end-of-call report never reached the webhook (VAPI does not retry a failed delivery).

Both go through `do_ingest`, like a webhook, so deduplication is the same: an IMAP message is
keyed by mailbox + UIDVALIDITY + UID (meta["replay_key"]) and by its Message-ID (the provider
id), a VAPI call by "<call id>:end-of-call-report" whichever way it arrived.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ..errors import ChannelError, InboxError, MalformedPayload
from ..extensions import db
from ..kinds import ChannelKind, Provider
from ..models import Channel, Message
from .delivery import adapter_for
from .ingest import do_ingest

log = logging.getLogger(__name__)
IMAP_BATCH = 50
# A call is looked for during this long after it started (calls last less), in windows of
# VAPI_WINDOW so one page of the list API (100 calls) covers each; the newest VAPI_GRACE is
# left to the webhook, which normally arrives seconds after the call ends.
VAPI_LOOKBACK = timedelta(hours=2)
VAPI_WINDOW = timedelta(minutes=20)
VAPI_GRACE = timedelta(minutes=2)
VAPI_PAGE = 100


@dataclass(frozen=True, slots=True)
class PullResult:
    fetched: int = 0
    stored: int = 0


def imap_channels() -> list[Channel]:
    stmt = select(Channel).where(Channel.kind == ChannelKind.EMAIL, Channel.enabled.is_(True)).order_by(Channel.id)
    return [c for c in db.session.scalars(stmt) if (c.settings or {}).get("inbound") == "imap"]


def poll_imap(channel: Channel) -> PullResult:
    """Fetch unseen mail (read-only, BODY.PEEK), store each message, and only once they are all
    committed flag them \\Seen. A crash in between leaves them unseen: the next poll fetches them
    again and the replay key / Message-ID make that a no-op."""
    from ..channels.email import fetch_unseen, mark_seen

    adapter = adapter_for(channel)
    config = adapter.config
    batch = fetch_unseen(config, limit=IMAP_BATCH)
    db.session.commit()  # no transaction held open while we talk to the server
    done: dict[int, list[int]] = {}
    stored = 0
    for uidvalidity, uid, raw in batch:
        try:
            inbound = adapter.parse_imap(uidvalidity, uid, raw)
        except MalformedPayload as exc:
            # Unreadable: flagged seen so it does not come back every minute; the mailbox keeps it.
            log.warning("imap message skipped channel=%s uid=%s: %s", channel.id, uid, exc)
            done.setdefault(uidvalidity, []).append(uid)
            continue
        result = do_ingest(channel, inbound)  # commits
        stored += int(result.created)
        done.setdefault(uidvalidity, []).append(uid)
    for uidvalidity, uids in done.items():
        mark_seen(config, uids, uidvalidity=uidvalidity)
    if batch:
        log.info("imap poll channel=%s fetched=%s stored=%s", channel.id, len(batch), stored)
    return PullResult(fetched=len(batch), stored=stored)


def vapi_channels() -> list[Channel]:
    stmt = select(Channel).where(Channel.kind == ChannelKind.VOICE, Channel.provider == Provider.VAPI,
                                 Channel.enabled.is_(True)).order_by(Channel.id)
    return [c for c in db.session.scalars(stmt) if c.credentials.get("api_key")]


def reconcile_vapi(channel: Channel, *, now: datetime) -> PullResult:
    """List the calls of the last VAPI_LOOKBACK, fetch those we hold no report for, store them."""
    from ..channels.voice_vapi import REPORT_TYPE

    adapter = adapter_for(channel)
    db.session.commit()
    call_ids: list[str] = []
    end = now - VAPI_GRACE
    start = now - VAPI_LOOKBACK
    while start < end:
        window_end = min(start + VAPI_WINDOW, end)
        ids = adapter.list_calls(start, created_before=window_end, limit=VAPI_PAGE)
        if len(ids) >= VAPI_PAGE:
            log.warning("vapi reconcile channel=%s: a full page between %s and %s; some calls may wait "
                        "for the next run", channel.id, start.isoformat(), window_end.isoformat())
        call_ids.extend(i for i in ids if i not in call_ids)
        start = window_end
    if not call_ids:
        return PullResult()
    keys = {f"{call_id}:{REPORT_TYPE}": call_id for call_id in call_ids}
    known = set(db.session.scalars(select(Message.provider_message_id).where(
        Message.channel_id == channel.id, Message.provider_message_id.in_(list(keys)))))
    db.session.commit()
    stored = fetched = 0
    for key, call_id in keys.items():
        if key in known:
            continue
        inbound = adapter.fetch_call(call_id)  # None: not ended yet, or nobody to attach it to
        fetched += 1
        if inbound is None:
            continue
        stored += int(do_ingest(channel, inbound).created)
    if stored:
        log.info("vapi reconcile channel=%s recovered=%s", channel.id, stored)
    return PullResult(fetched=fetched, stored=stored)


def each_channel(channels: list[Channel], work) -> dict[int, PullResult | str]:
    """Run `work(channel)` for each channel; one channel failing does not stop the others."""
    results: dict[int, PullResult | str] = {}
    for channel in channels:
        try:
            results[channel.id] = work(channel)
        except (ChannelError, InboxError) as exc:
            db.session.rollback()
            log.warning("pull failed channel=%s: %s", channel.id, exc)
            results[channel.id] = str(exc)
    return results
