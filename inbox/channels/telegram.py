"""Telegram through the Bot API, with python-telegram-bot (pinned 22.8; asyncio only).

Docs: https://core.telegram.org/bots/api#setwebhook (secret_token → X-Telegram-Bot-Api-Secret-Token),
https://core.telegram.org/bots/api#update, #message, #sendmessage, #responseparameters (retry_after),
https://docs.python-telegram-bot.org/en/v22.8/telegram.bot.html

Configuration: credentials `bot_token` and `webhook_secret` (the secret_token given to
setWebhook); address: the bot's @username. Optional settings: `notification_chat_id` (the staff
group the bot posts to, whose commands are passed on), `bot_username` (commands addressed to
another bot with /cmd@other_bot are ignored), `max_inline_wait` (seconds, default 5, see send()).

Inbound. Only `message` updates are read (edited messages, callback queries, member updates…
give []). Private chats become messages: sender = the chat id, provider_message_id = the
update_id (Telegram's dedupe key; the table's unique key does the rest). Group and channel
messages give [] — except bot commands in the configured notification group, which come back
with meta["notification_group"] = True and the staff member's user id as sender: the
orchestrator must treat those as staff commands, not as a customer writing.

InboundMessage.meta: chat_id, message_id, chat_type, username, language_code; `command` (one of
COMMANDS, without "/" or "@bot") and `args` (the rest of the line, stripped) for bot commands;
`location` {latitude, longitude[, name, address]}; `contact` {phone_number, first_name,
last_name, user_id, vcard}; `reply_to` "<chat_id>:<message_id>" (same form as our receipts).

Media: Telegram gives a file_id, not a URL; the real download URL embeds the bot token, so it
must never be stored. `InboundMedia.url` is the pseudo-URL `telegram-file:<file_id>`, which
`fetch_media()` turns into bytes (getFile, then the file endpoint). Photos: the largest size.

Outbound. `to` is the chat id. Texts longer than 4096 characters (counted in UTF-16 code units, as
Telegram counts) are split on paragraph, then line, then word boundaries (`split_text`). The
receipt is a `TelegramDeliveryReceipt`: `provider_message_id` is "<chat_id>:<first message id>"
(Telegram message ids are only unique within a chat, and the messages table is unique per
channel), `message_ids` lists every part sent, same form, in order. Telegram sends no delivery
callbacks: the receipt status is SENT and `parse_status()` always returns [].

OutboundMessage.meta (all optional): quick_replies ["Oui", "Non"] (a one-time reply keyboard on
the last part), reply_to (a message id, or "<chat_id>:<message_id>"), location {latitude,
longitude[, name, address]}, parse_mode ("HTML" / "MarkdownV2": the caller must not let a split
cut through markup).

Errors: RetryAfter → `RetryLater` (a TransientDeliveryError subclass defined here, carrying
`retry_after` seconds: errors.py is not changed); Forbidden (bot blocked, never started) and
other refusals → PermanentDeliveryError. A network failure before anything was sent is
transient; a read timeout while sending is permanent (it may have gone out). Once one part is
out, a later failure is permanent with code "partial" (a retry would repeat the sent parts),
except a short flood wait (≤ max_inline_wait) which is waited out in place.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import mimetypes
import posixpath
import re
import ssl
import threading
import urllib.parse
import warnings
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from typing import TypeVar

import certifi
import httpx
from telegram import Bot, BotCommand, InputFile, ReplyKeyboardMarkup, ReplyParameters, Update
from telegram.error import (
    BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut,
)
from telegram.request import HTTPXRequest

from ..errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, RateLimited, TransientDeliveryError,
)
from ..kinds import ChannelKind, DeliveryStatus, Provider
from . import text_split
from .base import (
    ConfigField,
    ChannelConfig, DeliveryReceipt, InboundMedia, InboundMessage, OutboundMessage, StatusUpdate,
    WebhookReply, WebhookRequest,
)

log = logging.getLogger(__name__)

API_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FILE_SCHEME = "telegram-file:"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
HTTP_TIMEOUT_SECONDS = 15
MAX_INLINE_WAIT_SECONDS = 5
COMMANDS = ("start", "help", "info", "contact", "rdv", "nouveau_rdv", "annuler", "ticket_create", "ticket_list",
            "ticket_view", "ticket_reply", "ticket_close", "ticket_stats")
# Telegram's rules for setMyCommands (https://core.telegram.org/bots/api#botcommand).
COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
COMMAND_DESCRIPTION_MAX = 256
COMMANDS_MAX = 100
COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?(?:\s+(.*))?$", re.DOTALL)
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
ALLOWED_UPDATES = ("message",)

T = TypeVar("T")


class RetryLater(RateLimited):
    """Telegram's flood control: try again after `retry_after` seconds (not before)."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


# Every part's id, "<chat_id>:<message_id>", in order, is in `message_ids` (on every receipt).
TelegramDeliveryReceipt = DeliveryReceipt


class TelegramBot:
    kind = ChannelKind.TELEGRAM
    provider = Provider.TELEGRAM
    config_fields = (
        ConfigField("bot_token", secret=True),
        ConfigField("webhook_secret", secret=True),
        ConfigField("notification_chat_id", target="settings", required=False),
    )

    def __init__(self, config: ChannelConfig):
        self.config = config
        self.token = config.credentials.get("bot_token", "")
        self.secret = config.credentials.get("webhook_secret", "")
        self.api_base = (config.api_base_url or API_BASE_URL).rstrip("/")
        chat = config.settings.get("notification_chat_id")
        self.notification_chat_id = str(chat) if chat not in (None, "") else None
        username = config.settings.get("bot_username") or config.address or ""
        self.bot_username = str(username).lstrip("@").lower() or None
        self.commands = answered_commands(config.settings.get("bot_commands"))

    # -- inbound ---------------------------------------------------------------------------
    def handshake(self, request: WebhookRequest) -> WebhookReply | None:
        return None  # Telegram is told the URL with setWebhook; there is no subscription check

    def verify(self, request: WebhookRequest) -> None:
        header = _header(request.headers, SECRET_HEADER)
        if not header or not self.secret:
            raise InvalidSignature(f"missing {SECRET_HEADER}")
        if not hmac.compare_digest(header.encode(), self.secret.encode()):
            raise InvalidSignature(f"{SECRET_HEADER} does not match")

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        try:
            data = json.loads(request.body or b"")
        except ValueError:
            raise MalformedPayload("the body is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise MalformedPayload("update_id is missing or is not a number")
        try:
            update = Update.de_json(data, None)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload(f"not a Telegram update ({exc.__class__.__name__}: {exc})") from None
        message = update.message
        if message is None:
            return []
        chat = message.chat
        in_staff_group = self.notification_chat_id is not None and str(chat.id) == self.notification_chat_id
        if chat.type != "private" and not in_staff_group:
            return []
        meta: dict[str, object] = {"chat_id": chat.id, "message_id": message.message_id,
                                   "chat_type": str(getattr(chat.type, "value", chat.type))}
        command = self._command(message.text, in_staff_group=in_staff_group)
        if command:
            meta.update(command)
        if in_staff_group:
            if not command or message.from_user is None:
                return []  # staff chatter in the group is not for us
            meta["notification_group"] = True
        user = message.from_user
        if user is not None:
            if user.username:
                meta["username"] = user.username
            if user.language_code:
                meta["language_code"] = user.language_code
        first = user.first_name if user is not None else chat.first_name
        last = user.last_name if user is not None else chat.last_name
        body = message.text or message.caption or ""
        media = _media(message)
        if message.venue:
            venue = message.venue
            meta["location"] = {"latitude": venue.location.latitude, "longitude": venue.location.longitude,
                                "name": venue.title, "address": venue.address}
            body = body or ", ".join(v for v in (venue.title, venue.address) if v)
        elif message.location:
            location = message.location
            meta["location"] = {"latitude": location.latitude, "longitude": location.longitude}
            body = body or f"{location.latitude}, {location.longitude}"
        if message.contact:
            contact = message.contact
            meta["contact"] = {"phone_number": contact.phone_number, "first_name": contact.first_name,
                               "last_name": contact.last_name, "user_id": contact.user_id, "vcard": contact.vcard}
            body = body or " ".join(v for v in (contact.first_name, contact.last_name, contact.phone_number) if v)
        if message.sticker and not body:
            body = message.sticker.emoji or ""
        if message.reply_to_message is not None:
            meta["reply_to"] = f"{chat.id}:{message.reply_to_message.message_id}"
        sender = str(user.id) if in_staff_group else str(chat.id)
        return [InboundMessage(
            provider_message_id=str(update.update_id), sender=sender, recipient=self.config.address,
            body=body, sender_name=" ".join(v for v in (first, last) if v) or None, media=media,
            sent_at=message.date, meta=meta,
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        return []  # the Bot API has no delivery or read receipts

    def webhook_reply(self) -> WebhookReply:
        return WebhookReply("", "text/plain", 200)

    def _command(self, text: str | None, *, in_staff_group: bool = False) -> dict[str, str] | None:
        match = COMMAND_RE.match((text or "").strip())
        if not match:
            return None
        name, addressee, args = match.group(1).lower(), match.group(2), match.group(3)
        if name not in COMMANDS:
            return None
        if name not in self.commands and not in_staff_group:
            return None  # taken off the channel's list: an ordinary message for the team
        if addressee and self.bot_username and addressee.lower() != self.bot_username:
            return None  # /help@another_bot in a group
        return {"command": name, "args": (args or "").strip()}

    # -- outbound --------------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> TelegramDeliveryReceipt:
        return _run(self._send(message))

    def test_connection(self) -> str:
        async def call() -> str:
            async with _bot(self.token, self.api_base) as bot:  # entering calls getMe
                return f"@{bot.username}"
        try:
            return asyncio.run(call())
        except TelegramError as exc:
            raise ChannelError(f"Telegram refused: {exc}") from exc

    def set_commands(self, commands: list[tuple[str, str]]) -> bool:
        """What Telegram shows in the "/" menu of private chats (setMyCommands): exactly this
        list, so a command taken off it is no longer advertised; an empty list deletes it."""
        async def call() -> bool:
            async with _bot(self.token, self.api_base) as bot:
                if not commands:
                    return await bot.delete_my_commands()
                return await bot.set_my_commands([BotCommand(name, description) for name, description in commands])

        try:
            return _run(call())
        except TelegramError as exc:
            raise ChannelError(f"setMyCommands failed: {exc}") from exc

    def set_webhook(self, url: str, secret_token: str | None = None) -> bool:
        return set_webhook(url, secret_token or self.secret, token=self.token, api_base_url=self.api_base)

    def fetch_media(self, url: str) -> tuple[bytes, str]:
        """Download an inbound `telegram-file:<file_id>` (the token never leaves this method)."""
        file_id = url.removeprefix(FILE_SCHEME)

        async def download() -> tuple[bytes, str]:
            async with _bot(self.token, self.api_base) as bot:
                file = await bot.get_file(file_id)
                data = await file.download_as_bytearray()
                path = urllib.parse.urlsplit(file.file_path or "").path
                return bytes(data), mimetypes.guess_type(path)[0] or "application/octet-stream"

        try:
            return _run(download())
        except TelegramError as exc:
            raise _delivery_error(exc, sending=False) from exc

    async def _send(self, message: OutboundMessage) -> TelegramDeliveryReceipt:
        calls = self._plan(message)
        ids: list[str] = []
        sending = False
        wait_limit = float(self.config.settings.get("max_inline_wait", MAX_INLINE_WAIT_SECONDS))
        try:
            async with _bot(self.token, self.api_base) as bot:  # entering calls getMe
                for method, kwargs in calls:
                    sending = True
                    try:
                        sent = await getattr(bot, method)(**kwargs)
                    except RetryAfter as exc:
                        wait = retry_after_seconds(exc)
                        if not ids or wait > wait_limit:
                            raise
                        await asyncio.sleep(wait)  # mid-message: wait in place rather than lose the rest
                        sent = await getattr(bot, method)(**kwargs)
                    ids.append(f"{sent.chat_id}:{sent.message_id}")
        except TelegramError as exc:
            error = _delivery_error(exc, sending=sending)
            if ids:
                raise PermanentDeliveryError(
                    f"Only {len(ids)} of {len(calls)} parts were sent (first message {ids[0]}): {error}",
                    code="partial") from exc
            raise error from exc
        return TelegramDeliveryReceipt(provider_message_id=ids[0], status=DeliveryStatus.SENT,
                                       message_ids=tuple(ids))

    def _plan(self, message: OutboundMessage) -> list[tuple[str, dict]]:
        """The Bot API calls that make up this message, in order."""
        meta = message.meta or {}
        chat_id = _chat_id(message.to)
        common: dict[str, object] = {"chat_id": chat_id}
        if meta.get("parse_mode"):
            common["parse_mode"] = str(meta["parse_mode"])
        texts = split_text(message.body) if message.body.strip() else []
        # Files: a URL Telegram fetches, or bytes we upload (sendPhoto for JPEG/PNG/WebP, else sendDocument).
        media: list[object] = [*message.media_urls, *message.attachments]
        caption = texts.pop(0) if media and len(texts) == 1 and _units(texts[0]) <= CAPTION_LIMIT else None
        calls: list[tuple[str, dict]] = [("send_message", {**common, "text": text}) for text in texts]
        for i, item in enumerate(media):
            if isinstance(item, str):
                kind = "photo" if posixpath.splitext(urllib.parse.urlsplit(item).path)[1].lower() in PHOTO_EXTENSIONS \
                    else "document"
                kwargs = {**common, kind: item}
            else:
                kind = "photo" if item.content_type in PHOTO_TYPES else "document"
                kwargs = {**common, kind: InputFile(item.content, filename=item.filename)}
            if i == 0 and caption:
                kwargs["caption"] = caption
            calls.append((f"send_{kind}", kwargs))
        location = meta.get("location")
        if location:
            try:
                point = {"chat_id": chat_id, "latitude": float(location["latitude"]),
                         "longitude": float(location["longitude"])}
            except (KeyError, TypeError, ValueError):
                raise PermanentDeliveryError("A location needs numeric latitude and longitude",
                                             code="invalid_request") from None
            if location.get("name") and location.get("address"):
                calls.append(("send_venue", {**point, "title": str(location["name"]),
                                             "address": str(location["address"])}))
            else:
                calls.append(("send_location", point))
        if not calls:
            raise PermanentDeliveryError("Nothing to send: no text, media or location", code="empty")
        reply_to = str(meta.get("reply_to") or "").rsplit(":", 1)[-1]
        if reply_to.isdigit():  # a message id, or "<chat_id>:<message_id>" as in our receipts
            calls[0][1]["reply_parameters"] = ReplyParameters(message_id=int(reply_to),
                                                              allow_sending_without_reply=True)
        choices = [str(c) for c in meta.get("quick_replies") or ()]
        if choices:
            calls[-1][1]["reply_markup"] = ReplyKeyboardMarkup(
                [[choice] for choice in choices] if len(choices) > 3 else [choices],
                one_time_keyboard=True, resize_keyboard=True)
        return calls


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Telegram's 4096-unit parts (the cutting itself is shared with WhatsApp)."""
    return text_split.split_text(text, limit)


_units = text_split.utf16_units


def set_webhook(url: str, secret_token: str, *, token: str, api_base_url: str | None = None,
                allowed_updates: tuple[str, ...] = ALLOWED_UPDATES, drop_pending_updates: bool = False) -> bool:
    """Point the bot at `url`; Telegram will send `secret_token` in X-Telegram-Bot-Api-Secret-Token."""
    if not SECRET_TOKEN_RE.match(secret_token or ""):
        raise ValueError("secret_token must be 1-256 characters among A-Z, a-z, 0-9, _ and -")

    async def call() -> bool:
        async with _bot(token, (api_base_url or API_BASE_URL).rstrip("/")) as bot:
            return await bot.set_webhook(url=url, secret_token=secret_token, allowed_updates=list(allowed_updates),
                                         drop_pending_updates=drop_pending_updates)

    try:
        return _run(call())
    except TelegramError as exc:
        raise ChannelError(f"setWebhook failed: {exc}") from exc


def answered_commands(configured: object) -> frozenset[str]:
    """The commands answered in private chats: those of the channel's list (settings
    "bot_commands", [{"command", "description"}]) that the bot knows; all of them when the
    channel has no list yet. In the team's group every command is answered."""
    if not isinstance(configured, list):
        return frozenset(COMMANDS)
    names = {str(item.get("command", "")).lower() for item in configured if isinstance(item, Mapping)}
    return frozenset(names & set(COMMANDS))


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _delivery_error(exc: TelegramError, *, sending: bool) -> ChannelError:
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return RetryLater(f"Telegram flood control: retry in {seconds:g} s", retry_after=seconds)
    if isinstance(exc, Forbidden):
        text = exc.message
        reason = ("The customer blocked the bot" if "blocked" in text.lower()
                  else f"Telegram refused the message: {text}")
        return PermanentDeliveryError(reason, code="forbidden")
    if isinstance(exc, InvalidToken):
        return PermanentDeliveryError("Telegram refused the bot token", code="invalid_token")
    if isinstance(exc, ChatMigrated):
        return PermanentDeliveryError(f"The group became a supergroup; its new chat id is {exc.new_chat_id}",
                                      code="chat_migrated")
    if isinstance(exc, BadRequest):
        return PermanentDeliveryError(f"Telegram refused the message: {exc.message}", code="bad_request")
    if isinstance(exc, NetworkError):  # TimedOut included
        cause = exc.__cause__
        ambiguous = sending and isinstance(cause, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError,
                                                   httpx.WriteTimeout))
        if ambiguous:
            return PermanentDeliveryError(
                "Telegram did not answer in time; the message may have been sent — check before resending",
                code="timeout")
        what = "could not reach Telegram" if cause is not None or isinstance(exc, TimedOut) else \
            f"Telegram answered: {exc.message}"
        return TransientDeliveryError(what)
    return PermanentDeliveryError(f"Telegram error: {exc}", code="telegram_error")


def _bot(token: str, api_base: str) -> Bot:
    if not token:
        raise PermanentDeliveryError("The Telegram channel has no bot token", code="invalid_token")
    # One request object for both of the Bot's slots (getUpdates is never used with webhooks)
    # and one TLS context per process: building them is most of the cost of a short-lived Bot.
    request = HTTPXRequest(connection_pool_size=4, connect_timeout=5, read_timeout=HTTP_TIMEOUT_SECONDS,
                           write_timeout=HTTP_TIMEOUT_SECONDS, pool_timeout=5,
                           httpx_kwargs={"verify": _tls_context()})
    return Bot(token, base_url=f"{api_base}/bot", base_file_url=f"{api_base}/file/bot", request=request,
               get_updates_request=request)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _run(coroutine: Awaitable[T]) -> T:
    """asyncio.run, also from a thread that already runs an event loop (then in a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="telegram-send")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _media(message) -> tuple[InboundMedia, ...]:
    media = []
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        media.append(InboundMedia(url=FILE_SCHEME + largest.file_id, content_type="image/jpeg"))
    if message.document:
        doc = message.document
        media.append(InboundMedia(url=FILE_SCHEME + doc.file_id, filename=doc.file_name,
                                  content_type=doc.mime_type or "application/octet-stream"))
    if message.voice:
        media.append(InboundMedia(url=FILE_SCHEME + message.voice.file_id,
                                  content_type=message.voice.mime_type or "audio/ogg"))
    if message.audio:
        audio = message.audio
        media.append(InboundMedia(url=FILE_SCHEME + audio.file_id, filename=audio.file_name,
                                  content_type=audio.mime_type or "audio/mpeg"))
    if message.video:
        video = message.video
        media.append(InboundMedia(url=FILE_SCHEME + video.file_id, filename=video.file_name,
                                  content_type=video.mime_type or "video/mp4"))
    if message.video_note:
        media.append(InboundMedia(url=FILE_SCHEME + message.video_note.file_id, content_type="video/mp4"))
    return tuple(media)


def _chat_id(to: str) -> int | str:
    to = to.strip()
    return int(to) if re.fullmatch(r"-?\d+", to) else to


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value
