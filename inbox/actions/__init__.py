"""Actions are the only code that changes state: access_* fetch with a permission check,
check_* validate input, do_* change state, commit and emit events."""

from typing import TypeVar

from flask import abort

from ..extensions import db

T = TypeVar("T")


def get_in_workspace(model: type[T], object_id: int | None, workspace_id: int, *, options=()) -> T:
    """The row of `model` with this id if it belongs to the workspace; 404 otherwise, so a foreign
    id and a missing one look the same (existence never leaks). The base of every simple access_*.
    `options`: loader options (what the caller shows next, read in the same query)."""
    obj = db.session.get(model, object_id, options=options) if object_id else None
    if obj is None or obj.workspace_id != workspace_id:
        abort(404)
    return obj
