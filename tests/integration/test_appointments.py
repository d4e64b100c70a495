"""Appointment reminders go out once, the day before, on the client's channel."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from inbox.actions.appointments import do_create_appointment, do_send_reminders
from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Appointment, Message, utcnow

from ..conftest import run_jobs


def test_reminder_sent_once_on_the_clients_channel(app, sms_channel, workspace, fake_twilio):
    contact = do_create_contact(workspace, name="Élodie Fournier", identities={ChannelKind.SMS: "+33612345678"},
                                preferred_channel=ChannelKind.SMS)
    now = utcnow()
    soon = do_create_appointment(contact, starts_at=now + timedelta(hours=20), location="Agence de Lyon")
    later = do_create_appointment(contact, starts_at=now + timedelta(days=3))

    assert do_send_reminders(now) == 1
    assert do_send_reminders(now + timedelta(minutes=5)) == 0  # once
    run_jobs(app)

    [sent] = fake_twilio.sent
    assert sent["To"] == "+33612345678" and "Agence de Lyon" in sent["Body"] and "OUI" in sent["Body"]
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Appointment, soon.id).reminder_sent_at is not None
    assert db.session.get(Appointment, later.id).reminder_sent_at is None
    bot = db.session.scalar(select(Message).where(Message.sender_kind == "bot"))
    assert bot.meta == {"appointment_id": soon.id, "awaiting": "appointment_confirmation"}
    assert Appointment.awaiting_answer(contact.id, now).id == soon.id
