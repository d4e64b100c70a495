"""A customer texts the workspace: the signed webhook is stored once, on the right contact."""

from __future__ import annotations

import concurrent.futures
import time
from urllib.parse import parse_qs

import requests
from sqlalchemy import event, func, select, update

from inbox.broker import INGEST_QUEUE, get_queue
from inbox.extensions import db
from inbox.jobs.ingest import ingest_delivery
from inbox.models import Channel, Contact, Conversation, InboundDelivery, Message, OutboxEntry
from inbox.models import channel as channel_model
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import twilio as fake
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN

from ..conftest import run_ingest
from ..helpers import inbound, recorded_statements, signed_post


def count(model) -> int:
    db.session.rollback()  # end the read snapshot: see what the requests committed
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_inbound_sms_creates_contact_conversation_and_message(client, sms_channel):
    response = signed_post(client, sms_channel, inbound(body="Ma commande n'est pas arrivée"))

    assert response.status_code == 200
    assert response.mimetype == "text/xml" and b"<Response>" in response.data
    message = db.session.scalar(select(Message))
    assert message.body == "Ma commande n'est pas arrivée"
    assert message.sender_kind == "customer" and message.direction == "inbound"
    contact = db.session.get(Contact, message.contact_id)
    assert contact.phone == "+33612345678"
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.status == "open" and conversation.unread_count == 1
    assert conversation.last_message_preview == "Ma commande n'est pas arrivée"
    assert get_queue().job_ids == [f"route-{message.id}"]


def test_second_message_joins_the_open_conversation(client, sms_channel):
    signed_post(client, sms_channel, inbound(body="Bonjour"))
    signed_post(client, sms_channel, inbound(body="Vous êtes là ?"))
    signed_post(client, sms_channel, inbound(sender="+33700000000", body="Autre client"))

    assert count(Contact) == 2
    assert count(Conversation) == 2
    bodies = db.session.scalars(select(Message.body).order_by(Message.id)).all()
    assert bodies == ["Bonjour", "Vous êtes là ?", "Autre client"]


def test_message_after_resolution_opens_a_new_conversation(client, sms_channel):
    signed_post(client, sms_channel, inbound(body="Premier"))
    first = db.session.scalar(select(Conversation))
    first.status = "resolved"
    db.session.commit()
    signed_post(client, sms_channel, inbound(body="Nouveau problème"))

    assert count(Conversation) == 2
    assert count(Contact) == 1


def test_wrong_or_missing_signature_is_refused_and_stores_nothing(client, sms_channel):
    bad = signed_post(client, sms_channel, inbound(), token="not-the-auth-token")
    missing = signed_post(client, sms_channel, inbound(), signature="")

    assert bad.status_code == 403 and missing.status_code == 403
    assert bad.get_json() == {"error": "invalid signature"}
    assert count(Message) == 0 and count(Contact) == 0 and count(OutboxEntry) == 0
    assert get_queue().count == 0


def test_signature_over_another_url_is_refused(client, sms_channel):
    """Behind a proxy the signature covers the public URL; a signature for any other URL fails."""
    params = inbound()
    sig = fake.sign(DEMO_AUTH_TOKEN, "http://internal:8000/webhooks/twilio/sms/" + sms_channel.public_id, params)
    response = signed_post(client, sms_channel, params, signature=sig)
    assert response.status_code == 403


def test_malformed_payload_gets_a_readable_400_and_stores_nothing(client, sms_channel):
    no_sid = inbound()
    del no_sid["MessageSid"], no_sid["SmsMessageSid"]
    no_from = inbound()
    del no_from["From"]
    bad_media = inbound()
    bad_media["NumMedia"] = "deux"

    responses = [signed_post(client, sms_channel, p) for p in (no_sid, no_from, bad_media)]

    assert [r.status_code for r in responses] == [400, 400, 400]
    assert "MessageSid" in responses[0].get_json()["error"]
    assert "From is missing" in responses[1].get_json()["error"]
    assert "NumMedia" in responses[2].get_json()["error"]
    assert count(Message) == 0


def test_unknown_channel_is_404(client, sms_channel):
    response = client.post("/webhooks/twilio/sms/" + "0" * 32, data=inbound())
    assert response.status_code == 404


def test_the_webhook_keeps_the_request_in_two_statements_and_the_ingest_job_stores_it(app, client, sms_channel):
    client.ingests = False  # the provider alone: no worker behind it yet
    with recorded_statements() as statements:
        client.set_cookie("session", "a-browser-cookie")  # never kept with the request
        response = signed_post(client, sms_channel, inbound(body="Vite, une réponse"))

    assert response.status_code == 200
    reads_and_writes = [s for s in statements if not s.startswith("BEGIN")]  # SQLite's explicit BEGIN
    assert len(reads_and_writes) == 2, statements  # the channel, the kept request (then the commit)
    kept = db.session.scalar(select(InboundDelivery))
    assert parse_qs(kept.body.decode())["Body"] == ["Vite, une réponse"]  # as Twilio sent it
    assert "X-Twilio-Signature" in dict(kept.headers) and "Cookie" not in dict(kept.headers)
    assert count(Message) == 0 and get_queue(INGEST_QUEUE).job_ids == [f"ingest-{kept.id}"]
    arrived_at = kept.created_at
    time.sleep(0.01)

    run_ingest()

    assert count(InboundDelivery) == 0  # (ends the read snapshot too)
    [message] = db.session.scalars(select(Message))
    assert message.body == "Vite, une réponse"
    assert message.created_at == arrived_at  # dated when Twilio delivered it, not when a worker got to it
    assert get_queue().job_ids == [f"route-{message.id}"]


def test_the_door_reads_its_channel_once_every_few_seconds(client, sms_channel, monkeypatch):
    client.ingests = False
    assert signed_post(client, sms_channel, inbound(body="Bonjour")).status_code == 200  # reads the channel
    with recorded_statements() as statements:
        assert signed_post(client, sms_channel, inbound(body="Encore moi")).status_code == 200
    assert [s.split()[0] for s in statements if not s.startswith("BEGIN")] == ["INSERT"]  # the kept request

    # Another process disables it: nothing tells this one, which sees it within DOOR_CACHE_SECONDS.
    db.session.execute(update(Channel.__table__).where(Channel.__table__.c.id == sms_channel.id).values(enabled=False))
    db.session.commit()
    assert signed_post(client, sms_channel, inbound(body="Toujours là")).status_code == 200
    later = channel_model.monotonic() + channel_model.DOOR_CACHE_SECONDS
    monkeypatch.setattr(channel_model, "monotonic", lambda: later)
    assert signed_post(client, sms_channel, inbound(body="Trop tard")).status_code == 404
    assert count(InboundDelivery) == 3


def test_the_ingest_job_stores_a_known_customers_message_in_one_transaction_of_few_statements(client, sms_channel):
    signed_post(client, sms_channel, inbound(body="Bonjour"))  # the customer and their conversation exist
    client.ingests = False
    signed_post(client, sms_channel, inbound(body="Vous êtes là ?"))
    with recorded_statements() as statements:
        mark_commit = lambda _connection: statements.append("COMMIT")  # noqa: E731
        event.listen(db.engine, "commit", mark_commit)
        try:
            run_ingest()
        finally:
            event.remove(db.engine, "commit", mark_commit)

    assert count(InboundDelivery) == 0
    second = db.session.scalars(select(Message).order_by(Message.id)).all()[-1]
    assert second.body == "Vous êtes là ?" and get_queue().job_ids[-1] == f"route-{second.id}"
    conversation = db.session.get(Conversation, second.conversation_id)
    assert conversation.unread_count == 2 and conversation.last_message_preview == "Vous êtes là ?"
    work = [s for s in statements if s != "COMMIT" and not s.startswith("BEGIN")]  # SQLite's explicit BEGIN
    # The kept webhook with its channel, "already stored?", the contact with their open conversation,
    # the conversation's row, the message, its first answer (PostgreSQL: its lock), the promised
    # route job and events (one statement on PostgreSQL, one per row on SQLite), the webhook
    # forgotten; one commit, after which the promises go to Redis and their rows are left for the relay
    # to delete. Nothing read again after it was written.
    assert len(work) <= 10 and statements.count("COMMIT") == 1, "\n".join(statements)
    assert not any(s.startswith("SELECT") and "FROM outbox_entry" in s for s in work)
    transactions = " ".join(statements).split("COMMIT")
    stored_in = next(t for t in transactions if "INSERT INTO message" in t)
    assert "DELETE FROM inbound_delivery" in stored_in  # the webhook is kept until its message is stored


def test_mms_media_are_kept_as_attachments(client, sms_channel):
    params = inbound(body="Voici la photo", media=[("https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1", "image/jpeg")])
    assert signed_post(client, sms_channel, params).status_code == 200
    message = db.session.scalar(select(Message))
    assert [(a.content_type, a.remote_url.endswith("/ME1")) for a in message.attachments] == [("image/jpeg", True)]


def ingest_concurrently(app) -> None:
    """Every kept webhook ingested at once, by as many workers: they race for the same rows."""
    ids = list(db.session.scalars(select(InboundDelivery.id)))
    db.session.rollback()

    def run(delivery_id):
        with app.app_context():
            ingest_delivery(delivery_id)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(ids)) as pool:
        list(pool.map(run, ids))


def test_same_webhook_delivered_twenty_times_concurrently_is_stored_once(app, sms_channel, live_server):
    params = inbound(body="Livraison en double ?")
    public = webhook_url(sms_channel)
    target = live_server.url + public.removeprefix(app.config["PUBLIC_BASE_URL"])
    signature = fake.sign(DEMO_AUTH_TOKEN, public, params)

    def deliver(_):
        return requests.post(target, data=params, headers={"X-Twilio-Signature": signature}, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(deliver, range(20)))

    assert codes == [200] * 20
    assert count(InboundDelivery) == 20 and count(Message) == 0  # kept at the door, stored by workers
    ingest_concurrently(app)
    assert count(InboundDelivery) == 0
    assert count(Message) == 1 and count(Contact) == 1 and count(Conversation) == 1
    assert get_queue().count == 1


def test_first_messages_from_a_new_customer_in_parallel_share_one_conversation(app, sms_channel, live_server):
    public = webhook_url(sms_channel)
    target = live_server.url + public.removeprefix(app.config["PUBLIC_BASE_URL"])

    def deliver(i):
        params = inbound(sender="+33611112222", body=f"message {i}")
        sig = fake.sign(DEMO_AUTH_TOKEN, public, params)
        return requests.post(target, data=params, headers={"X-Twilio-Signature": sig}, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(deliver, range(8)))

    assert codes == [200] * 8
    ingest_concurrently(app)
    assert count(Message) == 8 and count(Contact) == 1 and count(Conversation) == 1
