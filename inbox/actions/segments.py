"""Saved segments: a name and rules (see models/segment.py for the query builder)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from .audit import record
from ..extensions import db
from ..models import Campaign, Segment, SegmentRules, User


def access_segment(segment_id: int, user: User) -> Segment:
    return get_in_workspace(Segment, segment_id, user.workspace_id)


def check_segment_form(form, *, user: User, require_name: bool = True) -> tuple[str, SegmentRules]:
    name = " ".join((form.get("name") or "").split())[:120]
    if require_name and not name:
        raise ValidationError(_("Give the segment a name."), field="name")
    rules = SegmentRules.from_dict({
        "label_ids": form.getlist("label_ids"), "channel": form.get("channel"), "company": form.get("company"),
        "last_contact_within_days": form.get("last_contact_within_days"),
        "no_contact_for_days": form.get("no_contact_for_days"), "open_tickets": form.get("open_tickets"),
        "preferred_channel": form.get("preferred_channel"), "language": form.get("language"),
    })
    return name, rules


def do_save_segment(workspace_id: int, *, name: str, rules: SegmentRules, existing: Segment | None = None,
                    actor: User | None = None) -> Segment:
    segment = existing or Segment(workspace_id=workspace_id, created_by_id=actor.id if actor else None)
    before = _segment_state(segment) if existing is not None else None
    segment.name, segment.rules_json = name, rules.to_dict()
    db.session.add(segment)
    record(actor, "segment.update" if existing is not None else "segment.create", segment, before,
           _segment_state(segment), keep=("name",))
    outbox.commit()
    return segment


def do_delete_segment(segment: Segment, *, actor: User | None = None) -> None:
    used = db.session.scalar(select(Campaign.id).where(Campaign.segment_id == segment.id).limit(1))
    if used is not None:
        raise ValidationError(_("A campaign uses this segment: it cannot be deleted."), field="segment")
    record(actor, "segment.delete", segment, _segment_state(segment), None)
    db.session.delete(segment)
    outbox.commit()


def _segment_state(segment: Segment) -> dict:
    # Only the rules that filter: empty ones would clutter the log's before → after.
    rules = {k: v for k, v in (segment.rules_json or {}).items() if v not in (None, "", [], {})}
    return {"name": segment.name, "rules": rules}
