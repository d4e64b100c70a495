"""The agent replies: stored as queued, sent once by the worker through the real twilio client,
moved along by status callbacks that never go backwards."""

from __future__ import annotations

from sqlalchemy import select

from inbox.broker import get_queue
from inbox.extensions import db
from inbox.models import Conversation, Message

from ..conftest import run_jobs
from ..helpers import inbound, signed_post, status


def open_conversation(client, sms_channel, sender="+33612345678") -> Conversation:
    signed_post(client, sms_channel, inbound(sender=sender, body="Bonjour"))
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def reply(client, conversation, body="Bonjour, nous regardons cela.", key="k1", **extra):
    return client.post(f"/inbox/c/{conversation.id}/reply",
                       data={"body": body, "idempotency_key": key, **extra},
                       headers={"HX-Request": "true", "HX-Target": "messages"})


def outbound(conversation) -> Message:
    db.session.rollback()  # end the read snapshot: see what the requests committed
    db.session.expire_all()
    return db.session.scalar(select(Message).where(Message.conversation_id == conversation.id,
                                                   Message.direction == "outbound",
                                                   Message.internal.is_(False)))


def test_reply_is_queued_then_sent_by_the_worker_through_twilio(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    response = reply(logged_in, conversation)

    assert response.status_code == 200
    assert 'data-status="queued"' in response.get_data(as_text=True)
    message = outbound(conversation)
    assert message.delivery_status == "queued" and fake_twilio.sent == []
    assert f"deliver-{message.id}" in get_queue().job_ids

    run_jobs(app)

    assert len(fake_twilio.sent) == 1
    sent = fake_twilio.sent[0]
    assert sent["To"] == "+33612345678" and sent["From"] == sms_channel.address
    assert sent["Body"] == "Bonjour, nous regardons cela."
    assert sent["StatusCallback"].startswith("https://support.example.test/webhooks/twilio/sms/")
    message = outbound(conversation)
    assert message.delivery_status == "accepted" and message.provider_message_id == sent["sid"]


def test_status_callbacks_move_forward_and_never_back(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    reply(logged_in, conversation)
    run_jobs(app)
    sid = fake_twilio.sent[0]["sid"]

    for value in ("sent", "delivered", "sent", "queued"):  # late "sent" after "delivered"
        assert signed_post(client, sms_channel, status(sid, value), suffix="/status").status_code == 200

    message = outbound(conversation)
    assert message.delivery_status == "delivered"
    assert message.sent_at is not None and message.delivered_at is not None
    signed_post(client, sms_channel, status(sid, "read"), suffix="/status")
    assert outbound(conversation).delivery_status == "read"


def test_undelivered_callback_shows_the_reason(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    reply(logged_in, conversation)
    run_jobs(app)
    sid = fake_twilio.sent[0]["sid"]
    signed_post(client, sms_channel, status(sid, "undelivered", error_code="30003"), suffix="/status")

    message = outbound(conversation)
    assert message.delivery_status == "failed"
    assert message.error_code == "30003" and "Unreachable" in message.error_message
    badge = logged_in.get(f"/inbox/m/{message.id}/status").get_data(as_text=True)
    assert "Téléphone du destinataire injoignable" in badge and 'data-status="failed"' in badge  # in French


def test_status_callback_with_bad_signature_changes_nothing(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    reply(logged_in, conversation)
    run_jobs(app)
    sid = fake_twilio.sent[0]["sid"]
    response = signed_post(client, sms_channel, status(sid, "delivered"), suffix="/status", token="wrong")
    assert response.status_code == 403
    assert outbound(conversation).delivery_status == "accepted"


def test_transient_error_is_retried_and_sent_once(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    fake_twilio.fail_next(status=503, code=20503, message="Service unavailable")
    reply(logged_in, conversation)

    run_jobs(app)  # first attempt: 503
    message = outbound(conversation)
    assert message.delivery_status == "queued" and message.attempts == 1
    assert fake_twilio.sent == []

    _run_scheduled_retries(app)
    message = outbound(conversation)
    assert message.delivery_status == "accepted" and message.attempts == 2
    assert len(fake_twilio.sent) == 1


def test_transient_errors_beyond_the_last_retry_mark_the_message_failed(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    fake_twilio.fail_next(status=503, times=10)
    reply(logged_in, conversation)
    run_jobs(app)
    _run_scheduled_retries(app)
    _run_scheduled_retries(app)

    message = outbound(conversation)
    assert message.delivery_status == "failed" and message.attempts == 3  # 1 + two retries
    assert message.error_code == "unavailable"


def test_permanent_error_marks_failed_with_twilio_reason(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    fake_twilio.fail_next(status=400, code=21211, message="The 'To' number is not a valid phone number.")
    reply(logged_in, conversation)
    run_jobs(app)

    message = outbound(conversation)
    assert message.delivery_status == "failed"
    assert message.error_code == "21211" and message.error_message == "Invalid 'To' phone number"
    assert fake_twilio.sent == []
    _run_scheduled_retries(app)
    assert outbound(conversation).attempts == 1  # never retried


def test_same_reply_is_never_sent_twice(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    first = reply(logged_in, conversation, key="same-key")
    second = reply(logged_in, conversation, key="same-key")  # double click
    assert first.status_code == second.status_code == 200
    message = outbound(conversation)
    # The job runs twice (a relay repeat, a restarted worker): the claim lets only one send.
    get_queue().enqueue("inbox.jobs.deliver.deliver_message", message.id, job_id=f"again-{message.id}")
    run_jobs(app)

    assert len(fake_twilio.sent) == 1
    assert db.session.scalar(select(Message).where(Message.idempotency_key == "same-key")).id == message.id


def test_empty_or_too_long_reply_is_refused_with_the_composer(app, logged_in, client, sms_channel):
    conversation = open_conversation(client, sms_channel)
    empty = reply(logged_in, conversation, body="   ")
    too_long = reply(logged_in, conversation, body="x" * 1601, key="k2")

    assert empty.status_code == too_long.status_code == 422
    assert empty.headers["HX-Retarget"] == "#composer"
    assert "1601" in too_long.get_data(as_text=True) and "1600" in too_long.get_data(as_text=True)
    assert outbound(conversation) is None


def test_internal_note_is_stored_and_never_sent(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    response = reply(logged_in, conversation, body="Client VIP, rappeler avant midi", internal="1")
    assert response.status_code == 200 and "msg-note" in response.get_data(as_text=True)
    run_jobs(app)
    note = db.session.scalar(select(Message).where(Message.internal.is_(True), Message.sender_kind == "agent"))
    assert note.body == "Client VIP, rappeler avant midi" and note.channel_id is None
    assert fake_twilio.sent == []


def test_assign_and_resolve_from_the_thread(app, logged_in, client, sms_channel, agent):
    conversation = open_conversation(client, sms_channel)
    assert logged_in.post(f"/inbox/c/{conversation.id}/assign", data={"assignee_id": "me"}).status_code == 200
    assert logged_in.post(f"/inbox/c/{conversation.id}/status", data={"status": "resolved"}).status_code == 200
    bad = logged_in.post(f"/inbox/c/{conversation.id}/status", data={"status": "exploded"})
    assert bad.status_code == 422
    db.session.rollback()  # end the read snapshot: see what the requests committed
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation.id)
    assert conversation.assignee_id == agent.id and conversation.status == "resolved"
    lines = db.session.scalars(select(Message.body).where(Message.sender_kind == "system")).all()
    assert len(lines) == 2 and all("Alice Agent" in line for line in lines)


def _run_scheduled_retries(app) -> None:
    """Move jobs whose retry time has come back to the queue, as the worker's scheduler does."""
    import time

    from rq.registry import ScheduledJobRegistry

    time.sleep(1.1)  # DELIVERY_RETRY_INTERVALS is [1, 1] in tests
    queue = get_queue()
    registry = ScheduledJobRegistry(queue=queue)
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
        queue.enqueue_job(queue.fetch_job(job_id))
    run_jobs(app)
