"""Server-sent events: each browser listens to its workspace's Redis channel.

Events only say what changed ("conversation-changed", "contact-7-message"…); the browser
then fetches the fragment with a normal GET, so permission checks stay in the views.
Redis pub/sub makes it work with any number of web processes.
"""

from __future__ import annotations

import json
import logging

import redis
from flask import Blueprint, Response
from flask_login import current_user, login_required

from ..broker import redis_client, workspace_channel
from ..extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("stream", __name__)
HEARTBEAT_SECONDS = 10


@bp.get("/stream")
@login_required
def stream():
    workspace_id = current_user.workspace_id
    db.session.remove()  # a stream lives for hours: hold no database connection meanwhile
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(workspace_channel(workspace_id))
    except redis.RedisError:
        pubsub.close()
        return Response("live updates unavailable", status=503, headers={"Retry-After": "3"})
    return Response(_events(pubsub), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _events(pubsub):
    try:
        yield "retry: 2000\n: connected\n\n"
        while True:
            try:
                message = pubsub.get_message(timeout=HEARTBEAT_SECONDS)
            except redis.RedisError:
                log.warning("stream: lost redis, closing so the browser reconnects")
                return
            if message is None:
                yield ": ping\n\n"  # also how we notice a browser that went away
                continue
            event = json.loads(message["data"])
            yield f"event: {event['type']}\ndata: {json.dumps(event['data'])}\n\n"
    finally:
        pubsub.close()
