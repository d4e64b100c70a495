"""Tools around the channels (issue 3): merging two contacts, the composer's templates (the
picker, WhatsApp's approved templates outside the 24-hour window) and the template preview.

Partials another page can include: contacts/_merge.html ("Merge with…", needs `contact`).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..actions.contacts import access_contact, check_merge, do_merge_contacts, merge_candidates
from ..actions.conversations import access_conversation, access_reply_channel, do_send_reply, reply_channels
from ..actions.message_templates import (
    approved_templates, check_template_values, find_approved, preview, render_approved, render_for_contact,
    templates_for, whatsapp_window,
)
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..kinds import ChannelKind
from ..models import ConversationStatus, OutboundTemplate, Priority, User
from .outbound import composer_templates
from .settings import admin_required

bp = Blueprint("channel_tools", __name__)


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


@bp.app_template_global()
def composer_state(conversation, channels, channel_id=None) -> dict:
    """What the composer offers for the selected channel: free text, or (WhatsApp, window closed)
    only the approved templates; and the templates the picker can insert."""
    channel_id = channel_id or request.values.get("channel_id", type=int)
    selected = next((c for c in channels if c.id == channel_id), channels[0] if channels else None)
    state = {"selected": selected, "window": None, "approved": [], "template": None, "values": [],
             "picker": templates_for(selected, conversation.workspace_id, templates=composer_templates())
                       if selected else []}
    if selected is not None and selected.kind == ChannelKind.WHATSAPP:
        window = whatsapp_window(conversation, selected)
        if not window.open:
            state["window"] = window
            state["approved"] = approved_templates(selected, conversation.contact, agent=current_user)
            key = request.values.get("template")
            state["template"] = next((t for t in state["approved"] if t.key == key), None) or (
                state["approved"][0] if state["approved"] else None)
            if state["template"] is not None:
                state["values"] = [request.values.get(f"var_{i}") or default for i, default in
                                   enumerate(state["template"].defaults, start=1)]
                state["rendered"] = render_approved(state["template"], state["values"])[0]
    return state


# -- contacts ---------------------------------------------------------------------------------------
@bp.get("/contacts/<int:contact_id>/merge")
@login_required
def merge_search(contact_id: int):
    contact = access_contact(contact_id, current_user)
    return render_template("contacts/_merge_results.html", contact=contact,
                           candidates=merge_candidates(contact, request.args.get("q", "")))


@bp.post("/contacts/<int:contact_id>/merge")
@login_required
def merge(contact_id: int):
    kept = access_contact(contact_id, current_user)
    other = access_contact(request.form.get("other_id", type=int), current_user)
    try:
        check_merge(kept, other)
        do_merge_contacts(kept, other, actor=current_user)
    except ValidationError as exc:
        return make_response("", 422, {**toast_headers(exc.message), "HX-Reswap": "none"})
    target = url_for("contacts.show", contact_id=kept.id)
    if request.htmx:
        return make_response("", 204, {"HX-Redirect": target})
    return redirect(target)


# -- templates in settings ----------------------------------------------------------------------------
@bp.get("/settings/templates")
@admin_required
def templates():
    """Templates are edited with the outbound tools (one model for replies and campaigns)."""
    return redirect(url_for("marketing.templates"))


@bp.post("/settings/templates/preview")
@admin_required
def template_preview():
    return render_template("settings/_template_preview.html", preview=preview(request.form))


# -- the composer -------------------------------------------------------------------------------------
@bp.get("/inbox/c/<int:conversation_id>/composer")
@login_required
def composer(conversation_id: int):
    conv = access_conversation(conversation_id, current_user)
    return render_template("inbox/_composer.html", conversation=conv, channels=reply_channels(conv),
                           key=request.args.get("idempotency_key") or uuid.uuid4().hex,
                           body=request.args.get("body", ""))


@bp.get("/inbox/c/<int:conversation_id>/template")
@login_required
def insert_template(conversation_id: int):
    """The picked template, filled in for this contact, in place of the composer's text."""
    conv = access_conversation(conversation_id, current_user)
    template_id = request.args.get("template_id", type=int)
    template = next((t for t in OutboundTemplate.of_workspace(current_user.workspace_id) if t.id == template_id), None)
    text = render_for_contact(template, conv.contact, agent=current_user) if template else request.args.get("body", "")
    return render_template("inbox/_composer_body.html", body=text, channels=reply_channels(conv))


@bp.post("/inbox/c/<int:conversation_id>/whatsapp-template")
@login_required
def send_whatsapp_template(conversation_id: int):
    conv = access_conversation(conversation_id, current_user)
    try:
        channel = access_reply_channel(conv, request.form.get("channel_id", type=int))
        if channel.kind != ChannelKind.WHATSAPP:
            raise ValidationError(_("Approved templates are for WhatsApp."), field="template")
        template = find_approved(channel, conv.contact, request.form.get("template", ""))
        body, send = render_approved(template, check_template_values(template, request.form))
    except ValidationError as exc:
        html = render_template("inbox/_composer.html", conversation=conv, channels=reply_channels(conv),
                               key=request.form.get("idempotency_key") or uuid.uuid4().hex, error=exc.message)
        return make_response(html, 422, {"HX-Retarget": "#composer", "HX-Reswap": "outerHTML"})
    message = do_send_reply(conv, body, actor=current_user, channel=channel,
                            idempotency_key=request.form.get("idempotency_key") or None,
                            meta={"send": send, "whatsapp_template": template.name})
    return render_template("inbox/_reply_sent.html", conversation=conv, message=message,
                           channels=reply_channels(conv), key=uuid.uuid4().hex,
                           agents=User.agent_choices(conv.workspace_id), statuses=list(ConversationStatus),
                           priorities=list(Priority))
