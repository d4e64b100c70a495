"""Channel jobs: IMAP polling, VAPI reconciliation (periodic, see inbox/periodic.py) and the
download of provider-hosted media. Thin: they pick the channels or the message and call the
orchestrator; each is idempotent (replay keys, unique provider ids, stored files skipped)."""

from __future__ import annotations

from datetime import datetime

from ..actions import team_alerts
from ..orchestrator import media, pull
from ..models import utcnow
from . import job


def _now(now_iso: str | None) -> datetime:
    return datetime.fromisoformat(now_iso) if now_iso else utcnow()


@job
def imap_poll_sweep(now_iso: str | None = None) -> dict:
    """Every enabled email channel reading its mail over IMAP (settings["inbound"] == "imap")."""
    results = pull.each_channel(pull.imap_channels(), pull.poll_imap)
    return {str(k): (v if isinstance(v, str) else v.stored) for k, v in results.items()}


@job
def vapi_reconcile_sweep(now_iso: str | None = None) -> dict:
    """Every enabled VAPI channel with an API key: recover end-of-call reports that never came."""
    now = _now(now_iso)
    results = pull.each_channel(pull.vapi_channels(), lambda channel: pull.reconcile_vapi(channel, now=now))
    return {str(k): (v if isinstance(v, str) else v.stored) for k, v in results.items()}


@job
def fetch_media(message_id: int) -> int:
    return media.download_media(message_id)


@job
def send_team_alert(alert_id: int) -> None:
    team_alerts.do_send_team_alert(alert_id)
