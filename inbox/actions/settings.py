"""A workspace's settings rows (ticket automation, business hours, Sara): every settings page
changes its row the same way, through `do_save_settings`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .. import outbox
from ..extensions import db
from ..models import User
from .audit import record, state


Row = TypeVar("Row")  # a settings model: one row per workspace, `Model.of(workspace_id)`


def do_save_settings(model: type[Row], workspace_id: int, values: Mapping[str, Any], *, action: str,
                     actor: User | None, audited: Iterable[str] | None = None) -> Row:
    """Set checked `values` on the workspace's row of `model` (found, or created from the model's
    defaults by `model.of`), audit-log what changed in the same transaction, and commit.
    `audited`: the fields the entry compares (by default those set); only changed ones are kept.
    No actor (the demo seed): the change is not audited."""
    row = model.of(workspace_id)
    fields = tuple(values if audited is None else audited)
    before = state(row, fields)
    for name, value in values.items():
        setattr(row, name, value)
    db.session.add(row)  # a row of defaults never saved becomes the workspace's own
    if actor is not None:
        record(actor, action, row, before, state(row, fields), workspace_id=workspace_id)
    outbox.commit()
    return row
