"""Labels: defined by the workspace, put on conversations and contacts by agents, automations (a
follow-up rule labels the conversation it follows up) and the API (do_add_label /
do_remove_label take a target and a label, nothing from HTTP)."""

from __future__ import annotations

from collections.abc import Iterable

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from .audit import record, state
from ..extensions import db
from ..models import Contact, ContactLabel, Conversation, ConversationLabel, FollowUpRule, Label, User
from ..models.label import COLOR, PALETTE

LABEL_FIELDS = ("name", "color")


def access_label(label_id: int, user: User) -> Label:
    return get_in_workspace(Label, label_id, user.workspace_id)


def labels_by_ids(workspace_id: int, ids: Iterable) -> list[Label]:
    """The workspace's labels among `ids` (others' ids are ignored, never an error that leaks)."""
    wanted = {int(i) for i in ids if str(i).isdigit()}
    if not wanted:
        return []
    stmt = select(Label).where(Label.workspace_id == workspace_id, Label.id.in_(wanted)).order_by(Label.name)
    return list(db.session.scalars(stmt))


def check_label(workspace_id: int, name: str, color: str, *, existing: Label | None = None) -> tuple[str, str]:
    name = " ".join((name or "").split())[:60]
    if not name:
        raise ValidationError(_("Give the label a name."), field="name")
    color = (color or "").strip() or PALETTE[len(Label.of_workspace(workspace_id)) % len(PALETTE)]
    if not COLOR.match(color):
        raise ValidationError(_("Pick a color such as #2563eb."), field="color")
    clash = db.session.scalar(select(Label.id).where(Label.workspace_id == workspace_id, Label.name == name))
    if clash is not None and (existing is None or clash != existing.id):
        raise ValidationError(_("A label with this name already exists."), field="name")
    return name, color.lower()


def do_create_label(workspace_id: int, *, name: str, color: str, actor: User | None = None) -> Label:
    name, color = check_label(workspace_id, name, color)
    label = Label(workspace_id=workspace_id, name=name, color=color)
    db.session.add(label)
    record(actor, "label.create", label, None, state(label, LABEL_FIELDS))
    outbox.commit()
    return label


def do_update_label(label: Label, *, name: str, color: str, actor: User | None = None) -> Label:
    before = state(label, LABEL_FIELDS)
    label.name, label.color = check_label(label.workspace_id, name, color, existing=label)
    record(actor, "label.update", label, before, state(label, LABEL_FIELDS), keep=("name",))
    outbox.publish_event(label.workspace_id, "conversation-changed")
    outbox.commit()
    return label


def do_delete_label(label: Label, *, actor: User | None = None) -> None:
    db.session.execute(update(FollowUpRule).where(FollowUpRule.label_id == label.id).values(label_id=None))
    db.session.execute(delete(ConversationLabel).where(ConversationLabel.label_id == label.id))
    db.session.execute(delete(ContactLabel).where(ContactLabel.label_id == label.id))
    record(actor, "label.delete", label, state(label, LABEL_FIELDS), None)
    db.session.delete(label)
    outbox.publish_event(label.workspace_id, "conversation-changed")
    outbox.commit()


def do_set_conversation_labels(conversation: Conversation, labels: list[Label], *, actor: User | None = None) -> None:
    """Exactly these labels on the conversation (the inbox control sends the whole set)."""
    _check_same_workspace(conversation.workspace_id, labels)
    if {l.id for l in conversation.labels} == {l.id for l in labels}:
        return
    conversation.labels = sorted(labels, key=lambda l: l.name)
    _announce(conversation)
    outbox.commit()


def do_set_contact_labels(contact: Contact, labels: list[Label], *, actor: User | None = None) -> None:
    _check_same_workspace(contact.workspace_id, labels)
    if {l.id for l in contact.labels} == {l.id for l in labels}:
        return
    contact.labels = sorted(labels, key=lambda l: l.name)
    _announce(contact)
    outbox.commit()


def do_add_label(target: Conversation | Contact, label: Label, *, actor: User | None = None) -> bool:
    """For the API: add one label; False when it was already there."""
    added = attach_label(target, label)
    if added:
        outbox.commit()
    return added


def attach_label(target: Conversation | Contact, label: Label) -> bool:
    """Add one label in the caller's transaction (automations: the follow-up sweep commits it
    with the message it sends). False when it was already there."""
    _check_same_workspace(target.workspace_id, [label])
    if label in target.labels:
        return False
    target.labels = sorted([*target.labels, label], key=lambda l: l.name)
    _announce(target)
    return True


def do_remove_label(target: Conversation | Contact, label: Label, *, actor: User | None = None) -> bool:
    if label not in target.labels:
        return False
    setter = do_set_conversation_labels if isinstance(target, Conversation) else do_set_contact_labels
    setter(target, [l for l in target.labels if l.id != label.id], actor=actor)
    return True


def _announce(target: Conversation | Contact) -> None:
    if isinstance(target, Conversation):
        outbox.publish_event(target.workspace_id, "conversation-changed", conversation_id=target.id)
    else:
        outbox.publish_event(target.workspace_id, f"contact-{target.id}-labels")


def _check_same_workspace(workspace_id: int, labels: list[Label]) -> None:
    if any(label.workspace_id != workspace_id for label in labels):
        abort(404)
