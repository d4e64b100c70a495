from __future__ import annotations

from datetime import datetime

from ..actions.appointments import do_send_reminders
from . import job


@job
def reminder_sweep(slot_start: str) -> int:
    return do_send_reminders(datetime.fromisoformat(slot_start))
