"""Appointments (rendez-vous): created by agents, reminded the day before on the client's
channel, confirmed or cancelled by the client's answer, which Sara collects."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import abort
from flask_babel import force_locale
from flask_babel import gettext as _

from .. import outbox
from ..errors import ValidationError
from ..extensions import db
from ..models import (
    Appointment, AppointmentStatus, Contact, Conversation, ConversationStatus, User, Workspace, utcnow,
)
from .conversations import do_send_bot_reply, pick_reply_channel

log = logging.getLogger(__name__)
REMINDER_AHEAD = timedelta(hours=24)


def access_appointment(appointment_id: int, user: User) -> Appointment:
    appointment = db.session.get(Appointment, appointment_id)
    if appointment is None or appointment.workspace_id != user.workspace_id:
        abort(404)
    return appointment


def check_appointment(starts_at: datetime | None, *, now: datetime) -> datetime:
    if starts_at is None:
        raise ValidationError(_("Choose a date and time."), field="starts_at")
    if starts_at <= now:
        raise ValidationError(_("The appointment must be in the future."), field="starts_at")
    return starts_at


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
    when = format_datetime(appointment.starts_at.astimezone(ZoneInfo(workspace.timezone)),
                           "EEEE d MMMM 'à' HH:mm" if locale == "fr" else "EEEE d MMMM 'at' HH:mm", locale=locale)
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
