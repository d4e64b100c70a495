"""Every channel through the real webhooks into one history per customer, and back out
through each provider's real client to its fake on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from inbox.actions.workspace import do_create_channel, do_create_contact
from inbox.broker import get_queue
from inbox.extensions import db
from inbox.kinds import ChannelKind, Provider
from inbox.models import Attachment, Contact, Conversation, Message
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import meta as meta_fake
from inbox.sandbox import smtp as smtp_fake
from inbox.sandbox import telegram as telegram_fake
from inbox.sandbox import twilio as twilio_fake
from inbox.sandbox import twilio_voice as voice_fake
from inbox.sandbox import twilio_whatsapp as whatsapp_fake
from inbox.sandbox import vapi as vapi_fake
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

from ..conftest import MAILGUN_KEY, PUBLIC_BASE_URL, run_jobs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def path_of(channel, suffix: str = "") -> str:
    return webhook_url(channel, suffix).removeprefix(PUBLIC_BASE_URL)


def fresh():
    db.session.rollback()
    db.session.expire_all()


def reply(client, conversation, body, key):
    return client.post(f"/inbox/c/{conversation.id}/reply", data={"body": body, "idempotency_key": key},
                       headers={"HX-Request": "true"})


def post_mailgun(client, channel, raw: bytes, *, token: str | None = None):
    form = smtp_fake.mailgun_mime_form(raw, signing_key=MAILGUN_KEY, recipient=channel.address,
                                       sender="client@example.fr", token=token)
    return client.post(path_of(channel), data={k: v for k, v in form.items()})


def test_whatsapp_via_twilio_in_and_out(app, logged_in, client, whatsapp, fake_twilio):
    params = whatsapp_fake.inbound_whatsapp_payload(sender="+33645112233", body="Bonjour sur WhatsApp 👋")
    url = webhook_url(whatsapp)
    response = client.post(path_of(whatsapp), data=params,
                           headers={"X-Twilio-Signature": twilio_fake.sign(DEMO_AUTH_TOKEN, url, params)})
    assert response.status_code == 200
    message = db.session.scalar(select(Message))
    assert message.body == "Bonjour sur WhatsApp 👋" and message.channel_id == whatsapp.id

    assert reply(logged_in, message.conversation, "Bonjour, que puis-je faire ?", "w1").status_code == 200
    run_jobs(app)
    assert fake_twilio.sent[-1]["To"] == "whatsapp:+33645112233"
    assert fake_twilio.sent[-1]["Body"] == "Bonjour, que puis-je faire ?"


def test_meta_handshake_and_a_batched_post_with_messages_and_a_status(app, client, meta_channel):
    challenge = client.get(path_of(meta_channel), query_string={
        "hub.mode": "subscribe", "hub.verify_token": meta_fake.DEMO_VERIFY_TOKEN, "hub.challenge": "8421"})
    assert challenge.status_code == 200 and challenge.get_data(as_text=True) == "8421"
    refused = client.get(path_of(meta_channel), query_string={
        "hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "8421"})
    assert refused.status_code == 403

    payload = meta_fake.envelope(meta_fake.value(
        messages=[meta_fake.text_message("33645112233", "Premier"), meta_fake.text_message("33622334455", "Second")],
        contacts=[("33645112233", "Nadia Benali"), ("33622334455", "Hugo Lambert")]))
    body, headers = meta_fake.signed_request(payload)
    assert client.post(path_of(meta_channel), data=body, headers=headers).status_code == 200
    assert sorted(db.session.scalars(select(Message.body))) == ["Premier", "Second"]
    assert "Nadia Benali" in db.session.scalars(select(Contact.name)).all()
    body, headers = meta_fake.signed_request(payload)
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert client.post(path_of(meta_channel), data=body, headers=forged).status_code == 403


def test_telegram_private_message_and_a_long_reply_split_in_parts(app, logged_in, client, telegram, fake_telegram):
    update = telegram_fake.text_update(527401983, "Salut, la facture de novembre est en double")
    ok = client.post(path_of(telegram), data=json.dumps(update), content_type="application/json",
                     headers={telegram_fake.SECRET_HEADER: telegram_fake.DEMO_WEBHOOK_SECRET})
    wrong = client.post(path_of(telegram), data=json.dumps(update), content_type="application/json",
                        headers={telegram_fake.SECRET_HEADER: "nope"})
    assert ok.status_code == 200 and wrong.status_code == 403
    message = db.session.scalar(select(Message))
    assert message.body.startswith("Salut")

    long_text = ("Voici le détail de votre facture. " * 200).strip()  # ~6,800 characters
    assert reply(logged_in, message.conversation, long_text, "t1").status_code == 200
    run_jobs(app)
    sent = [m for m in fake_telegram.sent if m.get("method") in (None, "sendMessage")]
    assert len(sent) >= 2 and all(len(m.get("text", "")) <= 4096 for m in sent)


def test_email_in_threads_and_out_with_headers_and_attachments(app, logged_in, client, email, fake_smtp):
    raw = (FIXTURES / "email" / "html_cid_tracking.eml").read_bytes()
    assert post_mailgun(client, email, raw).status_code == 200
    first = db.session.scalar(select(Message))
    customer = first.contact.email
    assert first.subject and first.html
    assert "<script" not in first.html and "tracking" not in first.html.lower().split("src=")[-1][:40]
    stored = db.session.scalars(select(Attachment).where(Attachment.storage_key.is_not(None))).all()
    assert stored and all(f"/inbox/attachments/{a.id}" in first.html for a in stored if a.content_id)
    frame = logged_in.get(f"/inbox/m/{first.id}/html")
    assert "script-src 'none'" in frame.headers["Content-Security-Policy"]
    assert logged_in.get(f"/inbox/attachments/{stored[0].id}").status_code == 200

    assert reply(logged_in, first.conversation, "Bonjour, c'est corrigé.", "e1").status_code == 200
    run_jobs(app)
    [mail] = fake_smtp.wait_for(1)
    sent = mail.message
    fresh()
    ours = db.session.scalar(select(Message).where(Message.direction == "outbound", Message.internal.is_(False)))
    assert ours.delivery_status == "sent" and ours.thread_ref
    text = str(sent)
    assert f"In-Reply-To: {first.thread_ref}" in text and "Re:" in text

    answer = (f"From: {customer}\r\nTo: {email.address}\r\nSubject: Re: suite\r\n"
              f"Message-ID: <answer-1@example.fr>\r\nIn-Reply-To: {ours.thread_ref}\r\n"
              f"References: {first.thread_ref} {ours.thread_ref}\r\n\r\nMerci beaucoup !\r\n").encode()
    other = db.session.get(Conversation, first.conversation_id)
    other.status = "resolved"  # a reply to a resolved thread reopens it
    db.session.commit()
    assert post_mailgun(client, email, answer).status_code == 200
    fresh()
    threaded = db.session.scalar(select(Message).where(Message.thread_ref == "<answer-1@example.fr>"))
    assert threaded.conversation_id == first.conversation_id
    assert db.session.get(Conversation, first.conversation_id).status == "open"


def test_email_replayed_mailgun_token_is_ignored(app, client, email):
    raw = (FIXTURES / "email" / "plain_fr.eml").read_bytes()
    token = "b" * 50
    assert post_mailgun(client, email, raw, token=token).status_code == 200
    other = raw.replace(b"Message-ID:", b"X-Old-Id:")  # another body with the same token
    assert post_mailgun(client, email, other, token=token).status_code == 200
    assert db.session.scalar(select(func.count(Message.id))) == 1


def test_auto_replies_are_kept_but_never_routed(app, client, email):
    raw = (FIXTURES / "email" / "auto_reply.eml").read_bytes()
    assert post_mailgun(client, email, raw).status_code == 200
    assert db.session.scalar(select(func.count(Message.id))) == 1
    assert not [j for j in get_queue().job_ids if j.startswith("route-")]


def test_dangerous_attachment_is_refused_and_named(app, client, email):
    raw = (FIXTURES / "email" / "attachment_traversal.eml").read_bytes()
    assert post_mailgun(client, email, raw).status_code == 200
    for attachment in db.session.scalars(select(Attachment)):
        assert "/" not in (attachment.filename or "") and ".." not in (attachment.filename or "")


def test_vapi_end_of_call_report_lands_in_the_callers_history(app, client, vapi):
    call = vapi_fake.call_object(customer_number="+33170809010")
    payload = vapi_fake.end_of_call_report(call)
    body = vapi_fake.encode(payload)
    headers = vapi_fake.auth_headers(body, mode="secret", secret=vapi_fake.DEMO_VAPI_WEBHOOK_SECRET)
    assert client.post(path_of(vapi), data=body, headers=headers).status_code == 200
    assert client.post(path_of(vapi), data=body, headers=headers).status_code == 200  # retried: stored once
    message = db.session.scalar(select(Message))
    assert db.session.scalar(select(func.count(Message.id))) == 1
    assert message.meta["call_id"] == call["id"] and message.contact.phone == "+33170809010"
    bad = client.post(path_of(vapi), data=body, headers={"X-Vapi-Secret": "nope"})
    assert bad.status_code == 403


def test_twilio_voicemail_recording_then_transcript_make_one_message_routed_once(app, client, twilio_voice):
    call = voice_fake.inbound_call_payload(account_sid=DEMO_ACCOUNT_SID, sender="+33611223344",
                                           to=twilio_voice.address)
    url = webhook_url(twilio_voice)
    answer = client.post(path_of(twilio_voice), data=call,
                         headers={"X-Twilio-Signature": twilio_fake.sign(DEMO_AUTH_TOKEN, url, call)})
    twiml = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<Record" in twiml and 'language="fr-FR"' in twiml
    callback = voice_fake.record_urls(twiml)["recording"]
    recording = voice_fake.recording_status_payload(account_sid=DEMO_ACCOUNT_SID, call_sid=call["CallSid"])
    transcript = voice_fake.transcription_payload(
        account_sid=DEMO_ACCOUNT_SID, call_sid=call["CallSid"], sender="+33611223344", to=twilio_voice.address,
        recording_sid=recording["RecordingSid"], text="Bonjour, notre terminal ne s'allume plus.")
    for form in (recording, transcript):
        target = callback.removeprefix(PUBLIC_BASE_URL)
        signature = twilio_fake.sign(DEMO_AUTH_TOKEN, callback, form)
        assert client.post(target, data=form, headers={"X-Twilio-Signature": signature}).status_code == 200

    fresh()
    [message] = db.session.scalars(select(Message)).all()
    assert message.body == "Bonjour, notre terminal ne s'allume plus."
    assert message.meta["recording_url"] and not message.meta.get("transcription_pending")
    assert [j for j in get_queue().job_ids if j.startswith("route-")] == [f"route-{message.id}"]


def test_one_customer_on_two_channels_has_one_history(app, logged_in, client, sms_channel, whatsapp, workspace):
    contact = do_create_contact(workspace, name="Hugo Lambert",
                                identities={ChannelKind.SMS: "+33622334455", ChannelKind.WHATSAPP: "+33622334455"})
    sms = twilio_fake.inbound_sms_payload(account_sid=DEMO_ACCOUNT_SID, sender="+33622334455",
                                          to=sms_channel.address, body="Par SMS")
    wa = whatsapp_fake.inbound_whatsapp_payload(sender="+33622334455", body="Par WhatsApp")
    for channel, params in ((sms_channel, sms), (whatsapp, wa)):
        url = webhook_url(channel)
        client.post(path_of(channel), data=params,
                    headers={"X-Twilio-Signature": twilio_fake.sign(DEMO_AUTH_TOKEN, url, params)})
    conversations = db.session.scalars(select(Conversation)).all()
    assert len(conversations) == 1 and conversations[0].contact_id == contact.id
    page = logged_in.get(f"/inbox/c/{conversations[0].id}").get_data(as_text=True)
    assert "Par SMS" in page and "Par WhatsApp" in page
    assert 'ch-icon ch-sms' in page and 'ch-icon ch-whatsapp' in page
