"""Inbound we fetch ourselves: an IMAP mailbox polled every minute (real imaplib against a local
IMAP server), VAPI calls whose report never arrived, and provider-hosted media downloaded into
our storage after the message is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from inbox.actions.workspace import do_create_channel
from inbox.broker import get_queue
from inbox.extensions import db
from inbox.kinds import ChannelKind, Provider
from inbox.models import Attachment, Message, utcnow
from inbox.orchestrator import pull
from inbox.orchestrator.delivery import webhook_url
from inbox.periodic import PERIODIC, enqueue_due
from inbox.sandbox import meta as meta_fake
from inbox.sandbox import telegram as telegram_fake
from inbox.sandbox import twilio as twilio_fake
from inbox.sandbox import twilio_whatsapp as whatsapp_fake
from inbox.sandbox import vapi as vapi_fake
from inbox.sandbox.imap import FakeImap
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN
from inbox.sandbox.vapi import FakeVapi

from ..conftest import PUBLIC_BASE_URL, run_jobs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def mail(n: int, *, message_id: str | None = None) -> bytes:
    return (f"From: Client {n} <client{n}@example.fr>\r\nTo: support@coccinelle.test\r\n"
            f"Subject: Question {n}\r\nMessage-ID: {message_id or f'<q{n}@example.fr>'}\r\n"
            f"Date: Mon, 10 Nov 2025 10:0{n}:00 +0100\r\n\r\nBonjour, question {n}.\r\n").encode()


def fresh():
    db.session.rollback()
    db.session.expire_all()


def path_of(channel) -> str:
    return webhook_url(channel).removeprefix(PUBLIC_BASE_URL)


@pytest.fixture
def fake_imap():
    server = FakeImap().start()
    yield server
    server.stop()


@pytest.fixture
def fake_vapi():
    server = FakeVapi().start()
    yield server
    server.stop()


@pytest.fixture
def app_config(app_config, fake_vapi):
    return {**app_config, "VAPI_API_BASE_URL": fake_vapi.base_url}


@pytest.fixture
def imap_channel(workspace, fake_imap):
    host, port = fake_imap.address
    return do_create_channel(workspace, kind=ChannelKind.EMAIL, provider=Provider.SMTP, name="Boîte IMAP",
                             address="support@coccinelle.test",
                             credentials={"imap_password": fake_imap.password},
                             settings={"inbound": "imap", "imap_host": host, "imap_port": port,
                                       "imap_security": "none", "imap_username": fake_imap.username,
                                       "smtp_host": "localhost"})


# -- IMAP -------------------------------------------------------------------------------------------
def test_imap_poll_is_a_periodic_job_every_minute():
    assert ("inbox.jobs.channels.imap_poll_sweep", 60) in PERIODIC
    assert any(func_ == "inbox.jobs.channels.vapi_reconcile_sweep" and 60 < every <= 10 * 60
               for func_, every in PERIODIC)


def test_unseen_mail_is_stored_once_then_flagged_seen(app, imap_channel, fake_imap):
    uids = [fake_imap.deliver(mail(1)), fake_imap.deliver(mail(2))]
    # As the worker does every 2 s (only this job: the other periodic jobs are not under test here).
    assert enqueue_due(datetime(2025, 11, 10, 9, 0, tzinfo=UTC), jobs=[("inbox.jobs.channels.imap_poll_sweep", 60)])
    run_jobs(app)
    fresh()
    assert sorted(db.session.scalars(select(Message.subject))) == ["Question 1", "Question 2"]
    assert all(fake_imap.is_seen(uid) for uid in uids)
    stored = db.session.scalar(select(Message).where(Message.subject == "Question 1"))
    assert stored.meta["replay_key"].startswith("imap:INBOX:") and stored.meta["imap"]["uid"] == uids[0]

    # The same mail delivered again (a new UID, the same Message-ID) is not stored twice.
    again = fake_imap.deliver(mail(1))
    result = pull.poll_imap(imap_channel)
    assert result.fetched == 1 and result.stored == 0 and fake_imap.is_seen(again)
    assert db.session.scalar(select(func.count(Message.id))) == 2


def test_mail_is_flagged_seen_only_after_the_database_commit(app, imap_channel, fake_imap, monkeypatch):
    first, second = fake_imap.deliver(mail(1)), fake_imap.deliver(mail(2))
    real_ingest = pull.do_ingest
    calls = []

    def crash_on_the_second(channel, inbound):
        calls.append(inbound.provider_message_id)
        if len(calls) == 2:
            raise RuntimeError("the worker died here")
        return real_ingest(channel, inbound)

    monkeypatch.setattr(pull, "do_ingest", crash_on_the_second)
    with pytest.raises(RuntimeError):
        pull.poll_imap(imap_channel)
    fresh()
    assert db.session.scalar(select(func.count(Message.id))) == 1  # the first one was committed…
    assert not fake_imap.is_seen(first) and not fake_imap.is_seen(second)  # …but nothing flagged yet

    monkeypatch.setattr(pull, "do_ingest", real_ingest)
    result = pull.poll_imap(imap_channel)  # the next poll: the first is a replay, the second is new
    assert result.fetched == 2 and result.stored == 1
    assert db.session.scalar(select(func.count(Message.id))) == 2
    assert fake_imap.is_seen(first) and fake_imap.is_seen(second)


def test_a_renumbered_mailbox_does_not_duplicate_mail(app, imap_channel, fake_imap):
    fake_imap.deliver(mail(1))
    pull.poll_imap(imap_channel)
    fake_imap.renumber()  # new UIDVALIDITY: the stored keys no longer match, the Message-ID still does
    fake_imap.mailbox().messages[0].flags.clear()
    assert pull.poll_imap(imap_channel).stored == 0
    assert db.session.scalar(select(func.count(Message.id))) == 1


def test_one_unreachable_mailbox_does_not_stop_the_sweep(app, imap_channel, workspace, fake_imap):
    do_create_channel(workspace, kind=ChannelKind.EMAIL, provider=Provider.SMTP, name="Cassée",
                      address="other@coccinelle.test", credentials={"imap_password": "x"},
                      settings={"inbound": "imap", "imap_host": "127.0.0.1", "imap_port": 1,
                                "imap_security": "none", "smtp_host": "localhost"})
    fake_imap.deliver(mail(3))
    results = pull.each_channel(pull.imap_channels(), pull.poll_imap)
    assert results[imap_channel.id].stored == 1
    assert any(isinstance(v, str) for v in results.values())


# -- VAPI reconciliation ----------------------------------------------------------------------------
@pytest.fixture
def vapi_channel(workspace):
    return do_create_channel(workspace, kind=ChannelKind.VOICE, provider=Provider.VAPI, name="Standard",
                             address="+33757000202",
                             credentials={"webhook_secret": vapi_fake.DEMO_VAPI_WEBHOOK_SECRET,
                                          "api_key": vapi_fake.DEMO_VAPI_API_KEY},
                             settings={"auth_mode": "secret"})


def test_reconciliation_recovers_calls_whose_report_never_arrived(app, client, vapi_channel, fake_vapi):
    now = utcnow()
    delivered = fake_vapi.add_call(vapi_fake.call_object(customer_number="+33611000001", transcript="AI: Bonjour",
                                                         started_at=now - timedelta(minutes=30)))
    missed = fake_vapi.add_call(vapi_fake.call_object(customer_number="+33611000002", summary="Rappel demandé",
                                                      transcript="User: Rappelez-moi",
                                                      started_at=now - timedelta(minutes=20)))
    fake_vapi.add_call(vapi_fake.call_object(customer_number="+33611000003", status="in-progress",
                                             started_at=now - timedelta(minutes=10)))
    body = vapi_fake.encode(vapi_fake.end_of_call_report(delivered))
    headers = vapi_fake.auth_headers(body, mode="secret", secret=vapi_fake.DEMO_VAPI_WEBHOOK_SECRET)
    assert client.post(path_of(vapi_channel), data=body, headers=headers).status_code == 200

    result = pull.reconcile_vapi(vapi_channel, now=now)
    assert result.stored == 1
    fresh()
    recovered = db.session.scalar(select(Message).where(Message.provider_message_id == f"{missed['id']}:end-of-call-report"))
    assert recovered.meta["source"] == "api" and "Rappel demandé" in recovered.body
    assert recovered.contact.phone == "+33611000002"
    assert not any(delivered["id"] in r for r in fake_vapi.requests if r.startswith("/call/"))  # already had it

    assert pull.reconcile_vapi(vapi_channel, now=now).stored == 0  # idempotent
    assert db.session.scalar(select(func.count(Message.id))) == 2


def test_reconciliation_sweep_runs_as_a_job(app, vapi_channel, fake_vapi):
    fake_vapi.add_call(vapi_fake.call_object(customer_number="+33611000009",
                                             started_at=utcnow() - timedelta(minutes=15)))
    get_queue().enqueue("inbox.jobs.channels.vapi_reconcile_sweep", utcnow().isoformat(), job_id="vapi-test")
    run_jobs(app)
    fresh()
    assert db.session.scalar(select(func.count(Message.id))) == 1


def test_a_failing_vapi_api_is_logged_and_retried_next_time(app, vapi_channel, fake_vapi):
    fake_vapi.fail_next(503)
    results = pull.each_channel(pull.vapi_channels(), lambda c: pull.reconcile_vapi(c, now=utcnow()))
    assert isinstance(results[vapi_channel.id], str)


# -- media --------------------------------------------------------------------------------------------
def _attachment() -> Attachment:
    fresh()
    return db.session.scalar(select(Attachment))


def test_twilio_media_is_downloaded_with_basic_auth_and_shown(app, logged_in, client, whatsapp, fake_twilio):
    url = fake_twilio.add_media(PNG, "image/png")
    params = whatsapp_fake.inbound_whatsapp_payload(sender="+33645112233", body="Photo du terminal",
                                                    media=[(url, "image/png")])
    signature = twilio_fake.sign(DEMO_AUTH_TOKEN, webhook_url(whatsapp), params)
    assert client.post(path_of(whatsapp), data=params, headers={"X-Twilio-Signature": signature}).status_code == 200
    message = db.session.scalar(select(Message))
    assert f"media-{message.id}" in get_queue().job_ids
    page = logged_in.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)
    assert "downloading" in page.lower() or "téléchargement" in page.lower()

    run_jobs(app)
    attachment = _attachment()
    assert attachment.storage_key and attachment.size == len(PNG)
    page = logged_in.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)
    assert f'src="/inbox/attachments/{attachment.id}"' in page
    assert logged_in.get(f"/inbox/attachments/{attachment.id}").data == PNG


def test_meta_media_id_is_resolved_and_never_rendered_as_a_link(app, logged_in, client, meta_channel, fake_meta):
    fake_meta.add_media("1480977202697713", b"%PDF-1.4 devis", "application/pdf")
    payload = meta_fake.inbound_payload(meta_fake.media_message(
        "33645112233", "document", media_id="1480977202697713", mime_type="application/pdf", filename="devis.pdf"))
    body, headers = meta_fake.signed_request(payload)
    assert client.post(path_of(meta_channel), data=body, headers=headers).status_code == 200
    message = db.session.scalar(select(Message))
    assert "meta-media:" not in logged_in.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)

    run_jobs(app)
    attachment = _attachment()
    assert attachment.storage_key and attachment.remote_url == "meta-media:1480977202697713"
    page = logged_in.get(f"/inbox/c/{message.conversation_id}").get_data(as_text=True)
    assert "meta-media:" not in page and f'href="/inbox/attachments/{attachment.id}" download' in page
    assert logged_in.get(f"/inbox/attachments/{attachment.id}").data == b"%PDF-1.4 devis"


def test_telegram_files_are_fetched_and_dangerous_ones_refused(app, logged_in, client, telegram, fake_telegram):
    fake_telegram.add_file("AgACphoto1", PNG, "photos/file_1.jpg")
    fake_telegram.add_file("BQACexe", b"MZ\x90\x00", "documents/setup.exe")
    secret = {telegram_fake.SECRET_HEADER: telegram_fake.DEMO_WEBHOOK_SECRET}
    for update in (telegram_fake.photo_update(527401983, file_id="AgACphoto1", caption="Voilà"),
                   telegram_fake.document_update(527401983, file_id="BQACexe", file_name="setup.exe",
                                                 mime_type="application/octet-stream")):
        assert client.post(path_of(telegram), data=json.dumps(update), content_type="application/json",
                           headers=secret).status_code == 200
    run_jobs(app)
    fresh()
    photo, document = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert photo.attachments[0].storage_key and photo.attachments[0].is_image
    assert document.attachments == [] and document.meta["refused_attachments"][0]["reason"] == "dangerous_type"
    page = logged_in.get(f"/inbox/c/{photo.conversation_id}").get_data(as_text=True)
    assert "telegram-file:" not in page and "setup.exe" in page


def test_media_gone_at_the_provider_is_listed_not_retried_forever(app, client, meta_channel, fake_meta):
    payload = meta_fake.inbound_payload(meta_fake.media_message("33645112233", "image", media_id="404404",
                                                                mime_type="image/jpeg"))
    body, headers = meta_fake.signed_request(payload)
    client.post(path_of(meta_channel), data=body, headers=headers)
    run_jobs(app)
    fresh()
    message = db.session.scalar(select(Message))
    assert message.attachments == [] and message.meta["refused_attachments"][0]["reason"] == "unavailable"


def test_twilio_credentials_are_never_sent_to_another_host(app, whatsapp):
    from inbox.errors import PermanentDeliveryError
    from inbox.orchestrator.delivery import adapter_for

    with pytest.raises(PermanentDeliveryError):
        adapter_for(whatsapp).fetch_media("https://evil.example/steal")
