"""Appointments (rendez-vous): created and changed by agents on the client page (audited; the
client told of a new time or a cancellation), reminded the day before on the client's channel,
confirmed or cancelled by the client's answer, which Sara collects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask_babel import force_locale
from flask_babel import gettext as _

from . import get_in_workspace
from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..models import (
    Appointment, AppointmentStatus, Contact, Conversation, ConversationStatus, SenderKind, User, Workspace, utcnow,
)
from ..orchestrator.outbound import Rendered, conversation_for, queue_message
from . import audit
from .conversations import do_send_bot_reply, pick_reply_channel

log = logging.getLogger(__name__)
REMINDER_AHEAD = timedelta(hours=24)


def access_appointment(appointment_id: int, user: User) -> Appointment:
    return get_in_workspace(Appointment, appointment_id, user.workspace_id)


def check_appointment(starts_at: datetime | None, *, now: datetime) -> datetime:
    if starts_at is None:
        raise ValidationError(_("Choose a date and time."), field="starts_at")
    if starts_at <= now:
        raise ValidationError(_("The appointment must be in the future."), field="starts_at")
    return starts_at


class Told(StrEnum):
    """What the client is told of an agent's change."""
    CREATED = "created"
    MOVED = "moved"
    CANCELLED = "cancelled"


AUDITED = ("starts_at", "status", "subject", "location", "duration_minutes")


@dataclass(frozen=True, slots=True)
class AppointmentChange:
    starts_at: datetime
    status: AppointmentStatus
    subject: str
    location: str
    notify: bool  # tell the client when the time moves or it is cancelled


def check_appointment_form(form, *, timezone: str, now: datetime,
                           current: Appointment | None = None) -> AppointmentChange:
    """The client page's form: a date and time read in the workspace's zone, a status, what and
    where. A new time must be in the future; an unchanged past time may keep its new status
    (marking yesterday's appointment done or missed)."""
    raw = (form.get("starts_at") or "").strip()
    try:
        naive = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        naive = None
    starts_at = naive.replace(tzinfo=ZoneInfo(timezone)).astimezone(now.tzinfo) if naive else None
    if current is None or starts_at is None or abs(starts_at - current.starts_at) >= timedelta(minutes=1):
        starts_at = check_appointment(starts_at, now=now)
    else:
        starts_at = current.starts_at
    try:
        status = AppointmentStatus(form.get("status") or AppointmentStatus.SCHEDULED)
    except ValueError:
        raise ValidationError(_("Unknown status."), field="status") from None
    subject, location = (form.get("subject") or "").strip(), (form.get("location") or "").strip()
    if len(subject) > 200 or len(location) > 200:
        raise ValidationError(_("200 characters at most."), field="subject" if len(subject) > 200 else "location")
    return AppointmentChange(starts_at=starts_at, status=status, subject=subject, location=location,
                             notify=bool(form.get("notify")))


def do_update_appointment(appointment: Appointment, change: AppointmentChange, *, actor: User,
                          now: datetime | None = None) -> bool:
    """Reschedule, change the status or cancel, with an audit entry. A new time asks for a new
    confirmation (and a new reminder the day before). With `notify`, a new time or a
    cancellation is told to the client on their channel, in the same transaction.
    Returns False when the client should have been told but no channel reaches them."""
    now = now or utcnow()
    before = audit.state(appointment, AUDITED)
    moved = abs(change.starts_at - appointment.starts_at) >= timedelta(minutes=1)
    cancelled = (change.status == AppointmentStatus.CANCELLED and appointment.status != AppointmentStatus.CANCELLED)
    was_confirmed = appointment.status == AppointmentStatus.CONFIRMED
    appointment.starts_at, appointment.subject, appointment.location = change.starts_at, change.subject, change.location
    appointment.status = change.status
    if moved and appointment.is_upcoming:
        if was_confirmed and change.status == AppointmentStatus.CONFIRMED:
            appointment.status = AppointmentStatus.SCHEDULED  # the confirmation was for the old time
        appointment.reminder_sent_at = appointment.answered_at = None  # a new reminder the day before
    audit.record(actor, "appointment.cancel" if cancelled else "appointment.update", appointment, before,
                 audit.state(appointment, AUDITED))
    told = True
    if change.notify and (cancelled or (moved and appointment.is_upcoming)):
        told = _tell_client(appointment, what=Told.CANCELLED if cancelled else Told.MOVED, actor=actor, now=now)
    outbox.commit()
    return told


def do_cancel_appointment(appointment: Appointment, *, actor: User, notify: bool) -> bool:
    change = AppointmentChange(starts_at=appointment.starts_at, status=AppointmentStatus.CANCELLED,
                               subject=appointment.subject, location=appointment.location, notify=notify)
    return do_update_appointment(appointment, change, actor=actor)


def do_agent_create_appointment(contact: Contact, change: AppointmentChange, *, actor: User) -> Appointment:
    appointment = Appointment(workspace_id=contact.workspace_id, contact_id=contact.id, agent_id=actor.id,
                              starts_at=change.starts_at, location=change.location, subject=change.subject,
                              status=AppointmentStatus.SCHEDULED)
    db.session.add(appointment)
    audit.record(actor, "appointment.create", appointment, None, audit.state(appointment, AUDITED))
    if change.notify:
        _tell_client(appointment, what=Told.CREATED, actor=actor, now=utcnow())
    outbox.commit()
    return appointment


def _tell_client(appointment: Appointment, *, what: Told, actor: User, now: datetime) -> bool:
    """The new time or the cancellation, on the client's channel, sent as the agent. Within a day
    of the appointment the message is also its reminder (the client's OUI / NON is collected)."""
    contact = appointment.contact or db.session.get(Contact, appointment.contact_id)
    conversation = conversation_for(contact, new_status=ConversationStatus.PENDING)
    try:
        channel = pick_reply_channel(conversation, contact)
    except ValidationError:
        log.info("appointment change not told appointment_id=%s: no channel reaches the contact", appointment.id)
        return False
    ask = (what != Told.CANCELLED and appointment.status == AppointmentStatus.SCHEDULED
           and appointment.starts_at <= now + REMINDER_AHEAD)
    meta = {"appointment_id": appointment.id}
    if ask:
        appointment.reminder_sent_at = now
        meta["awaiting"] = "appointment_confirmation"
    queue_message(conversation, channel, Rendered(body=change_text(appointment, what=what, ask=ask)),
                  sender_kind=SenderKind.AGENT, sender_user_id=actor.id, meta=meta)
    return True


def change_text(appointment: Appointment, *, what: Told, ask: bool) -> str:
    """What the client is told, in their language."""
    workspace = db.session.get(Workspace, appointment.workspace_id)
    locale = appointment.contact.locale or workspace.default_locale
    when = _when(appointment, workspace, locale)
    with force_locale(locale):
        if what == Told.CANCELLED:
            return _("Your appointment with %(workspace)s on %(when)s is cancelled.", workspace=workspace.name,
                     when=when)
        if what == Told.MOVED:
            text = _("Your appointment with %(workspace)s has been moved to %(when)s.", workspace=workspace.name,
                     when=when)
        else:
            text = _("Your appointment with %(workspace)s is on %(when)s.", workspace=workspace.name, when=when)
        if appointment.location:
            text += " " + _("Place: %(place)s.", place=appointment.location)
        if ask:
            return text + " " + _("Reply YES to confirm or NO to cancel.")
        if appointment.status == AppointmentStatus.SCHEDULED:
            return text + " " + _("We will remind you the day before.")
        return text


def _when(appointment: Appointment, workspace: Workspace, locale: str) -> str:
    return format_datetime(appointment.starts_at.astimezone(ZoneInfo(workspace.timezone)),
                           "EEEE d MMMM 'à' HH:mm" if locale == "fr" else "EEEE d MMMM 'at' HH:mm", locale=locale)


def do_create_appointment(contact: Contact, *, starts_at: datetime, agent: User | None = None,
                          location: str = "", subject: str = "", duration_minutes: int = 30) -> Appointment:
    appointment = Appointment(workspace_id=contact.workspace_id, contact_id=contact.id,
                              agent_id=agent.id if agent else None, starts_at=starts_at,
                              duration_minutes=duration_minutes, location=location, subject=subject)
    db.session.add(appointment)
    outbox.commit()
    return appointment


def do_answer_appointment(appointment: Appointment, *, confirmed: bool, now: datetime | None = None,
                          commit: bool = True) -> None:
    """The client's OUI (confirm) or NON / ANNULER (cancel) to a reminder."""
    appointment.status = AppointmentStatus.CONFIRMED if confirmed else AppointmentStatus.CANCELLED
    appointment.answered_at = now or utcnow()
    if commit:
        outbox.commit()


def do_send_reminders(now: datetime) -> int:
    """Remind every appointment starting within 24 hours, once, on the client's channel."""
    sent = 0
    for appointment in Appointment.due_for_reminder(now, ahead=REMINDER_AHEAD):
        if _remind(appointment, now=now):
            sent += 1
    outbox.commit()
    return sent


def _remind(appointment: Appointment, *, now: datetime) -> bool:
    contact = appointment.contact
    conversation = Conversation.active_for_contact(contact.id)
    if conversation is None:
        conversation = Conversation(workspace_id=contact.workspace_id, contact_id=contact.id,
                                    status=ConversationStatus.PENDING, last_activity_at=now)
        db.session.add(conversation)
        db.session.flush()
    try:
        channel = pick_reply_channel(conversation, contact)
    except ValidationError:
        log.info("appointment reminder skipped appointment_id=%s: no channel reaches the contact", appointment.id)
        appointment.reminder_sent_at = now  # do not retry every minute; the CRM page shows it
        return False
    do_send_bot_reply(conversation, reminder_text(appointment), channel=channel,
                      meta={"appointment_id": appointment.id, "awaiting": "appointment_confirmation"},
                      commit=False)
    appointment.reminder_sent_at = now
    return True


def reminder_text(appointment: Appointment) -> str:
    workspace = db.session.get(Workspace, appointment.workspace_id)
    locale = appointment.contact.locale or workspace.default_locale
    when = _when(appointment, workspace, locale)
    with force_locale(locale):
        text = _("Reminder: your appointment with %(workspace)s is on %(when)s.", workspace=workspace.name, when=when)
        if appointment.location:
            text += " " + _("Place: %(place)s.", place=appointment.location)
        return text + " " + _("Reply YES to confirm or NO to cancel.")


def upcoming_text(appointments: list[Appointment], *, workspace: Workspace, locale: str) -> str:
    """The answer to "my appointments" (/rdv): the list, or that there is none."""
    with force_locale(locale):
        if not appointments:
            return _("You have no upcoming appointment.")
        lines = [_("Your upcoming appointments:")]
        for a in appointments:
            when = format_datetime(a.starts_at.astimezone(ZoneInfo(workspace.timezone)), "EEE d MMM HH:mm",
                                   locale=locale)
            state = _("confirmed") if a.status == AppointmentStatus.CONFIRMED else _("to confirm")
            lines.append(f"• {when} — {a.location or a.subject or workspace.name} ({state})")
        return "\n".join(lines)
