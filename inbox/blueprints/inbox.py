"""The unified inbox. One URL answers with the full page or, for HTMX, only the fragment."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint, abort, current_app, make_response, redirect, render_template, request, send_file, url_for,
)
from flask_login import current_user, login_required

from .. import storage
from ..broker import event_hub
from ..actions.conversations import (
    access_agent, access_attachment, access_conversation, access_conversation_shown, access_message,
    access_reply_channel, check_priority, check_reply, check_reply_files, check_status, check_whatsapp_extras,
    do_add_note, do_assign, do_mark_read, do_send_reply, do_set_priority, do_set_status, reply_channels,
)
from ..errors import ValidationError
from ..extensions import writes
from ..kinds import ChannelKind
from ..models import Conversation, ConversationStatus, Message, Priority, User
from ..orchestrator.media import attachment_from_token
from ..models.queries import Cursor, InboxFilter, OpenCounts, inbox_page, inbox_row
from .outbound import sidebar_label_counts
from .portal import send_ticket_attachment as send_stored_file

bp = Blueprint("inbox", __name__)


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")  # full page and fragment share a URL: caches must tell them apart
    return response


@bp.get("/")
def home():
    return redirect(url_for("inbox.index"))


@bp.get("/inbox")
@login_required
def index():
    filters = InboxFilter.from_args(request.args)
    after = Cursor.decode(request.args.get("after"))
    if request.htmx and after:
        return _render_rows(filters, after)
    if request.htmx and request.htmx.target == "conv-list":
        return _render_list(filters)
    return _render_page(filters, conversation=None)


@bp.get("/inbox/rows/<int:conversation_id>")
@login_required
def list_row(conversation_id: int):
    """One conversation's row for the open list, after a live change (the list follows an event by
    fetching the row it names, not itself: one small query per browser instead of a page). Empty
    when the list's filters leave it out, which is also the answer for one the agent may not see;
    the sidebar counts come out of band, as with the whole list."""
    filters = InboxFilter.from_args(request.args)
    row = inbox_row(current_user.workspace_id, filters, user_id=current_user.id, conversation_id=conversation_id)
    return render_template("inbox/_live_row.html", row=row, filters=filters, counts=_sidebar_counts(shared=True))


@bp.get("/inbox/c/<int:conversation_id>")
@login_required
@writes
def conversation(conversation_id: int):
    conv = access_conversation_shown(conversation_id, current_user)
    do_mark_read(conv, actor=current_user)
    if request.htmx and request.htmx.target == "thread":
        return render_template("inbox/_thread.html", **_thread_context(conv))
    return _render_page(InboxFilter.from_args(request.args), conversation=conv)


@bp.get("/inbox/c/<int:conversation_id>/messages")
@login_required
@writes
def messages(conversation_id: int):
    """New messages after a cursor (live updates) or an older page (scrolling back)."""
    conv = access_conversation(conversation_id, current_user)
    after, before = request.args.get("after", type=int), request.args.get("before", type=int)
    if before is not None:
        older, has_more = _latest_page(conv, before_id=before)
        return render_template("inbox/_older.html", conversation=conv, messages=older, has_more=has_more)
    new = Message.history_of_contact(conv.contact_id, after_id=after or 0, limit=200)
    if new and conv.unread_count:
        do_mark_read(conv, actor=current_user)
    return render_template("inbox/_new_messages.html", conversation=conv, messages=new,
                           cursor=max([m.id for m in new], default=after or 0))


@bp.post("/inbox/c/<int:conversation_id>/reply")
@login_required
def reply(conversation_id: int):
    conv = access_conversation(conversation_id, current_user)
    internal = request.form.get("internal") == "1"
    key = request.form.get("idempotency_key") or None
    try:
        channel = None if internal else access_reply_channel(conv, request.form.get("channel_id", type=int))
        files = check_reply_files(request.files.getlist("files"), channel)
        extras = check_whatsapp_extras(request.form, channel, request.form.get("body", "").strip())
        text = check_reply(request.form.get("body", ""), channel, has_files=bool(files) or "location" in extras)
    except ValidationError as exc:
        return _composer_error(conv, exc)
    if internal:
        message = do_add_note(conv, text, actor=current_user, idempotency_key=key, files=files)
    else:  # a location / buttons ride in meta["send"], which the delivery hands to the adapter
        message = do_send_reply(conv, text, actor=current_user, channel=channel, idempotency_key=key, files=files,
                                meta={"send": extras} if extras else None)
    # The reply may have assigned the conversation: the controls come back out of band too.
    return render_template("inbox/_reply_sent.html", conversation=conv, message=message,
                           channels=reply_channels(conv), key=uuid.uuid4().hex,
                           agents=User.agent_choices(conv.workspace_id), statuses=list(ConversationStatus),
                           priorities=list(Priority))


@bp.post("/inbox/c/<int:conversation_id>/assign")
@login_required
def assign(conversation_id: int):
    conv = access_conversation(conversation_id, current_user)
    raw = request.form.get("assignee_id", "")
    agent_id = current_user.id if raw == "me" else (int(raw) if raw.isdigit() else None)
    do_assign(conv, access_agent(agent_id, current_user), actor=current_user)
    return _render_controls(conv)


@bp.post("/inbox/c/<int:conversation_id>/status")
@login_required
def set_status(conversation_id: int):
    conv = access_conversation(conversation_id, current_user)
    do_set_status(conv, check_status(request.form.get("status", "")), actor=current_user)
    return _render_controls(conv)


@bp.post("/inbox/c/<int:conversation_id>/priority")
@login_required
def set_priority(conversation_id: int):
    conv = access_conversation(conversation_id, current_user)
    do_set_priority(conv, check_priority(request.form.get("priority", "")), actor=current_user)
    return _render_controls(conv)


@bp.get("/inbox/m/<int:message_id>/html")
@login_required
def message_html(message_id: int):
    """An email's HTML, already sanitized, for a sandboxed frame: no script may run, no remote
    resource may load, whatever slipped through."""
    message = access_message(message_id, current_user)
    if not message.html:
        abort(404)
    response = make_response(message.html)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/inbox/attachments/<int:attachment_id>")
@login_required
def attachment(attachment_id: int):
    item = access_attachment(attachment_id, current_user)
    if not item.storage_key:
        abort(404)
    return send_file(storage.path_of(item.storage_key), mimetype=item.content_type,
                     download_name=item.filename or f"attachment-{item.id}", as_attachment=not item.is_image,
                     max_age=3600)


@bp.get("/media/<token>/<name>")
def public_media(token: str, name: str):
    """A file an agent sent, for the provider that delivers it (Twilio, Meta): no sign-in, the
    signed and expiring token is the key (orchestrator/media.py). `name` is only decoration the
    provider reads the extension of."""
    item = attachment_from_token(token)
    if item is None:
        abort(404)
    return send_stored_file(item)  # the portal's: nosniff, no-store, no transaction held while streaming


@bp.get("/inbox/m/<int:message_id>")
@login_required
def message(message_id: int):
    """One message re-rendered (a voicemail whose transcript arrived, a status that changed)."""
    item = access_message(message_id, current_user)
    return render_template("inbox/_message.html", message=item, conversation=item.conversation)


@bp.get("/inbox/m/<int:message_id>/status")
@login_required
def message_status(message_id: int):
    return render_template("inbox/_delivery.html", message=access_message(message_id, current_user))


# -- rendering helpers ---------------------------------------------------------------------------
def _list_context(filters: InboxFilter, after: Cursor | None = None) -> dict:
    rows, next_cursor = inbox_page(current_user.workspace_id, filters, user_id=current_user.id,
                                   after=after, limit=current_app.config["INBOX_PAGE_SIZE"])
    return {"filters": filters, "rows": rows, "next_cursor": next_cursor}


def _render_rows(filters: InboxFilter, after: Cursor):
    return render_template("inbox/_rows.html", **_list_context(filters, after))


def _render_list(filters: InboxFilter):
    counts = _sidebar_counts()
    return render_template("inbox/_list.html", counts=counts, oob_views=True, **_list_context(filters))


def _sidebar_counts(*, shared: bool = False) -> dict[str, int]:
    """Views and channels in one query, labels in one grouped query: two, whatever the sizes.
    `shared`: a live row fetch, woken by an event with every other open inbox of the workspace:
    the open conversations are read once per event in this process, not once per browser."""
    workspace_id = current_user.workspace_id
    if shared:
        open_counts = event_hub().memo(workspace_id, "open-counts", lambda: OpenCounts.of(workspace_id))
    else:
        open_counts = OpenCounts.of(workspace_id)
    return {**open_counts.views_of(current_user.id), **sidebar_label_counts(workspace_id)}


def _render_page(filters: InboxFilter, *, conversation: Conversation | None):
    context = {
        **_list_context(filters),
        "counts": _sidebar_counts(),
        "agents": User.agent_choices(current_user.workspace_id),
        "channel_kinds": list(ChannelKind),
        "statuses": list(ConversationStatus),
        "priorities": list(Priority),
    }
    if conversation is not None:
        context.update(_thread_context(conversation, agents=context["agents"]))
    return render_template("inbox/index.html", **context)


def _thread_context(conv: Conversation, *, agents: list | None = None) -> dict:
    history, has_more = _latest_page(conv)
    return {
        "conversation": conv,
        "messages": history,
        "has_more": has_more,
        "cursor": max([m.id for m in history], default=0),
        "channels": reply_channels(conv),
        "agents": agents if agents is not None else User.agent_choices(conv.workspace_id),
        "statuses": list(ConversationStatus),
        "priorities": list(Priority),
        "key": uuid.uuid4().hex,
    }


def _latest_page(conv: Conversation, *, before_id: int | None = None) -> tuple[list[Message], bool]:
    """The contact's latest THREAD_PAGE_SIZE messages (before a message, when scrolling back) and
    whether earlier ones exist: one more is read, so the button never loads an empty page."""
    page_size = current_app.config["THREAD_PAGE_SIZE"]
    history = Message.history_of_contact(conv.contact_id, before_id=before_id, limit=page_size + 1)
    return history[-page_size:], len(history) > page_size


def _render_controls(conv: Conversation):
    return render_template("inbox/_controls.html", conversation=conv,
                           agents=User.agent_choices(conv.workspace_id),
                           statuses=list(ConversationStatus), priorities=list(Priority))


def _composer_error(conv: Conversation, exc: ValidationError):
    html = render_template("inbox/_composer.html", conversation=conv, channels=reply_channels(conv),
                           key=request.form.get("idempotency_key") or uuid.uuid4().hex,
                           error=exc.message, body=request.form.get("body", ""),
                           internal=request.form.get("internal") == "1")
    response = make_response(html, 422)
    response.headers["HX-Retarget"] = "#composer"
    response.headers["HX-Reswap"] = "outerHTML"
    return response
