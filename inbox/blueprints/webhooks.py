"""Provider webhooks: verify the signature, parse, keep, answer fast.

Nothing is stored before the signature is checked; a payload we cannot read gets a 400
with the reason. An inbound webhook is kept as one row and its messages are stored by the
`ingest` job (one insert per request absorbs bursts); delivery statuses are applied here.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request

from ..channels.base import ChannelAdapter, WebhookRequest
from ..errors import InvalidSignature, MalformedPayload
from ..extensions import csrf, db
from ..models import Channel
from ..orchestrator.delivery import adapter_for, do_update_delivery, webhook_url
from ..orchestrator.ingest import do_accept_delivery

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # providers authenticate with signatures, not session cookies


@bp.post("/<provider>/<kind>/<public_id>")
def inbound(provider: str, kind: str, public_id: str):
    """Verified and read here (a bad payload gets its 400 now); stored by the ingest job."""
    _statements_commit_themselves()
    channel, adapter, req = _verified(provider, kind, public_id)
    worth_keeping = bool(adapter.parse(req))
    if getattr(adapter, "statuses_in_inbound_webhook", False):  # Meta batches both in one POST
        worth_keeping = bool(adapter.parse_status(req)) or worth_keeping
    if worth_keeping:
        do_accept_delivery(channel, req)
    if hasattr(adapter, "call_reply"):  # voice: the answer (TwiML) depends on the call's state
        reply = adapter.call_reply(req, webhook_url(channel))
        return Response(reply.body, status=reply.status, content_type=reply.content_type)
    return _reply(adapter)


@bp.get("/<provider>/<kind>/<public_id>")
def handshake(provider: str, kind: str, public_id: str):
    """Subscription checks some providers make before sending anything (Meta's hub.challenge)."""
    channel = _channel(provider, kind, public_id)
    reply = adapter_for(channel).handshake(webhook_request())
    if reply is None:
        abort(405)
    return Response(reply.body, status=reply.status, content_type=reply.content_type)


@bp.post("/<provider>/<kind>/<public_id>/status")
def status(provider: str, kind: str, public_id: str):
    channel, adapter, req = _verified(provider, kind, public_id)
    for update in adapter.parse_status(req):
        do_update_delivery(channel, update)
    return _reply(adapter)


@bp.errorhandler(InvalidSignature)
def _invalid_signature(exc: InvalidSignature):
    log.warning("webhook rejected: %s path=%s", exc, request.path)
    return {"error": "invalid signature"}, 403


@bp.errorhandler(MalformedPayload)
def _malformed(exc: MalformedPayload):
    log.warning("webhook malformed: %s path=%s", exc, request.path)
    return {"error": f"malformed payload: {exc}"}, 400


def _statements_commit_themselves() -> None:
    """The door reads its channel and writes one row (do_accept_delivery): on PostgreSQL it needs no
    transaction around them, and each statement commits itself. That saves two of its five round trips
    to the server (BEGIN, COMMIT) on the path every webhook takes. SQLite's are in-process, and its
    BEGIN IMMEDIATE is what orders its writers: unchanged there."""
    if db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _channel(provider: str, kind: str, public_id: str) -> Channel:
    channel = Channel.for_webhook(public_id)
    if channel is None or not channel.enabled or (channel.provider, channel.kind) != (provider, kind):
        abort(404)
    return channel


def _verified(provider: str, kind: str, public_id: str) -> tuple[Channel, ChannelAdapter, WebhookRequest]:
    channel = _channel(provider, kind, public_id)
    adapter = adapter_for(channel)
    req = webhook_request()
    adapter.verify(req)
    return channel, adapter, req


def webhook_request() -> WebhookRequest:
    """The request as the provider built it: signatures cover the public URL, not our internal one."""
    body = request.get_data(cache=True)  # before .form, so the raw bytes stay available
    url = current_app.config["PUBLIC_BASE_URL"] + request.path
    if request.query_string:
        url += "?" + request.query_string.decode()
    return WebhookRequest(url=url, headers=request.headers, form=request.form, body=body,
                          query=request.args)


def _reply(adapter: ChannelAdapter) -> Response:
    reply = adapter.webhook_reply()
    return Response(reply.body, status=reply.status, content_type=reply.content_type)
