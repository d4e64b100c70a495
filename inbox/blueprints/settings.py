"""Workspace settings, for admins. Agents get a 403 page that says so."""

from __future__ import annotations

import functools

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from ..actions.channels import (
    access_channel, check_channel_form, check_channel_kind, do_create_channel_from_form,
    do_register_telegram_webhook, do_set_channel_enabled, do_test_connection, do_update_channel, fields_for,
)
from ..channels.registry import ADAPTERS
from ..crypto import mask
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..kinds import ChannelKind
from ..models import Channel
from ..orchestrator.delivery import webhook_url

bp = Blueprint("settings", __name__, url_prefix="/settings")

FIELD_LABELS = {
    "account_sid": _l("Account SID"),
    "auth_token": _l("Auth token"),
    "messaging_service_sid": _l("Messaging service SID (optional)"),
}


def admin_required(view):
    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


@bp.get("/")
@admin_required
def index():
    return redirect(url_for("settings.channels"))


@bp.get("/channels")
@admin_required
def channels():
    return render_template("settings/channels.html", channels=Channel.of_workspace(current_user.workspace_id),
                           available=sorted(ADAPTERS), webhook_url=webhook_url)


@bp.route("/channels/new", methods=["GET", "POST"])
@admin_required
def new_channel():
    kind, provider = check_channel_kind(request.args.get("kind", ""), request.args.get("provider", ""))
    fields = fields_for(kind, provider)
    if request.method == "POST":
        try:
            values = check_channel_form(request.form, fields=fields, existing=None)
        except ValidationError as exc:
            return _form(None, kind, provider, fields, error=exc), 422
        channel = do_create_channel_from_form(current_user.workspace, kind=kind, provider=provider,
                                              values=values, actor=current_user)
        return redirect(url_for("settings.edit_channel", channel_id=channel.id, **_register_webhook(channel)))
    return _form(None, kind, provider, fields)


@bp.route("/channels/<int:channel_id>", methods=["GET", "POST"])
@admin_required
def edit_channel(channel_id: int):
    channel = access_channel(channel_id, current_user)
    fields = fields_for(channel.kind, channel.provider)
    if request.method == "POST":
        try:
            values = check_channel_form(request.form, fields=fields, existing=channel)
        except ValidationError as exc:
            return _form(channel, channel.kind, channel.provider, fields, error=exc), 422
        do_update_channel(channel, values=values, actor=current_user)
        return redirect(url_for("settings.edit_channel", channel_id=channel.id, saved=1,
                                **_register_webhook(channel)))
    return _form(channel, channel.kind, channel.provider, fields)


@bp.post("/channels/<int:channel_id>/enabled")
@admin_required
def toggle_channel(channel_id: int):
    channel = access_channel(channel_id, current_user)
    do_set_channel_enabled(channel, request.form.get("enabled") == "1", actor=current_user)
    html = render_template("settings/_channel_row.html", channel=channel, webhook_url=webhook_url)
    if channel.enabled and channel.kind == ChannelKind.TELEGRAM:
        ok, detail = do_register_telegram_webhook(channel)
        message = _("Webhook registered with Telegram.") if ok else _("Telegram refused the webhook: %(reason)s",
                                                                       reason=detail)
        return make_response(html, 200, toast_headers(message, level="info" if ok else "error"))
    return html


@bp.post("/channels/<int:channel_id>/telegram-webhook")
@admin_required
def register_telegram_webhook(channel_id: int):
    ok, detail = do_register_telegram_webhook(access_channel(channel_id, current_user))
    return render_template("settings/_webhook_result.html", ok=ok, detail=detail)


def _register_webhook(channel) -> dict:
    """A Telegram bot is pointed at its webhook URL as soon as it is saved (and enabled)."""
    if channel.kind != ChannelKind.TELEGRAM or not channel.enabled:
        return {}
    ok, _detail = do_register_telegram_webhook(channel)
    return {"webhook": "ok" if ok else "failed"}


@bp.post("/channels/<int:channel_id>/test")
@admin_required
def test_channel(channel_id: int):
    ok, detail = do_test_connection(access_channel(channel_id, current_user))
    return render_template("settings/_test_result.html", ok=ok, detail=detail)


def _form(channel, kind, provider, fields, *, error: ValidationError | None = None):
    stored = {**(channel.settings or {}), **channel.credentials} if channel else {}
    values = {f.name: (mask(stored.get(f.name)) if f.secret else stored.get(f.name, "")) for f in fields}
    if error is not None:
        values.update({f.name: request.form.get(f.name, "") for f in fields if not f.secret})
    return render_template("settings/channel_form.html", channel=channel, kind=kind, provider=provider,
                           fields=fields, labels=FIELD_LABELS, values=values, error=error,
                           form=request.form if error else None, saved=request.args.get("saved"),
                           webhook_state=request.args.get("webhook"),
                           webhook_url=webhook_url)
