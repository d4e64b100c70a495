"""Follow-up rules: "no reply from the customer N days after our last message on an open
conversation → send template X on the same channel", "N days after an appointment → survey".

Each trigger is a function that lists occasions (an anchor, a contact, a conversation, a
channel); `apply_followups(now)` handles every occasion once: the FollowUpSent row keyed by
(rule, anchor) is written in the same transaction as the message, so a rerun, a second worker
or a retry finds it and does nothing. A new trigger plugs in by adding a function to TRIGGERS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from .audit import record, state
from ..extensions import db
from ..models import (
    Channel, Consent, Contact, Conversation, ConversationStatus, Direction, FollowUpOutcome, FollowUpRule,
    FollowUpSent, FollowUpTrigger, Label, Message, OutboundTemplate, SenderKind, User, Workspace,
)
from ..orchestrator.outbound import (
    choose_channel, contact_values, conversation_for, queue_message, render_template, sendable_channels,
    whatsapp_needs_template,
)
from ..orchestrator.sending_rules import SendRules, allowed_at, bulk_sent_today
from .labels import attach_label

log = logging.getLogger(__name__)
MAX_FOLLOW_UPS = 10
APPOINTMENT_LOOKBACK = timedelta(days=7)  # a survey is not sent for an appointment older than delay + this


# -- rules ----------------------------------------------------------------------------------------
def access_rule(rule_id: int, user: User) -> FollowUpRule:
    return get_in_workspace(FollowUpRule, rule_id, user.workspace_id)


def check_rule_form(form, *, user: User) -> dict:
    name = " ".join((form.get("name") or "").split())[:120]
    if not name:
        raise ValidationError(_("Give the rule a name."), field="name")
    try:
        trigger = FollowUpTrigger(form.get("trigger") or "")
    except ValueError:
        raise ValidationError(_("Pick when the follow-up is sent."), field="trigger") from None
    days = form.get("delay_days", type=int)
    if days is None or not 1 <= days <= 365:
        raise ValidationError(_("The delay is a number of days between 1 and 365."), field="delay_days")
    most = form.get("max_per_conversation", type=int)
    if most is None or not 1 <= most <= MAX_FOLLOW_UPS:
        raise ValidationError(_("Allow between 1 and %(n)d follow-ups per conversation.", n=MAX_FOLLOW_UPS),
                              field="max_per_conversation")
    template = db.session.get(OutboundTemplate, form.get("template_id", type=int) or 0)
    if template is None or template.workspace_id != user.workspace_id:
        raise ValidationError(_("Pick a template."), field="template_id")
    label = db.session.get(Label, form.get("label_id", type=int) or 0) if form.get("label_id") else None
    if form.get("label_id") and (label is None or label.workspace_id != user.workspace_id):
        raise ValidationError(_("This label does not exist."), field="label_id")
    return {"name": name, "trigger": trigger, "delay_days": days, "max_per_conversation": most,
            "template_id": template.id, "label_id": label.id if label else None,
            "enabled": form.get("enabled") == "1"}


def do_save_rule(workspace_id: int, values: dict, *, existing: FollowUpRule | None = None,
                 actor: User | None = None) -> FollowUpRule:
    rule = existing or FollowUpRule(workspace_id=workspace_id)
    before = state(rule, values) if existing is not None else None
    for key, value in values.items():
        setattr(rule, key, value)
    db.session.add(rule)
    record(actor, "followup.update" if existing is not None else "followup.create", rule, before,
           state(rule, values), keep=("name",))
    outbox.commit()
    return rule


# -- occasions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Occasion:
    anchor: str  # unique per rule: what is being followed up
    contact_id: int
    conversation_id: int | None
    channel_id: int | None  # None: the contact's preferred usable channel


def _no_reply(rule: FollowUpRule, now: datetime) -> list[Occasion]:
    """Active conversations whose last message is ours, older than the delay, under the maximum."""
    cutoff = now - timedelta(days=rule.delay_days)
    already = (select(func.count()).select_from(FollowUpSent)
               .where(FollowUpSent.rule_id == rule.id, FollowUpSent.conversation_id == Conversation.id,
                      FollowUpSent.outcome == FollowUpOutcome.SENT).scalar_subquery())
    # Our follow-up is our last message too: measured from when the sweep sent it.
    recent_followup = exists().where(FollowUpSent.rule_id == rule.id, FollowUpSent.conversation_id == Conversation.id,
                                     FollowUpSent.created_at > cutoff)
    stmt = (select(Conversation.id, Conversation.contact_id, Conversation.channel_id)
            .where(Conversation.workspace_id == rule.workspace_id,
                   Conversation.status.in_(list(ConversationStatus.active())),
                   Conversation.last_message_direction == Direction.OUTBOUND,
                   Conversation.last_activity_at <= cutoff, already < rule.max_per_conversation, ~recent_followup)
            .order_by(Conversation.last_activity_at).limit(1000))
    occasions = []
    for conversation_id, contact_id, channel_id in db.session.execute(stmt).all():
        last_id = db.session.scalar(
            select(Message.id).where(Message.conversation_id == conversation_id, Message.internal.is_(False),
                                     Message.direction == Direction.OUTBOUND)
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))
        if last_id is not None and not _handled(rule.id, f"message:{last_id}"):
            occasions.append(Occasion(f"message:{last_id}", contact_id, conversation_id, channel_id))
    return occasions


def _after_appointment(rule: FollowUpRule, now: datetime) -> list[Occasion]:
    """Appointments that took place `delay_days` ago (done, or confirmed and past)."""
    try:
        from ..models.appointment import Appointment, AppointmentStatus
    except ImportError:  # appointments not installed: nothing to follow up
        return []
    cutoff = now - timedelta(days=rule.delay_days)
    stmt = (select(Appointment.id, Appointment.contact_id)
            .where(Appointment.workspace_id == rule.workspace_id,
                   Appointment.status.in_([AppointmentStatus.DONE, AppointmentStatus.CONFIRMED]),
                   Appointment.starts_at <= cutoff, Appointment.starts_at > cutoff - APPOINTMENT_LOOKBACK)
            .order_by(Appointment.starts_at).limit(1000))
    return [Occasion(f"appointment:{aid}", contact_id, None, None) for aid, contact_id in db.session.execute(stmt)
            if not _handled(rule.id, f"appointment:{aid}")]


def _handled(rule_id: int, anchor: str) -> bool:
    return db.session.scalar(select(FollowUpSent.id).where(FollowUpSent.rule_id == rule_id,
                                                           FollowUpSent.anchor == anchor)) is not None


TRIGGERS = {FollowUpTrigger.NO_REPLY: _no_reply, FollowUpTrigger.AFTER_APPOINTMENT: _after_appointment}


# -- the sweep ------------------------------------------------------------------------------------
def apply_followups(now: datetime, *, workspace_id: int | None = None) -> dict[str, int]:
    stmt = select(FollowUpRule).where(FollowUpRule.enabled.is_(True)).order_by(FollowUpRule.id)
    if workspace_id is not None:
        stmt = stmt.where(FollowUpRule.workspace_id == workspace_id)
    done = {"sent": 0, "skipped": 0, "waiting": 0}
    for rule_id in [rule.id for rule in db.session.scalars(stmt)]:
        rule = db.session.get(FollowUpRule, rule_id)
        for occasion in TRIGGERS[rule.trigger](rule, now):
            done[_apply(db.session.get(FollowUpRule, rule_id), occasion, now)] += 1
    if done["sent"] or done["skipped"]:
        log.info("follow-ups %s", done)
    return done


def _apply(rule: FollowUpRule, occasion: Occasion, now: datetime) -> str:
    workspace = db.session.get(Workspace, rule.workspace_id)
    contact = db.session.get(Contact, occasion.contact_id)
    template = rule.template
    channel = db.session.get(Channel, occasion.channel_id) if occasion.channel_id else None
    if channel is None:
        channel = choose_channel(contact, channels=sendable_channels(rule.workspace_id),
                                 consents=Consent.of_contacts([contact.id]), template=template).channel
    if channel is None or not channel.enabled or not template.fits(channel.kind):
        return _record(rule, occasion, now, FollowUpOutcome.SKIPPED, "no_channel")
    if Consent.is_opted_out(contact.id, channel.kind):
        return _record(rule, occasion, now, FollowUpOutcome.SKIPPED, "opted_out")
    if whatsapp_needs_template(contact.id, channel, now) and not template.whatsapp_ready:
        return _record(rule, occasion, now, FollowUpOutcome.SKIPPED, "whatsapp_window")
    rules = SendRules.of(channel)
    if not allowed_at(rules, now, workspace.timezone) or (
            rules.daily_limit is not None and bulk_sent_today(channel.id, now, workspace.timezone) >= rules.daily_limit):
        db.session.rollback()
        return "waiting"  # the next sweep inside the allowed hours (or tomorrow) sends it
    conversation = (db.session.get(Conversation, occasion.conversation_id) if occasion.conversation_id
                    else conversation_for(contact, new_status=ConversationStatus.RESOLVED))
    row = FollowUpSent(workspace_id=rule.workspace_id, rule_id=rule.id, anchor=occasion.anchor,
                       conversation_id=conversation.id, channel_id=channel.id, outcome=FollowUpOutcome.SENT,
                       created_at=now)
    db.session.add(row)
    try:
        db.session.flush()  # the unique (rule, anchor): another run already handled this occasion
    except IntegrityError:
        outbox.discard()
        return "waiting"
    values = contact_values(contact, workspace_name=workspace.name)
    message = queue_message(conversation, channel, render_template(template, channel, values),
                            sender_kind=SenderKind.AGENT, sender_user_id=conversation.assignee_id,
                            meta={"followup_rule_id": rule.id, "followup_rule_name": rule.name})
    row.message_id = message.id
    if rule.label_id is not None:  # the rule's label, committed with the message
        attach_label(conversation, db.session.get(Label, rule.label_id))
    outbox.commit()
    return "sent"


def _record(rule: FollowUpRule, occasion: Occasion, now: datetime, outcome: FollowUpOutcome, reason: str) -> str:
    db.session.add(FollowUpSent(workspace_id=rule.workspace_id, rule_id=rule.id, anchor=occasion.anchor,
                                conversation_id=occasion.conversation_id, outcome=outcome, reason=reason,
                                created_at=now))
    try:
        outbox.commit()
    except IntegrityError:
        return "waiting"
    return "skipped"


def recent_followups(workspace_id: int, *, limit: int = 30) -> list[FollowUpSent]:
    return list(db.session.scalars(select(FollowUpSent).where(FollowUpSent.workspace_id == workspace_id)
                                   .order_by(FollowUpSent.id.desc()).limit(limit)))
