"""The audit log's write side: `record()` adds an entry to the session of the change it
describes, so both commit (or roll back) together. Secrets never reach the log: any value
under a secret-looking key (credentials, token, password…) is masked as the settings pages
show it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from ..crypto import mask
from ..extensions import db
from ..models import AuditEntry, User, utcnow

SECRET_KEY_PATTERN = re.compile(r"pass(word)?|secret|token|credential|api_?key|signing|private|auth(?!or)", re.I)


def record(actor: User | None, action: str, obj: Any, before: Mapping | None = None,
           after: Mapping | None = None, *, workspace_id: int | None = None,
           keep: Iterable[str] = ()) -> AuditEntry | None:
    """Add an audit entry for `obj` (a model instance) to the current transaction; the caller
    commits. When both states are given only the fields that changed are kept, and nothing is
    recorded when nothing changed. `keep` names fields kept anyway, to say which row it was
    (an SLA policy's category, a holiday's day)."""
    if obj is not None and obj in db.session.new:
        db.session.flush()  # a new row: its id is known once flushed
    workspace_id = workspace_id or getattr(obj, "workspace_id", None) or (actor.workspace_id if actor else None)
    if workspace_id is None and obj is not None and type(obj).__name__ == "Workspace":
        workspace_id = obj.id
    if before is not None and after is not None:
        before, after = changed(dict(before), dict(after), keep=keep)
        if all(before.get(k) == after.get(k) for k in set(before) | set(after)):
            return None  # only the kept fields, unchanged (a kept field that changed is a change)
    before_state, after_state = scrub(before), scrub(after)
    entry = AuditEntry(workspace_id=workspace_id, actor_id=actor.id if actor else None, action=action,
                       object_type=_object_type(obj), object_id=getattr(obj, "id", None) if obj is not None else None,
                       before=before_state, after=after_state, created_at=utcnow())
    db.session.add(entry)
    return entry


def state(obj: Any, fields: Iterable[str]) -> dict:
    """A JSON-ready snapshot of some attributes of an object."""
    return {name: getattr(obj, name) for name in fields}


def changed(before: dict, after: dict, *, keep: Iterable[str] = ()) -> tuple[dict, dict]:
    """The fields that differ (plus those in `keep`), in both states."""
    keep = set(keep)
    keys = [k for k in dict.fromkeys([*before, *after]) if k in keep or before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys if k in before}, {k: after.get(k) for k in keys if k in after}


def scrub(value: Any, *, secret: bool = False) -> Any:
    """JSON-ready copy with secrets masked (recursively, by key name)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): scrub(v, secret=secret or bool(SECRET_KEY_PATTERN.search(str(k))))
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, secret=secret) for v in value]
    if secret:
        return mask(str(value)) if value not in ("", None) else ""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _object_type(obj: Any) -> str | None:
    if obj is None:
        return None
    return getattr(obj, "__tablename__", None) or type(obj).__name__.lower()


# -- snapshots of the objects the settings pages change ----------------------------------------
def channel_state(channel) -> dict:
    """A channel as the audit log keeps it: credentials included, so `record` masks them."""
    return {**state(channel, ("kind", "provider", "name", "address", "enabled")),
            "settings": dict(channel.settings or {}), "credentials": dict(channel.credentials)}
