"""Sara on real inbound messages, through the webhooks and the route job (offline engine)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.actions.appointments import do_create_appointment, do_send_reminders
from inbox.actions.workspace import do_create_contact
from inbox.demo_sara import seed_sara
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Appointment, Message, SaraDecision, Ticket, utcnow
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import smtp as smtp_fake
from inbox.sandbox import twilio as twilio_fake
from inbox.sandbox import twilio_whatsapp as whatsapp_fake
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN

from ..conftest import MAILGUN_KEY, PUBLIC_BASE_URL, run_jobs
from ..helpers import inbound, signed_post


@pytest.fixture
def sara(workspace):
    seed_sara(workspace)
    return workspace


def fresh():
    db.session.rollback()
    db.session.expire_all()


def test_appointment_confirmed_by_sms_and_answered(app, sara, sms_channel, workspace, fake_twilio):
    contact = do_create_contact(workspace, name="Élodie Fournier", identities={ChannelKind.SMS: "+33612345678"})
    appointment = do_create_appointment(contact, starts_at=utcnow() + timedelta(hours=20))
    do_send_reminders(utcnow())
    run_jobs(app)
    signed_post(app.test_client(), sms_channel,
                inbound(sender="+33612345678", body="Je confirme mon rendez-vous de demain, OUI"))
    run_jobs(app)

    fresh()
    assert db.session.get(Appointment, appointment.id).status == "confirmed"
    decision = db.session.scalar(select(SaraDecision))
    assert decision.kind == "collect"
    assert "confirmé" in fake_twilio.sent[-1]["Body"]


def test_opening_hours_on_whatsapp_get_the_knowledge_base_answer(app, sara, whatsapp, fake_twilio):
    params = whatsapp_fake.inbound_whatsapp_payload(sender="+33645112233", body="Quels sont vos horaires ?")
    url = webhook_url(whatsapp)
    app.test_client().post(url.removeprefix(PUBLIC_BASE_URL), data=params,
                           headers={"X-Twilio-Signature": twilio_fake.sign(DEMO_AUTH_TOKEN, url, params)})
    run_jobs(app)  # route: Sara answers
    run_jobs(app)  # deliver the answer

    fresh()
    decision = db.session.scalar(select(SaraDecision))
    assert decision.kind == "auto_reply" and decision.article_id is not None
    bot = db.session.scalar(select(Message).where(Message.sender_kind == "bot"))
    assert "lundi au vendredi" in bot.body
    assert fake_twilio.sent[-1]["To"] == "whatsapp:+33645112233" and "9h" in fake_twilio.sent[-1]["Body"]


def test_angry_double_charge_by_email_becomes_a_high_priority_billing_ticket(app, sara, email, logged_in):
    raw = (b"From: Thomas <thomas@garage-lefevre.fr>\r\nTo: support@coccinelle.test\r\n"
           b"Subject: =?utf-8?q?Pr=C3=A9l=C3=A8vement?=\r\nMessage-ID: <x1@garage-lefevre.fr>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
           + "On m'a prélevé deux fois ce mois-ci, c'est inadmissible".encode())
    form = smtp_fake.mailgun_mime_form(raw, signing_key=MAILGUN_KEY, recipient=email.address,
                                       sender="thomas@garage-lefevre.fr")
    assert app.test_client().post(webhook_url(email).removeprefix(PUBLIC_BASE_URL), data=form).status_code == 200
    run_jobs(app)

    fresh()
    decision = db.session.scalar(select(SaraDecision))
    assert decision.kind == "escalate" and decision.category == "billing"
    ticket = db.session.get(Ticket, decision.ticket_id)
    assert ticket.category == "billing" and ticket.priority in ("high", "critical")
    page = logged_in.get(f"/inbox/c/{decision.conversation_id}").get_data(as_text=True)
    assert "Sara" in page and decision.reason.split()[0] in page


def test_agents_correct_sara_and_the_correction_is_kept(app, sara, sms_channel, logged_in):
    signed_post(app.test_client(), sms_channel, inbound(body="Je voudrais une facture pour mars"))
    run_jobs(app)
    fresh()
    decision = db.session.scalar(select(SaraDecision))
    response = logged_in.post(f"/inbox/sara/{decision.id}/correct", data={"category": "account"})
    assert response.status_code == 200
    fresh()
    assert db.session.get(SaraDecision, decision.id).corrected_category == "account"


def test_settings_pages_for_sara_are_admin_only(client, agent):
    from ..conftest import login

    login(client, agent)
    assert client.get("/settings/sara").status_code == 403
    assert client.get("/settings/knowledge").status_code == 403


def test_telegram_appointment_commands(app, sara, telegram, workspace, fake_telegram):
    import json

    from inbox.sandbox import telegram as telegram_fake

    contact = do_create_contact(workspace, name="Lucas Girard", identities={ChannelKind.TELEGRAM: "527401983"})
    appointment = do_create_appointment(contact, starts_at=utcnow() + timedelta(days=2), location="Agence de Lyon")
    client = app.test_client()
    for text in ("/rdv", "/annuler", "/nouveau_rdv jeudi matin"):
        update = telegram_fake.text_update(527401983, text)
        client.post(webhook_url(telegram).removeprefix(PUBLIC_BASE_URL), data=json.dumps(update),
                    content_type="application/json",
                    headers={telegram_fake.SECRET_HEADER: telegram_fake.DEMO_WEBHOOK_SECRET})
        run_jobs(app)
        run_jobs(app)

    fresh()
    answers = [m["text"] for m in fake_telegram.sent if "text" in m]
    assert "Agence de Lyon" in answers[0]
    assert db.session.get(Appointment, appointment.id).status == "cancelled"
    ticket = db.session.scalar(select(Ticket).where(Ticket.contact_id == contact.id))
    assert ticket is not None and "jeudi matin" in ticket.description
    assert len(answers) == 3
