"""Telegram: secret-token check, Update parsing (commands, media, groups), sends through
python-telegram-bot against a fake Bot API, 4096-character splitting and flood control."""

from __future__ import annotations

import asyncio
import threading
import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inbox.channels.base import ChannelConfig, OutboundMessage, WebhookRequest
from inbox.channels.telegram import TEXT_LIMIT, RetryLater, TelegramBot, set_webhook, split_text
from inbox.errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, TransientDeliveryError,
)
from inbox.kinds import ChannelKind, DeliveryStatus, Provider
from inbox.sandbox import telegram as fake_tg
from inbox.sandbox.telegram import (
    DEMO_BOT_TOKEN, DEMO_BOT_USERNAME, DEMO_NOTIFICATION_CHAT_ID, DEMO_WEBHOOK_SECRET, FakeTelegram,
)

# python-telegram-bot 22 warns from inside RetryAfter itself that `retry_after` will become a
# timedelta; the adapter reads either form (retry_after_seconds), so the warning is noise here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
URL = "https://support.example.test/webhooks/telegram/telegram/abc"
CHAT = 424242001


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def adapter(*, api_base_url: str | None = None, secret: str = DEMO_WEBHOOK_SECRET, token: str = DEMO_BOT_TOKEN,
            settings: dict | None = None) -> TelegramBot:
    return TelegramBot(ChannelConfig(
        kind=ChannelKind.TELEGRAM, provider=Provider.TELEGRAM, address=f"@{DEMO_BOT_USERNAME}",
        credentials={"bot_token": token, "webhook_secret": secret},
        settings={"notification_chat_id": DEMO_NOTIFICATION_CHAT_ID, **(settings or {})}, api_base_url=api_base_url))


def request(update: dict | bytes, *, secret: str | None = DEMO_WEBHOOK_SECRET) -> WebhookRequest:
    body = update if isinstance(update, bytes) else json.dumps(update, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **({"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {})}
    return WebhookRequest(url=URL, headers=headers, form={}, body=body)


def parse(update: dict, **kw):
    return adapter(**kw).parse(request(update))


def parse_one(name: str):
    [message] = parse(fixture(name))
    return message


@pytest.fixture(scope="module")
def server():
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server):
    server.reset()
    return server


def send(fake, body: str = "", *, settings: dict | None = None, **kw):
    message = OutboundMessage(to=kw.pop("to", str(CHAT)), body=body, **kw)
    return adapter(api_base_url=fake.base_url, settings=settings).send(message)


def sent_calls(fake) -> list[dict]:
    return [c for c in fake.calls if c["method"] != "getMe"]


# -- the secret token -------------------------------------------------------------------------------------
def test_an_update_with_our_secret_token_passes():
    adapter().verify(request(fixture("text.json")))


def test_the_header_is_found_whatever_its_case():
    body = json.dumps(fixture("text.json")).encode()
    adapter().verify(WebhookRequest(url=URL, headers={"x-telegram-bot-api-secret-token": DEMO_WEBHOOK_SECRET},
                                    form={}, body=body))


@pytest.mark.parametrize("secret", [None, "", "guessed-secret", DEMO_WEBHOOK_SECRET + "x", "sécret"])
def test_a_missing_or_wrong_secret_is_refused(secret):
    with pytest.raises(InvalidSignature):
        adapter().verify(request(fixture("text.json"), secret=secret))


def test_a_channel_without_a_secret_refuses_everything():
    with pytest.raises(InvalidSignature):
        adapter(secret="").verify(request(fixture("text.json"), secret=""))


# -- inbound -----------------------------------------------------------------------------------------------
def test_a_private_text_becomes_a_message_keyed_by_update_id():
    message = parse_one("text.json")
    assert message.provider_message_id == "873451200"
    assert message.sender == str(CHAT) and message.recipient == f"@{DEMO_BOT_USERNAME}"
    assert message.sender_name == "Camille Martin"
    assert message.body == "Bonjour, ma commande n'est pas arrivée 📦"
    assert message.sent_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert message.meta == {"chat_id": CHAT, "message_id": 101, "chat_type": "private", "username": "camille_m",
                            "language_code": "fr"}
    assert json.loads(json.dumps(message.meta)) == message.meta  # plain values, storable as JSON
    assert type(message.meta["chat_type"]) is str


@pytest.mark.parametrize("name, command, args", [
    ("command_start.json", "start", ""),
    ("command_with_args.json", "ticket_reply", "42 Merci, c'est réglé"),
    ("command_addressed.json", "nouveau_rdv", "mardi 10h"),
])
def test_bot_commands_are_parsed_into_meta(name, command, args):
    message = parse_one(name)
    assert (message.meta["command"], message.meta["args"]) == (command, args)


@pytest.mark.parametrize("command", ["help", "info", "contact", "rdv", "annuler", "ticket_create", "ticket_list",
                                     "ticket_view", "ticket_close", "ticket_stats"])
def test_every_known_command_is_recognised(command):
    [message] = parse(fake_tg.text_update(CHAT, f"/{command} 12"))
    assert message.meta["command"] == command and message.meta["args"] == "12"


@pytest.mark.parametrize("text", ["/unknown_thing", "/help@another_bot", "merci /start", "/ start"])
def test_other_slashes_stay_plain_text(text):
    [message] = parse(fake_tg.text_update(CHAT, text))
    assert "command" not in message.meta and message.body == text


def test_a_photo_keeps_the_largest_size_and_its_caption():
    message = parse_one("photo.json")
    [photo] = message.media
    assert photo.url == "telegram-file:AgACAgQAAxkBAAIBZ2XlargeAA" and photo.content_type == "image/jpeg"
    assert message.body == "Le colis était abîmé"


def test_a_document_keeps_its_name_and_type():
    message = parse_one("document.json")
    [doc] = message.media
    assert (doc.filename, doc.content_type, message.body) == ("facture-2026-0042.pdf", "application/pdf", "Ma facture")


def test_a_voice_note_and_an_audio_file_are_audio_media():
    voice, audio = parse_one("voice.json").media[0], parse_one("audio.json").media[0]
    assert voice.content_type == "audio/ogg" and voice.url == "telegram-file:AwACAgQAAxkBAAIBaWXvoiceAA"
    assert audio.content_type == "audio/mpeg" and audio.filename == "message-repondeur.mp3"


def test_a_location_is_kept_in_meta():
    message = parse_one("location.json")
    assert message.meta["location"] == {"latitude": 48.8556, "longitude": 2.3591}
    assert message.body == "48.8556, 2.3591"


def test_a_shared_contact_is_kept_in_meta():
    message = parse_one("contact.json")
    assert message.meta["contact"]["phone_number"] == "+33698765432"
    assert message.meta["contact"]["user_id"] == 555000111
    assert message.body == "Jeanne Dupont +33698765432"


def test_a_reply_points_at_the_quoted_message_like_our_receipts_do():
    assert parse_one("reply.json").meta["reply_to"] == f"{CHAT}:57"


def test_group_messages_are_ignored():
    assert parse(fixture("group_message.json")) == []


def test_commands_in_the_notification_group_come_back_as_staff_commands():
    [message] = parse(fixture("notification_group_command.json"))
    assert message.meta["notification_group"] is True
    assert (message.meta["command"], message.meta["args"]) == ("ticket_list", "ouverts")
    assert message.sender == "555000333" and message.sender_name == "Alice Agent"
    assert message.meta["chat_id"] == DEMO_NOTIFICATION_CHAT_ID


def test_chatter_in_the_notification_group_is_ignored():
    assert parse(fake_tg.group_update(DEMO_NOTIFICATION_CHAT_ID, "Qui prend le ticket 42 ?")) == []


def test_the_notification_group_is_just_a_group_when_not_configured():
    bot = TelegramBot(ChannelConfig(kind=ChannelKind.TELEGRAM, provider=Provider.TELEGRAM, address="@x_bot",
                                    credentials={"bot_token": DEMO_BOT_TOKEN}))
    assert bot.parse(request(fixture("notification_group_command.json"))) == []


def test_edits_and_other_update_kinds_give_nothing():
    assert parse(fixture("edited_message.json")) == []
    assert parse({"update_id": 1, "callback_query": {"id": "1", "from": fake_tg.user(CHAT), "chat_instance": "1",
                                                     "data": "x"}}) == []


@pytest.mark.parametrize("body, reason", [
    (b"<html>", "not JSON"),
    (b'{"message": {}}', "update_id"),
    (b'{"update_id": "12"}', "update_id"),
    (json.dumps({"update_id": 5, "message": {"message_id": 1}}).encode(), "not a Telegram update"),
])
def test_payloads_we_cannot_read_say_why(body, reason):
    with pytest.raises(MalformedPayload, match=reason):
        adapter().parse(request(body))


def test_telegram_sends_no_status_callbacks_and_gets_an_empty_200():
    assert adapter().parse_status(request(fixture("text.json"))) == []
    reply = adapter().webhook_reply()
    assert reply.status == 200 and reply.body == ""
    assert adapter().handshake(request(fixture("text.json"))) is None


# -- splitting ------------------------------------------------------------------------------------------------
def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_short_texts_are_not_split():
    assert split_text("Bonjour") == ["Bonjour"]
    assert split_text("x" * TEXT_LIMIT) == ["x" * TEXT_LIMIT]


def test_long_texts_split_on_paragraphs():
    paragraphs = [f"Paragraphe {i}. " + "mot " * 300 for i in range(8)]  # ~1.2 k characters each
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_text(text)
    assert len(parts) == 3 and all(units(p) <= TEXT_LIMIT for p in parts)
    assert all(p.startswith("Paragraphe") for p in parts)
    assert "\n\n".join(parts) == text


def test_without_paragraphs_lines_then_words_are_used():
    lines = "\n".join(f"ligne {i:04d} " + "x" * 40 for i in range(200))
    assert all(p.startswith("ligne") and units(p) <= TEXT_LIMIT for p in split_text(lines))
    words = " ".join(["mot"] * 3000)
    parts = split_text(words)
    assert all(units(p) <= TEXT_LIMIT and not p.startswith(" ") and p.endswith("mot") for p in parts)
    assert " ".join(parts) == words


def test_a_text_without_any_break_is_cut_hard():
    parts = split_text("x" * 10_000)
    assert [len(p) for p in parts] == [4096, 4096, 1808]


def test_emoji_count_twice_as_telegram_counts_them():
    text = "😀" * 3000  # 6000 UTF-16 code units
    parts = split_text(text)
    assert len(parts) == 2 and all(units(p) <= TEXT_LIMIT for p in parts) and "".join(parts) == text


# -- outbound through python-telegram-bot -------------------------------------------------------------------
def test_a_reply_is_sent_after_get_me(fake):
    receipt = send(fake, "Bonjour Camille 👋")
    assert [c["method"] for c in fake.calls] == ["getMe", "sendMessage"]
    assert fake.calls[1]["chat_id"] == CHAT and fake.calls[1]["text"] == "Bonjour Camille 👋"
    assert receipt.provider_message_id == f"{CHAT}:1" and receipt.status == DeliveryStatus.SENT
    assert receipt.message_ids == (f"{CHAT}:1",)


def test_a_long_reply_goes_as_several_messages(fake):
    text = "\n\n".join(f"Étape {i} : " + "détail " * 200 for i in range(10))  # 10 × 1.4 k characters
    receipt = send(fake, text)
    texts = [c["text"] for c in sent_calls(fake)]
    assert len(texts) == 5 and all(units(t) <= TEXT_LIMIT for t in texts)  # two whole steps per message
    assert all(t.startswith("Étape") for t in texts) and "\n\n".join(texts) == text
    assert receipt.provider_message_id == f"{CHAT}:1"
    assert receipt.message_ids == tuple(f"{CHAT}:{i}" for i in range(1, 6))


def test_quick_replies_are_a_one_time_keyboard_on_the_last_part(fake):
    send(fake, "Êtes-vous satisfait ?", meta={"quick_replies": ["Oui", "Non"], "reply_to": f"{CHAT}:57"})
    [call] = sent_calls(fake)
    assert call["reply_markup"] == {"keyboard": [[{"text": "Oui"}, {"text": "Non"}]], "one_time_keyboard": True,
                                    "resize_keyboard": True}
    assert call["reply_parameters"]["message_id"] == 57


def test_a_photo_carries_a_short_text_as_caption(fake):
    send(fake, "Voici le bon de retour", media_urls=("https://files.example.test/colis.jpg",
                                                      "https://files.example.test/bon.pdf"))
    photo, document = sent_calls(fake)
    assert photo["method"] == "sendPhoto" and photo["caption"] == "Voici le bon de retour"
    assert document["method"] == "sendDocument" and "caption" not in document


def test_a_text_too_long_for_a_caption_goes_first(fake):
    send(fake, "x" * 1500, media_urls=("https://files.example.test/colis.jpg",))
    assert [c["method"] for c in sent_calls(fake)] == ["sendMessage", "sendPhoto"]


def test_a_location_or_a_venue_can_be_sent(fake):
    send(fake, meta={"location": {"latitude": 48.8556, "longitude": 2.3591}})
    send(fake, meta={"location": {"latitude": 48.8556, "longitude": 2.3591, "name": "Boutique Rivoli",
                                  "address": "8 Rue de Rivoli"}})
    assert [c["method"] for c in sent_calls(fake)] == ["sendLocation", "sendVenue"]


def test_flood_control_is_transient_and_says_when_to_retry(fake):
    fake.fail_next(status=429, retry_after=17, method="sendMessage")
    with pytest.raises(RetryLater) as caught:
        send(fake, "Bonjour")
    assert isinstance(caught.value, TransientDeliveryError) and caught.value.retry_after == 17


def test_a_short_flood_wait_mid_message_is_waited_out(fake):
    fake.fail_next(status=429, retry_after=1, method="sendMessage", skip=1)
    started = time.monotonic()
    receipt = send(fake, "a" * 4096 + "\n\n" + "b" * 10, settings={"max_inline_wait": 2})
    assert time.monotonic() - started >= 1
    assert len(receipt.message_ids) == 2


def test_a_long_flood_wait_mid_message_is_a_partial_failure(fake):
    fake.fail_next(status=429, retry_after=60, method="sendMessage", skip=1)
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, "a" * 4096 + "\n\n" + "b" * 10)
    assert caught.value.code == "partial" and "1 of 2" in caught.value.message and f"{CHAT}:1" in caught.value.message


def test_a_customer_who_blocked_the_bot_is_a_permanent_failure(fake):
    fake.blocked.add(CHAT)
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, "Bonjour")
    assert caught.value.code == "forbidden" and "blocked" in caught.value.message


def test_an_unknown_chat_is_a_permanent_failure(fake):
    fake.fail_next(status=400, method="sendMessage")
    with pytest.raises(PermanentDeliveryError, match="(?i)chat not found"):
        send(fake, "Bonjour")


@pytest.mark.parametrize("status", [500, 502])
def test_telegram_outages_are_transient(fake, status):
    fake.fail_next(status=status, method="sendMessage")
    with pytest.raises(TransientDeliveryError):
        send(fake, "Bonjour")


def test_a_revoked_token_is_permanent(fake):
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter(api_base_url=fake.base_url, token="123:revoked").send(OutboundMessage(to=str(CHAT), body="Bonjour"))
    assert caught.value.code == "invalid_token"


def test_telegram_out_of_reach_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientDeliveryError):
        adapter(api_base_url=f"http://127.0.0.1:{port}").send(OutboundMessage(to=str(CHAT), body="Bonjour"))


def test_nothing_to_send_is_refused_before_calling_telegram(fake):
    with pytest.raises(PermanentDeliveryError, match="Nothing to send"):
        send(fake, "   ")
    assert fake.calls == []


def test_send_works_from_code_already_running_an_event_loop(fake):
    async def caller():
        return send(fake, "Depuis une boucle asyncio")

    # A thread of its own: whatever loop the test process runs (Playwright's) stays out of it.
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("receipt", asyncio.run(caller())))
    worker.start()
    worker.join(30)
    assert outcome["receipt"].status == DeliveryStatus.SENT


def test_set_webhook_registers_the_url_and_secret(fake):
    assert adapter(api_base_url=fake.base_url).set_webhook(URL) is True
    assert fake.webhook == {"url": URL, "secret_token": DEMO_WEBHOOK_SECRET, "allowed_updates": ["message"],
                            "drop_pending_updates": False}


def test_set_webhook_refuses_a_secret_telegram_would_reject(fake):
    with pytest.raises(ValueError):
        set_webhook(URL, "pas de espaces", token=DEMO_BOT_TOKEN, api_base_url=fake.base_url)
    with pytest.raises(ChannelError):
        set_webhook(URL, "ok-secret", token="123:revoked", api_base_url=fake.base_url)


def test_inbound_files_are_downloaded_without_exposing_the_token(fake):
    fake.add_file("AgACAgQAAxkBAAIBZ2XlargeAA", b"\xff\xd8\xff jpeg", "photos/file_7.jpg")
    content, content_type = adapter(api_base_url=fake.base_url).fetch_media("telegram-file:AgACAgQAAxkBAAIBZ2XlargeAA")
    assert content == b"\xff\xd8\xff jpeg" and content_type == "image/jpeg"
