"""Server-sent events: each browser listens to its workspace's live events.

Events mostly say what changed ("contact-7-message"…); the browser then fetches the fragment
with a normal GET, so permission checks stay in the views. A changed conversation comes with its
list row and the reader's sidebar counts (live_rows.py): every agent would fetch them at once.
Redis pub/sub makes it work with any number of web processes; within a process, one
subscriber (broker.EventHub) feeds every stream's in-memory queue, so a stream costs no
Redis connection.
"""

from __future__ import annotations

import queue

from flask import Blueprint, Response, request
from flask_babel import get_locale
from flask_login import current_user, login_required

from ..broker import READY_WAIT_SECONDS, EventHub, StreamViewer, event_hub
from ..extensions import db

bp = Blueprint("stream", __name__)
HEARTBEAT_SECONDS = 10


@bp.get("/stream")
@login_required
def stream():
    workspace_id = current_user.workspace_id
    # Some events come with details for their reader: the inbox page asks for the rows (?rows=1).
    viewer = StreamViewer(current_user.id, str(get_locale()), lists=request.args.get("rows") == "1",
                          script_root=request.script_root)
    db.session.remove()  # a stream lives for hours: hold no database connection meanwhile
    hub = event_hub()
    hub.ensure_running()
    if not hub.ready.wait(READY_WAIT_SECONDS):
        return Response("live updates unavailable", status=503, headers={"Retry-After": "3"})
    return Response(_events(hub, workspace_id, viewer), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _events(hub: EventHub, workspace_id: int, viewer: StreamViewer):
    # Registered inside the generator: its finally only runs if it started, and a response
    # closed before its first chunk must not leave a queue behind.
    events = hub.register(workspace_id, viewer)
    try:
        hub.ready.wait(READY_WAIT_SECONDS)  # says "connected" once subscribed: nothing later is missed
        yield "retry: 2000\n: connected\n\n"
        while True:
            try:
                yield events.get(timeout=HEARTBEAT_SECONDS)
            except queue.Empty:
                hub.ensure_running()
                yield ": ping\n\n"  # also how we notice a browser that went away
    finally:  # the browser left (GeneratorExit) or the server stops: stop filling its queue
        hub.unregister(workspace_id, events)
