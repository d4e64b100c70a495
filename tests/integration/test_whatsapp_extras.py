"""WhatsApp extras from the inbox composer: a location and quick-reply buttons. Sent through the
real reply route, stored in the message's meta, shown in the thread, and delivered by the RQ
worker to the fake Meta Cloud API (a "location" message, an "interactive" message with reply
buttons) and the fake Twilio (a geo: PersistentAction, the buttons as a numbered list). Bad input:
422 and nothing stored; outside the 24-hour window they are refused like free text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from inbox.channels.base import InboundMessage
from inbox.extensions import db
from inbox.models import Message, utcnow
from inbox.orchestrator.ingest import do_ingest
from inbox.sandbox.twilio import new_sid

from ..conftest import run_jobs

PHONE = "+33645112233"
PARIS = {"location_latitude": "48.8584", "location_longitude": "2.2945", "location_name": "Tour Eiffel",
         "location_address": "Champ de Mars, 75007 Paris"}


@pytest.fixture(autouse=True)
def english(agent):
    agent.locale = "en"  # the assertions read the English messages
    db.session.commit()
    return agent


def fresh():
    db.session.rollback()
    db.session.expire_all()


def customer_wrote(channel, *, ago=timedelta(minutes=5)):
    do_ingest(channel, InboundMessage(provider_message_id=new_sid("SM"), sender=PHONE, recipient=channel.address,
                                      body="Bonjour", sent_at=utcnow() - ago))
    return db.session.scalar(select(Message).order_by(Message.id.desc())).conversation


def reply(client, conversation, channel, *, body="", key="k1", buttons=(), **fields):
    data = {"body": body, "channel_id": channel.id, "idempotency_key": key, **fields}
    if buttons:
        data["quick_reply"] = list(buttons)
    return client.post(f"/inbox/c/{conversation.id}/reply", data=data, headers={"HX-Request": "true"})


def outbound_messages(conversation) -> list[Message]:
    fresh()
    return list(db.session.scalars(select(Message).where(
        Message.conversation_id == conversation.id, Message.direction == "outbound", Message.internal.is_(False))))


# -- Meta Cloud API --------------------------------------------------------------------------------
def test_meta_location_is_a_location_message_and_the_thread_links_to_the_map(
        app, logged_in, meta_channel, fake_meta):
    conversation = customer_wrote(meta_channel)
    response = reply(logged_in, conversation, meta_channel, **PARIS)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Tour Eiffel" in html and "https://www.openstreetmap.org/?mlat=48.8584&amp;mlon=2.2945" in html
    [message] = outbound_messages(conversation)
    assert message.meta["send"]["location"] == {"latitude": 48.8584, "longitude": 2.2945, "name": "Tour Eiffel",
                                                "address": "Champ de Mars, 75007 Paris"}

    run_jobs(app)
    run_jobs(app)  # the claim: a second run sends nothing more

    [sent] = fake_meta.sent
    assert sent["type"] == "location" and sent["to"] == "33645112233"
    assert sent["location"] == {"latitude": 48.8584, "longitude": 2.2945, "name": "Tour Eiffel",
                                "address": "Champ de Mars, 75007 Paris"}
    assert outbound_messages(conversation)[0].delivery_status in ("accepted", "sent")


def test_meta_quick_replies_are_interactive_reply_buttons_shown_as_pills(app, logged_in, meta_channel, fake_meta):
    conversation = customer_wrote(meta_channel)
    response = reply(logged_in, conversation, meta_channel, body="Le créneau vous convient ?",
                     buttons=["Oui", "Non", "Autre date"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'class="msg-buttons"' in html and "<li>Autre date</li>" in html

    run_jobs(app)

    [sent] = fake_meta.sent
    assert sent["type"] == "interactive"
    interactive = sent["interactive"]
    assert interactive["type"] == "button" and interactive["body"] == {"text": "Le créneau vous convient ?"}
    assert [b["type"] for b in interactive["action"]["buttons"]] == ["reply"] * 3
    assert [b["reply"]["title"] for b in interactive["action"]["buttons"]] == ["Oui", "Non", "Autre date"]


# -- Twilio ------------------------------------------------------------------------------------------
def test_twilio_location_is_a_geo_persistent_action_and_buttons_a_numbered_list(
        app, logged_in, whatsapp, fake_twilio):
    conversation = customer_wrote(whatsapp)
    assert reply(logged_in, conversation, whatsapp, body="Rendez-vous ici", key="t1", **PARIS).status_code == 200
    assert reply(logged_in, conversation, whatsapp, body="Ça vous va ?", key="t2",
                 buttons=["Oui", "Non"]).status_code == 200
    run_jobs(app)

    located, choices = sorted(fake_twilio.sent, key=lambda s: s["Body"] != "Rendez-vous ici")
    assert located["Body"] == "Rendez-vous ici" and located["To"] == f"whatsapp:{PHONE}"
    assert "geo:48.8584,2.2945|Tour Eiffel" in str(located["PersistentAction"])
    assert choices["Body"] == "Ça vous va ?\n\n1. Oui\n2. Non"


# -- refused ---------------------------------------------------------------------------------------
def test_invalid_extras_are_422_and_nothing_is_stored(app, logged_in, meta_channel, sms_channel, fake_meta):
    conversation = customer_wrote(meta_channel)
    cases = [
        ({**PARIS, "location_latitude": "91"}, "", (), "latitude must be between -90 and 90"),
        ({**PARIS, "location_longitude": "abc"}, "", (), "needs a latitude and a longitude"),
        ({"location_name": "Sans coordonnées"}, "", (), "needs a latitude and a longitude"),
        ({}, "", ("Oui",), "need a message text"),
        ({}, "Choisissez", ("Un", "Deux", "Trois", "Quatre"), "At most 3"),
        ({}, "Choisissez", ("Un titre beaucoup trop long",), "limited to 20 characters"),
        ({}, "Choisissez", ("Oui", "Oui"), "same title"),
    ]
    for fields, body, buttons, error in cases:
        response = reply(logged_in, conversation, meta_channel, body=body, buttons=buttons, **fields)
        assert response.status_code == 422, fields
        assert error in response.get_data(as_text=True), error
    # Only on WhatsApp, never in an internal note.
    response = reply(logged_in, conversation, meta_channel, body="Note", internal="1", **PARIS)
    assert response.status_code == 422 and "only be sent on WhatsApp" in response.get_data(as_text=True)
    fresh()
    assert db.session.scalar(select(func.count(Message.id)).where(Message.direction == "outbound")) == 0
    run_jobs(app)
    assert fake_meta.sent == []


def test_outside_the_window_a_location_is_refused_like_free_text(app, logged_in, meta_channel, fake_meta):
    conversation = customer_wrote(meta_channel, ago=timedelta(days=2))
    composer = logged_in.get(f"/inbox/c/{conversation.id}/composer?channel_id={meta_channel.id}")
    assert 'name="location_latitude"' not in composer.get_data(as_text=True)  # not offered: templates only
    assert reply(logged_in, conversation, meta_channel, **PARIS).status_code == 200  # an API client, say
    run_jobs(app)
    [message] = outbound_messages(conversation)
    assert message.delivery_status == "failed" and fake_meta.sent == []


def test_the_composer_offers_labelled_extras_on_whatsapp_only(app, logged_in, meta_channel, sms_channel):
    conversation = customer_wrote(meta_channel)
    html = logged_in.get(f"/inbox/c/{conversation.id}/composer?channel_id={meta_channel.id}").get_data(as_text=True)
    assert 'class="composer-more"' in html and html.count('name="quick_reply"') == 3
    assert 'name="location_latitude"' in html and 'name="location_address"' in html
    other = customer_wrote(sms_channel)
    html = logged_in.get(f"/inbox/c/{other.id}/composer?channel_id={sms_channel.id}").get_data(as_text=True)
    assert "composer-more" not in html
