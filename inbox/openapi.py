"""The REST API's OpenAPI 3.1 document, written by hand (served at /api/openapi.json).

Keep it in step with inbox/blueprints/api.py: tests/integration/test_api.py checks every
response of its tests against these schemas, and that every path here is routed.
"""

from __future__ import annotations

from copy import deepcopy

from .kinds import ChannelKind
from .models import ConversationStatus, Priority, TicketCategory, TicketStatus

STATUSES = [str(s) for s in TicketStatus]
PRIORITIES = [str(p) for p in Priority]
CATEGORIES = [str(c) for c in TicketCategory]
STAMP = {"type": ["string", "null"], "format": "date-time"}
ID_PARAM = {"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "integer"},
            "description": "The ticket's id (the `ticket_id` of a ticket, not its TKT- number)."}
CONVERSATION_STATUSES = [str(s) for s in ConversationStatus]
CHANNEL_KINDS = [str(k) for k in ChannelKind]
CONVERSATION_ID = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
CONTACT_ID = {"name": "contact_id", "in": "path", "required": True, "schema": {"type": "integer"}}
LABEL_ID = {"name": "label_id", "in": "path", "required": True, "schema": {"type": "integer"}}
MEMBERS_ONLY = " Members' tokens only (403 for a customer token)."


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    return {str(code): {"$ref": f"#/components/responses/{name}"} for code, name in (
        (400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound"), (409, "Conflict"),
        (422, "Unprocessable")) if code in codes}


SCHEMAS: dict[str, dict] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "ValidationErrors": {
        "type": "object", "required": ["errors"],
        "properties": {"errors": {"type": "object", "additionalProperties": {"type": "string"},
                                  "description": "One message per wrong field, in the caller's language."}}},
    "Party": {"type": "object", "required": ["id", "name"],
              "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
    "Ticket": {
        "type": "object",
        "required": ["ticket_id", "number", "subject", "description", "status", "priority", "category", "contact",
                     "resolution", "created_at", "updated_at", "first_responded_at", "resolved_at", "closed_at",
                     "url"],
        "properties": {
            "ticket_id": {"type": "integer"},
            "number": {"type": "string", "description": "Human-friendly number, e.g. TKT-000123.",
                       "pattern": "^TKT-\\d{6,}$"},
            "subject": {"type": "string"}, "description": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "priority": {"type": "string", "enum": PRIORITIES},
            "category": {"type": "string", "enum": CATEGORIES},
            "contact": _ref("Party"),
            "resolution": {"type": ["string", "null"]},
            "created_at": STAMP, "updated_at": STAMP, "first_responded_at": STAMP, "resolved_at": STAMP,
            "closed_at": STAMP,
            "url": {"type": "string", "description": "The ticket's page: the portal for a customer token, "
                                                     "the inbox for a member's."},
            # Members' tokens only:
            "assignee": {"oneOf": [_ref("Party"), {"type": "null"}], "description": "Members' tokens only."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Members' tokens only."},
            "source": {"type": "string", "enum": ["agent", "conversation", "api", "portal", "telegram", "ai"],
                       "description": "Members' tokens only."},
            "first_response_due_at": STAMP, "resolution_due_at": STAMP,
            "sla_breached": {"type": "boolean", "description": "Members' tokens only."},
        },
    },
    "Event": {
        "type": "object", "required": ["event_id", "kind", "body", "internal", "created_at", "author"],
        "properties": {
            "event_id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["created", "public_reply", "internal_note", "customer_message",
                                                "status", "assigned", "priority", "category", "linked",
                                                "sla_breached", "reopened", "auto_closed", "rated",
                                                "customer_notified"]},
            "body": {"type": "string"},
            "internal": {"type": "boolean", "description": "Always false for a customer token: internal lines "
                                                           "are never returned to customers."},
            "created_at": STAMP,
            "author": {"type": "object", "required": ["type", "name"],
                       "properties": {"type": {"type": "string", "enum": ["agent", "customer", "system"]},
                                      "name": {"type": ["string", "null"]}}},
            "data": {"type": "object", "description": "Facts of the line (from/to status…). Members' tokens only."},
        },
    },
    "Attachment": {
        "type": "object", "required": ["attachment_id", "filename", "content_type", "size", "created_at"],
        "properties": {"attachment_id": {"type": "integer"}, "filename": {"type": "string"},
                       "content_type": {"type": "string"}, "size": {"type": "integer"}, "created_at": STAMP},
    },
    "Rating": {"type": "object", "required": ["score", "comment", "created_at"],
               "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5},
                              "comment": {"type": ["string", "null"]}, "created_at": STAMP}},
    "TicketDetail": {
        "allOf": [_ref("Ticket"), {
            "type": "object", "required": ["events", "attachments", "rating"],
            "properties": {"events": {"type": "array", "items": _ref("Event")},
                           "attachments": {"type": "array", "items": _ref("Attachment")},
                           "rating": {"oneOf": [_ref("Rating"), {"type": "null"}]}}}],
    },
    "TicketList": {
        "type": "object", "required": ["tickets", "next_cursor"],
        "properties": {"tickets": {"type": "array", "items": _ref("Ticket")},
                       "next_cursor": {"type": ["string", "null"],
                                       "description": "Pass it as `cursor` for the next page; null on the last."}},
    },
    "NewTicket": {
        "type": "object", "required": ["subject"],
        "properties": {
            "contact_id": {"type": "integer", "description": "The client. Required with a member's token; a "
                                                             "customer token opens tickets for itself only."},
            "subject": {"type": "string", "maxLength": 200}, "description": {"type": "string", "maxLength": 20000},
            "category": {"type": "string", "enum": CATEGORIES, "default": "general"},
            "priority": {"type": "string", "enum": PRIORITIES, "default": "medium"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Members' tokens only."},
            "assignee_id": {"type": "integer", "description": "Members' tokens only."},
            "notify_user": {"type": "boolean", "default": True,
                            "description": "Send the customer the confirmation (number and promised time)."},
        },
    },
    "TicketCreated": {
        "type": "object", "required": ["ticket_id", "number", "status", "created_at", "url"],
        "properties": {"ticket_id": {"type": "integer"}, "number": {"type": "string"},
                       "status": {"type": "string", "enum": STATUSES}, "created_at": STAMP,
                       "url": {"type": "string"}},
    },
    "Reply": {
        "type": "object", "required": ["message"],
        "properties": {"message": {"type": "string"},
                       "internal_note": {"type": "boolean", "default": False,
                                         "description": "An agents-only note, never sent (403 for customers)."}},
    },
    "ReplyCreated": {
        "type": "object", "required": ["event", "ticket_id", "status"],
        "properties": {"event": _ref("Event"), "ticket_id": {"type": "integer"},
                       "status": {"type": "string", "enum": STATUSES}},
    },
    "Close": {
        "type": "object",
        "properties": {"resolution": {"type": "string"},
                       "notify_user": {"type": "boolean", "default": True,
                                       "description": "Tell the customer (with the rating request)."}},
    },
    "Stats": {
        "type": "object",
        "required": ["total", "by_status", "by_priority", "by_category", "window_days",
                     "mean_first_response_minutes", "mean_resolution_minutes", "satisfaction"],
        "properties": {
            "total": {"type": "integer"},
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_priority": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_category": {"type": "object", "additionalProperties": {"type": "integer"}},
            "window_days": {"type": "integer"},
            "mean_first_response_minutes": {"type": ["integer", "null"],
                                            "description": "Tickets created in the window."},
            "mean_resolution_minutes": {"type": ["integer", "null"]},
            "satisfaction": {"type": "object", "required": ["mean", "count", "distribution"],
                             "properties": {"mean": {"type": ["number", "null"]}, "count": {"type": "integer"},
                                            "distribution": {"type": "object",
                                                             "additionalProperties": {"type": "integer"}}}},
        },
    },
    "Label": {
        "type": "object", "required": ["label_id", "name", "color"],
        "properties": {"label_id": {"type": "integer"}, "name": {"type": "string"},
                       "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}},
    },
    "LabelList": {"type": "object", "required": ["labels"],
                  "properties": {"labels": {"type": "array", "items": _ref("Label")}}},
    "LabelRef": {"type": "object", "required": ["label_id"],
                 "properties": {"label_id": {"type": "integer", "description": "A label of your workspace."}}},
    "Conversation": {
        "type": "object",
        "required": ["conversation_id", "status", "priority", "channel", "contact", "assignee", "last_activity_at",
                     "last_message_preview", "unread_count", "labels", "url"],
        "properties": {
            "conversation_id": {"type": "integer"},
            "status": {"type": "string", "enum": CONVERSATION_STATUSES},
            "priority": {"type": "string", "enum": PRIORITIES},
            "channel": {"type": ["string", "null"], "enum": [*CHANNEL_KINDS, None],
                        "description": "The channel of the last message."},
            "contact": _ref("Party"),
            "assignee": {"oneOf": [_ref("Party"), {"type": "null"}]},
            "last_activity_at": STAMP, "last_message_preview": {"type": "string"},
            "unread_count": {"type": "integer", "minimum": 0},
            "labels": {"type": "array", "items": _ref("Label")},
            "url": {"type": "string", "description": "The conversation in the inbox."},
        },
    },
    "ConversationList": {
        "type": "object", "required": ["conversations", "next_cursor"],
        "properties": {"conversations": {"type": "array", "items": _ref("Conversation")},
                       "next_cursor": {"type": ["string", "null"],
                                       "description": "Pass it as `cursor` for the next page; null on the last."}},
    },
    "Contact": {
        "type": "object",
        "required": ["contact_id", "name", "company", "email", "phone", "preferred_channel", "locale", "labels",
                     "created_at", "url"],
        "properties": {
            "contact_id": {"type": "integer"}, "name": {"type": "string"},
            "company": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]},
            "phone": {"type": ["string", "null"]},
            "preferred_channel": {"type": ["string", "null"], "enum": [*CHANNEL_KINDS, None]},
            "locale": {"type": ["string", "null"]},
            "labels": {"type": "array", "items": _ref("Label")},
            "created_at": STAMP,
            "url": {"type": "string", "description": "The client's page."},
        },
    },
}

def _label_paths(collection: str, schema: str, noun: str, id_param: dict) -> dict:
    """Adding and removing a label, the same on conversations and on clients."""
    base = f"/api/{collection}/{{{id_param['name']}}}/labels"
    returned = _json(_ref(schema), f"The {noun}, with its labels.")
    return {
        base: {"post": {
            "operationId": f"add{schema}Label",
            "summary": f"Put a label on a {noun} (nothing changes if it is there already)." + MEMBERS_ONLY,
            "parameters": [id_param],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("LabelRef")}}},
            "responses": {"200": returned, **_errors(400, 401, 403, 404, 422)},
        }},
        base + "/{label_id}": {"delete": {
            "operationId": f"remove{schema}Label",
            "summary": f"Take a label off a {noun} (nothing changes if it is not there)." + MEMBERS_ONLY,
            "parameters": [id_param, LABEL_ID],
            "responses": {"200": returned, **_errors(401, 403, 404)},
        }},
    }


PATHS: dict[str, dict] = {
    "/api/tickets": {
        "post": {
            "operationId": "createTicket", "summary": "Open a ticket",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewTicket")}}},
            "responses": {"201": _json(_ref("TicketCreated"), "Created (Location: the ticket's API URL)."),
                          **_errors(400, 401, 403, 422)},
        },
        "get": {
            "operationId": "listTickets",
            "summary": "List tickets, newest first (a customer token: its own only)",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": [*STATUSES, "active", "any"],
                                                              "default": "any"}},
                {"name": "priority", "in": "query", "schema": {"type": "string", "enum": PRIORITIES}},
                {"name": "category", "in": "query", "schema": {"type": "string", "enum": CATEGORIES}},
                {"name": "assignee", "in": "query", "schema": {"type": "string"},
                 "description": "`me`, `none` or an agent's id (members' tokens only)."},
                {"name": "contact_id", "in": "query", "schema": {"type": "integer"}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"},
                 "description": "The `next_cursor` of the previous page."},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                                             "default": 25}},
            ],
            "responses": {"200": _json(_ref("TicketList"), "One page."), **_errors(401, 403, 422)},
        },
    },
    "/api/tickets/{ticket_id}": {
        "get": {
            "operationId": "getTicket", "summary": "A ticket with its history (customers: public lines only)",
            "parameters": [ID_PARAM],
            "responses": {"200": _json(_ref("TicketDetail"), "The ticket."), **_errors(401, 404)},
        },
    },
    "/api/tickets/{ticket_id}/reply": {
        "post": {
            "operationId": "replyToTicket",
            "summary": "Answer the customer (members), write an internal note (members), or write to the team "
                       "(customers)",
            "parameters": [ID_PARAM, {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                                      "description": "Members: the same key twice adds the reply once."}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Reply")}}},
            "responses": {"201": _json(_ref("ReplyCreated"), "Added."), **_errors(400, 401, 403, 404, 409, 422)},
        },
    },
    "/api/tickets/{ticket_id}/close": {
        "post": {
            "operationId": "closeTicket", "summary": "Close a ticket",
            "parameters": [ID_PARAM],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("Close")}}},
            "responses": {"200": _json(_ref("TicketDetail"), "Closed."), **_errors(400, 401, 404, 409, 422)},
        },
    },
    "/api/tickets/stats": {
        "get": {
            "operationId": "ticketStats",
            "summary": "Counts by status, priority and category; mean times; satisfaction (members only)",
            "parameters": [{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                     "maximum": 365, "default": 30},
                            "description": "The window for the mean times and satisfaction."}],
            "responses": {"200": _json(_ref("Stats"), "The figures."), **_errors(401, 403, 422)},
        },
    },
    "/api/labels": {
        "get": {
            "operationId": "listLabels", "summary": "The workspace's labels, by name." + MEMBERS_ONLY,
            "responses": {"200": _json(_ref("LabelList"), "Every label."), **_errors(401, 403)},
        },
    },
    "/api/conversations": {
        "get": {
            "operationId": "listConversations",
            "summary": "Conversations, latest activity first, with their labels." + MEMBERS_ONLY,
            "parameters": [
                {"name": "status", "in": "query",
                 "schema": {"type": "string", "enum": [*CONVERSATION_STATUSES, "any"], "default": "open"}},
                {"name": "label", "in": "query", "schema": {"type": "integer"},
                 "description": "Only conversations carrying this label (a `label_id` of your workspace)."},
                {"name": "cursor", "in": "query", "schema": {"type": "string"},
                 "description": "The `next_cursor` of the previous page."},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                                             "default": 25}},
            ],
            "responses": {"200": _json(_ref("ConversationList"), "One page."), **_errors(401, 403, 422)},
        },
    },
    "/api/conversations/{conversation_id}": {
        "get": {
            "operationId": "getConversation", "summary": "A conversation with its labels." + MEMBERS_ONLY,
            "parameters": [CONVERSATION_ID],
            "responses": {"200": _json(_ref("Conversation"), "The conversation."), **_errors(401, 403, 404)},
        },
    },
    "/api/contacts/{contact_id}": {
        "get": {
            "operationId": "getContact", "summary": "A client (contact) with its labels." + MEMBERS_ONLY,
            "parameters": [CONTACT_ID],
            "responses": {"200": _json(_ref("Contact"), "The client."), **_errors(401, 403, 404)},
        },
    },
    **_label_paths("conversations", "Conversation", "conversation", CONVERSATION_ID),
    **_label_paths("contacts", "Contact", "client", CONTACT_ID),
}

RESPONSES = {
    "BadRequest": _json(_ref("Error"), "The body is not a JSON object."),
    "Unauthorized": _json(_ref("Error"), "No token, or an invalid or revoked one (WWW-Authenticate: Bearer)."),
    "Forbidden": _json(_ref("Error"), "The token's role may not do this (e.g. a customer writing an internal "
                                      "note, reading stats, or acting for another client)."),
    "NotFound": _json(_ref("Error"), "No such ticket (conversation, client, label), or not one this token may "
                                     "see."),
    "Conflict": _json(_ref("Error"), "The ticket's state forbids it (e.g. replying on a closed ticket)."),
    "Unprocessable": _json(_ref("ValidationErrors"), "Wrong fields, each with a message."),
}


def spec(base_url: str) -> dict:
    """The document, with this installation's address as its server."""
    return deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "Coccinelle tickets API", "version": "1.1.0",
                 "description": "Tickets of a Coccinelle workspace, and (members' tokens) its conversations, "
                                "clients and their labels. Authenticate with `Authorization: Bearer "
                                "<token>`: a member's token (agent or admin) sees the workspace's tickets, a "
                                "customer's token only its own and never an internal note. Tokens are created "
                                "in Settings → API tokens or with `flask api-token create --email EMAIL`."},
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": SCHEMAS, "responses": RESPONSES},
    })
