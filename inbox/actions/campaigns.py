"""Campaigns: one template, one segment, sent to each contact on the channel they prefer.

Life cycle: draft → (scheduled →) sending ⇄ paused → done (or cancelled).

At launch the audience is frozen into one `CampaignRecipient` row per contact (pending, or
skipped with the reason: no usable channel, opted out, no opt-in). The tick (`run_campaigns`,
a periodic job, plus one right after "send now") then releases pending rows within each
channel's limits. Each release is one transaction: a conditional UPDATE pending → queued
(only while the campaign is sending), the Message, its delivery job in the outbox. So a crash
at any point either left the row pending (it goes next time) or queued with its message (it is
never released again); `deliver_message` then sends each message once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, case, exists, func, insert, select, update

from . import get_in_workspace
from .. import outbox
from ..broker import BACKGROUND_QUEUE
from ..errors import ValidationError
from ..extensions import db
from ..kinds import ChannelKind, DeliveryStatus
from ..models import (
    Campaign, CampaignRecipient, CampaignStatus, Channel, Consent, Contact, ConversationStatus,
    Direction, Message, OutboundTemplate, RecipientState, Segment, SenderKind, User, Workspace, utcnow,
)
from ..models.segment import segment_contact_ids
from ..orchestrator.outbound import (
    DEFAULT_CHANNEL_ORDER, Rendered, choose_channel, contact_values, conversation_for, queue_message,
    render_template, sendable_channels,
)
from ..orchestrator.sending_rules import SendRules, allowed_at, bulk_sent_today, sent_last_minute
from .audit import record, state
from .consent import unsubscribe_url

log = logging.getLogger(__name__)
RUN_JOB = "inbox.jobs.outbound.run_campaign"
REPLY_WINDOW = timedelta(days=14)  # an inbound message this long after ours counts as a reply
SENT_STATUSES = (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)


# -- templates ------------------------------------------------------------------------------------
def access_outbound_template(template_id: int, user: User) -> OutboundTemplate:
    return get_in_workspace(OutboundTemplate, template_id, user.workspace_id)


def check_template_form(form, *, workspace_id: int, existing: OutboundTemplate | None = None) -> dict:
    name = " ".join((form.get("name") or "").split())[:120]
    if not name:
        raise ValidationError(_("Give the template a name."), field="name")
    clash = db.session.scalar(select(OutboundTemplate.id).where(OutboundTemplate.workspace_id == workspace_id,
                                                                OutboundTemplate.name == name))
    if clash is not None and (existing is None or clash != existing.id):
        raise ValidationError(_("A template with this name already exists."), field="name")
    kind = form.get("kind") or None
    if kind is not None and kind not in set(ChannelKind):
        raise ValidationError(_("Unknown channel."), field="kind")
    body = (form.get("body") or "").strip()
    html = (form.get("html") or "").strip() or None
    if not body and not html:
        raise ValidationError(_("Write the message text."), field="body")
    if html and not body:
        from ..channels.email import html_to_text

        body = html_to_text(html)  # the plain-text part every newsletter needs
    provider_template = {}
    if (form.get("content_sid") or "").strip():
        provider_template["content_sid"] = form["content_sid"].strip()[:64]
    if (form.get("provider_name") or "").strip():
        provider_template["name"] = form["provider_name"].strip()[:120]
        provider_template["language"] = (form.get("provider_language") or "fr").strip()[:10]
    variables = [v.strip() for v in (form.get("variables") or "").replace(";", ",").split(",") if v.strip()]
    return {"name": name, "kind": ChannelKind(kind) if kind else None,
            "subject": (form.get("subject") or "").strip()[:500] or None, "body": body, "html": html,
            "provider_template": provider_template or None, "variables": variables or None}


def do_save_template(workspace_id: int, values: dict, *, existing: OutboundTemplate | None = None,
                     actor: User | None = None) -> OutboundTemplate:
    from .audit import record, state

    template = existing or OutboundTemplate(workspace_id=workspace_id)
    before = state(template, values) if existing is not None else None
    for key, value in values.items():
        setattr(template, key, value)
    db.session.add(template)
    if actor is not None:  # the demo seed writes its templates unaudited
        record(actor, "template.update" if existing is not None else "template.create", template, before,
               state(template, values), workspace_id=workspace_id, keep=("name",))
    outbox.commit()
    return template


# -- sending rules ------------------------------------------------------------------------------------
def do_set_sending_rules(channel: Channel, *, send_hours: str, daily_limit: str, rate_per_minute: str,
                         actor: User | None = None) -> None:
    """The channel's allowed hours, daily bulk limit and rate (see orchestrator/sending_rules.py)."""
    from ..orchestrator.sending_rules import format_hours, parse_hours

    settings = dict(channel.settings or {})
    hours = (send_hours or "").strip()
    if hours and parse_hours(hours) is None:
        raise ValidationError(_("Write the allowed hours as 09:00-20:00."), field="send_hours")
    for key, raw in (("daily_limit", daily_limit), ("rate_per_minute", rate_per_minute)):
        raw = (raw or "").strip()
        if raw and (not raw.isdigit() or int(raw) <= 0):
            raise ValidationError(_("Limits are whole numbers above zero (or empty for none)."), field=key)
        if raw:
            settings[key] = int(raw)
        else:
            settings.pop(key, None)
    if hours:
        settings["send_hours"] = format_hours(parse_hours(hours))
    else:
        settings.pop("send_hours", None)
    from .audit import record

    record(actor, "channel.sending_rules", channel, {"settings": dict(channel.settings or {})}, {"settings": settings})
    channel.settings = settings
    outbox.commit()


# -- campaigns: compose ---------------------------------------------------------------------------
def access_campaign(campaign_id: int, user: User) -> Campaign:
    return get_in_workspace(Campaign, campaign_id, user.workspace_id)


def check_campaign_form(form, *, user: User) -> dict:
    name = " ".join((form.get("name") or "").split())[:120]
    if not name:
        raise ValidationError(_("Give the campaign a name."), field="name")
    template = db.session.get(OutboundTemplate, form.get("template_id", type=int) or 0)
    if template is None or template.workspace_id != user.workspace_id:
        raise ValidationError(_("Pick a template."), field="template_id")
    segment = db.session.get(Segment, form.get("segment_id", type=int) or 0)
    if segment is None or segment.workspace_id != user.workspace_id:
        raise ValidationError(_("Pick a segment."), field="segment_id")
    variables = {}
    for line in (form.get("variables") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            variables[key.strip()] = value.strip()[:500]
    order = [k for k in form.getlist("channel_order") if k in set(ChannelKind)] or [str(k) for k in DEFAULT_CHANNEL_ORDER]
    return {"name": name, "template_id": template.id, "segment_id": segment.id, "variables": variables,
            "channel_order": order, "require_opt_in": form.get("require_opt_in") == "1"}


CAMPAIGN_RUN_FIELDS = ("name", "status", "scheduled_at")


def do_create_campaign(workspace_id: int, values: dict, *, actor: User) -> Campaign:
    campaign = Campaign(workspace_id=workspace_id, created_by_id=actor.id, status=CampaignStatus.DRAFT, **values)
    db.session.add(campaign)
    record(actor, "campaign.create", campaign, None, state(campaign, values))
    outbox.commit()
    return campaign


def do_update_campaign(campaign: Campaign, values: dict, *, actor: User) -> Campaign:
    if not campaign.is_editable:
        raise ValidationError(_("A campaign that has started can no longer be edited."), field="name")
    before = state(campaign, values)
    for key, value in values.items():
        setattr(campaign, key, value)
    record(actor, "campaign.update", campaign, before, state(campaign, values), keep=("name",))
    outbox.commit()
    return campaign


@dataclass
class AudiencePlan:
    """Who would receive the campaign, on which channel, and who is listed apart (and why)."""

    recipients: list[tuple[Contact, Channel]] = field(default_factory=list)
    skipped: list[tuple[Contact, str]] = field(default_factory=list)

    @property
    def by_channel(self) -> dict[Channel, int]:
        counts: dict[Channel, int] = defaultdict(int)
        for _contact, channel in self.recipients:
            counts[channel] += 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    @property
    def skipped_by_reason(self) -> dict[str, list[Contact]]:
        grouped: dict[str, list[Contact]] = defaultdict(list)
        for contact, reason in self.skipped:
            grouped[reason].append(contact)
        return dict(grouped)


def plan_audience(campaign: Campaign, *, now: datetime) -> AudiencePlan:
    """The segment's contacts today, each with the channel the campaign would use (a few queries,
    whatever the audience size: contacts, their identities, their consents, the channels)."""
    ids = segment_contact_ids(campaign.workspace_id, campaign.segment.rules, now=now)
    contacts = list(db.session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id)))
    consents = Consent.of_contacts([c.id for c in contacts])
    channels = sendable_channels(campaign.workspace_id)
    plan = AudiencePlan()
    for contact in contacts:
        choice = choose_channel(contact, channels=channels, consents=consents, template=campaign.template,
                                order=campaign.channel_order, require_opt_in=campaign.require_opt_in)
        if choice.channel is None:
            plan.skipped.append((contact, choice.reason))
        else:
            plan.recipients.append((contact, choice.channel))
    return plan


def rendered_for(campaign: Campaign, contact: Contact, channel: Channel, *, workspace_name: str) -> Rendered:
    values = contact_values(contact, workspace_name=workspace_name, extra=campaign.variables)
    link = unsubscribe_url(contact, channel.kind, campaign_id=campaign.id) if channel.kind == ChannelKind.EMAIL else None
    return render_template(campaign.template, channel, values, unsubscribe_url=link)


def preview(campaign: Campaign, plan: AudiencePlan, *, count: int = 3) -> list[tuple[Contact, Channel, Rendered]]:
    """The message as a few real recipients will get it (one per channel first, then others)."""
    workspace = db.session.get(Workspace, campaign.workspace_id)
    picked, seen_channels = [], set()
    for contact, channel in plan.recipients:
        if channel.id not in seen_channels:
            picked.append((contact, channel))
            seen_channels.add(channel.id)
    for contact, channel in plan.recipients:
        if len(picked) >= count:
            break
        if (contact, channel) not in picked:
            picked.append((contact, channel))
    return [(contact, channel, rendered_for(campaign, contact, channel, workspace_name=workspace.name))
            for contact, channel in picked[:count]]


# -- campaigns: launch and control ----------------------------------------------------------------
def do_launch_campaign(campaign: Campaign, *, actor: User, at: datetime | None = None,
                       now: datetime | None = None) -> Campaign:
    """Send now (at None or past) or at a scheduled time."""
    now = now or utcnow()
    if not campaign.is_editable:
        raise ValidationError(_("This campaign has already started."), field="status")
    if at is not None and at > now:
        before = state(campaign, CAMPAIGN_RUN_FIELDS)
        campaign.status, campaign.scheduled_at = CampaignStatus.SCHEDULED, at
        record(actor, "campaign.schedule", campaign, before, state(campaign, CAMPAIGN_RUN_FIELDS), keep=("name",))
        _progress_event(campaign)
        outbox.commit()
        return campaign
    _start(campaign, now, actor=actor)
    return campaign


def _start(campaign: Campaign, now: datetime, *, actor: User | None = None) -> bool:
    """Freeze the audience and start sending; only the run that moves the status does it."""
    before = {"name": campaign.name, "status": campaign.status}  # the update below syncs the loaded row
    claimed = db.session.execute(
        update(Campaign).where(Campaign.id == campaign.id,
                               Campaign.status.in_([CampaignStatus.DRAFT, CampaignStatus.SCHEDULED]))
        .values(status=CampaignStatus.SENDING, started_at=now))
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    if actor is not None:  # a person's launch; a scheduled start is the tick's, already logged when scheduled
        record(actor, "campaign.launch", campaign, before, {"name": campaign.name, "status": CampaignStatus.SENDING},
               keep=("name",))
    plan = plan_audience(campaign, now=now)
    rows = [{"campaign_id": campaign.id, "contact_id": c.id, "channel_id": ch.id, "state": RecipientState.PENDING}
            for c, ch in plan.recipients]
    rows += [{"campaign_id": campaign.id, "contact_id": c.id, "channel_id": None, "state": RecipientState.SKIPPED,
              "reason": reason} for c, reason in plan.skipped]
    if rows:
        db.session.execute(insert(CampaignRecipient), [{"reason": None, **row} for row in rows])
    # Right away rather than at the next tick; with the launch time, like a tick's slot time.
    outbox.enqueue_job(RUN_JOB, campaign.id, now.isoformat(), job_id=f"campaign-{campaign.id}-start",
                       workspace_id=campaign.workspace_id, queue=BACKGROUND_QUEUE)
    _progress_event(campaign)
    outbox.commit()
    db.session.refresh(campaign)
    log.info("campaign started campaign_id=%s recipients=%s skipped=%s", campaign.id, len(plan.recipients),
             len(plan.skipped))
    return True


def do_pause_campaign(campaign: Campaign, *, actor: User) -> None:
    _move(campaign, CampaignStatus.SENDING, CampaignStatus.PAUSED,
          _("Only a campaign that is sending can be paused."), actor=actor, action="campaign.pause")


def do_resume_campaign(campaign: Campaign, *, actor: User) -> None:
    _move(campaign, CampaignStatus.PAUSED, CampaignStatus.SENDING, _("Only a paused campaign can be resumed."),
          actor=actor, action="campaign.resume")
    now = utcnow()
    outbox.enqueue_job(RUN_JOB, campaign.id, now.isoformat(), job_id=f"campaign-{campaign.id}-resume-{int(now.timestamp())}",
                       workspace_id=campaign.workspace_id, queue=BACKGROUND_QUEUE)
    outbox.commit()


def do_cancel_campaign(campaign: Campaign, *, actor: User) -> None:
    """Stop for good: the recipients not reached yet are marked cancelled (what left, left)."""
    before = {"name": campaign.name, "status": campaign.status}
    result = db.session.execute(
        update(Campaign).where(Campaign.id == campaign.id, Campaign.status.in_(
            [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED]))
        .values(status=CampaignStatus.CANCELLED, finished_at=utcnow()))
    if result.rowcount != 1:
        outbox.discard()
        raise ValidationError(_("This campaign is already finished."), field="status")
    record(actor, "campaign.cancel", campaign, before, {"name": campaign.name, "status": CampaignStatus.CANCELLED},
           keep=("name",))
    db.session.execute(update(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id,
                                                       CampaignRecipient.state == RecipientState.PENDING)
                       .values(state=RecipientState.CANCELLED))
    _progress_event(campaign)
    outbox.commit()
    db.session.refresh(campaign)


def _move(campaign: Campaign, source: CampaignStatus, target: CampaignStatus, refusal: str, *,
          actor: User | None = None, action: str = "") -> None:
    result = db.session.execute(update(Campaign).where(Campaign.id == campaign.id, Campaign.status == source)
                                .values(status=target))
    if result.rowcount != 1:
        outbox.discard()
        raise ValidationError(refusal, field="status")
    if action:
        record(actor, action, campaign, {"name": campaign.name, "status": source},
               {"name": campaign.name, "status": target}, keep=("name",))
    _progress_event(campaign)
    outbox.commit()
    db.session.refresh(campaign)


# -- campaigns: the tick --------------------------------------------------------------------------
def run_campaigns(now: datetime, *, campaign_id: int | None = None) -> dict[str, int]:
    """Start scheduled campaigns that are due, release what each channel allows, stamp replies."""
    done = {"started": 0, "queued": 0, "replies": 0}
    due = select(Campaign.id).where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= now)
    sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
    if campaign_id is not None:
        due, sending = due.where(Campaign.id == campaign_id), sending.where(Campaign.id == campaign_id)
    for cid in db.session.scalars(due.order_by(Campaign.scheduled_at)).all():
        done["started"] += _start(db.session.get(Campaign, cid), now)
    for cid in db.session.scalars(sending.order_by(Campaign.id)).all():
        done["queued"] += _send_batch(db.session.get(Campaign, cid), now)
    done["replies"] = mark_replies(now, campaign_id=campaign_id)
    return done


def _send_batch(campaign: Campaign, now: datetime) -> int:
    workspace = db.session.get(Workspace, campaign.workspace_id)
    channel_ids = db.session.scalars(
        select(CampaignRecipient.channel_id).where(CampaignRecipient.campaign_id == campaign.id,
                                                   CampaignRecipient.state == RecipientState.PENDING)
        .distinct()).all()
    queued, waiting = 0, None
    for channel_id in sorted(channel_ids):
        channel = db.session.get(Channel, channel_id)
        rules = SendRules.of(channel)
        if not channel.enabled:
            waiting = waiting or "channel_disabled"
            continue
        if not allowed_at(rules, now, workspace.timezone):
            waiting = waiting or "quiet_hours"
            continue
        room = rules.rate_per_minute - sent_last_minute(channel.id, now)
        if rules.daily_limit is not None:
            room = min(room, rules.daily_limit - bulk_sent_today(channel.id, now, workspace.timezone))
        if room <= 0:
            waiting = waiting or ("daily_limit" if rules.daily_limit is not None and
                                  bulk_sent_today(channel.id, now, workspace.timezone) >= rules.daily_limit
                                  else "rate_limit")
            continue
        ids = db.session.scalars(
            select(CampaignRecipient.id).where(CampaignRecipient.campaign_id == campaign.id,
                                               CampaignRecipient.channel_id == channel.id,
                                               CampaignRecipient.state == RecipientState.PENDING)
            .order_by(CampaignRecipient.id).limit(room)).all()
        db.session.rollback()  # end the read: each release below is its own short write transaction
        for recipient_id in ids:
            outcome = _release(campaign, recipient_id, channel, rules, now, workspace)
            if outcome == "queued":
                queued += 1
            elif outcome in ("rate_limit", "daily_limit", "paused"):
                waiting = waiting or outcome
                break
    _finish_or_wait(campaign, now, waiting)
    return queued


def _release(campaign: Campaign, recipient_id: int, channel: Channel, rules: SendRules, now: datetime,
             workspace: Workspace) -> str:
    """One recipient, one transaction: re-check the limits under the channel's lock, claim, queue."""
    if db.engine.dialect.name == "postgresql":  # SQLite: jobs already hold the write lock (BEGIN IMMEDIATE)
        db.session.execute(select(Channel.id).where(Channel.id == channel.id).with_for_update())
    if sent_last_minute(channel.id, now) >= rules.rate_per_minute:
        db.session.rollback()
        return "rate_limit"
    if rules.daily_limit is not None and bulk_sent_today(channel.id, now, workspace.timezone) >= rules.daily_limit:
        db.session.rollback()
        return "daily_limit"
    still_sending = exists().where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.SENDING)
    claimed = db.session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.id == recipient_id, CampaignRecipient.state == RecipientState.PENDING, still_sending)
        .values(state=RecipientState.QUEUED, queued_at=now))
    if claimed.rowcount != 1:
        db.session.rollback()
        return "paused" if db.session.get(Campaign, campaign.id).status != CampaignStatus.SENDING else "gone"
    recipient = db.session.get(CampaignRecipient, recipient_id)
    contact = recipient.contact
    if Consent.is_opted_out(contact.id, channel.kind):  # said STOP since the launch
        recipient.state, recipient.reason, recipient.queued_at = RecipientState.SKIPPED, "opted_out", None
        _progress_event(campaign)
        outbox.commit()
        return "skipped"
    conversation = conversation_for(contact, new_status=ConversationStatus.RESOLVED)
    rendered = rendered_for(campaign, contact, channel, workspace_name=workspace.name)
    message = queue_message(conversation, channel, rendered, sender_kind=SenderKind.AGENT,
                            sender_user_id=campaign.created_by_id,
                            meta={"campaign_id": campaign.id, "campaign_name": campaign.name},
                            idempotency_key=f"campaign-{campaign.id}-{contact.id}")
    recipient.message_id = message.id
    _progress_event(campaign)
    outbox.commit()
    return "queued"


def _finish_or_wait(campaign: Campaign, now: datetime, waiting: str | None) -> None:
    pending = db.session.scalar(select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.state == RecipientState.PENDING))
    if not pending:
        result = db.session.execute(update(Campaign).where(Campaign.id == campaign.id,
                                                           Campaign.status == CampaignStatus.SENDING)
                                    .values(status=CampaignStatus.DONE, finished_at=now, waiting_reason=None))
        if result.rowcount:
            log.info("campaign done campaign_id=%s", campaign.id)
    elif campaign.waiting_reason != waiting:
        db.session.execute(update(Campaign).where(Campaign.id == campaign.id).values(waiting_reason=waiting))
    else:
        db.session.rollback()
        return
    _progress_event(campaign)
    outbox.commit()


def mark_replies(now: datetime, *, campaign_id: int | None = None) -> int:
    """Link a customer's first message after a campaign message to the campaign (replied)."""
    recent = select(Campaign.id).where(
        Campaign.status.in_([CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.DONE,
                             CampaignStatus.CANCELLED]),
        (Campaign.finished_at.is_(None)) | (Campaign.finished_at > now - REPLY_WINDOW))
    if campaign_id is not None:
        recent = recent.where(Campaign.id == campaign_id)
    r = CampaignRecipient
    replied = exists().where(Message.contact_id == r.contact_id, Message.direction == Direction.INBOUND,
                             Message.created_at >= r.queued_at)
    rows = db.session.execute(select(r.id, r.contact_id, r.queued_at, r.campaign_id).where(
        r.campaign_id.in_(recent), r.state == RecipientState.QUEUED, r.replied_at.is_(None), replied)).all()
    changed, touched = 0, set()
    for recipient_id, contact_id, queued_at, cid in rows:
        first = db.session.execute(
            select(Message.id, Message.created_at).where(Message.contact_id == contact_id,
                                                         Message.direction == Direction.INBOUND,
                                                         Message.created_at >= queued_at)
            .order_by(Message.created_at, Message.id).limit(1)).first()
        changed += db.session.execute(update(r).where(r.id == recipient_id, r.replied_at.is_(None))
                                      .values(reply_message_id=first.id, replied_at=first.created_at)).rowcount
        touched.add(cid)
    if changed:
        for cid in sorted(touched):
            outbox.publish_event(_workspace_of(cid), f"campaign-{cid}-progress")
        outbox.commit()
    else:
        db.session.rollback()
    return changed


def _workspace_of(campaign_id: int) -> int:
    return db.session.scalar(select(Campaign.workspace_id).where(Campaign.id == campaign_id))


def _progress_event(campaign: Campaign) -> None:
    outbox.publish_event(campaign.workspace_id, f"campaign-{campaign.id}-progress")


# -- progress -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Progress:
    audience: int  # everyone frozen at launch, skipped ones included
    skipped: int
    pending: int
    queued: int  # handed to delivery
    sent: int  # accepted by the provider (or further)
    delivered: int
    failed: int
    replied: int
    cancelled: int

    @property
    def to_send(self) -> int:
        return self.audience - self.skipped - self.cancelled

    def percent(self, value: int) -> int:
        return round(100 * value / self.to_send) if self.to_send else 0


def progress(campaign: Campaign) -> Progress:
    """Every counter of the progress bar in one query."""
    r, status = CampaignRecipient, Message.delivery_status

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    stmt = (select(
        func.count(r.id), count(r.state == RecipientState.SKIPPED), count(r.state == RecipientState.PENDING),
        count(r.state == RecipientState.QUEUED), count(status.in_(list(SENT_STATUSES))),
        count(status.in_([DeliveryStatus.DELIVERED, DeliveryStatus.READ])), count(status == DeliveryStatus.FAILED),
        count(r.replied_at.is_not(None)), count(r.state == RecipientState.CANCELLED))
        .select_from(r).outerjoin(Message, and_(Message.id == r.message_id))
        .where(r.campaign_id == campaign.id))
    return Progress(*(int(v or 0) for v in db.session.execute(stmt).one()))


def recipients_page(campaign: Campaign, *, state: str | None = None, limit: int = 50) -> list[CampaignRecipient]:
    stmt = select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)
    if state in set(RecipientState):
        stmt = stmt.where(CampaignRecipient.state == state)
    elif state == "replied":
        stmt = stmt.where(CampaignRecipient.replied_at.is_not(None))
    return list(db.session.scalars(stmt.order_by(CampaignRecipient.id).limit(limit)))


def campaigns_of(workspace_id: int) -> list[Campaign]:
    return list(db.session.scalars(select(Campaign).where(Campaign.workspace_id == workspace_id)
                                   .order_by(Campaign.id.desc()).limit(200)))
