"""Outbound jobs (issue 8): thin wrappers over the actions; each takes `now` as an ISO string so
a test, or a late worker, decides what time it is. All are idempotent (see the actions)."""

from __future__ import annotations

from datetime import datetime

from ..actions import campaigns, followups, scheduled
from ..models import utcnow
from . import job


def _now(now_iso: str | None) -> datetime:
    return datetime.fromisoformat(now_iso) if now_iso else utcnow()


@job
def release_scheduled(now_iso: str | None = None) -> int:
    """Scheduled messages whose time has come leave (within each channel's allowed hours)."""
    return scheduled.release_due(_now(now_iso))


@job
def campaign_tick(now_iso: str | None = None) -> dict[str, int]:
    """Start due campaigns, release what each channel's limits allow, link replies."""
    return campaigns.run_campaigns(_now(now_iso))


@job
def run_campaign(campaign_id: int, now_iso: str | None = None) -> dict[str, int]:
    """The same for one campaign, right after "send now" or "resume" (no wait for the next tick)."""
    return campaigns.run_campaigns(_now(now_iso), campaign_id=campaign_id)


@job
def followup_sweep(now_iso: str | None = None) -> dict[str, int]:
    return followups.apply_followups(_now(now_iso))
