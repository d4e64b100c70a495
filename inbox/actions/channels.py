"""Configuring channels from the settings pages (admins only)."""

from __future__ import annotations

from flask import abort
from flask_babel import gettext as _

from .. import outbox
from ..channels.base import ConfigField
from ..channels.registry import ADAPTERS, is_supported
from ..errors import ChannelError, ValidationError
from ..extensions import db
from ..kinds import ChannelKind, Provider
from ..models import Channel, User, Workspace
from .audit import channel_state, record


def access_channel(channel_id: int, user: User) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.workspace_id != user.workspace_id:
        abort(404)
    return channel


def fields_for(kind: ChannelKind, provider: Provider) -> tuple[ConfigField, ...]:
    adapter = ADAPTERS.get((kind, provider))
    return adapter.config_fields if adapter else ()


def check_channel_kind(kind: str, provider: str) -> tuple[ChannelKind, Provider]:
    try:
        pair = ChannelKind(kind), Provider(provider)
    except ValueError:
        raise ValidationError(_("Unknown channel type.")) from None
    if not is_supported(*pair):
        raise ValidationError(_("This channel type is not available yet."))
    return pair


def check_channel_form(form, *, fields: tuple[ConfigField, ...], existing: Channel | None) -> dict:
    """Name, address, credentials and settings from a form. A blank secret keeps the stored one."""
    name = (form.get("name") or "").strip()
    address = (form.get("address") or "").strip()
    if not name:
        raise ValidationError(_("Give the channel a name."), field="name")
    if not address:
        raise ValidationError(_("Enter the channel's address (number, mailbox, bot name…)."), field="address")
    credentials = dict(existing.credentials) if existing else {}
    settings = dict(existing.settings or {}) if existing else {}
    for field in fields:
        value = (form.get(field.name) or "").strip()
        target = credentials if field.target == "credentials" else settings
        if not value and field.secret and field.name in target:
            continue  # "leave blank to keep the current value"
        if not value and field.required:
            raise ValidationError(_("This field is required."), field=field.name)
        target[field.name] = value
    return {"name": name, "address": address, "credentials": credentials, "settings": settings}


def do_create_channel_from_form(workspace: Workspace, *, kind: ChannelKind, provider: Provider,
                                values: dict, actor: User) -> Channel:
    channel = Channel(workspace_id=workspace.id, kind=kind, provider=provider, name=values["name"],
                      address=values["address"], settings=values["settings"], enabled=True)
    channel.credentials = values["credentials"]
    db.session.add(channel)
    record(actor, "channel.create", channel, None, channel_state(channel))
    outbox.commit()
    return channel


def do_update_channel(channel: Channel, *, values: dict, actor: User) -> None:
    before = channel_state(channel)
    channel.name = values["name"]
    channel.address = values["address"]
    channel.settings = values["settings"]
    channel.credentials = values["credentials"]
    record(actor, "channel.update", channel, before, channel_state(channel))
    outbox.commit()


def do_set_channel_enabled(channel: Channel, enabled: bool, *, actor: User) -> None:
    before = channel.enabled
    channel.enabled = enabled
    record(actor, "channel.enable" if enabled else "channel.disable", channel, {"enabled": before}, {"enabled": enabled})
    outbox.commit()


def do_register_telegram_webhook(channel: Channel) -> tuple[bool, str]:
    """Tell Telegram where to post this bot's updates (setWebhook) with the channel's secret, which
    Telegram then sends back in X-Telegram-Bot-Api-Secret-Token. Returns (ok, URL or reason)."""
    from ..orchestrator.delivery import adapter_for, webhook_url

    if channel.kind != ChannelKind.TELEGRAM:
        return False, _("Only Telegram channels register a webhook.")
    url = webhook_url(channel)
    try:
        adapter_for(channel).set_webhook(url)
    except ValueError:
        return False, _("The webhook secret may only contain letters, digits, _ and - (1 to 256 characters).")
    except ChannelError as exc:
        return False, str(exc)
    return True, url


def do_test_connection(channel: Channel) -> tuple[bool, str]:
    """Ask the provider whether the stored credentials work; nothing is changed."""
    from ..orchestrator.delivery import adapter_for

    try:
        return True, adapter_for(channel).test_connection()
    except ChannelError as exc:
        return False, str(exc)
