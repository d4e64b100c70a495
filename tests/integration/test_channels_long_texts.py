"""A reply longer than WhatsApp's 4096 characters goes out through the Meta Cloud API in several
messages cut between words, each with its own id; a transient failure half-way is retried
without sending the first part again."""

from __future__ import annotations

import time

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from inbox.broker import get_queue
from inbox.extensions import db
from inbox.models import Message
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import meta as meta_fake

from ..conftest import PUBLIC_BASE_URL, run_jobs

CUSTOMER = "33645112233"
LONG = " ".join(f"Étape {i} : vérifiez le branchement du terminal puis redémarrez-le." for i in range(150))


def customer_writes(client, channel) -> Message:
    body, headers = meta_fake.signed_request(meta_fake.inbound_payload(meta_fake.text_message(CUSTOMER, "Bonjour")))
    assert client.post(webhook_url(channel).removeprefix(PUBLIC_BASE_URL), data=body, headers=headers).status_code == 200
    return db.session.scalar(select(Message))


def reply(client, conversation_id: int, body: str):
    response = client.post(f"/inbox/c/{conversation_id}/reply", data={"body": body, "idempotency_key": "long-1"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200


def sent_reply() -> Message:
    db.session.rollback()
    db.session.expire_all()
    return db.session.scalars(select(Message).where(Message.direction == "outbound")).one()


def run_retries(app) -> None:
    time.sleep(1.1)  # DELIVERY_RETRY_INTERVALS is [1, 1] in tests: the scheduler's part
    registry = ScheduledJobRegistry(queue=get_queue())
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
        get_queue().enqueue_job(get_queue().fetch_job(job_id))
    run_jobs(app)


def test_a_long_reply_goes_out_in_parts_cut_between_words(app, logged_in, client, meta_channel, fake_meta):
    assert len(LONG) > 2 * 4096
    inbound = customer_writes(client, meta_channel)
    reply(logged_in, inbound.conversation_id, LONG)
    run_jobs(app)

    texts = [m["text"]["body"] for m in fake_meta.sent]
    assert len(texts) == 3 and all(len(t) <= 4096 for t in texts)
    assert " ".join(texts) == LONG  # nothing lost, cuts on spaces only
    message = sent_reply()
    assert message.delivery_status == "accepted" and message.provider_message_id == fake_meta.sent[0]["id"]
    assert message.meta["provider_message_ids"] == [m["id"] for m in fake_meta.sent]


def test_a_transient_failure_half_way_resumes_without_repeating(app, logged_in, client, meta_channel, fake_meta):
    inbound = customer_writes(client, meta_channel)
    fake_meta.fail_next(status=503, code=2, message="Service temporarily unavailable", skip=1)
    reply(logged_in, inbound.conversation_id, LONG)
    run_jobs(app)
    first = fake_meta.sent[0]["id"]
    message = sent_reply()
    assert len(fake_meta.sent) == 1 and message.delivery_status == "queued"
    assert message.meta["parts_sent"] == [first]

    run_retries(app)
    texts = [m["text"]["body"] for m in fake_meta.sent]
    assert len(texts) == 3 and len(set(texts)) == 3 and " ".join(texts) == LONG  # the first part once
    message = sent_reply()
    assert message.delivery_status == "accepted" and message.provider_message_id == first
    assert message.meta["provider_message_ids"] == [m["id"] for m in fake_meta.sent]
    assert "parts_sent" not in message.meta
