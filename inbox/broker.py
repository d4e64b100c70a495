"""The Redis connection and RQ queues. Everything that talks to Redis goes through here."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Flask, current_app
from rq import Queue
from rq.serializers import JSONSerializer

DEFAULT_QUEUE = "default"  # routing, replies, sends, notifications: someone is waiting
INGEST_QUEUE = "ingest"  # customers' messages waiting to be stored: taken before anything else
BACKGROUND_QUEUE = "background"  # periodic sweeps, campaigns: can wait seconds, taken last
WORKER_QUEUES = (INGEST_QUEUE, DEFAULT_QUEUE, BACKGROUND_QUEUE)  # the order a worker takes them in
# One machine (`make run`, the Procfile): RQ never interrupts a running job, so a sweep slice or a
# campaign tick would hold a lone worker for seconds while a customer's message waits. Two workers:
# replies never wait behind background work, and whichever is free stores customers' messages.
ONE_MACHINE_WORKERS = ((INGEST_QUEUE, DEFAULT_QUEUE), (INGEST_QUEUE, BACKGROUND_QUEUE))
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    # Short timeouts: a webhook must answer even when Redis is down (the outbox keeps the work).
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5,
        health_check_interval=30,
    )
    app.extensions["event_hub"] = EventHub(app.extensions["redis"])


def redis_client() -> redis.Redis:
    return current_app.extensions["redis"]


def get_queue(name: str = DEFAULT_QUEUE) -> Queue:
    return Queue(name, connection=redis_client(), serializer=JSONSerializer)


def workspace_channel(workspace_id: int) -> str:
    """The pub/sub channel carrying one workspace's live events."""
    return f"coccinelle:events:ws:{workspace_id}"


# --- Live events: one Redis subscriber per process, fanned out to in-memory queues -------------
#
# A pub/sub subscription holds a Redis connection for as long as it lives. One per open browser
# exhausted redis-py's pool (100) at 200 agents, so each process keeps a single pattern
# subscription on every workspace channel and hands each event to the queues of that
# workspace's streams. The pattern means no re-subscribing as browsers come and go.

WORKSPACE_PATTERN = workspace_channel(0).removesuffix("0") + "*"
STREAM_QUEUE_SIZE = 256  # events a slow browser may lag behind before the oldest are dropped
READY_WAIT_SECONDS = 3  # how long a new stream waits for the subscription before answering 503
IDLE_STOP_SECONDS = 30  # nobody listening that long: give the Redis connection back
MAX_BACKOFF_SECONDS = 10
MEMO_MAX_AGE_SECONDS = 2.0  # a memo outlives no event, nor this: a missed event costs 2 s at most


@dataclass(frozen=True, slots=True)
class StreamViewer:
    """Who reads a stream, as far as an event's details depend on it: the reader, their language,
    whether their page shows an inbox list (`lists`: the rows pushed with their events are for those
    pages only), and where the app is mounted (`script_root`: the links in what is pushed)."""

    user_id: int
    locale: str
    lists: bool = False
    script_root: str = ""


# An event's details for its readers: given the workspace, the event's data and the viewers of
# this process's streams, a function giving each viewer what to add to the data (or None: the
# event goes as published, to everyone or to that viewer). Called once per event per process, on
# the subscriber's thread.
EventDetails = Callable[[int, dict, frozenset[StreamViewer]], Callable[[StreamViewer], dict] | None]


class EventHub:
    """This process's Redis subscriber and the queues of the streams it serves."""

    def __init__(self, client: redis.Redis):
        self._client = client
        self._lock = threading.Lock()
        # workspace id -> its streams' queues, each with its viewer (None: the events as published)
        self._queues: dict[int, dict[queue.Queue, StreamViewer | None]] = {}
        self._details: dict[str, EventDetails] = {}
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # set while subscribed: events published now will arrive
        self._generations: dict[int, int] = {}  # workspace id -> events received since subscribed
        self._memos: dict[tuple[int, str], tuple[int, float, object]] = {}  # -> (generation, time, value)
        self._computing: dict[tuple[int, str], threading.Lock] = {}

    def memo(self, workspace_id: int, name: str, compute, *, max_age: float = MEMO_MAX_AGE_SECONDS):
        """`compute()`'s value, computed once in this process until the workspace's next live event.

        Every open inbox fetches what an event changed: with 200 agents, one reading of what is
        the same for all of them (the open conversations' counts) instead of 200. Every change
        publishes an event, after its commit, which reaches this process's subscriber before the
        browsers it wakes can ask again; `max_age` bounds what an event lost on the way costs.
        Without a subscription (no open stream here) nothing is kept."""
        if not self.ready.is_set():
            return compute()
        key = (workspace_id, name)
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:  # the browsers woken by one event wait for one reading, not each their own
            with self._lock:
                generation, kept = self._generations.get(workspace_id, 0), self._memos.get(key)
            if kept is not None and kept[0] == generation and time.monotonic() - kept[1] < max_age:
                return kept[2]
            started, value = time.monotonic(), compute()
            with self._lock:
                self._memos[key] = (generation, started, value)
            return value

    def add_details(self, event_type: str, details: EventDetails) -> None:
        """Send this event type with details for each viewer, computed once per event here, so
        that the browsers need not each ask for them (issue #7: 200 open inboxes each fetching
        the changed row cost more requests than two cores serve)."""
        self._details[event_type] = details

    def register(self, workspace_id: int, viewer: StreamViewer | None = None) -> queue.Queue:
        stream_queue: queue.Queue = queue.Queue(maxsize=STREAM_QUEUE_SIZE)
        with self._lock:
            self._queues.setdefault(workspace_id, {})[stream_queue] = viewer
        self.ensure_running()
        return stream_queue

    def ensure_running(self) -> None:
        """Start the subscriber lazily (so after any fork), or again if it died or stopped idle.

        Called by each new stream and at each stream's keep-alive, so open streams revive it too.
        """
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self.ready.clear()
                self._thread = threading.Thread(target=self._run, name="coccinelle-events", daemon=True)
                self._thread.start()

    def unregister(self, workspace_id: int, stream_queue: queue.Queue) -> None:
        with self._lock:
            streams = self._queues.get(workspace_id, {})
            streams.pop(stream_queue, None)
            if not streams:
                self._queues.pop(workspace_id, None)

    def stream_count(self) -> int:
        with self._lock:
            return sum(len(streams) for streams in self._queues.values())

    def _run(self) -> None:
        backoff = 0.5
        while True:
            pubsub = self._client.pubsub()
            try:
                pubsub.psubscribe(WORKSPACE_PATTERN)
                idle_since = None
                while True:
                    message = pubsub.get_message(timeout=1) or {"type": None}
                    if message["type"] == "psubscribe":
                        # Redis confirmed: whatever is published from now on reaches us; what was
                        # kept before may have missed events meanwhile.
                        with self._lock:
                            self._memos.clear()
                        self.ready.set()
                        backoff = 0.5
                    elif message["type"] == "pmessage":
                        self._fan_out(message)
                    if self.stream_count():
                        idle_since = None
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > IDLE_STOP_SECONDS and self._stop_if_nobody():
                        return
            except redis.RedisError as error:
                # Streams stay open (keep-alives) and miss events until Redis is back, as a
                # reconnecting browser would; new streams get a 503 meanwhile.
                log.warning("live events: redis unavailable (%s), retrying in %.1f s", error, backoff)
            except Exception:  # a bug must not silence live updates for good
                log.exception("live events: subscriber failed, restarting in %.1f s", backoff)
            finally:
                with self._lock:  # an idle-stopped thread must not unset its successor's readiness
                    if self._thread is threading.current_thread():
                        self.ready.clear()
                pubsub.close()
            if self._stop_if_nobody():  # no stream waits for Redis: retry when one comes
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _stop_if_nobody(self) -> bool:
        with self._lock:  # under the lock so that register() sees the thread gone and starts another
            if self._queues:
                return False
            self._thread = None
            self.ready.clear()
            return True

    def _fan_out(self, message: dict) -> None:
        try:
            workspace_id = int(message["channel"].rsplit(b":", 1)[1])
            event = json.loads(message["data"])
            event_type, data = event["type"], event["data"]
            # Formatted once for every stream of the workspace: the exact text the templates listen to.
            text = f"event: {event_type}\ndata: {json.dumps(data)}\n\n"
        except (ValueError, IndexError, KeyError, TypeError):
            log.warning("live events: ignoring a malformed message on %r", message["channel"])
            return
        with self._lock:
            self._generations[workspace_id] = self._generations.get(workspace_id, 0) + 1
            streams = dict(self._queues.get(workspace_id, {}))
        details = self._details_for(workspace_id, event_type, data, streams.values())
        texts: dict[StreamViewer | None, str] = {None: text}  # several tabs of one agent share theirs
        for stream_queue, viewer in streams.items():
            if viewer not in texts:
                texts[viewer] = text if details is None else _with_details(event_type, data, details, viewer, text)
            _put_dropping_oldest(stream_queue, texts[viewer])

    def _details_for(self, workspace_id: int, event_type: str, data: dict, viewers):
        compute = self._details.get(event_type)
        viewers = frozenset(viewer for viewer in viewers if viewer is not None)
        if compute is None or not viewers or not isinstance(data, dict):
            return None
        try:
            return compute(workspace_id, data, viewers)
        except Exception:  # the event still goes, as published: the browsers ask for what changed
            log.exception("live events: the details of %s failed", event_type)
            return None


def _with_details(event_type: str, data: dict, details, viewer: StreamViewer, plain: str) -> str:
    try:
        extra = details(viewer)
        return plain if extra is None else f"event: {event_type}\ndata: {json.dumps({**data, **extra})}\n\n"
    except Exception:  # this reader gets the event as published, and asks
        log.exception("live events: the details of %s failed for %s", event_type, viewer)
        return plain


def _put_dropping_oldest(stream_queue: queue.Queue, text: str) -> None:
    """A browser that does not read never makes the process grow: it loses its oldest events."""
    try:
        stream_queue.put_nowait(text)
    except queue.Full:
        try:
            stream_queue.get_nowait()
        except queue.Empty:  # the stream just caught up
            pass
        log.info("live events: a slow stream dropped an event")
        stream_queue.put_nowait(text)  # this thread is the only writer: there is room now


def event_hub() -> EventHub:
    return current_app.extensions["event_hub"]
