"""A fake Telegram Bot API and builders of the Update objects Telegram POSTs to a webhook.

Shapes follow https://core.telegram.org/bots/api#update (Message, User, Chat, PhotoSize,
Document, Voice, Audio, Location, Contact, MessageEntity) and the responses of
https://core.telegram.org/bots/api#making-requests (`{"ok": …, "result": …}`, errors with
`error_code`, `description` and `parameters.retry_after` for flood control).

The server answers what python-telegram-bot calls: getMe (on entering `async with Bot(...)`),
sendMessage, sendPhoto, sendDocument, sendLocation, sendVenue, setWebhook, deleteWebhook,
getWebhookInfo, setMyCommands / deleteMyCommands / getMyCommands (default scope; the list is
in `commands`, validated like Telegram: 1-32 of a-z 0-9 _, description 1-256, at most 100),
getFile and the file download endpoint. Parameters arrive form-encoded with
JSON-encoded values (python-telegram-bot's way), as JSON, or in the query string.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

DEMO_BOT_ID = 7012345678
DEMO_BOT_TOKEN = f"{DEMO_BOT_ID}:AAE-demo-coccinelle-bot-token-000000"
DEMO_BOT_USERNAME = "coccinelle_demo_bot"
DEMO_WEBHOOK_SECRET = "demo-webhook-secret-coccinelle"
DEMO_NOTIFICATION_CHAT_ID = -1001987654321
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

_update_ids = itertools.count(int(time.time()) % 100_000_000 * 10)
_message_ids = itertools.count(1000)
_JSON_PARAMS = frozenset({"chat_id", "reply_markup", "reply_parameters", "link_preview_options", "allowed_updates",
                          "entities", "caption_entities", "message_thread_id", "disable_notification",
                          "drop_pending_updates", "max_connections", "latitude", "longitude", "protect_content",
                          "commands", "scope"})


# -- Update builders --------------------------------------------------------------------------------
def user(user_id: int, first_name: str = "Camille", last_name: str | None = "Martin", username: str | None = None,
         language_code: str | None = "fr") -> dict:
    result = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        result["last_name"] = last_name
    if username:
        result["username"] = username
    if language_code:
        result["language_code"] = language_code
    return result


def message_update(chat_id: int, *, update_id: int | None = None, message_id: int | None = None,
                   date: int | None = None, sender: dict | None = None, chat: dict | None = None, **content) -> dict:
    """An Update carrying a Message; `content` holds the message's own fields (text, photo…)."""
    sender = sender or user(chat_id)
    if chat is None:
        chat = {"id": chat_id, "first_name": sender["first_name"], "type": "private"}
        if sender.get("last_name"):
            chat["last_name"] = sender["last_name"]
        if sender.get("username"):
            chat["username"] = sender["username"]
    message = {"message_id": message_id or next(_message_ids), "from": sender, "chat": chat,
               "date": date or int(time.time()), **content}
    return {"update_id": update_id or next(_update_ids), "message": message}


def text_update(chat_id: int, text: str, **kw) -> dict:
    """A text message; a leading /command gets its bot_command entity, as Telegram adds it."""
    content: dict = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        content["entities"] = [{"offset": 0, "length": len(command.encode("utf-16-le")) // 2, "type": "bot_command"}]
    return message_update(chat_id, **content, **kw)


def photo_update(chat_id: int, *, file_id: str, caption: str | None = None, **kw) -> dict:
    """Telegram sends each photo in several sizes, smallest first."""
    sizes = [(90, 68, 1411, "-s"), (320, 240, 15123, "-m"), (800, 600, 61234, "-x"), (1280, 960, 143245, "")]
    photo = [{"file_id": file_id + suffix, "file_unique_id": f"AQAD{file_id[-6:]}{suffix}", "file_size": size,
              "width": width, "height": height} for width, height, size, suffix in sizes]
    content: dict = {"photo": photo}
    if caption:
        content["caption"] = caption
    return message_update(chat_id, **content, **kw)


def document_update(chat_id: int, *, file_id: str, file_name: str, mime_type: str, caption: str | None = None,
                    **kw) -> dict:
    content: dict = {"document": {"file_name": file_name, "mime_type": mime_type, "file_id": file_id,
                                  "file_unique_id": f"AgAD{file_id[-6:]}", "file_size": 48213}}
    if caption:
        content["caption"] = caption
    return message_update(chat_id, **content, **kw)


def voice_update(chat_id: int, *, file_id: str, duration: int = 4, **kw) -> dict:
    return message_update(chat_id, voice={"duration": duration, "mime_type": "audio/ogg", "file_id": file_id,
                                          "file_unique_id": f"AgAD{file_id[-6:]}", "file_size": 7843}, **kw)


def audio_update(chat_id: int, *, file_id: str, file_name: str = "message.mp3", mime_type: str = "audio/mpeg",
                 **kw) -> dict:
    return message_update(chat_id, audio={"duration": 63, "file_name": file_name, "mime_type": mime_type,
                                          "file_id": file_id, "file_unique_id": f"CQAD{file_id[-6:]}",
                                          "file_size": 1013762}, **kw)


def location_update(chat_id: int, *, latitude: float, longitude: float, **kw) -> dict:
    return message_update(chat_id, location={"latitude": latitude, "longitude": longitude}, **kw)


def contact_update(chat_id: int, *, phone_number: str, first_name: str, last_name: str | None = None,
                   user_id: int | None = None, **kw) -> dict:
    contact = {"phone_number": phone_number, "first_name": first_name}
    if last_name:
        contact["last_name"] = last_name
    if user_id:
        contact["user_id"] = user_id
    return message_update(chat_id, contact=contact, **kw)


def group_update(chat_id: int, text: str, *, from_id: int = 5550001, title: str = "Équipe support",
                 chat_type: str = "supergroup", **kw) -> dict:
    """A message in a group: the chat is the group, `from` the member who wrote."""
    return text_update(chat_id, text, sender=user(from_id, "Alice", "Agent"),
                       chat={"id": chat_id, "title": title, "type": chat_type}, **kw)


def post_update(url: str, update: dict, *, secret_token: str | None = DEMO_WEBHOOK_SECRET,
                timeout: float = 10) -> requests.Response:
    """POST an Update as Telegram does, with the secret header when one is set."""
    headers = {"Content-Type": "application/json"}
    if secret_token:
        headers[SECRET_HEADER] = secret_token
    return requests.post(url, data=json.dumps(update, ensure_ascii=False).encode(), headers=headers,
                         timeout=timeout)


# -- the fake Bot API -------------------------------------------------------------------------------
@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None
    method: str | None
    skip: int
    remaining: int


@dataclass
class FakeTelegram:
    """The Bot API methods the adapter uses, recording every call in `calls` (and the messages
    it created in `sent`). `blocked` chats answer 403 like a customer who blocked the bot."""

    token: str = DEMO_BOT_TOKEN
    bot_id: int = DEMO_BOT_ID
    username: str = DEMO_BOT_USERNAME
    first_name: str = "Coccinelle"
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[dict] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)
    webhook: dict | None = None
    commands: list[dict] = field(default_factory=list)  # what setMyCommands advertises
    blocked: set[int] = field(default_factory=set)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_id → (file_path, content)
    _failures: list[Failure] = field(default_factory=list)
    _counters: dict[str, itertools.count] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def fail_next(self, *, status: int = 429, description: str | None = None, retry_after: int | None = None,
                  method: str | None = None, skip: int = 0, times: int = 1) -> None:
        """Fail the next matching call (`method`, e.g. "sendMessage"; any when None) after
        letting `skip` of them through. 429 defaults to retry_after=3 like flood control."""
        if status == 429 and retry_after is None:
            retry_after = 3
        if description is None:
            description = {429: f"Too Many Requests: retry after {retry_after}",
                           403: "Forbidden: bot was blocked by the user",
                           400: "Bad Request: chat not found"}.get(status, "Internal Server Error")
        with self._lock:
            self._failures.append(Failure(status, description, retry_after, method, skip, times))

    def add_file(self, file_id: str, content: bytes, file_path: str) -> None:
        self.files[file_id] = (file_path, content)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.sent.clear()
            self._failures.clear()
            self.blocked.clear()
            self._counters.clear()
            self.webhook = None
            self.commands = []

    def start(self) -> FakeTelegram:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-telegram").start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- called by the handler -----------------------------------------------------------------
    def _failure_for(self, method: str) -> Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.method not in (None, method):
                    continue
                if failure.skip:
                    failure.skip -= 1
                    return None
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure
            return None

    def _bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _message(self, chat_id, **content) -> dict:
        key = str(chat_id)
        with self._lock:
            counter = self._counters.setdefault(key, itertools.count(1))
            message_id = next(counter)
        if isinstance(chat_id, int) and chat_id > 0:
            chat = {"id": chat_id, "first_name": "Camille", "type": "private"}
        elif isinstance(chat_id, int):
            chat = {"id": chat_id, "title": "Équipe support", "type": "supergroup"}
        else:
            chat = {"id": -1001000000001, "title": str(chat_id), "username": str(chat_id).lstrip("@"),
                    "type": "channel"}
        message = {"message_id": message_id, "from": self._bot_user(), "chat": chat, "date": int(time.time()),
                   **content}
        with self._lock:
            self.sent.append(message)
        return message

    def _call(self, method: str, params: dict) -> tuple[int, dict]:
        """(HTTP status, body) for one Bot API call."""
        if method == "getMe":
            return 200, _ok(self._bot_user())
        if method == "setWebhook":
            self.webhook = dict(params)
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "deleteWebhook":
            self.webhook = None
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if method == "getWebhookInfo":
            info = {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                    "pending_update_count": 0}
            return 200, _ok(info)
        if method == "setMyCommands":
            commands = params.get("commands")
            if not isinstance(commands, list) or len(commands) > 100:
                return 400, _error(400, "Bad Request: commands must be a list of at most 100 BotCommand")
            for command in commands:
                if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                    return 400, _error(400, "Bad Request: BOT_COMMAND_INVALID")
                if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                    return 400, _error(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            self.commands = [{"command": c["command"], "description": c["description"]} for c in commands]
            return 200, _ok(True)
        if method == "deleteMyCommands":
            self.commands = []
            return 200, _ok(True)
        if method == "getMyCommands":
            return 200, _ok(list(self.commands))
        if method == "getFile":
            if params.get("file_id") not in self.files:
                return 400, _error(400, "Bad Request: invalid file_id")
            path, content = self.files[params["file_id"]]
            return 200, _ok({"file_id": params["file_id"], "file_unique_id": "AgAD" + params["file_id"][-6:],
                             "file_size": len(content), "file_path": path})
        if not method.startswith("send"):
            return 404, _error(404, "Not Found")
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            return 400, _error(400, "Bad Request: chat_id is empty")
        if chat_id in self.blocked:
            return 403, _error(403, "Forbidden: bot was blocked by the user")
        caption = params.get("caption")
        if caption is not None and _units(caption) > 1024:
            return 400, _error(400, "Bad Request: message caption is too long")
        content = {"caption": caption} if caption else {}
        if method == "sendMessage":
            text = params.get("text") or ""
            if not text.strip():
                return 400, _error(400, "Bad Request: message text is empty")
            if _units(text) > 4096:
                return 400, _error(400, "Bad Request: message is too long")
            content = {"text": text}
        elif method == "sendPhoto":
            content["photo"] = [{"file_id": "AgACAgQAAxkD" + str(len(self.sent)), "file_unique_id": "AQADsent",
                                 "file_size": 61234, "width": 800, "height": 600}]
        elif method == "sendDocument":
            document = params.get("document", "")
            name = (document.get("filename") if isinstance(document, dict)
                    else urllib.parse.urlsplit(str(document)).path.rsplit("/", 1)[-1]) or "document"
            content["document"] = {"file_name": name, "mime_type": "application/pdf",
                                   "file_id": "BQACAgQAAxkD" + str(len(self.sent)), "file_unique_id": "AgADsent"}
        elif method in ("sendLocation", "sendVenue"):
            point = {"latitude": float(params["latitude"]), "longitude": float(params["longitude"])}
            content = {"location": point}
            if method == "sendVenue":
                content["venue"] = {"location": point, "title": params.get("title"), "address": params.get("address")}
        else:
            return 404, _error(404, "Not Found")
        return 200, _ok(self._message(chat_id, **content))


def _ok(result) -> dict:
    return {"ok": True, "result": result}


def _error(code: int, description: str, retry_after: int | None = None) -> dict:
    body = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _multipart(content_type: str, body: bytes) -> dict:
    """Form fields as text; an uploaded file as {"filename", "content_type", "content"}."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            fields[name] = {"filename": part.get_filename(), "content_type": part.get_content_type(),
                            "content": content}
        else:
            fields[name] = content.decode()
    return fields


def _decode(params: dict[str, str]) -> dict:
    decoded = {}
    for key, value in params.items():
        if key in _JSON_PARAMS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        decoded[key] = value
    return decoded


def _handler_for(fake: FakeTelegram):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self._handle(b"")

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            self._handle(self.rfile.read(length))

        def _handle(self, body: bytes):
            url = urllib.parse.urlsplit(self.path)
            parts = urllib.parse.unquote(url.path).strip("/").split("/")
            if len(parts) >= 3 and parts[0] == "file" and parts[1] == f"bot{fake.token}":
                return self._file("/".join(parts[2:]))
            if len(parts) != 2 or not parts[0].startswith("bot"):
                return self._json(404, _error(404, "Not Found"))
            if parts[0] != f"bot{fake.token}":
                return self._json(401, _error(401, "Unauthorized"))
            method = parts[1]
            params = dict(urllib.parse.parse_qsl(url.query))
            content_type = self.headers.get("Content-Type", "")
            if body and "application/json" in content_type:
                try:
                    params.update(json.loads(body))
                except ValueError:
                    return self._json(400, _error(400, "Bad Request: invalid JSON"))
            elif body and "multipart/form-data" in content_type:  # a file upload (InputFile)
                params.update(_multipart(content_type, body))
            elif body:
                params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            params = _decode(params)
            with fake._lock:
                fake.calls.append({"method": method, **params})
            failure = fake._failure_for(method)
            if failure:
                return self._json(failure.status, _error(failure.status, failure.description, failure.retry_after))
            self._json(*fake._call(method, params))

        def _file(self, path: str):
            for file_path, content in fake.files.values():
                if file_path == path:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    return self.wfile.write(content)
            self._json(404, _error(404, "Not Found"))

        def _json(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
