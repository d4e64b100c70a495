"""Workspace settings, for admins. Agents get a 403 page that says so."""

from __future__ import annotations

import functools

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from ..actions.channels import (
    access_channel, behaviour_state, bot_commands_of, check_behaviour_form, check_channel_form, check_channel_kind,
    do_create_channel_from_form, do_push_bot_commands, do_register_telegram_webhook, do_set_channel_enabled,
    do_test_connection, do_update_behaviour, do_update_channel, fields_for,
)
from ..channels.registry import ADAPTERS
from ..crypto import mask
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..kinds import ChannelKind
from ..models import Channel, User
from ..orchestrator.delivery import webhook_url
from ..orchestrator.sending_rules import SendRules, format_hours

bp = Blueprint("settings", __name__, url_prefix="/settings")

# Every adapter's config field, as the admin reads it (tests check none is missing).
FIELD_LABELS = {
    "account_sid": _l("Account SID"),
    "auth_token": _l("Auth token"),
    "messaging_service_sid": _l("Messaging service SID (optional)"),
    "language": _l("Voicemail language (optional)"),
    "greeting": _l("Voicemail greeting (optional)"),
    "access_token": _l("Access token"),
    "app_secret": _l("App secret"),
    "verify_token": _l("Verify token"),
    "phone_number_id": _l("Phone number ID"),
    "bot_token": _l("Bot token"),
    "webhook_secret": _l("Webhook secret"),
    "notification_chat_id": _l("Team notification group (chat id, optional)"),
    "smtp_host": _l("SMTP server"),
    "smtp_port": _l("SMTP port (optional)"),
    "smtp_security": _l("SMTP security (optional)"),
    "smtp_username": _l("SMTP user name (optional)"),
    "smtp_password": _l("SMTP password (optional)"),
    "inbound": _l("How mail comes in"),
    "sendgrid_token": _l("SendGrid webhook token (optional)"),
    "mailgun_signing_key": _l("Mailgun webhook signing key (optional)"),
    "imap_host": _l("IMAP server (optional)"),
    "imap_username": _l("IMAP user name (optional)"),
    "imap_password": _l("IMAP password (optional)"),
    "display_name": _l("Sender name (optional)"),
    "signature": _l("Email signature (optional)"),
    "api_key": _l("API key (optional)"),
    "auth_mode": _l("Webhook check (optional)"),
}
# Help under each field; "provider:name" when one name means different things per provider.
FIELD_HELP = {
    "account_sid": _l("Starts with AC: Twilio console, “Account info”."),
    "auth_token": _l("Next to the Account SID in the Twilio console; it also signs the webhooks we receive."),
    "messaging_service_sid": _l("MG…: send through a Twilio Messaging Service (sender pool, opt-out handling) "
                                "instead of the number above."),
    "language": _l("fr-FR or en-US. Blank: the workspace’s language."),
    "greeting": _l("Read to the caller before the beep. Blank: a default greeting in that language."),
    "access_token": _l("A permanent token of a system user with the whatsapp_business_messaging permission "
                       "(Meta Business settings)."),
    "app_secret": _l("Meta app dashboard → Settings → Basic. It checks the signature of every webhook."),
    "verify_token": _l("A text of your choice: type the same one in Meta’s webhook settings, Meta checks it "
                       "when you subscribe."),
    "phone_number_id": _l("WhatsApp Manager → API setup: the number’s id (not the phone number)."),
    "bot_token": _l("Given by @BotFather when you create the bot (123456:ABC…)."),
    "telegram:webhook_secret": _l("Letters, digits, _ and - (1 to 256). Telegram sends it back with every "
                                  "update, so we know the update comes from Telegram."),
    "notification_chat_id": _l("Add the bot to your team’s Telegram group and enter the group’s chat id: new "
                               "tickets, critical tickets and SLA warnings are posted there, and the team can use "
                               "/ticket_list, /ticket_view and /ticket_stats in it."),
    "smtp_host": _l("The server that sends your mail, e.g. smtp.example.com."),
    "smtp_port": _l("587 (STARTTLS, the default), 465 (TLS) or 25."),
    "smtp_security": _l("starttls (the default), tls or none."),
    "smtp_username": _l("Usually the mailbox address. Blank: no login."),
    "smtp_password": _l("The mailbox’s password, or an app password."),
    "inbound": _l("sendgrid (Inbound Parse webhook), mailgun (a route to the webhook URL below) or imap (we "
                  "fetch the mailbox regularly)."),
    "sendgrid_token": _l("With sendgrid: the secret token in the Inbound Parse URL, so only your SendGrid "
                         "account can post mail."),
    "mailgun_signing_key": _l("With mailgun: Mailgun → Webhooks → HTTP webhook signing key."),
    "imap_host": _l("With imap: e.g. imap.example.com (port 993, TLS)."),
    "imap_username": _l("With imap: usually the mailbox address."),
    "imap_password": _l("With imap: the mailbox’s password, or an app password."),
    "display_name": _l("The sender name customers see, e.g. “Atelier support”."),
    "signature": _l("Added under every email reply sent from this mailbox."),
    "vapi:webhook_secret": _l("The server URL secret set in Vapi; every call report is checked with it."),
    "api_key": _l("Your Vapi private key, used by “Test connection” and to catch up on missed call reports."),
    "auth_mode": _l("bearer (the default: Authorization header), secret (X-Vapi-Secret header) or hmac "
                    "(signed body)."),
}


def field_texts(provider: str, field_name: str) -> tuple[str, str]:
    """A config field's label and help, in the reader's language."""
    help_text = FIELD_HELP.get(f"{provider}:{field_name}") or FIELD_HELP.get(field_name) or ""
    return str(FIELD_LABELS.get(field_name, field_name)), str(help_text)


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
            values = check_channel_form(request.form, fields=fields, existing=None, kind=kind)
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


@bp.post("/channels/<int:channel_id>/behaviour")
@admin_required
def channel_behaviour(channel_id: int):
    """Availability hours, out-of-hours reply, forwarding rules, Sara on this channel."""
    channel = access_channel(channel_id, current_user)
    fields = fields_for(channel.kind, channel.provider)
    try:
        values = check_behaviour_form(request.form, channel=channel)
    except ValidationError as exc:
        return _form(channel, channel.kind, channel.provider, fields, behaviour_error=exc), 422
    do_update_behaviour(channel, values=values, actor=current_user)
    return redirect(url_for("settings.edit_channel", channel_id=channel.id, saved="behaviour") + "#behaviour")


@bp.post("/channels/<int:channel_id>/enabled")
@admin_required
def toggle_channel(channel_id: int):
    channel = access_channel(channel_id, current_user)
    do_set_channel_enabled(channel, request.form.get("enabled") == "1", actor=current_user)
    html = render_template("settings/_channel_row.html", channel=channel, webhook_url=webhook_url)
    if channel.enabled and channel.kind == ChannelKind.TELEGRAM:
        ok, detail = do_register_telegram_webhook(channel)
        do_push_bot_commands(channel)  # the list may have been edited while the bot was disabled
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
    """A Telegram bot is pointed at its webhook URL, and told its command list, as soon as it is
    saved (and enabled)."""
    if channel.kind != ChannelKind.TELEGRAM or not channel.enabled:
        return {}
    ok, _detail = do_register_telegram_webhook(channel)
    commands_ok, _detail = do_push_bot_commands(channel)
    return {"webhook": "ok" if ok else "failed", "commands": "ok" if commands_ok else "failed"}


@bp.post("/channels/<int:channel_id>/test")
@admin_required
def test_channel(channel_id: int):
    ok, detail = do_test_connection(access_channel(channel_id, current_user))
    return render_template("settings/_test_result.html", ok=ok, detail=detail)


def _form(channel, kind, provider, fields, *, error: ValidationError | None = None,
          behaviour_error: ValidationError | None = None):
    stored = {**(channel.settings or {}), **channel.credentials} if channel else {}
    values = {f.name: (mask(stored.get(f.name)) if f.secret else stored.get(f.name, "")) for f in fields}
    if error is not None:
        values.update({f.name: request.form.get(f.name, "") for f in fields if not f.secret})
    return render_template("settings/channel_form.html", channel=channel, kind=kind, provider=provider,
                           fields=fields, texts={f.name: field_texts(provider, f.name) for f in fields},
                           values=values, error=error,
                           form=request.form if error else None, saved=request.args.get("saved"),
                           webhook_state=request.args.get("webhook"), commands_state=request.args.get("commands"),
                           bot_commands=_bot_commands_text(channel, error) if kind == ChannelKind.TELEGRAM else "",
                           webhook_url=webhook_url,
                           behaviour=_behaviour_view(channel, behaviour_error) if channel else None,
                           behaviour_error=behaviour_error)


def _behaviour_view(channel, error: ValidationError | None) -> dict:
    """What the Behaviour section shows: the stored values, or what the admin typed when refused."""
    from ..business_time import format_day_openings, week_from_json

    stored = behaviour_state(channel)
    if error is not None:
        form = request.form
        current = {"always": form.get("always_available") == "1",
                   "days": [form.get(f"day{i}", "") for i in range(7)],
                   "closed_reply": form.get("closed_reply") == "1",
                   "closed_reply_text": form.get("closed_reply_text", ""), "forward_to": form.get("forward_to", ""),
                   "assign_to": form.get("assign_to", ""), "sara_auto_reply": form.get("sara_auto_reply") == "1"}
    else:
        week = week_from_json(stored["availability"]) if stored["availability"] else None
        current = {"always": week is None, "days": [format_day_openings(d) for d in week] if week else [""] * 7,
                   "closed_reply": bool(stored["closed_reply"]), "closed_reply_text": stored["closed_reply_text"] or "",
                   "forward_to": stored["forward_to"] or "", "assign_to": str(stored["assign_to"] or ""),
                   "sara_auto_reply": stored["sara_auto_reply"]}
    rules = SendRules.of(channel)
    return {**current, "agents": User.agents_of(channel.workspace_id), "send_hours": format_hours(rules.window),
            "daily_limit": rules.daily_limit, "can_write": channel.kind != ChannelKind.VOICE,
            "whatsapp_templates": _approved_templates(channel) if channel.kind == ChannelKind.WHATSAPP else []}


def _approved_templates(channel) -> list[tuple[int, str, str]]:
    """The workspace's templates this WhatsApp number can send outside the 24-hour window:
    (id, name, the provider's reference). Edited under Campaigns → Templates."""
    from ..models import OutboundTemplate

    key = "content_sid" if channel.provider == "twilio" else "name"
    rows = []
    for template in OutboundTemplate.of_workspace(channel.workspace_id):
        reference = (template.provider_template or {}).get(key)
        if template.kind in (None, ChannelKind.WHATSAPP) and reference:
            language = (template.provider_template or {}).get("language")
            rows.append((template.id, template.name, f"{reference} ({language})" if language else str(reference)))
    return rows


def _bot_commands_text(channel, error: ValidationError | None) -> str:
    """The command list as the admin edits it: one "/command description" per line."""
    if error is not None and "bot_commands" in request.form:
        return request.form["bot_commands"]
    return "\n".join(f"/{name} {description}"
                     for name, description in bot_commands_of(channel, locale=current_user.workspace.default_locale))
