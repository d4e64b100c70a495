"""The Redis connection and RQ queues. Everything that talks to Redis goes through here."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from rq import Queue
from rq.serializers import JSONSerializer

DEFAULT_QUEUE = "default"


def init_app(app: Flask) -> None:
    # Short timeouts: a webhook must answer even when Redis is down (the outbox keeps the work).
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5,
        health_check_interval=30,
    )


def redis_client() -> redis.Redis:
    return current_app.extensions["redis"]


def get_queue(name: str = DEFAULT_QUEUE) -> Queue:
    return Queue(name, connection=redis_client(), serializer=JSONSerializer)


def workspace_channel(workspace_id: int) -> str:
    """The pub/sub channel carrying one workspace's live events."""
    return f"coccinelle:events:ws:{workspace_id}"
