"""Sara's automatic answers and the channel's rules: quiet hours, daily limit, switched off per
channel. Real webhooks, the route job, the fake Twilio server; time comes from the clock."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from inbox.actions.conversations import do_assign
from inbox.extensions import db
from inbox.models import Channel, Message, SaraDecision, SaraSettings, Ticket, utcnow
from inbox.orchestrator.delivery import webhook_url
from inbox.orchestrator.sara import release_held_reply
from inbox.sandbox import twilio as twilio_fake
from inbox.sandbox import twilio_whatsapp as whatsapp_fake
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN

from ..conftest import PUBLIC_BASE_URL, run_jobs
from .test_sara import fresh, sara  # noqa: F401  (sara is a fixture)

HOURS_QUESTION = "Quels sont vos horaires ?"


def set_channel(channel: Channel, **values) -> None:
    channel = db.session.get(Channel, channel.id)
    channel.settings = {**(channel.settings or {}), **values}
    db.session.commit()


def quiet_now(workspace) -> str:
    """Allowed hours that start two hours from now (local), so now is in the quiet hours."""
    local = utcnow().astimezone(ZoneInfo(workspace.timezone))
    start = (local.hour + 2) % 24
    return f"{start:02d}:00-{start + 1:02d}:00"


def whatsapp_in(app, channel, body, sender="+33645112233"):
    params = whatsapp_fake.inbound_whatsapp_payload(sender=sender, body=body)
    url = webhook_url(channel)
    response = app.test_client().post(url.removeprefix(PUBLIC_BASE_URL), data=params,
                                      headers={"X-Twilio-Signature": twilio_fake.sign(DEMO_AUTH_TOKEN, url, params)})
    assert response.status_code == 200
    run_jobs(app)  # route: Sara decides
    run_jobs(app)  # deliver what she sent, if anything


def release(decision_id, now):
    fresh()  # as the job does: a new transaction, which sees what the requests committed
    return release_held_reply(decision_id, now=now)


def bot_messages():
    return list(db.session.scalars(select(Message).where(Message.sender_kind == "bot")))


def test_quiet_hours_hold_the_answer_until_the_opening_then_send_it(app, sara, whatsapp, fake_twilio, logged_in):
    set_channel(whatsapp, send_hours=quiet_now(sara))
    whatsapp_in(app, whatsapp, HOURS_QUESTION)

    fresh()
    decision = db.session.scalar(select(SaraDecision))
    assert decision.kind == "auto_reply" and decision.guardrail == "quiet_hours"
    assert decision.reply_state == "held" and "lundi au vendredi" in decision.held_reply
    assert decision.reply_at > utcnow() and "quiet hours" in decision.reason
    assert bot_messages() == [] and fake_twilio.sent == []
    page = logged_in.get(f"/inbox/c/{decision.conversation_id}").get_data(as_text=True)
    assert "Sara répondra à l&#39;ouverture des heures d&#39;envoi" in page or \
        "Sara répondra à l'ouverture des heures d'envoi" in page
    assert "quiet hours" in page

    assert release(decision.id, decision.reply_at - timedelta(minutes=5)) == "held"  # too early
    assert release(decision.id, decision.reply_at) == "sent"
    assert release(decision.id, decision.reply_at) is None  # once only
    run_jobs(app)

    fresh()
    assert [m.body for m in bot_messages()] == [decision.held_reply]
    assert len(fake_twilio.sent) == 1 and "9h" in fake_twilio.sent[0]["Body"]
    assert db.session.get(SaraDecision, decision.id).reply_state == "sent"


def test_a_person_taking_the_conversation_cancels_the_held_answer(app, sara, whatsapp, fake_twilio, agent):
    set_channel(whatsapp, send_hours=quiet_now(sara))
    whatsapp_in(app, whatsapp, HOURS_QUESTION)
    fresh()
    decision = db.session.scalar(select(SaraDecision))
    do_assign(db.session.get(Message, decision.message_id).conversation, agent, actor=agent)

    assert release(decision.id, decision.reply_at) == "dropped"
    run_jobs(app)
    fresh()
    assert bot_messages() == [] and fake_twilio.sent == []
    line = db.session.scalars(select(Message).where(Message.sender_kind == "system")).all()[-1]
    assert "a team member took the conversation" in line.body


def test_a_held_answer_goes_to_the_team_when_the_channel_no_longer_allows_it(app, sara, whatsapp, fake_twilio):
    set_channel(whatsapp, send_hours=quiet_now(sara))
    whatsapp_in(app, whatsapp, HOURS_QUESTION)
    fresh()
    decision = db.session.scalar(select(SaraDecision))
    settings = db.session.get(SaraSettings, sara.id)
    settings.auto_reply_off_channels = [whatsapp.id]
    db.session.commit()

    assert release(decision.id, decision.reply_at) == "dropped"
    fresh()
    decision = db.session.get(SaraDecision, decision.id)
    assert decision.ticket_id is not None
    assert decision.held_reply not in [m.body for m in bot_messages()]  # only the ticket's "we'll answer" note


def test_the_daily_limit_sends_the_conversation_to_people(app, sara, whatsapp, fake_twilio):
    set_channel(whatsapp, daily_limit=1)
    whatsapp_in(app, whatsapp, HOURS_QUESTION)  # the first automatic answer of the day goes
    whatsapp_in(app, whatsapp, "Vous êtes ouverts le samedi ?", sender="+33645998877")

    fresh()
    first, second = db.session.scalars(select(SaraDecision).order_by(SaraDecision.id)).all()
    assert first.kind == "auto_reply" and first.guardrail is None
    assert second.kind == "escalate" and second.guardrail == "daily_limit"
    assert "daily limit of 1" in second.reason
    assert db.session.get(Ticket, second.ticket_id) is not None
    answers = [m.body for m in bot_messages() if "lundi au vendredi" in m.body]
    assert len(answers) == 1  # the second customer gets the ticket's "a person will answer" note instead


def test_auto_replies_switched_off_on_one_channel(app, sara, whatsapp, fake_twilio):
    settings = SaraSettings.of(sara.id)
    settings.auto_reply_off_channels = [whatsapp.id]
    db.session.add(settings)
    db.session.commit()
    whatsapp_in(app, whatsapp, HOURS_QUESTION)

    fresh()
    decision = db.session.scalar(select(SaraDecision))
    assert decision.kind == "escalate" and decision.guardrail == "auto_reply_off"
    assert bot_messages() == []
