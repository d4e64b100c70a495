"""Configuring channels from the settings pages (admins only)."""

from __future__ import annotations

import re

from flask_babel import force_locale
from flask_babel import gettext as _

from . import get_in_workspace
from .. import outbox
from ..channels.base import ConfigField
from ..channels.registry import ADAPTERS, is_supported
from ..errors import ChannelError, ValidationError
from ..extensions import db
from ..kinds import ChannelKind, Provider
from ..models import Channel, User, Workspace
from .audit import channel_state, record


def access_channel(channel_id: int, user: User) -> Channel:
    return get_in_workspace(Channel, channel_id, user.workspace_id)


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


def check_channel_form(form, *, fields: tuple[ConfigField, ...], existing: Channel | None,
                       kind: ChannelKind | None = None) -> dict:
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
        if value and field.name in FIELD_CHECKS:
            FIELD_CHECKS[field.name](value)
        target[field.name] = value
    if (kind or (existing.kind if existing else None)) == ChannelKind.TELEGRAM and "bot_commands" in form:
        settings["bot_commands"] = [{"command": c, "description": d}
                                    for c, d in check_bot_commands(form.get("bot_commands") or "")]
    return {"name": name, "address": address, "credentials": credentials, "settings": settings}


# -- Telegram: the team's group and the bot's commands ---------------------------------------------
CHAT_ID_RE = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
COMMAND_LINE_RE = re.compile(r"^/?([^\s:–—]+)\s*[:–—-]?\s*(.*)$")


def check_chat_id(value: str) -> None:
    """A group's chat id (-1001234567890) or a public channel's @username."""
    if not CHAT_ID_RE.match(value):
        raise ValidationError(_("The notification group must be a chat id such as -1001234567890 (add the bot to the "
                                "group, then read the id from an update) or a channel's @username."),
                              field="notification_chat_id")


def _one_of(name: str, choices: tuple[str, ...]):
    def check(value: str) -> None:
        if value.lower() not in choices:
            raise ValidationError(_("Choose one of: %(choices)s.", choices=", ".join(choices)), field=name)
    return check


def check_port(value: str) -> None:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValidationError(_("A port is a number from 1 to 65535 (587 for STARTTLS, 465 for TLS)."),
                              field="smtp_port")


def _field_checks() -> dict:
    from ..channels.email import INBOUND_MODES, SECURITY_MODES
    from ..channels.voice_vapi import AUTH_MODES

    return {"notification_chat_id": check_chat_id, "smtp_port": check_port,
            "smtp_security": _one_of("smtp_security", SECURITY_MODES), "inbound": _one_of("inbound", INBOUND_MODES),
            "auth_mode": _one_of("auth_mode", AUTH_MODES)}


FIELD_CHECKS = _field_checks()


def check_bot_commands(text: str) -> list[tuple[str, str]]:
    """One command per line, "/command description", checked against Telegram's rules (1-32 of
    a-z, 0-9 and _; a description of 1-256 characters; at most 100; no duplicate)."""
    from ..channels.telegram import COMMAND_DESCRIPTION_MAX, COMMAND_NAME_RE, COMMANDS_MAX

    commands: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, description = COMMAND_LINE_RE.match(line.strip()).groups()
        if not COMMAND_NAME_RE.match(name):
            raise ValidationError(_("Line %(line)d: “%(command)s” is not a valid command: 1 to 32 characters among "
                                    "a-z, 0-9 and _ (lower case).", line=number, command=name), field="bot_commands")
        if not 1 <= len(description.strip()) <= COMMAND_DESCRIPTION_MAX:
            raise ValidationError(_("Line %(line)d: give /%(command)s a description of 1 to 256 characters.",
                                    line=number, command=name), field="bot_commands")
        if name in {c for c, _d in commands}:
            raise ValidationError(_("Line %(line)d: /%(command)s is listed twice.", line=number, command=name),
                                  field="bot_commands")
        commands.append((name, description.strip()))
    if len(commands) > COMMANDS_MAX:
        raise ValidationError(_("Telegram accepts at most 100 commands."), field="bot_commands")
    return commands


def default_bot_commands(locale: str) -> list[tuple[str, str]]:
    """What a new bot advertises: the commands customers may use, in the workspace's language
    (the team's commands are answered in the notification group, not advertised to customers)."""
    with force_locale(locale):
        return [
            ("start", _("Start the conversation")), ("help", _("What the bot can do")),
            ("info", _("About us")), ("contact", _("Talk to a person")),
            ("rdv", _("My appointments")), ("nouveau_rdv", _("Book an appointment")),
            ("annuler", _("Cancel my next appointment")), ("ticket_create", _("Open a ticket")),
            ("ticket_view", _("Where my ticket stands")), ("ticket_reply", _("Add a message to my ticket")),
            ("ticket_close", _("Close my ticket")),
        ]


def bot_commands_of(channel: Channel | None, *, locale: str) -> list[tuple[str, str]]:
    stored = (channel.settings or {}).get("bot_commands") if channel is not None else None
    if isinstance(stored, list):
        return [(str(c.get("command", "")), str(c.get("description", ""))) for c in stored]
    return default_bot_commands(locale)


def do_push_bot_commands(channel: Channel) -> tuple[bool, str]:
    """Tell Telegram the bot's command list (setMyCommands); (ok, reason when it failed)."""
    from ..orchestrator.delivery import adapter_for

    if channel.kind != ChannelKind.TELEGRAM:
        return False, _("Only Telegram channels have bot commands.")
    workspace = db.session.get(Workspace, channel.workspace_id)
    try:
        adapter_for(channel).set_commands(bot_commands_of(channel, locale=workspace.default_locale))
    except ChannelError as exc:
        return False, str(exc)
    return True, ""


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


# -- behaviour: availability hours, closed-hours reply, forwarding rules ---------------------------
BEHAVIOUR_KEYS = ("availability", "closed_reply", "closed_reply_text", "forward_to", "assign_to")
CLOSED_REPLY_MAX = 1000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_behaviour_form(form, *, channel: Channel) -> dict:
    """The channel's behaviour from its form (see orchestrator/channel_behaviour.py), plus
    `sara_auto_reply`: whether Sara answers automatically on it (Settings → Sara's own list)."""
    from ..business_time import parse_day_openings, week_to_json

    values: dict = {}
    if form.get("always_available") == "1":
        values["availability"] = None
    else:
        days = [form.get(f"day{i}", "") for i in range(7)]
        try:
            week = tuple(parse_day_openings(text) for text in days)
        except ValueError:
            raise ValidationError(_("Write availability hours as 09:00-12:30, 13:30-18:00."),
                                  field="availability") from None
        if not any(week):
            raise ValidationError(_("Give at least one day with availability hours, or tick “Always available”."),
                                  field="availability")
        values["availability"] = week_to_json(week)
    values["closed_reply"] = form.get("closed_reply") == "1"
    text = (form.get("closed_reply_text") or "").strip()
    if len(text) > CLOSED_REPLY_MAX:
        raise ValidationError(_("The automatic reply is limited to %(n)d characters.", n=CLOSED_REPLY_MAX),
                              field="closed_reply_text")
    if values["closed_reply"] and values["availability"] is None:
        raise ValidationError(_("The out-of-hours reply needs availability hours: give them, or switch the "
                                "reply off."), field="closed_reply")
    values["closed_reply_text"] = text
    forward_to = (form.get("forward_to") or "").strip()
    if forward_to and (len(forward_to) > 254 or not EMAIL_RE.match(forward_to)):
        raise ValidationError(_("“%(value)s” is not an email address.", value=forward_to), field="forward_to")
    values["forward_to"] = forward_to
    values["assign_to"] = _check_assignee(form.get("assign_to") or "", channel.workspace_id)
    values["sara_auto_reply"] = form.get("sara_auto_reply") == "1"
    return values


def _check_assignee(raw: str, workspace_id: int) -> int | None:
    if not raw.strip():
        return None
    agent = db.session.get(User, int(raw)) if raw.strip().isdigit() else None
    if agent is None or agent.workspace_id != workspace_id or not agent.is_active_member:
        raise ValidationError(_("Choose an active member of the team."), field="assign_to")
    return agent.id


def behaviour_state(channel: Channel, sara=None) -> dict:
    """The behaviour as the form shows it and the audit log keeps it."""
    from ..models import SaraSettings

    settings = channel.settings or {}
    off = (sara or SaraSettings.of(channel.workspace_id)).auto_reply_off_channels or []
    return {**{key: settings.get(key) for key in BEHAVIOUR_KEYS}, "sara_auto_reply": channel.id not in off}


def do_update_behaviour(channel: Channel, *, values: dict, actor: User) -> None:
    from ..models import SaraSettings

    sara = SaraSettings.of(channel.workspace_id)
    before = behaviour_state(channel, sara)
    settings = dict(channel.settings or {})
    for key in BEHAVIOUR_KEYS:
        if values.get(key) in (None, "", False):
            settings.pop(key, None)
        else:
            settings[key] = values[key]
    channel.settings = settings
    off = set(sara.auto_reply_off_channels or [])
    off = off - {channel.id} if values["sara_auto_reply"] else off | {channel.id}
    if off != set(sara.auto_reply_off_channels or []):
        sara.auto_reply_off_channels = sorted(off)
        db.session.add(sara)
    record(actor, "channel.behaviour", channel, before, behaviour_state(channel, sara))
    outbox.commit()
