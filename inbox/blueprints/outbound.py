"""Outbound, agent side: labels on conversations and contacts, consent on the contact card,
"send later" in the composer and "new message later" on the client page, and the public
unsubscribe link (issue 8).
The admin pages (campaigns, segments, templates, follow-ups) are in blueprints/marketing.py."""

from __future__ import annotations

import uuid

from flask import Blueprint, g, make_response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..actions.consent import check_consent_form, do_agent_set_consent, do_unsubscribe, read_unsubscribe_token
from ..actions.conversations import access_conversation, access_reply_channel, check_reply, reply_channels
from ..actions.labels import do_set_contact_labels, do_set_conversation_labels, labels_by_ids
from ..actions.scheduled import (
    access_contact_channel, access_scheduled, check_schedule_form, check_send_at, contact_channels,
    do_cancel_scheduled, do_schedule_message, do_update_scheduled, quick_choices,
)
from ..actions.contacts import access_contact
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..extensions import csrf, db
from ..kinds import ChannelKind
from ..models import Consent, Label, OutboundTemplate, ScheduledMessage, Workspace, utcnow
from ..models.queries import label_counts

bp = Blueprint("outbound", __name__)
CONSENT_KINDS = (ChannelKind.SMS, ChannelKind.WHATSAPP, ChannelKind.EMAIL, ChannelKind.TELEGRAM)


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


# -- template helpers (used by the inbox and contact templates) -----------------------------------
@bp.app_template_global()
def workspace_labels() -> list[Label]:
    """The workspace's labels, read once per request however many controls show them."""
    if "workspace_labels" not in g:
        g.workspace_labels = Label.of_workspace(current_user.workspace_id)
    return g.workspace_labels


def sidebar_label_counts(workspace_id: int) -> dict[str, int]:
    """The inbox sidebar's label counts ("label-<id>" → open conversations), live like the other
    counts. The same grouped query lists the labels, so `workspace_labels()` needs no query."""
    counted = label_counts(workspace_id)
    g.workspace_labels = [label for label, _n in counted]
    return {f"label-{label.id}": n for label, n in counted}


@bp.app_template_global()
def scheduled_of(contact_id: int) -> list[ScheduledMessage]:
    return ScheduledMessage.pending_of_contact(contact_id)


@bp.app_template_global()
def consent_of(contact_id: int) -> dict:
    return Consent.of_contact(contact_id)


@bp.app_template_global()
def send_later_choices() -> list:
    return quick_choices(current_user.workspace.timezone, utcnow())


@bp.app_template_global()
def composer_templates() -> list[OutboundTemplate]:
    if "composer_templates" not in g:
        g.composer_templates = OutboundTemplate.of_workspace(current_user.workspace_id)
    return g.composer_templates


@bp.app_template_global()
def local_input(value) -> str:
    """An aware datetime as a datetime-local input value, in the workspace's time zone."""
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo(current_user.workspace.timezone)).strftime("%Y-%m-%dT%H:%M") if value else ""


@bp.app_template_global()
def quick_choice_label(key: str) -> str:
    return {"in_1h": _("In 1 hour"), "tomorrow_9": _("Tomorrow 9:00"), "tomorrow_14": _("Tomorrow 14:00"),
            "monday_9": _("Monday 9:00")}.get(key, key)


@bp.app_template_global()
def scheduled_status_label(status: str) -> str:
    return {"scheduled": _("Scheduled"), "sent": _("Sent"), "cancelled": _("Cancelled"),
            "blocked": _("Not sent")}.get(status, status)


@bp.app_template_global()
def scheduled_error_label(code: str | None) -> str:
    return {"whatsapp_window": _("Not sent: the WhatsApp 24-hour window is closed, and only an approved template "
                                 "can be sent now. Write again with a template."),
            "channel_disabled": _("Not sent: the channel is disabled.")}.get(code or "", _("Not sent."))


@bp.app_template_global()
def consent_source_label(source: str) -> str:
    return {"keyword": _("texted a keyword"), "unsubscribe_link": _("unsubscribe link"),
            "agent": _("set by an agent"), "import": _("imported"), "api": _("API")}.get(source, source)


# -- labels ---------------------------------------------------------------------------------------
@bp.post("/inbox/c/<int:conversation_id>/labels")
@login_required
def conversation_labels(conversation_id: int):
    conversation = access_conversation(conversation_id, current_user)
    labels = labels_by_ids(current_user.workspace_id, request.form.getlist("label_id"))
    do_set_conversation_labels(conversation, labels, actor=current_user)
    return render_template("labels/_conversation_labels.html", conversation=conversation, open_picker=True)


@bp.post("/contacts/<int:contact_id>/labels")
@login_required
def contact_labels(contact_id: int):
    contact = access_contact(contact_id, current_user)
    labels = labels_by_ids(current_user.workspace_id, request.form.getlist("label_id"))
    do_set_contact_labels(contact, labels, actor=current_user)
    return render_template("labels/_contact_labels.html", contact=contact, open_picker=True)


@bp.post("/contacts/<int:contact_id>/consent")
@login_required
def contact_consent(contact_id: int):
    contact = access_contact(contact_id, current_user)
    kind, status = check_consent_form(request.form.get("kind", ""), request.form.get("status", ""))
    do_agent_set_consent(contact, kind, status, actor=current_user)
    return render_template("labels/_contact_labels.html", contact=contact)


# -- send later -----------------------------------------------------------------------------------
@bp.post("/inbox/c/<int:conversation_id>/schedule")
@login_required
def schedule(conversation_id: int):
    conversation = access_conversation(conversation_id, current_user)
    try:
        channel = access_reply_channel(conversation, request.form.get("channel_id", type=int))
        if any(f.filename for f in request.files.getlist("files")):  # the composer's 📎: never dropped silently
            raise ValidationError(_("Files cannot be scheduled: send them now, or schedule the text alone."),
                                  field="files")
        found = check_schedule_form(request.form, channel, current_user, now=utcnow())
        do_schedule_message(conversation, found.text, contact=conversation.contact, actor=current_user,
                            channel=channel, send_at=found.send_at, template=found.template)
    except ValidationError as exc:
        html = render_template("inbox/_composer.html", conversation=conversation,
                               channels=reply_channels(conversation), key=request.form.get("idempotency_key")
                               or uuid.uuid4().hex, error=exc.message, body=request.form.get("body", ""),
                               send_later_open=True)
        return make_response(html, 422, {"HX-Retarget": "#composer", "HX-Reswap": "outerHTML"})
    html = render_template("outbound/_scheduled_sent.html", conversation=conversation, contact=conversation.contact,
                           channels=reply_channels(conversation), key=uuid.uuid4().hex)
    return make_response(html, 200, toast_headers(_("Message scheduled."), level="info"))


@bp.post("/contacts/<int:contact_id>/schedule")
@login_required
def contact_schedule(contact_id: int):
    """The client page's "new message later": no conversation yet; the worker sends it into the
    client's active conversation (or a new one) at its time."""
    contact = access_contact(contact_id, current_user)
    try:
        channel = access_contact_channel(contact, request.form.get("channel_id", type=int))
        found = check_schedule_form(request.form, channel, current_user, now=utcnow())
        do_schedule_message(None, found.text, contact=contact, actor=current_user, channel=channel,
                            send_at=found.send_at, template=found.template)
    except ValidationError as exc:
        form = request.form
        html = render_template("outbound/_new_later.html", contact=contact, later_channels=contact_channels(contact),
                               error=exc.message, body=form.get("body", ""), channel_id=form.get("channel_id", type=int),
                               template_id=form.get("template_id", type=int), send_at_value=form.get("send_at", ""))
        return make_response(html, 422, {"HX-Retarget": "#new-later", "HX-Reswap": "outerHTML"})
    html = render_template("outbound/_scheduled_sent.html", contact=contact, conversation=None,
                           later_channels=contact_channels(contact))
    return make_response(html, 200, toast_headers(_("Message scheduled."), level="info"))


@bp.get("/contacts/<int:contact_id>/scheduled")
@login_required
def scheduled_list(contact_id: int):
    contact = access_contact(contact_id, current_user)
    return render_template("outbound/_scheduled.html", contact=contact)


@bp.get("/scheduled/<int:scheduled_id>/edit")
@login_required
def edit_scheduled(scheduled_id: int):
    item = access_scheduled(scheduled_id, current_user)
    return render_template("outbound/_scheduled_item.html", item=item, editing=item.is_pending)


@bp.post("/scheduled/<int:scheduled_id>")
@login_required
def update_scheduled(scheduled_id: int):
    item = access_scheduled(scheduled_id, current_user)
    try:
        text = check_reply(request.form.get("body", ""), item.channel)
        send_at = check_send_at(request.form.get("send_at"), request.form.get("when"),
                                timezone=current_user.workspace.timezone, now=utcnow())
        do_update_scheduled(item, text, send_at=send_at, actor=current_user)
    except ValidationError as exc:
        html = render_template("outbound/_scheduled_item.html", item=item, editing=True, error=exc.message,
                               body=request.form.get("body", ""))
        return make_response(html, 422)
    return render_template("outbound/_scheduled_item.html", item=item)


@bp.post("/scheduled/<int:scheduled_id>/cancel")
@login_required
def cancel_scheduled(scheduled_id: int):
    item = access_scheduled(scheduled_id, current_user)
    do_cancel_scheduled(item, actor=current_user)
    return make_response("", 200, toast_headers(_("Scheduled message cancelled."), level="info"))


# -- unsubscribe (public: the link in every bulk email) -------------------------------------------
@bp.get("/u/<token>")
def unsubscribe_page(token: str):
    """A page with one button: a GET never unsubscribes (mail scanners follow links)."""
    found = read_unsubscribe_token(token)
    workspace = db.session.get(Workspace, found[0].workspace_id) if found else None
    return render_template("outbound/unsubscribe.html", valid=found is not None, done=False, token=token,
                           workspace=workspace), (200 if found else 404)


@bp.post("/u/<token>")
@csrf.exempt  # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" with no session
def unsubscribe(token: str):
    result = do_unsubscribe(token)
    if result is None:
        return render_template("outbound/unsubscribe.html", valid=False, done=False, token=token,
                               workspace=None), 404
    workspace = db.session.get(Workspace, result[0].workspace_id)
    return render_template("outbound/unsubscribe.html", valid=True, done=True, token=token, workspace=workspace)
