"""An agent sends images and documents from the inbox: kept as the message's attachments, shown
in the thread, and handed to each provider the way it takes files — Twilio and Meta fetch a
signed, expiring URL of ours (the fakes really fetch it from the app on a real port), Telegram
gets an upload through python-telegram-bot, email gets MIME attachments. Bad files: 422, nothing
stored. Internal notes keep their files agent-side."""

from __future__ import annotations

import io
import json
import time

import pytest
from sqlalchemy import func, select

from inbox import storage
from inbox.extensions import db
from inbox.models import Attachment, Conversation, Message
from inbox.orchestrator import delivery
from inbox.orchestrator.delivery import webhook_url
from inbox.orchestrator.media import signed_media_url
from inbox.sandbox import meta as meta_fake
from inbox.sandbox import smtp as smtp_fake
from inbox.sandbox import telegram as telegram_fake
from inbox.sandbox import twilio as twilio_fake
from inbox.sandbox import twilio_whatsapp as whatsapp_fake
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN

from ..conftest import MAILGUN_KEY, PUBLIC_BASE_URL, run_jobs
from ..helpers import inbound, signed_post

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
PDF = b"%PDF-1.4\n% facture\n" + b"0" * 200 + b"\n%%EOF\n"


def fresh():
    db.session.rollback()
    db.session.expire_all()


def path_of(channel) -> str:
    return webhook_url(channel).removeprefix(PUBLIC_BASE_URL)


def send(client, conversation, *files, body="Voici le document.", key="a1", **extra):
    data = {"body": body, "idempotency_key": key, **extra,
            "files": [(io.BytesIO(content), name, content_type) for name, content_type, content in files]}
    return client.post(f"/inbox/c/{conversation.id}/reply", data=data, content_type="multipart/form-data",
                       headers={"HX-Request": "true", "HX-Target": "messages"})


def outbound(conversation) -> Message | None:
    fresh()
    return db.session.scalar(select(Message).where(Message.conversation_id == conversation.id,
                                                   Message.direction == "outbound", Message.internal.is_(False))
                             .order_by(Message.id))


def stored_files() -> list:
    root = storage._root()
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def public_app(app, live_server):
    """The app reachable at PUBLIC_BASE_URL, so providers (the fakes) can fetch our media URLs."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    return live_server


# -- conversations opened by the customer, on each channel ---------------------------------------
def sms_conversation(client, channel) -> Conversation:
    assert signed_post(client, channel, inbound(body="Bonjour")).status_code == 200
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def whatsapp_conversation(client, channel) -> Conversation:
    params = whatsapp_fake.inbound_whatsapp_payload(sender="+33645112233", body="Bonjour")
    signature = twilio_fake.sign(DEMO_AUTH_TOKEN, webhook_url(channel), params)
    assert client.post(path_of(channel), data=params, headers={"X-Twilio-Signature": signature}).status_code == 200
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def meta_conversation(client, channel) -> Conversation:
    payload = meta_fake.envelope(meta_fake.value(messages=[meta_fake.text_message("33645112233", "Bonjour")],
                                                 contacts=[("33645112233", "Nadia Benali")]))
    body, headers = meta_fake.signed_request(payload)
    assert client.post(path_of(channel), data=body, headers=headers).status_code == 200
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def telegram_conversation(client, channel) -> Conversation:
    update = telegram_fake.text_update(527401983, "Bonjour")
    assert client.post(path_of(channel), data=json.dumps(update), content_type="application/json",
                       headers={telegram_fake.SECRET_HEADER: telegram_fake.DEMO_WEBHOOK_SECRET}).status_code == 200
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def email_conversation(client, channel) -> Conversation:
    raw = (f"From: Camille <client@example.fr>\r\nTo: {channel.address}\r\nSubject: Facture\r\n"
           "Message-ID: <q-1@example.fr>\r\n\r\nPouvez-vous m'envoyer la facture ?\r\n").encode()
    form = smtp_fake.mailgun_mime_form(raw, signing_key=MAILGUN_KEY, recipient=channel.address,
                                       sender="client@example.fr")
    assert client.post(path_of(channel), data=dict(form)).status_code == 200
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


# -- each channel kind ----------------------------------------------------------------------------
def test_sms_mms_twilio_fetches_the_signed_url_and_the_thread_shows_the_image(
        app, logged_in, client, sms_channel, fake_twilio, public_app):
    fake_twilio.fetch_media = True
    conversation = sms_conversation(client, sms_channel)
    response = send(logged_in, conversation, ("photo.png", "image/png", PNG), body="La photo du colis")
    assert response.status_code == 200
    message = outbound(conversation)
    [attachment] = message.attachments
    assert attachment.filename == "photo.png" and attachment.size == len(PNG) and attachment.storage_key
    assert f"/inbox/attachments/{attachment.id}" in response.get_data(as_text=True)  # shown at once

    run_jobs(app)

    [sent] = fake_twilio.sent
    assert sent["Body"] == "La photo du colis"
    [url] = sent["MediaUrls"]
    assert url.startswith(public_app.url + "/media/") and url.endswith("/photo.png")
    assert sent["media_fetched"] == [(200, "image/png", PNG)]  # Twilio got our bytes
    assert outbound(conversation).delivery_status == "accepted"
    thread = logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert f'src="/inbox/attachments/{attachment.id}"' in thread
    assert logged_in.get(f"/inbox/attachments/{attachment.id}").data == PNG


def test_whatsapp_twilio_one_file_per_message_each_fetched(
        app, logged_in, client, whatsapp, fake_twilio, public_app):
    fake_twilio.fetch_media = True
    conversation = whatsapp_conversation(client, whatsapp)
    assert send(logged_in, conversation, ("photo.png", "image/png", PNG),
                ("facture.pdf", "application/pdf", PDF), body="Photo et facture").status_code == 200
    run_jobs(app)

    first, second = fake_twilio.sent
    assert first["To"] == "whatsapp:+33645112233" and first["Body"] == "Photo et facture"
    assert first["MediaUrls"][0].endswith("/photo.png") and second["MediaUrls"][0].endswith("/facture.pdf")
    assert "Body" not in second
    assert first["media_fetched"] == [(200, "image/png", PNG)]
    assert second["media_fetched"] == [(200, "application/pdf", PDF)]
    assert outbound(conversation).delivery_status == "accepted"


def test_whatsapp_meta_document_by_link_with_its_name(app, logged_in, client, meta_channel, fake_meta, public_app):
    fake_meta.fetch_media = True
    conversation = meta_conversation(client, meta_channel)
    assert send(logged_in, conversation, ("Facture mars.pdf", "application/pdf", PDF),
                body="Votre facture").status_code == 200
    run_jobs(app)

    [sent] = fake_meta.sent
    assert sent["type"] == "document" and sent["to"] == "33645112233"
    document = sent["document"]
    assert document["caption"] == "Votre facture" and document["filename"] == "Facture-mars.pdf"
    assert document["link"].startswith(public_app.url + "/media/")
    assert sent["media_fetched"] == (200, "application/pdf", PDF)
    assert outbound(conversation).delivery_status in ("accepted", "sent")


def test_telegram_uploads_photo_and_document_through_the_bot_api(app, logged_in, client, telegram, fake_telegram):
    conversation = telegram_conversation(client, telegram)
    assert send(logged_in, conversation, ("photo.png", "image/png", PNG),
                ("facture.pdf", "application/pdf", PDF), body="Les pièces").status_code == 200
    run_jobs(app)

    photo, document = [c for c in fake_telegram.calls if c["method"] in ("sendPhoto", "sendDocument")]
    assert photo["method"] == "sendPhoto" and photo["caption"] == "Les pièces"
    assert photo["photo"]["content"] == PNG and photo["photo"]["filename"] == "photo.png"
    assert document["method"] == "sendDocument" and str(document["chat_id"]) == "527401983"
    assert document["document"]["content"] == PDF and document["document"]["filename"] == "facture.pdf"
    assert not [c for c in fake_telegram.calls if c["method"] == "sendMessage"]  # the text is the caption
    message = outbound(conversation)
    assert message.delivery_status == "sent" and len(message.meta["provider_message_ids"]) == 2


def test_email_files_are_mime_attachments(app, logged_in, client, email, fake_smtp):
    conversation = email_conversation(client, email)
    assert send(logged_in, conversation, ("facture.pdf", "application/pdf", PDF),
                ("photo.png", "image/png", PNG), body="Ci-joint la facture.").status_code == 200
    run_jobs(app)

    [mail] = fake_smtp.wait_for(1)
    parts = {p.get_filename(): p for p in mail.message.iter_attachments()}
    assert parts["facture.pdf"].get_content_type() == "application/pdf"
    assert parts["facture.pdf"].get_payload(decode=True) == PDF
    assert parts["photo.png"].get_payload(decode=True) == PNG
    assert "Ci-joint la facture." in mail.message.get_body(("plain",)).get_content()
    assert outbound(conversation).delivery_status == "sent"


def test_a_file_alone_is_a_message(app, logged_in, client, telegram, fake_telegram):
    conversation = telegram_conversation(client, telegram)
    assert send(logged_in, conversation, ("photo.png", "image/png", PNG), body="").status_code == 200
    run_jobs(app)
    [photo] = [c for c in fake_telegram.calls if c["method"] == "sendPhoto"]
    assert "caption" not in photo
    assert outbound(conversation).body == ""


# -- never twice, bad files, notes ------------------------------------------------------------------
def test_double_submit_and_a_rerun_job_send_the_file_once(app, logged_in, client, sms_channel, fake_twilio):
    conversation = sms_conversation(client, sms_channel)
    for _ in range(2):  # the same idempotency key: a double click
        assert send(logged_in, conversation, ("photo.png", "image/png", PNG), key="same").status_code == 200
    run_jobs(app)
    message = outbound(conversation)
    delivery.deliver_message(message.id)  # a job run again after success: nothing goes out
    assert len(fake_twilio.sent) == 1 and len(fake_twilio.sent[0]["MediaUrls"]) == 1
    assert db.session.scalar(select(func.count(Attachment.id))) == 1
    assert len(stored_files()) == 1


def test_transient_failure_retries_with_the_same_file_once(app, logged_in, client, sms_channel, fake_twilio):
    from .test_sms_delivery import _run_scheduled_retries

    conversation = sms_conversation(client, sms_channel)
    fake_twilio.fail_next(status=503, code=20503, message="Service unavailable")
    send(logged_in, conversation, ("photo.png", "image/png", PNG))
    run_jobs(app)
    assert fake_twilio.sent == [] and outbound(conversation).delivery_status == "queued"
    _run_scheduled_retries(app)
    assert len(fake_twilio.sent) == 1 and fake_twilio.sent[0]["MediaUrls"][0].endswith("/photo.png")
    assert outbound(conversation).delivery_status == "accepted"


@pytest.mark.parametrize(("files", "expected"), [
    ([("gros.png", "image/png", b"\x89PNG" + b"0" * (5 * 1024 * 1024 + 1))],
     "« gros.png » est trop volumineux : 5 Mo au maximum."),
    ([("outil.exe", "application/octet-stream", b"MZ" + b"0" * 100)],
     "« outil.exe » est un type de fichier que nous n’acceptons pas."),
    ([("archive.zip", "application/zip", b"PK\x03\x04" + b"0" * 100)],
     "« archive.zip » ne peut pas être envoyé : seulement des images, des PDF et des documents bureautiques."),
])
def test_bad_file_is_refused_with_a_message_and_nothing_is_stored(
        app, logged_in, client, sms_channel, fake_twilio, files, expected):
    conversation = sms_conversation(client, sms_channel)
    response = send(logged_in, conversation, *files, body="Voici")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert expected in page, page[:800]
    assert 'name="body"' in page and "Voici" in page  # the composer comes back with the text
    assert outbound(conversation) is None
    assert db.session.scalar(select(func.count(Attachment.id))) == 0 and stored_files() == []
    run_jobs(app)
    assert fake_twilio.sent == []


def test_email_limit_counts_the_whole_message(app, logged_in, client, email, fake_smtp):
    conversation = email_conversation(client, email)
    six_mb = b"%PDF" + b"0" * (6 * 1024 * 1024)
    response = send(logged_in, conversation, ("a.pdf", "application/pdf", six_mb), ("b.pdf", "application/pdf", six_mb))
    assert response.status_code == 422
    expected = "Ces fichiers sont trop volumineux ensemble pour ce canal : 10 Mo au maximum."
    assert expected in response.get_data(as_text=True)
    assert outbound(conversation) is None and stored_files() == []


def test_whatsapp_takes_large_documents_but_not_large_images(app, logged_in, client, whatsapp, fake_twilio):
    conversation = whatsapp_conversation(client, whatsapp)
    big = b"0" * (6 * 1024 * 1024)
    refused = send(logged_in, conversation, ("photo.jpg", "image/jpeg", b"\xff\xd8" + big), key="w1")
    assert refused.status_code == 422 and "5 Mo au maximum" in refused.get_data(as_text=True)
    accepted = send(logged_in, conversation, ("rapport.pdf", "application/pdf", b"%PDF" + big), key="w2")
    assert accepted.status_code == 200
    assert outbound(conversation).attachments[0].size == len(big) + 4


def test_an_office_file_the_browser_could_not_type_is_known_by_its_extension(app, logged_in, client, email):
    conversation = email_conversation(client, email)
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert send(logged_in, conversation, ("devis.docx", "application/octet-stream", b"PK\x03\x04devis")).status_code == 200
    assert outbound(conversation).attachments[0].content_type == docx


def test_send_later_refuses_files_rather_than_dropping_them(app, logged_in, client, sms_channel):
    from inbox.models import ScheduledMessage

    conversation = sms_conversation(client, sms_channel)
    response = logged_in.post(f"/inbox/c/{conversation.id}/schedule", content_type="multipart/form-data",
                              data={"body": "Demain", "when": "tomorrow_morning",
                                    "files": (io.BytesIO(PNG), "photo.png", "image/png")},
                              headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "Les fichiers ne peuvent pas être programmés" in response.get_data(as_text=True)
    fresh()
    assert db.session.scalar(select(func.count(ScheduledMessage.id))) == 0 and stored_files() == []


def test_internal_note_keeps_its_file_agent_side(app, logged_in, client, sms_channel, fake_twilio):
    conversation = sms_conversation(client, sms_channel)
    response = send(logged_in, conversation, ("capture.png", "image/png", PNG), body="Capture du bug", internal="1")
    assert response.status_code == 200
    fresh()
    note = db.session.scalar(select(Message).where(Message.internal.is_(True), Message.body == "Capture du bug"))
    [attachment] = note.attachments
    assert note.channel_id is None and attachment.storage_key
    assert logged_in.get(f"/inbox/attachments/{attachment.id}").data == PNG  # agents see it
    with app.test_request_context():
        url = signed_media_url(attachment)
    assert client.get(url.removeprefix(PUBLIC_BASE_URL)).status_code == 404  # never public
    run_jobs(app)
    assert fake_twilio.sent == []


def test_media_url_is_signed_and_expires(app, logged_in, client, sms_channel):
    conversation = sms_conversation(client, sms_channel)
    send(logged_in, conversation, ("photo.png", "image/png", PNG))
    attachment = outbound(conversation).attachments[0]
    url = signed_media_url(attachment).removeprefix(PUBLIC_BASE_URL)
    ok = client.get(url)
    assert ok.status_code == 200 and ok.data == PNG and ok.headers["X-Content-Type-Options"] == "nosniff"
    token = url.split("/")[2]
    assert client.get(url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))).status_code == 404
    assert client.get(f"/media/{attachment.id}/photo.png").status_code == 404  # an id is not a key
    app.config["OUTBOUND_MEDIA_URL_MAX_AGE"] = 1
    time.sleep(2.1)
    assert client.get(url).status_code == 404  # expired


def test_voice_channel_cannot_carry_files():
    assert storage.send_limits("voice") is None
    assert storage.send_limits("sms").image == 5 * storage.MB
    assert storage.send_limits("whatsapp").document == 100 * storage.MB
    assert storage.send_limits("telegram").document == 50 * storage.MB
    assert storage.send_limits("email").total == 10 * storage.MB
