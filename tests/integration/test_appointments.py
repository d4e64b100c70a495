"""Appointment reminders go out once, the day before, on the client's channel."""

from __future__ import annotations

import json
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


# -- on the client page (issue 5): reschedule, change the status, cancel; audited; the client told ---
def _local(at) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")


def _fresh_appointment(appointment_id: int) -> Appointment:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Appointment, appointment_id)


def test_agent_reschedules_an_appointment_and_the_client_is_told(app, logged_in, sms_channel, workspace, agent,
                                                                 fake_twilio):
    from inbox.models import AuditEntry

    contact = do_create_contact(workspace, name="Élodie Fournier", identities={ChannelKind.SMS: "+33612345678"},
                                preferred_channel=ChannelKind.SMS)
    now = utcnow()
    appointment = do_create_appointment(contact, starts_at=now + timedelta(days=3), location="Agence de Lyon")
    appointment.status, appointment.reminder_sent_at = "confirmed", now  # confirmed by the client
    db.session.commit()
    hx = {"HX-Request": "true"}

    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert f'id="appt-{appointment.id}"' in page and "Confirmé" in page
    form = logged_in.get(f"/contacts/{contact.id}/appointments/{appointment.id}/edit", headers=hx).get_data(as_text=True)
    assert f'value="{_local(appointment.starts_at)}"' in form and 'name="notify"' in form

    # Refused, nothing changes: a new time in the past, an unknown status.
    url = f"/contacts/{contact.id}/appointments/{appointment.id}"
    past = logged_in.post(url, headers=hx, data={"starts_at": _local(now - timedelta(days=1)), "status": "confirmed"})
    assert past.status_code == 422 and "Le rendez-vous doit être dans le futur." in past.get_data(as_text=True)
    assert logged_in.post(url, headers=hx, data={"starts_at": _local(appointment.starts_at),
                                                 "status": "exploded"}).status_code == 422
    assert _fresh_appointment(appointment.id).status == "confirmed"

    # Moved to tomorrow morning: the old confirmation no longer holds, the client is told and asked.
    new_time = (now + timedelta(hours=20)).replace(second=0, microsecond=0)
    response = logged_in.post(url, headers=hx, data={"starts_at": _local(new_time), "status": "confirmed",
                                                     "location": "Agence de Lyon", "subject": "Devis", "notify": "1"})
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"])["toast"]["message"] == "Rendez-vous enregistré."
    moved = _fresh_appointment(appointment.id)
    assert moved.starts_at == new_time and moved.status == "scheduled" and moved.subject == "Devis"
    assert moved.reminder_sent_at is not None  # this message is the reminder: OUI / NON is collected
    assert Appointment.awaiting_answer(contact.id, utcnow()).id == appointment.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "appointment.update"))
    assert entry.actor_id == agent.id and entry.object_id == appointment.id
    assert entry.before["status"] == "confirmed" and entry.after["status"] == "scheduled"
    assert "starts_at" in entry.after and entry.after["subject"] == "Devis"
    run_jobs(app)
    [sent] = fake_twilio.sent
    assert sent["To"] == "+33612345678" and "est déplacé au" in sent["Body"] and "OUI" in sent["Body"]
    assert do_send_reminders(utcnow()) == 0  # no second reminder

    # Marked missed afterwards without notifying: no message; then cancelled from its button: told.
    logged_in.post(url, headers=hx, data={"starts_at": _local(new_time), "status": "no_show"})
    assert _fresh_appointment(appointment.id).status == "no_show"
    response = logged_in.post(f"{url}/cancel", headers=hx, data={"notify": "1"})
    assert response.status_code == 200 and "Annulé" in response.get_data(as_text=True)
    assert _fresh_appointment(appointment.id).status == "cancelled"
    run_jobs(app)
    assert len(fake_twilio.sent) == 2 and "est annulé" in fake_twilio.sent[1]["Body"]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "appointment.cancel")).after == \
        {"status": "cancelled"}


def test_agent_adds_an_appointment_and_a_later_move_waits_for_the_reminder(app, logged_in, sms_channel, workspace,
                                                                            fake_twilio):
    contact = do_create_contact(workspace, name="Marc Petit", identities={ChannelKind.SMS: "+33698765432"})
    hx = {"HX-Request": "true"}
    at = (utcnow() + timedelta(days=5)).replace(second=0, microsecond=0)
    assert logged_in.post(f"/contacts/{contact.id}/appointments", headers=hx,
                          data={"starts_at": ""}).status_code == 422
    response = logged_in.post(f"/contacts/{contact.id}/appointments", headers=hx,
                              data={"starts_at": _local(at), "subject": "Installation", "notify": "1"})
    assert response.status_code == 200 and "Installation" in response.get_data(as_text=True)
    appointment = db.session.scalar(select(Appointment).where(Appointment.contact_id == contact.id))
    assert appointment.starts_at == at and appointment.status == "scheduled" and appointment.reminder_sent_at is None
    run_jobs(app)
    assert "Nous vous le rappellerons la veille." in fake_twilio.sent[0]["Body"]

    # Moved two days later, the client not told: nothing sent; the reminder comes the day before.
    later = at + timedelta(days=2)
    logged_in.post(f"/contacts/{contact.id}/appointments/{appointment.id}", headers=hx,
                   data={"starts_at": _local(later), "status": "scheduled"})
    assert _fresh_appointment(appointment.id).starts_at == later
    run_jobs(app)
    assert len(fake_twilio.sent) == 1
    assert do_send_reminders(later - timedelta(hours=23)) == 1


def test_appointments_of_another_workspace_or_client_are_404(logged_in, sms_channel, workspace):
    from inbox.actions.workspace import do_create_workspace

    mine = do_create_contact(workspace, name="A", identities={ChannelKind.SMS: "+33600000001"})
    other_client = do_create_contact(workspace, name="B", identities={ChannelKind.SMS: "+33600000002"})
    appointment = do_create_appointment(other_client, starts_at=utcnow() + timedelta(days=2))
    elsewhere = do_create_contact(do_create_workspace("Ailleurs", slug="ailleurs-appt"), name="C")
    foreign = do_create_appointment(elsewhere, starts_at=utcnow() + timedelta(days=2))
    hx = {"HX-Request": "true"}
    assert logged_in.post(f"/contacts/{mine.id}/appointments/{appointment.id}/cancel", headers=hx).status_code == 404
    assert logged_in.post(f"/contacts/{elsewhere.id}/appointments/{foreign.id}/cancel", headers=hx).status_code == 404
    assert _fresh_appointment(appointment.id).status == "scheduled"
    assert _fresh_appointment(foreign.id).status == "scheduled"
