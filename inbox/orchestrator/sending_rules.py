"""A channel's rules for messages we start (campaigns, follow-ups, scheduled messages).

Read from `Channel.settings` (the admin sets them on the outbound "Sending rules" page; the
channel settings page may write the same keys):

    send_hours       "09:00-20:00": allowed sending hours, wall clock in the workspace's time
                     zone; outside them are the quiet hours. Absent: any time. "22:00-07:00"
                     wraps midnight.
    daily_limit      bulk messages (campaigns + follow-ups) per local day on this channel.
    rate_per_minute  messages handed to the provider per rolling minute; default per provider
                     (PROVIDER_RATE_PER_MINUTE), below what each accepts without queueing or
                     filtering (Twilio long code ≈ 1/s, Meta 80/s, Telegram ≈ 30/s broadcast).

Agents' one-to-one replies are not throttled and do not count against the daily limit. Sara's
automatic answers do respect the allowed hours and the daily limit (`auto_reply_room`): they are
messages a machine sends, and a channel's owner sets these limits for everything automated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..extensions import db
from ..kinds import Provider

PROVIDER_RATE_PER_MINUTE = {Provider.TWILIO: 60, Provider.META: 1000, Provider.TELEGRAM: 1200,
                            Provider.SMTP: 120, Provider.VAPI: 10}
_HOURS = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")


@dataclass(frozen=True, slots=True)
class SendRules:
    window: tuple[int, int] | None = None  # minutes after local midnight, start → end
    daily_limit: int | None = None
    rate_per_minute: int = 60

    @classmethod
    def of(cls, channel) -> SendRules:
        settings = channel.settings or {}
        limit = _positive(settings.get("daily_limit"))
        rate = _positive(settings.get("rate_per_minute")) or PROVIDER_RATE_PER_MINUTE.get(channel.provider, 60)
        return cls(window=parse_hours(settings.get("send_hours")), daily_limit=limit, rate_per_minute=rate)


def _positive(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def parse_hours(value) -> tuple[int, int] | None:
    match = _HOURS.match(str(value or ""))
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    return None if start == end else (start, end)


def format_hours(window: tuple[int, int] | None) -> str:
    if window is None:
        return ""
    return "{:02d}:{:02d}-{:02d}:{:02d}".format(window[0] // 60, window[0] % 60, window[1] // 60, window[1] % 60)


def _minute_of(local: datetime) -> int:
    return local.hour * 60 + local.minute


def allowed_at(rules: SendRules, now: datetime, timezone: str) -> bool:
    if rules.window is None:
        return True
    start, end = rules.window
    minute = _minute_of(now.astimezone(ZoneInfo(timezone)))
    return start <= minute < end if start < end else (minute >= start or minute < end)


def next_allowed(rules: SendRules, now: datetime, timezone: str) -> datetime:
    """`now` if sending is allowed, else the next opening of the allowed hours (aware UTC)."""
    if allowed_at(rules, now, timezone):
        return now
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = rules.window[0]
    opening = datetime.combine(local.date(), time(start // 60, start % 60), zone)
    if opening <= local:
        opening = datetime.combine(local.date() + timedelta(days=1), time(start // 60, start % 60), zone)
    return opening.astimezone(now.tzinfo)


def local_day_start(now: datetime, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), zone).astimezone(now.tzinfo)


def sent_last_minute(channel_id: int, now: datetime) -> int:
    """Campaign messages released on this channel in the rolling minute before `now`."""
    from ..models import CampaignRecipient

    stmt = select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.channel_id == channel_id, CampaignRecipient.queued_at > now - timedelta(minutes=1),
        CampaignRecipient.queued_at <= now)
    return int(db.session.scalar(stmt) or 0)


def bulk_sent_today(channel_id: int, now: datetime, timezone: str) -> int:
    """Campaign messages and follow-ups sent on this channel since local midnight."""
    from ..models import CampaignRecipient, FollowUpOutcome, FollowUpSent

    start = local_day_start(now, timezone)
    campaigns = select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.channel_id == channel_id, CampaignRecipient.queued_at >= start)
    followups = select(func.count()).select_from(FollowUpSent).where(
        FollowUpSent.channel_id == channel_id, FollowUpSent.created_at >= start,
        FollowUpSent.outcome == FollowUpOutcome.SENT)
    return int(db.session.scalar(campaigns) or 0) + int(db.session.scalar(followups) or 0)


def daily_room(channel, now: datetime, timezone: str) -> int | None:
    """How many more bulk messages the channel may send today; None when unlimited."""
    rules = SendRules.of(channel)
    if rules.daily_limit is None:
        return None
    return max(0, rules.daily_limit - bulk_sent_today(channel.id, now, timezone))


def auto_replies_today(channel_id: int, now: datetime, timezone: str) -> int:
    """Bot messages (Sara's answers, confirmations) sent on this channel since local midnight."""
    from ..models import Direction, Message, SenderKind

    stmt = select(func.count()).select_from(Message).where(
        Message.channel_id == channel_id, Message.sender_kind == SenderKind.BOT,
        Message.direction == Direction.OUTBOUND, Message.created_at >= local_day_start(now, timezone))
    return int(db.session.scalar(stmt) or 0)


def auto_reply_room(channel, now: datetime, timezone: str) -> int | None:
    """How many more automatic answers the channel may send today: its daily limit shared with
    campaigns and follow-ups; None when unlimited."""
    rules = SendRules.of(channel)
    if rules.daily_limit is None:
        return None
    used = bulk_sent_today(channel.id, now, timezone) + auto_replies_today(channel.id, now, timezone)
    return max(0, rules.daily_limit - used)
