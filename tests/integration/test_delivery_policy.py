"""The delivery policy: provider rate limits honoured with the delay they give, per-conversation
order kept, and a reply that cannot go out on its channel (window closed, channel disabled,
refused) sent once on the contact's next preferred channel, with a line in the thread."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from inbox.actions.conversations import reply_channels
from inbox.actions.workspace import do_create_contact
from inbox.broker import get_queue
from inbox.channels.base import InboundMessage
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Conversation, Message, utcnow
from inbox.orchestrator.delivery import fall_back
from inbox.orchestrator.ingest import do_ingest
from inbox.sandbox import telegram as telegram_fake
from inbox.sandbox import twilio_whatsapp as whatsapp_fake
from inbox.sandbox.twilio import new_sid

from ..conftest import run_jobs
from ..helpers import signed_post

PHONE = "+33622334455"


def fresh():
    db.session.rollback()
    db.session.expire_all()


def reply(client, conversation, body, key, **extra):
    return client.post(f"/inbox/c/{conversation.id}/reply", data={"body": body, "idempotency_key": key, **extra},
                       headers={"HX-Request": "true"})


def outbound() -> list[Message]:
    fresh()
    return list(db.session.scalars(select(Message).where(Message.direction == "outbound", Message.internal.is_(False))
                                   .order_by(Message.id)))


def scheduled() -> dict[str, float]:
    registry = ScheduledJobRegistry(queue=get_queue())
    return {job_id: registry.get_scheduled_time(job_id).timestamp() for job_id in registry.get_job_ids()}


def run_scheduled(app) -> None:
    """What the worker's scheduler does when the time comes (without waiting for it)."""
    queue = get_queue()
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
        queue.enqueue_job(queue.fetch_job(job_id))
    run_jobs(app)


def customer_wrote(channel, body="Bonjour", *, ago=timedelta(0), sender=PHONE) -> Message:
    result = do_ingest(channel, InboundMessage(provider_message_id=new_sid("SM"), sender=sender,
                                               recipient=channel.address, body=body, sent_at=utcnow() - ago))
    return db.session.get(Message, result.message_id)


@pytest.fixture
def hugo(workspace):
    return do_create_contact(workspace, name="Hugo Lambert", preferred_channel=ChannelKind.WHATSAPP,
                             identities={ChannelKind.SMS: PHONE, ChannelKind.WHATSAPP: PHONE})


# -- rate limits ------------------------------------------------------------------------------------
def test_telegram_flood_control_waits_the_retry_after_it_gives(app, logged_in, telegram, fake_telegram):
    update = telegram_fake.text_update(527401983, "Bonjour")
    logged_in.post(f"/webhooks/telegram/telegram/{telegram.public_id}", data=json.dumps(update),
                   content_type="application/json",
                   headers={telegram_fake.SECRET_HEADER: telegram_fake.DEMO_WEBHOOK_SECRET})
    conversation = db.session.scalar(select(Conversation))
    fake_telegram.fail_next(status=429, retry_after=7, method="sendMessage")
    reply(logged_in, conversation, "Nous regardons", "t1")
    before = time.time()
    run_jobs(app)

    [message] = outbound()
    assert message.delivery_status == "queued" and message.attempts == 0 and message.meta["rate_limited"] == 1
    waits = scheduled()
    assert list(waits) == [f"deliver-{message.id}-wait-1"]  # no fixed-backoff retry besides it
    assert before + 6 <= waits[f"deliver-{message.id}-wait-1"] <= time.time() + 8

    run_scheduled(app)
    assert outbound()[0].delivery_status == "sent"


def test_twilio_429_waits_the_default_delay(app, logged_in, client, sms_channel, fake_twilio):
    signed_post(client, sms_channel, whatsapp_fake.inbound_whatsapp_payload(sender=PHONE, to=sms_channel.address) | {
        "From": PHONE, "To": sms_channel.address})
    conversation = db.session.scalar(select(Conversation))
    fake_twilio.fail_next(status=429, code=20429, message="Too Many Requests")
    reply(logged_in, conversation, "Un instant", "s1")
    run_jobs(app)
    [message] = outbound()
    at = scheduled()[f"deliver-{message.id}-wait-1"]
    assert 25 <= at - time.time() <= 31  # DELIVERY_RATE_LIMIT_DELAY defaults to 30 s


def test_meta_throttling_is_a_rate_limit(app, logged_in, meta_channel, fake_meta, hugo):
    customer_wrote(meta_channel)
    conversation = db.session.scalar(select(Conversation))
    fake_meta.fail_next(status=400, code=130429, message="Rate limit hit")
    reply(logged_in, conversation, "Un instant", "m1", channel_id=meta_channel.id)
    run_jobs(app)
    [message] = outbound()
    assert message.delivery_status == "queued" and f"deliver-{message.id}-wait-1" in scheduled()


def test_a_later_reply_never_overtakes_an_earlier_one_still_waiting(app, logged_in, client, sms_channel, fake_twilio):
    customer_wrote(sms_channel)
    conversation = db.session.scalar(select(Conversation))
    fake_twilio.fail_next(status=429, code=20429, message="Too Many Requests")
    reply(logged_in, conversation, "Premier", "o1")
    reply(logged_in, conversation, "Second", "o2")
    run_jobs(app)  # the first is rate limited; the second waits behind it
    first, second = outbound()
    assert (first.delivery_status, second.delivery_status) == ("queued", "queued") and second.attempts == 0
    assert fake_twilio.sent == []
    assert f"deliver-{second.id}-recheck-{first.id}" in scheduled()  # in case the first one gets stuck

    run_scheduled(app)  # the first goes, then hands on to the second
    assert [m["Body"] for m in fake_twilio.sent] == ["Premier", "Second"]
    assert [m.delivery_status for m in outbound()] == ["accepted", "accepted"]


def test_a_failed_earlier_reply_releases_the_next_one(app, logged_in, sms_channel, fake_twilio):
    customer_wrote(sms_channel)
    conversation = db.session.scalar(select(Conversation))
    fake_twilio.fail_next(status=400, code=21211, message="Invalid To")
    reply(logged_in, conversation, "Premier", "f1")
    reply(logged_in, conversation, "Second", "f2")
    run_jobs(app)
    first, second = outbound()
    assert first.delivery_status == "failed" and second.delivery_status == "accepted"


# -- fallback ---------------------------------------------------------------------------------------
def test_closed_whatsapp_window_falls_back_to_sms_and_the_thread_says_so(app, logged_in, agent, whatsapp,
                                                                          sms_channel, fake_twilio, hugo):
    agent.locale = "en"
    db.session.commit()
    customer_wrote(sms_channel, "Par SMS", ago=timedelta(days=3))
    customer_wrote(whatsapp, "Par WhatsApp", ago=timedelta(days=2))
    conversation = db.session.scalar(select(Conversation))
    assert [c.kind for c in reply_channels(conversation)] == ["whatsapp", "sms"]  # last used first

    reply(logged_in, conversation, "Votre commande est prête", "w1", channel_id=whatsapp.id)
    run_jobs(app)
    failed, follow = outbound()
    assert failed.delivery_status == "failed" and failed.error_code == "63016"
    assert follow.channel_id == sms_channel.id and follow.body == "Votre commande est prête"
    assert follow.delivery_status == "accepted" and follow.meta["fallback_of"] == failed.id
    assert [m["To"] for m in fake_twilio.sent] == [PHONE]  # WhatsApp was never called, SMS once
    line = db.session.scalar(select(Message).where(Message.sender_kind == "system"))
    assert line.event["kind"] == "fallback" and line.event["reason"] == "window"
    page = logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert "sent by SMS instead of WhatsApp: window closed" in page

    assert fall_back(db.session.get(Message, failed.id), code="63016") is None  # never twice


def test_a_disabled_channel_falls_back(app, logged_in, whatsapp, sms_channel, fake_twilio, hugo):
    sms_id = sms_channel.id
    customer_wrote(whatsapp, "Bonjour")
    customer_wrote(sms_channel, "Bonjour", ago=timedelta(hours=1))
    conversation = db.session.scalar(select(Conversation))
    reply(logged_in, conversation, "Réponse", "d1", channel_id=whatsapp.id)
    fresh()  # end this session's read snapshot before writing (SQLite)
    whatsapp.enabled = False
    db.session.commit()
    run_jobs(app)
    failed, follow = outbound()
    assert failed.error_code == "disabled" and follow.channel_id == sms_id
    assert follow.delivery_status == "accepted"


def test_an_undelivered_status_with_a_window_error_falls_back(app, logged_in, client, whatsapp, sms_channel,
                                                              fake_twilio, hugo):
    customer_wrote(whatsapp, "Bonjour")
    conversation = db.session.scalar(select(Conversation))
    reply(logged_in, conversation, "Réponse", "u1", channel_id=whatsapp.id)
    run_jobs(app)
    [sent] = outbound()
    status = whatsapp_fake.whatsapp_status_payload(message_sid=sent.provider_message_id, status="undelivered",
                                                   sender=whatsapp.address, to="whatsapp:" + PHONE,
                                                   error_code="63016")
    assert signed_post(client, whatsapp, status, suffix="/status").status_code == 200
    failed, follow = outbound()
    assert failed.delivery_status == "failed" and follow.channel_id == sms_channel.id


def test_no_fallback_after_an_ambiguous_failure_or_without_another_channel(app, logged_in, sms_channel, fake_twilio):
    customer_wrote(sms_channel)
    conversation = db.session.scalar(select(Conversation))
    fake_twilio.fail_next(status=400, code=21211, message="Invalid To")
    reply(logged_in, conversation, "Réponse", "n1")
    run_jobs(app)
    [failed] = outbound()
    assert failed.delivery_status == "failed"
    assert fall_back(failed, code="timeout") is None
