"""Nothing is lost when Redis is down, and live events reach every open browser over SSE."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from datetime import timedelta

import requests
from sqlalchemy import event, func, select

from inbox import create_app
from inbox.broker import INGEST_QUEUE, get_queue
from inbox.extensions import db
from inbox.jobs.ingest import ingest_delivery
from inbox.models import InboundDelivery, Message, OutboxEntry
from inbox.orchestrator.ingest import requeue_stranded_deliveries
from inbox.orchestrator.delivery import webhook_url
from inbox.outbox import relay_pending
from inbox.sandbox import twilio as fake
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN

from ..conftest import PASSWORD, IsolatedClient, run_ingest
from ..helpers import inbound, signed_post


def redis_down(app_config):
    return create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"})  # nothing listens there


def door_client(app) -> IsolatedClient:
    """A provider posting, with no worker behind: what the webhook alone does."""
    app.test_client_class = IsolatedClient
    client = app.test_client()
    client.ingests = False
    return client


def test_webhook_is_kept_while_redis_is_down_and_stored_and_relayed_when_it_is_back(app, app_config, sms_channel):
    response = signed_post(door_client(redis_down(app_config)), sms_channel, inbound(body="Redis est tombé ?"))

    assert response.status_code == 200  # answered: Twilio will not retry, and need not
    db.session.rollback()
    kept = db.session.scalar(select(InboundDelivery))
    assert kept is not None and get_queue(INGEST_QUEUE).count == 0
    assert requeue_stranded_deliveries() == 0  # younger than a minute: its request may still enqueue it

    with redis_down(app_config).app_context():  # a worker whose Redis is down: the data commits, the work waits
        ingest_delivery(kept.id)
    db.session.rollback()  # end the read snapshot: see what the worker committed
    message = db.session.scalar(select(Message))
    assert message.body == "Redis est tombé ?"
    assert db.session.scalar(select(func.count()).select_from(InboundDelivery)) == 0
    pending = db.session.scalars(select(OutboxEntry.name)).all()
    assert "inbox.jobs.route.route_message" in pending and "conversation-changed" in pending
    assert get_queue().count == 0

    relayed = relay_pending(min_age=timedelta(0))  # what the worker's relay thread does

    assert relayed == len(pending)
    assert get_queue().job_ids == [f"route-{message.id}"]
    assert db.session.scalar(select(func.count()).select_from(OutboxEntry)) == 0


def test_sweep_enqueues_again_a_kept_webhook_whose_job_was_lost(app, app_config, sms_channel):
    signed_post(door_client(redis_down(app_config)), sms_channel, inbound(body="Perdu ?"))
    signed_post(door_client(app), sms_channel, inbound(body="Pas perdu"))
    db.session.rollback()
    assert get_queue(INGEST_QUEUE).count == 1  # the second one reached Redis

    assert requeue_stranded_deliveries(min_age=timedelta(0)) == 1  # what the worker's relay thread does
    assert get_queue(INGEST_QUEUE).count == 2
    assert sorted(db.session.scalars(select(InboundDelivery.attempts))) == [0, 1]  # only the lost one
    run_ingest()
    db.session.rollback()
    assert sorted(db.session.scalars(select(Message.body))) == ["Pas perdu", "Perdu ?"]
    assert requeue_stranded_deliveries(min_age=timedelta(0)) == 0


def test_relay_skips_fresh_entries_left_to_the_writer(app, client, sms_channel, app_config):
    down = redis_down(app_config)
    with down.app_context():
        signed_post(door_client(down), sms_channel, inbound())
        ingest_delivery(db.session.scalar(select(InboundDelivery.id)))
    assert relay_pending() == 0  # younger than 5 s: its own request may still be relaying it


def test_sse_stream_tells_open_browsers_about_new_messages(app, live_server, agent, sms_channel):
    session = requests.Session()
    assert session.post(live_server.url + "/login", data={"email": agent.email, "password": PASSWORD},
                        allow_redirects=False).status_code == 302
    events: list[tuple[str, dict]] = []
    connected = threading.Event()

    def listen():
        with session.get(live_server.url + "/stream?rows=1", stream=True, timeout=15) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for name, data in sse_events(response, connected.set):
                events.append((name, data))
                if name.endswith("-message"):
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    params = inbound(body="En direct")
    public = webhook_url(sms_channel)
    requests.post(live_server.url + public.removeprefix(app.config["PUBLIC_BASE_URL"]), data=params,
                  headers={"X-Twilio-Signature": fake.sign(DEMO_AUTH_TOKEN, public, params)}, timeout=10)
    run_ingest()  # the worker stores it, then the browsers hear of it
    listener.join(10)

    db.session.rollback()

    db.session.expire_all()
    message = db.session.scalar(select(Message))
    changed = [data for name, data in events if name == "conversation-changed"]
    assert [data["conversation_id"] for data in changed] == [message.conversation_id]
    assert "En direct" in changed[0]["row"]["html"]  # the row comes with the event to an inbox, as the agent reads it
    assert changed[0]["counts"]["all"] == 1 and changed[0]["counts"]["unassigned"] == 1
    assert (f"contact-{message.contact_id}-message", {"message_id": message.id}) in events


def sse_events(response, on_connected):
    """The (event, data) pairs of an SSE response as the browser's EventSource sees them."""
    name = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith(": connected"):
            on_connected()
        elif line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name:
            yield name, json.loads(line.removeprefix("data: "))


def test_stream_requires_login(client):
    assert client.get("/stream").status_code == 302


def test_work_promised_before_a_plain_commit_is_relayed_once_by_the_next_outbox_commit(app, workspace):
    from inbox import outbox

    outbox.enqueue_job("inbox.jobs.route.route_message", 1, job_id="route-1", workspace_id=workspace.id)
    db.session.commit()  # a plain commit: the promise is kept, nothing relayed yet
    assert get_queue().job_ids == []
    outbox.enqueue_job("inbox.jobs.route.route_message", 2, job_id="route-2", workspace_id=workspace.id)
    outbox.commit()

    assert sorted(get_queue().job_ids) == ["route-1", "route-2"]
    assert_forgotten_without_sending_again(["route-1", "route-2"])


def test_work_the_relay_already_sent_is_not_sent_again_by_a_later_outbox_commit(app, workspace):
    from inbox import outbox

    outbox.enqueue_job("inbox.jobs.route.route_message", 1, job_id="route-1", workspace_id=workspace.id)
    db.session.commit()
    assert relay_pending(min_age=timedelta(0)) == 1  # the worker's relay got there first
    outbox.enqueue_job("inbox.jobs.route.route_message", 2, job_id="route-2", workspace_id=workspace.id)
    outbox.commit()

    assert sorted(get_queue().job_ids) == ["route-1", "route-2"]  # route-1 once


def test_an_event_promised_before_a_job_is_relayed_with_it(app, workspace):
    from inbox import outbox

    outbox.publish_event(workspace.id, "conversation-changed", conversation_id=1)
    outbox.enqueue_job("inbox.jobs.route.route_message", 1, job_id="route-1", workspace_id=workspace.id)
    outbox.commit()

    assert get_queue().job_ids == ["route-1"]
    assert_forgotten_without_sending_again(["route-1"])


def test_a_request_hands_its_work_over_in_one_transaction_and_the_relay_deletes_the_rows(app, workspace):
    """The request's rows are named as sent in Redis, not deleted by a second transaction; the relay's
    next round deletes them, sends nothing twice, and empties the set."""
    from inbox import outbox
    from inbox.broker import redis_client

    outbox.enqueue_job("inbox.jobs.route.route_message", 7, job_id="route-7", workspace_id=workspace.id)
    outbox.publish_event(workspace.id, "conversation-changed", conversation_id=7)
    transactions = []
    with _counting_commits(transactions):
        outbox.commit()

    assert transactions == ["commit"]  # the data and its promises; nothing after the hand-over
    ids = db.session.scalars(select(OutboxEntry.id)).all()
    assert len(ids) == 2 and sorted(int(i) for i in redis_client().smembers(outbox.SENT_KEY)) == sorted(ids)
    assert get_queue().job_ids == ["route-7"]

    assert_forgotten_without_sending_again(["route-7"])
    assert redis_client().scard(outbox.SENT_KEY) == 0


def assert_forgotten_without_sending_again(job_ids: list[str]) -> None:
    assert relay_pending(min_age=timedelta(0)) == 0  # what the worker's relay thread does next
    assert sorted(get_queue().job_ids) == job_ids
    assert db.session.scalar(select(func.count()).select_from(OutboxEntry)) == 0


@contextmanager
def _counting_commits(seen: list):
    def on_commit(_connection):
        seen.append("commit")
    event.listen(db.engine, "commit", on_commit)
    try:
        yield
    finally:
        event.remove(db.engine, "commit", on_commit)
