"""The REST API: JSON in and out, `Authorization: Bearer <token>`, CSRF-exempt (no cookie is
ever read here, so there is nothing for a forged cross-site request to ride on).

A member's token (agent or admin) sees the workspace's tickets; a customer's token sees only
its own, never an internal note. Errors: 400 unreadable body, 401 no/invalid/revoked token,
403 the token's role may not do this, 404 unknown or someone else's ticket, 409 the ticket's
state forbids it, 422 {"errors": {field: message}}. Described by /api/openapi.json.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from flask import Blueprint, abort, current_app, g, jsonify, make_response, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import lazyload
from werkzeug.exceptions import HTTPException

from ..actions.api_tokens import Principal, authenticate
from ..actions.labels import do_add_label, do_remove_label
from ..actions.conversations import access_agent
from ..actions.portal import access_customer_ticket
from ..actions.tickets import (
    FieldErrors, access_ticket, check_ticket_input, do_add_customer_reply, do_add_ticket_note, do_change_status,
    do_create_ticket,
)
from ..errors import NotAllowed, ValidationError
from ..extensions import csrf, db
from ..models import (
    Contact, Conversation, ConversationStatus, Label, Priority, Ticket, TicketAttachment, TicketCategory, TicketEvent,
    TicketSource, TicketStatus, utcnow,
)
from ..models.queries import STATUS_ANY as CONVERSATION_STATUS_ANY
from ..models.queries import Cursor as ConversationCursor
from ..models.queries import InboxFilter, inbox_page
from ..models.ticket_queries import STATUS_ACTIVE, STATUS_ANY, TicketCursor, TicketFilter, tickets_page
from ..models.ticket_stats import ticket_stats

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

PUBLIC_ENDPOINTS = frozenset({"api.openapi"})
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
# Action errors name the form's fields; the API's are named as in its documents.
FIELD_NAMES = {"body": "message", "assignee": "assignee_id", "contact": "contact_id"}


# -- authentication and errors -------------------------------------------------------------------
@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    scheme, _sep, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return _unauthorized(_("Send your API token in the Authorization header: Bearer <token>."))
    principal = authenticate(secret)
    if principal is None:
        return _unauthorized(_("This API token is invalid or has been revoked."))
    g.api = principal
    return None


def _unauthorized(message: str):
    response = _error(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="coccinelle"'
    return response


def _error(status: int, message: str):
    return make_response(jsonify(error=message), status)


def _field_errors(errors: dict[str, str]):
    return make_response(jsonify(errors={FIELD_NAMES.get(k, k): v for k, v in errors.items()}), 422)


@bp.errorhandler(FieldErrors)
def _invalid_fields(exc: FieldErrors):
    return _field_errors(exc.errors)


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError):
    return _field_errors({exc.field or "request": exc.message})


@bp.errorhandler(NotAllowed)
def _conflict(exc: NotAllowed):
    return _error(409, str(exc))


@bp.errorhandler(HTTPException)
@bp.errorhandler(403)  # by code too: the app's HTML/toast handlers for these codes would win otherwise
@bp.errorhandler(404)
def _http_error(exc: HTTPException):
    messages = {400: _("The request body must be a JSON object."),
                403: _("This token does not allow this."),
                404: _("No such ticket."),
                405: _("This address does not accept that method.")}
    if exc.description != type(exc).description:  # said by the endpoint (abort(404, "No such label."))
        return _error(exc.code or 500, exc.description)
    return _error(exc.code or 500, messages.get(exc.code, exc.description or ""))


def _me() -> Principal:
    return g.api


def _agents_only() -> None:
    if not _me().is_agent:
        abort(403)


def _access(ticket_id: int) -> Ticket:
    me = _me()
    return access_ticket(ticket_id, me.user) if me.is_agent else access_customer_ticket(ticket_id, me.contact)


# -- reading the body ----------------------------------------------------------------------------
def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400)
    return data


def _text(data: dict, key: str, errors: dict[str, str]) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        errors[key] = _("Must be a string.")
        return None
    return value


def _flag(data: dict, key: str, default: bool, errors: dict[str, str]) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors[key] = _("Must be true or false.")
        return default
    return value


def _integer(data: dict, key: str, errors: dict[str, str]) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[key] = _("Must be a whole number.")
        return None
    return value


# -- endpoints -----------------------------------------------------------------------------------
@bp.post("/tickets")
def create_ticket():
    me, data, errors = _me(), _body(), {}
    if me.is_customer and any(data.get(k) is not None for k in ("assignee_id", "tags")):
        abort(403)
    contact_id = _integer(data, "contact_id", errors)
    subject, description = _text(data, "subject", errors), _text(data, "description", errors)
    category, priority = _text(data, "category", errors), _text(data, "priority", errors)
    notify = _flag(data, "notify_user", True, errors)
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors["tags"], tags = _("Must be a list of strings."), []
    contact = _contact_for_new_ticket(me, contact_id, errors)
    assignee = None
    if me.is_agent and "assignee_id" not in errors:
        try:
            assignee = access_agent(_integer(data, "assignee_id", errors), me.user)
        except ValidationError as exc:
            errors["assignee_id"] = exc.message
    try:
        fields = check_ticket_input(subject=subject or "", description=description or "", category=category,
                                    priority=priority, tags=tags)
    except FieldErrors as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise FieldErrors(errors)
    ticket = do_create_ticket(contact, subject=fields.subject, description=fields.description,
                              category=fields.category, priority=fields.priority, tags=fields.tags,
                              actor=me.user, assignee=assignee, source=TicketSource.API, notify_customer=notify,
                              announce_later=True)
    response = make_response(jsonify(ticket_id=ticket.id, number=ticket.reference, status=str(ticket.status),
                                     created_at=_iso(ticket.created_at), url=_page_url(ticket)), 201)
    response.headers["Location"] = f"/api/tickets/{ticket.id}"
    return response


def _contact_for_new_ticket(me: Principal, contact_id: int | None, errors: dict[str, str]) -> Contact | None:
    if me.is_customer:
        if contact_id is not None and contact_id != me.contact.id:
            abort(403)  # a customer opens tickets for themselves only
        return me.contact
    if contact_id is None:
        if "contact_id" not in errors:
            errors["contact_id"] = _("Say which client the ticket is for (contact_id).")
        return None
    # Its identities (loaded with a contact by default) are not needed to open a ticket.
    contact = db.session.get(Contact, contact_id, options=[lazyload(Contact.identities)])
    if contact is None or contact.workspace_id != me.workspace_id:
        errors["contact_id"] = _("No client with this id in your workspace.")
        return None
    return contact


@bp.get("/tickets")
def list_tickets():
    me = _me()
    filters, cursor, limit = _list_args(me)
    rows, next_cursor = tickets_page(me.workspace_id, filters, user_id=me.user.id if me.user else 0,
                                     now=utcnow(), after=cursor, limit=limit)
    return jsonify(tickets=[_ticket_json(t, me) for t in rows],
                   next_cursor=_encode_cursor(next_cursor) if next_cursor else None)


def _list_args(me: Principal) -> tuple[TicketFilter, TicketCursor | None, int]:
    args, errors = request.args, {}
    if me.is_customer and (args.get("assignee") or (args.get("contact_id") or str(me.contact.id)) != str(me.contact.id)):
        abort(403)  # a customer lists its own tickets, nobody else's
    status = args.get("status") or STATUS_ANY
    if status not in {*TicketStatus, STATUS_ACTIVE, STATUS_ANY}:
        errors["status"] = _("Unknown status.")
    priority, category = args.get("priority") or None, args.get("category") or None
    if priority and priority not in set(Priority):
        errors["priority"] = _("Unknown priority.")
    if category and category not in set(TicketCategory):
        errors["category"] = _("Unknown category.")
    assignee = args.get("assignee", "")
    if assignee and assignee not in ("me", "none") and not assignee.isdigit():
        errors["assignee"] = _("Use me, none or an agent's id.")
    contact_id = args.get("contact_id", "")
    if contact_id and not contact_id.isdigit():
        errors["contact_id"] = _("Must be a whole number.")
    limit = args.get("limit", str(DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        errors["limit"], limit = _("Choose a limit from 1 to %(n)d.", n=MAX_LIMIT), DEFAULT_LIMIT
    cursor = _decode_cursor(args.get("cursor"))
    if args.get("cursor") and cursor is None:
        errors["cursor"] = _("This cursor is not one we gave.")
    if errors:
        raise FieldErrors(errors)
    filters = TicketFilter(status=status, priority=Priority(priority) if priority else None,
                           category=TicketCategory(category) if category else None, assignee=assignee,
                           contact_id=me.contact.id if me.is_customer else (int(contact_id) if contact_id else None))
    return filters, cursor, int(limit)


def _encode_cursor(cursor: TicketCursor) -> str:
    return base64.urlsafe_b64encode(f"t{cursor.id}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str | None) -> TicketCursor | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return TicketCursor(int(text[1:])) if text.startswith("t") and text[1:].isdigit() else None


@bp.get("/tickets/<int:ticket_id>")
def get_ticket(ticket_id: int):
    me = _me()
    return jsonify(_ticket_detail_json(_access(ticket_id), me))


@bp.post("/tickets/<int:ticket_id>/reply")
def reply(ticket_id: int):
    me = _me()
    ticket = _access(ticket_id)
    data, errors = _body(), {}
    message = _text(data, "message", errors)
    internal = _flag(data, "internal_note", False, errors)
    if errors:
        raise FieldErrors(errors)
    if internal and not me.is_agent:
        abort(403)  # internal notes are the team's
    if me.is_agent:
        event = do_add_ticket_note(ticket, message or "", actor=me.user, internal=internal,
                                   idempotency_key=request.headers.get("Idempotency-Key"))
    else:
        event = do_add_customer_reply(ticket, message or "", source="api")
    return make_response(jsonify(event=_event_json(event, me), ticket_id=ticket.id, status=str(ticket.status)), 201)


@bp.post("/tickets/<int:ticket_id>/close")
def close(ticket_id: int):
    me = _me()
    ticket = _access(ticket_id)
    data, errors = _body() if request.get_data() else {}, {}
    resolution = _text(data, "resolution", errors)
    notify = _flag(data, "notify_user", True, errors)
    if errors:
        raise FieldErrors(errors)
    # A customer closing their own ticket needs no message about it.
    do_change_status(ticket, TicketStatus.CLOSED, actor=me.user, resolution=resolution,
                     notify_customer=notify and me.is_agent)
    return jsonify(_ticket_detail_json(ticket, me))


@bp.get("/tickets/stats")
def stats():
    _agents_only()
    days = request.args.get("days", "30")
    if not days.isdigit() or not 1 <= int(days) <= 365:
        raise FieldErrors({"days": _("Choose a number of days from 1 to 365.")})
    s = ticket_stats(_me().workspace_id, now=utcnow(), days=int(days))
    return jsonify(
        total=s.total, by_status=s.by_status, by_priority=s.by_priority, by_category=s.by_category,
        window_days=s.window_days, mean_first_response_minutes=s.mean_first_response_minutes,
        mean_resolution_minutes=s.mean_resolution_minutes,
        satisfaction={"mean": float(s.satisfaction_mean) if s.satisfaction_mean is not None else None,
                      "count": s.satisfaction_count,
                      "distribution": {str(k): v for k, v in s.satisfaction_distribution.items()}})


# -- labels, conversations, contacts (members' tokens only) ---------------------------------------
def _owned(model, object_id: int, message: str):
    """A row of the token's workspace, or 404 (existence elsewhere does not leak)."""
    _agents_only()
    row = db.session.get(model, object_id)
    if row is None or row.workspace_id != _me().workspace_id:
        abort(404, message)
    return row


def _label_from_body() -> Label:
    data, errors = _body(), {}
    label_id = _integer(data, "label_id", errors)
    if label_id is None and not errors:
        errors["label_id"] = _("Say which label (label_id).")
    label = db.session.get(Label, label_id) if label_id is not None else None
    if not errors and (label is None or label.workspace_id != _me().workspace_id):
        errors["label_id"] = _("No label with this id in your workspace.")
    if errors:
        raise FieldErrors(errors)
    return label


@bp.get("/labels")
def list_labels():
    _agents_only()
    return jsonify(labels=[_label_json(label) for label in Label.of_workspace(_me().workspace_id)])


@bp.get("/conversations")
def list_conversations():
    _agents_only()
    me, args, errors = _me(), request.args, {}
    status = args.get("status") or ConversationStatus.OPEN
    if status not in {*ConversationStatus, CONVERSATION_STATUS_ANY}:
        errors["status"] = _("Unknown status.")
    label_id = args.get("label", "")
    if label_id and not (label_id.isdigit() and (label := db.session.get(Label, int(label_id))) is not None
                         and label.workspace_id == me.workspace_id):
        errors["label"] = _("No label with this id in your workspace.")
    limit = args.get("limit", str(DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        errors["limit"] = _("Choose a limit from 1 to %(n)d.", n=MAX_LIMIT)
    cursor = ConversationCursor.decode(args.get("cursor"))
    if args.get("cursor") and cursor is None:
        errors["cursor"] = _("This cursor is not one we gave.")
    if errors:
        raise FieldErrors(errors)
    filters = InboxFilter(status=status, label=int(label_id) if label_id else None)
    rows, next_cursor = inbox_page(me.workspace_id, filters, user_id=me.user.id, after=cursor, limit=int(limit))
    return jsonify(conversations=[_conversation_json(c) for c in rows],
                   next_cursor=next_cursor.encode() if next_cursor else None)


@bp.get("/conversations/<int:conversation_id>")
def get_conversation(conversation_id: int):
    return jsonify(_conversation_json(_owned(Conversation, conversation_id, _("No such conversation."))))


@bp.post("/conversations/<int:conversation_id>/labels")
def add_conversation_label(conversation_id: int):
    return _add_label(_owned(Conversation, conversation_id, _("No such conversation.")))


@bp.delete("/conversations/<int:conversation_id>/labels/<int:label_id>")
def remove_conversation_label(conversation_id: int, label_id: int):
    return _remove_label(_owned(Conversation, conversation_id, _("No such conversation.")), label_id)


@bp.get("/contacts/<int:contact_id>")
def get_contact(contact_id: int):
    return jsonify(_contact_json(_owned(Contact, contact_id, _("No such client."))))


@bp.post("/contacts/<int:contact_id>/labels")
def add_contact_label(contact_id: int):
    return _add_label(_owned(Contact, contact_id, _("No such client.")))


@bp.delete("/contacts/<int:contact_id>/labels/<int:label_id>")
def remove_contact_label(contact_id: int, label_id: int):
    return _remove_label(_owned(Contact, contact_id, _("No such client.")), label_id)


def _add_label(target: Conversation | Contact):
    do_add_label(target, _label_from_body(), actor=_me().user)  # already there: nothing changes
    return jsonify(_labelled_json(target))


def _remove_label(target: Conversation | Contact, label_id: int):
    do_remove_label(target, _owned(Label, label_id, _("No such label.")), actor=_me().user)
    return jsonify(_labelled_json(target))


def _labelled_json(target: Conversation | Contact) -> dict:
    return _conversation_json(target) if isinstance(target, Conversation) else _contact_json(target)


@bp.get("/openapi.json")
def openapi():
    from ..openapi import spec

    return jsonify(spec(current_app.config["PUBLIC_BASE_URL"]))


# -- representations -----------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _page_url(ticket: Ticket) -> str:
    """Where a person reads the ticket: the portal for a customer, the inbox for the team."""
    base = current_app.config["PUBLIC_BASE_URL"]
    return f"{base}/portal/tickets/{ticket.id}" if _me().is_customer else f"{base}/tickets/{ticket.id}"


def _ticket_json(t: Ticket, me: Principal) -> dict:
    data = {
        "ticket_id": t.id, "number": t.reference, "subject": t.subject, "description": t.description,
        "status": str(t.status), "priority": str(t.priority), "category": str(t.category),
        "contact": {"id": t.contact_id, "name": t.contact.display_name}, "resolution": t.resolution,
        "created_at": _iso(t.created_at), "updated_at": _iso(t.updated_at),
        "first_responded_at": _iso(t.first_responded_at), "resolved_at": _iso(t.resolved_at),
        "closed_at": _iso(t.closed_at), "url": _page_url(t),
    }
    if me.is_agent:
        data.update({
            "assignee": {"id": t.assignee.id, "name": t.assignee.name} if t.assignee else None,
            "tags": list(t.tags or []), "source": str(t.source),
            "first_response_due_at": _iso(t.first_response_due_at), "resolution_due_at": _iso(t.resolution_due_at),
            "sla_breached": t.sla_breached(utcnow()),
        })
    return data


def _ticket_detail_json(t: Ticket, me: Principal) -> dict:
    if me.is_agent:
        events = db.session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == t.id)
            .order_by(TicketEvent.created_at, TicketEvent.id).limit(1000)).all()
    else:
        events = TicketEvent.public_of(t.id)  # never an internal line
    rating = t.rating
    return {
        **_ticket_json(t, me),
        "events": [_event_json(e, me) for e in events],
        "attachments": [{"attachment_id": a.id, "filename": a.filename, "content_type": a.content_type,
                         "size": a.size, "created_at": _iso(a.created_at)}
                        for a in TicketAttachment.of_ticket(t.id, public_only=me.is_customer)],
        "rating": {"score": rating.score, "comment": rating.comment, "created_at": _iso(rating.created_at)}
        if rating else None,
    }


def _event_json(e: TicketEvent, me: Principal) -> dict:
    if e.actor is not None:
        author = {"type": "agent", "name": e.actor.name}
    elif e.kind == "customer_message":
        author = {"type": "customer", "name": None}
    else:
        author = {"type": "system", "name": None}
    data = {"event_id": e.id, "kind": str(e.kind), "body": e.body or (e.message.body if e.message else ""),
            "internal": bool(e.internal), "created_at": _iso(e.created_at), "author": author}
    if me.is_agent:
        data["data"] = dict(e.data or {})
    return data


def _label_json(label: Label) -> dict:
    return {"label_id": label.id, "name": label.name, "color": label.color}


def _conversation_json(c: Conversation) -> dict:
    base = current_app.config["PUBLIC_BASE_URL"]
    return {
        "conversation_id": c.id, "status": str(c.status), "priority": str(c.priority),
        "channel": str(c.channel.kind) if c.channel else None,
        "contact": {"id": c.contact_id, "name": c.contact.display_name},
        "assignee": {"id": c.assignee.id, "name": c.assignee.name} if c.assignee else None,
        "last_activity_at": _iso(c.last_activity_at), "last_message_preview": c.last_message_preview or "",
        "unread_count": c.unread_count, "labels": [_label_json(label) for label in c.labels],
        "url": f"{base}/inbox/c/{c.id}",
    }


def _contact_json(c: Contact) -> dict:
    base = current_app.config["PUBLIC_BASE_URL"]
    return {
        "contact_id": c.id, "name": c.display_name, "company": c.company, "email": c.email, "phone": c.phone,
        "preferred_channel": str(c.preferred_channel) if c.preferred_channel else None, "locale": c.locale,
        "labels": [_label_json(label) for label in c.labels], "created_at": _iso(c.created_at),
        "url": f"{base}/contacts/{c.id}",
    }
