"""A call that leaves no voicemail is not lost: Twilio's end-of-call status callback and a VAPI
report in which the caller said nothing become a "missed call" in the caller's history, once."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from inbox.broker import get_queue
from inbox.extensions import db
from inbox.models import Message
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import twilio as twilio_fake
from inbox.sandbox import twilio_voice as voice_fake
from inbox.sandbox import vapi as vapi_fake
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

from ..conftest import PUBLIC_BASE_URL

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def fresh():
    db.session.rollback()
    db.session.expire_all()


def post_twilio(client, url: str, form: dict, *, token: str = DEMO_AUTH_TOKEN):
    signature = twilio_fake.sign(token, url, form)
    return client.post(url.removeprefix(PUBLIC_BASE_URL), data=form, headers={"X-Twilio-Signature": signature})


def route_jobs() -> list[str]:
    return [j for j in get_queue().job_ids if j.startswith("route-")]


def test_a_twilio_call_without_voicemail_is_a_missed_call_shown_in_the_thread(app, logged_in, client, twilio_voice):
    status = fixture("twilio_voice/call_status_completed_no_voicemail.json")
    url = webhook_url(twilio_voice)
    assert post_twilio(client, url, status).status_code == 200
    assert post_twilio(client, url, status).status_code == 200  # Twilio retried: stored once

    fresh()
    [message] = db.session.scalars(select(Message)).all()
    assert message.meta["missed_call"] is True and message.meta["call_sid"] == status["CallSid"]
    assert message.contact.phone == "+33698765432" and message.meta["call_duration_seconds"] == 6
    assert route_jobs() == []  # nothing to answer: the team calls back
    assert message.conversation.unread_count == 1
    thread = client.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)
    assert 'class="msg-call msg-missed"><svg class="ch-icon ch-voice"' in thread and "Appel manqué" in thread
    assert message.body == "Appel manqué" and message.conversation.last_message_preview == "Appel manqué"


def test_a_forged_status_callback_stores_nothing(app, client, twilio_voice):
    status = fixture("twilio_voice/call_status_completed_no_voicemail.json")
    assert post_twilio(client, webhook_url(twilio_voice), status, token="not-the-token").status_code == 403
    fresh()
    assert db.session.scalar(select(func.count(Message.id))) == 0


def test_a_status_callback_before_the_voicemail_gives_one_voicemail_routed_once(app, client, twilio_voice):
    sender = "+33611223344"
    call = voice_fake.inbound_call_payload(account_sid=DEMO_ACCOUNT_SID, sender=sender, to=twilio_voice.address)
    answer = post_twilio(client, webhook_url(twilio_voice), call)
    callback = voice_fake.record_urls(answer.get_data(as_text=True))["recording"]
    ended = voice_fake.call_status_payload(account_sid=DEMO_ACCOUNT_SID, call_sid=call["CallSid"], sender=sender,
                                           to=twilio_voice.address, duration=31)
    recording = voice_fake.recording_status_payload(account_sid=DEMO_ACCOUNT_SID, call_sid=call["CallSid"])
    transcript = voice_fake.transcription_payload(
        account_sid=DEMO_ACCOUNT_SID, call_sid=call["CallSid"], sender=sender, to=twilio_voice.address,
        recording_sid=recording["RecordingSid"], text="Rappelez-moi pour le devis, merci.")
    assert post_twilio(client, webhook_url(twilio_voice), ended).status_code == 200
    fresh()
    assert db.session.scalar(select(Message)).meta["missed_call"] is True  # for now
    for form in (recording, transcript):
        assert post_twilio(client, callback, form).status_code == 200

    fresh()
    [message] = db.session.scalars(select(Message)).all()
    assert message.meta["missed_call"] is False and message.body == "Rappelez-moi pour le devis, merci."
    assert message.meta["recording_url"] and message.meta["call_duration_seconds"] == 31
    assert route_jobs() == [f"route-{message.id}"]


def test_a_busy_or_unanswered_call_is_missed_too(app, client, twilio_voice):
    for status in ("busy", "no-answer"):
        form = voice_fake.call_status_payload(account_sid=DEMO_ACCOUNT_SID, call_sid=twilio_fake.new_sid("CA"),
                                              sender="+33600000001", to=twilio_voice.address, status=status, duration=0)
        assert post_twilio(client, webhook_url(twilio_voice), form).status_code == 200
    fresh()
    messages = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert [m.meta["call_status"] for m in messages] == ["busy", "no-answer"]
    assert all(m.meta["missed_call"] for m in messages) and len({m.conversation_id for m in messages}) == 1


def test_a_vapi_call_where_the_caller_said_nothing_is_a_missed_call(app, logged_in, client, vapi):
    payload = fixture("vapi/end_of_call_report_customer_silent.json")
    body = vapi_fake.encode(payload)
    path = webhook_url(vapi).removeprefix(PUBLIC_BASE_URL)
    headers = vapi_fake.auth_headers(body, mode="secret", secret=vapi_fake.DEMO_VAPI_WEBHOOK_SECRET)
    assert client.post(path, data=body, headers=headers).status_code == 200
    assert client.post(path, data=body, headers=headers).status_code == 200  # stored once
    assert client.post(path, data=body, headers={"X-Vapi-Secret": "nope"}).status_code == 403

    fresh()
    [message] = db.session.scalars(select(Message)).all()
    assert message.meta["missed_call"] is True and message.meta["call_id"] == payload["message"]["call"]["id"]
    assert message.contact.phone == "+33698765432" and route_jobs() == []
    thread = client.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)
    assert "Appel manqué" in thread and "Bonjour, service client" not in thread


def test_a_vapi_call_with_no_transcript_at_all_is_missed_and_one_with_speech_is_not(app, client, vapi):
    path = webhook_url(vapi).removeprefix(PUBLIC_BASE_URL)
    unanswered = vapi_fake.call_object(customer_number="+33600000002", transcript="",
                                       ended_reason="customer-did-not-answer", duration_seconds=0)
    spoken = vapi_fake.call_object(customer_number="+33600000003", transcript="AI: Bonjour\nUser: Mon colis ?")
    for call in (unanswered, spoken):
        body = vapi_fake.encode(vapi_fake.end_of_call_report(call))
        headers = vapi_fake.auth_headers(body, mode="secret", secret=vapi_fake.DEMO_VAPI_WEBHOOK_SECRET)
        assert client.post(path, data=body, headers=headers).status_code == 200
    fresh()
    missed, answered = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert missed.meta.get("missed_call") is True and answered.meta.get("missed_call") is None
    assert route_jobs() == [f"route-{answered.id}"]


def test_the_greeting_speaks_the_workspaces_language(app, client, workspace, twilio_voice):
    call = voice_fake.inbound_call_payload(account_sid=DEMO_ACCOUNT_SID, sender="+33611223344", to=twilio_voice.address)
    french = post_twilio(client, webhook_url(twilio_voice), call).get_data(as_text=True)
    workspace.default_locale = "en"
    db.session.commit()
    english = post_twilio(client, webhook_url(twilio_voice), call).get_data(as_text=True)
    assert 'language="fr-FR"' in french and "Bonjour" in french
    assert 'language="en-US"' in english and "Hello, you have reached customer support" in english
