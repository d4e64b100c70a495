"""WhatsApp Cloud API: subscription check, X-Hub-Signature-256, batched webhooks, Graph API sends."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inbox.channels.base import ChannelConfig, OutboundMessage, WebhookReply, WebhookRequest
from inbox.channels.whatsapp_meta import WhatsAppMeta
from inbox.errors import InvalidSignature, MalformedPayload, PermanentDeliveryError, TransientDeliveryError
from inbox.kinds import ChannelKind, DeliveryStatus, Provider
from inbox.sandbox import meta as fake_meta
from inbox.sandbox.meta import (
    DEMO_ACCESS_TOKEN, DEMO_APP_SECRET, DEMO_PHONE_NUMBER_ID, DEMO_VERIFY_TOKEN, FakeMeta, encode, sign,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "meta"
URL = "https://support.example.test/webhooks/meta/whatsapp/abc"
CUSTOMER = "+33612345678"


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def adapter(*, api_base_url: str | None = None, app_secret: str = DEMO_APP_SECRET, verify_token: str = DEMO_VERIFY_TOKEN,
            access_token: str = DEMO_ACCESS_TOKEN) -> WhatsAppMeta:
    return WhatsAppMeta(ChannelConfig(
        kind=ChannelKind.WHATSAPP, provider=Provider.META, address="+33757000303",
        credentials={"access_token": access_token, "app_secret": app_secret, "verify_token": verify_token},
        settings={"phone_number_id": DEMO_PHONE_NUMBER_ID}, api_base_url=api_base_url))


def request(payload: dict | bytes, *, signature: str | None = None) -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else encode(payload)
    sig = sign(DEMO_APP_SECRET, body) if signature is None else signature
    headers = {"Content-Type": "application/json", **({"X-Hub-Signature-256": sig} if sig else {})}
    return WebhookRequest(url=URL, headers=headers, form={}, body=body)


def parse_one(name: str):
    [message] = adapter().parse(request(fixture(name)))
    return message


@pytest.fixture(scope="module")
def server():
    fake = FakeMeta().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server):
    server.reset()
    return server


def send(fake, **kw):
    message = OutboundMessage(to=kw.pop("to", CUSTOMER), body=kw.pop("body", ""), **kw)
    return adapter(api_base_url=fake.base_url).send(message)


# -- subscription check ----------------------------------------------------------------------------------
def handshake(query: dict, **kw) -> WebhookReply:
    return adapter(**kw).handshake(WebhookRequest(url=URL, headers={}, form={}, query=query))


def test_the_subscription_check_echoes_the_challenge_when_the_token_matches():
    reply = handshake({"hub.mode": "subscribe", "hub.verify_token": DEMO_VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert (reply.status, reply.body, reply.content_type) == (200, "1158201444", "text/plain")


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.verify_token": "guessed", "hub.challenge": "1158201444"},
    {"hub.mode": "unsubscribe", "hub.verify_token": DEMO_VERIFY_TOKEN, "hub.challenge": "1158201444"},
    {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
    {"hub.mode": "subscribe", "hub.verify_token": DEMO_VERIFY_TOKEN},
    {},
])
def test_any_other_subscription_check_is_forbidden(query):
    reply = handshake(query)
    assert reply.status == 403 and "1158201444" not in reply.body


def test_a_channel_without_a_verify_token_accepts_no_subscription():
    reply = handshake({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, verify_token="")
    assert reply.status == 403


# -- signatures -----------------------------------------------------------------------------------------
def test_a_body_signed_with_the_app_secret_passes():
    adapter().verify(request(fixture("text.json")))


def test_the_header_is_found_whatever_its_case():
    body = encode(fixture("text.json"))
    adapter().verify(WebhookRequest(url=URL, headers={"x-hub-signature-256": sign(DEMO_APP_SECRET, body)},
                                    form={}, body=body))


@pytest.mark.parametrize("signature", ["", "sha256=", "sha256=" + "0" * 64, "sha1=abc", "not-a-signature"])
def test_missing_or_forged_signatures_are_refused(signature):
    with pytest.raises(InvalidSignature):
        adapter().verify(request(fixture("text.json"), signature=signature))


def test_a_signature_checked_with_another_secret_fails():
    with pytest.raises(InvalidSignature):
        adapter(app_secret="another-secret").verify(request(fixture("text.json")))


def test_the_raw_body_is_hashed_not_a_reserialized_one():
    raw = encode(fixture("text.json"))
    assert b"\\u00e9" in raw and b"\\/" in raw  # Meta escapes accents and slashes
    signature = sign(DEMO_APP_SECRET, raw)
    reserialized = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    with pytest.raises(InvalidSignature):
        adapter().verify(request(reserialized, signature=signature))


def test_a_tampered_body_fails():
    raw = encode(fixture("text.json"))
    signature = sign(DEMO_APP_SECRET, raw)
    with pytest.raises(InvalidSignature):
        adapter().verify(request(raw.replace(b"Bonjour", b"Bonsoir"), signature=signature))


# -- inbound messages ---------------------------------------------------------------------------------------
def test_a_text_arrives_with_its_accents_emoji_and_profile_name():
    message = parse_one("text.json")
    assert message.provider_message_id.startswith("wamid.")
    assert message.body == "Bonjour, ma commande n'est pas arrivée 📦 (réf. A/42)"
    assert message.sender == CUSTOMER and message.recipient == "+33757000303"
    assert message.sender_name == "Camille Martin"
    assert message.sent_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert message.meta["type"] == "text" and message.meta["wa_id"] == "33612345678"
    assert message.automated is False


def test_an_image_gives_a_media_reference_to_resolve_later():
    message = parse_one("image.json")
    [media] = message.media
    assert media.url == "meta-media:1013859600285441" and media.content_type == "image/jpeg"
    assert message.body == "Le colis était abîmé"
    [info] = message.meta["media"]
    assert info["id"] == "1013859600285441" and info["sha256"].startswith("aa27") and "lookaside" in info["url"]


def test_a_document_keeps_its_file_name():
    message = parse_one("document.json")
    [media] = message.media
    assert (media.filename, media.content_type, message.body) == ("facture-2026-0042.pdf", "application/pdf",
                                                                  "Ma facture")


def test_a_voice_note_is_audio_media_flagged_as_voice():
    message = parse_one("audio.json")
    assert message.media[0].content_type == "audio/ogg; codecs=opus" and message.body == ""
    assert message.meta["media"][0]["voice"] is True


def test_a_video_keeps_its_caption():
    message = parse_one("video.json")
    assert message.media[0].url == "meta-media:1346789012345678" and message.body == "Le bruit au démarrage"


def test_a_location_is_kept_in_meta():
    message = parse_one("location.json")
    assert message.meta["location"] == {"latitude": 48.8556, "longitude": 2.3591, "name": "Boutique Rivoli",
                                        "address": "8 Rue de Rivoli, 75004 Paris",
                                        "url": "https://example.test/boutique-rivoli"}
    assert message.body == "Boutique Rivoli, 8 Rue de Rivoli, 75004 Paris"


def test_a_shared_contact_card_is_kept_whole():
    message = parse_one("contacts.json")
    [card] = message.meta["contacts"]
    assert card["name"]["formatted_name"] == "Jeanne Dupont" and card["phones"][0]["wa_id"] == "33698765432"
    assert message.body == "Jeanne Dupont +33 6 98 76 54 32"


def test_a_reply_button_tap_gives_its_id_title_and_the_quoted_message():
    message = parse_one("interactive_button_reply.json")
    assert message.body == "Oui"
    assert message.meta["interactive"] == {"type": "button_reply", "id": "oui", "title": "Oui", "description": None}
    assert message.meta["reply_to"].startswith("wamid.")


def test_a_list_choice_gives_its_row():
    message = parse_one("interactive_list_reply.json")
    assert message.meta["interactive"]["id"] == "rdv-mardi"
    assert message.meta["interactive"]["description"] == "Boutique Rivoli" and message.body == "Mardi 10 h"


def test_a_template_quick_reply_gives_its_payload():
    message = parse_one("button.json")
    assert message.meta["button"] == {"text": "Je confirme", "payload": "CONFIRM_RDV"}
    assert message.body == "Je confirme"


def test_a_batched_post_delivers_every_message_and_status():
    payload = fixture("batch.json")
    messages = adapter().parse(request(payload))
    updates = adapter().parse_status(request(payload))
    assert [(m.sender, m.sender_name, m.body) for m in messages] == [
        (CUSTOMER, "Camille Martin", "Premier message"), ("+33698765432", "Jeanne Dupont", "Bonjour, c'est Jeanne")]
    assert [(u.status, u.error_code) for u in updates] == [(DeliveryStatus.DELIVERED, None)]


def test_entries_and_changes_are_all_read():
    first = fake_meta.text_message(CUSTOMER, "Un")
    second = fake_meta.text_message("+33698765432", "Deux")
    payload = fake_meta.envelope(fake_meta.value(messages=[first], contacts=[("33612345678", "Camille")]))
    payload["entry"].append(fake_meta.envelope(fake_meta.value(messages=[second]))["entry"][0])
    assert [m.body for m in adapter().parse(request(payload))] == ["Un", "Deux"]


def test_changes_for_another_number_of_the_app_are_skipped():
    ours = fake_meta.value(messages=[fake_meta.text_message(CUSTOMER, "Pour nous")])
    theirs = fake_meta.value(messages=[fake_meta.text_message(CUSTOMER, "Pas pour nous")],
                             phone_number_id="999999999999999", display_phone_number="15550001111")
    assert [m.body for m in adapter().parse(request(fake_meta.envelope(theirs, ours)))] == ["Pour nous"]


def test_other_webhook_fields_are_not_messages():
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}}]}]}
    assert adapter().parse(request(payload)) == [] and adapter().parse_status(request(payload)) == []


def test_a_reaction_is_kept_but_never_answered_automatically():
    reaction = fake_meta._message(CUSTOMER, "reaction", {"message_id": "wamid.X", "emoji": "👍"})
    [message] = adapter().parse(request(fake_meta.inbound_payload(reaction)))
    assert message.body == "👍" and message.automated is True
    assert message.meta["reaction"] == {"message_id": "wamid.X", "emoji": "👍"}


def test_a_status_only_post_has_no_messages():
    assert adapter().parse(request(fixture("statuses.json")["read"])) == []


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (encode({"object": "page", "entry": []}), "whatsapp_business_account"),
    (encode(fake_meta.inbound_payload({"from": "33612345678", "timestamp": "1", "type": "text",
                                       "text": {"body": "x"}})), "no id"),
    (encode(fake_meta.inbound_payload(fake_meta._message(CUSTOMER, "image", {"mime_type": "image/png"}))),
     "no media id"),
])
def test_payloads_we_cannot_read_say_why(body, reason):
    with pytest.raises(MalformedPayload, match=reason):
        adapter().parse(request(body))


# -- statuses ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, status", [
    ("sent", DeliveryStatus.SENT), ("delivered", DeliveryStatus.DELIVERED), ("read", DeliveryStatus.READ),
])
def test_statuses_map_to_ours(name, status):
    [update] = adapter().parse_status(request(fixture("statuses.json")[name]))
    assert update.status == status and update.error_code is None
    assert update.provider_message_id == "wamid.HBgLMzM2MTIzNDU2NzgVAgARGBI4QjFFRkE2MjA5QjQ3MDI4NEIA"


def test_a_failure_outside_the_window_is_explained():
    [update] = adapter().parse_status(request(fixture("statuses.json")["failed"]))
    assert update.status == DeliveryStatus.FAILED and update.error_code == "131047"
    assert "24 hours" in update.error_message and "template" in update.error_message


def test_other_failures_show_meta_s_details():
    failed = fake_meta.status("wamid.Y", "failed", recipient=CUSTOMER,
                              error=(131053, "Media upload error", "Media upload error", "Unsupported file type"))
    [update] = adapter().parse_status(request(fake_meta.status_payload(failed)))
    assert (update.error_code, update.error_message) == ("131053", "Unsupported file type")


def test_unknown_statuses_are_skipped_not_refused():
    odd = fake_meta.status("wamid.Z", "teleported", recipient=CUSTOMER)
    read = fake_meta.status("wamid.Z", "read", recipient=CUSTOMER)
    updates = adapter().parse_status(request(fake_meta.status_payload(odd, read)))
    assert [u.status for u in updates] == [DeliveryStatus.READ]


def test_webhook_reply_is_a_plain_200():
    reply = adapter().webhook_reply()
    assert reply.status == 200


# -- outbound --------------------------------------------------------------------------------------------------
def test_a_text_goes_to_the_graph_api_with_the_bearer_token(fake):
    receipt = send(fake, body="Bonjour Camille 👋")
    [sent] = fake.sent
    assert sent["messaging_product"] == "whatsapp" and sent["to"] == "33612345678"
    assert sent["type"] == "text" and sent["text"] == {"body": "Bonjour Camille 👋", "preview_url": False}
    assert receipt.provider_message_id == sent["id"] and receipt.status == DeliveryStatus.ACCEPTED


def test_an_image_carries_the_text_as_caption(fake):
    send(fake, body="Voici la photo", media_urls=("https://files.example.test/colis.jpg",))
    [sent] = fake.sent
    assert sent["type"] == "image"
    assert sent["image"] == {"link": "https://files.example.test/colis.jpg", "caption": "Voici la photo"}


def test_a_document_is_sent_by_link_with_its_file_name(fake):
    send(fake, media_urls=("https://files.example.test/docs/bon-de-retour.pdf",))
    assert fake.sent[0]["document"] == {"link": "https://files.example.test/docs/bon-de-retour.pdf",
                                        "filename": "bon-de-retour.pdf"}


def test_audio_takes_no_caption_so_the_text_goes_first(fake):
    receipt = send(fake, body="Écoutez ceci", media_urls=("https://files.example.test/message.mp3",))
    text, audio = fake.sent
    assert text["type"] == "text" and audio["type"] == "audio" and "caption" not in audio["audio"]
    assert receipt.provider_message_id == text["id"]


def test_up_to_three_quick_replies_become_buttons(fake):
    send(fake, body="Êtes-vous satisfait ?", meta={"quick_replies": ["Oui", "Non"], "reply_to": "wamid.Q"})
    [sent] = fake.sent
    interactive = sent["interactive"]
    assert interactive["type"] == "button" and interactive["body"] == {"text": "Êtes-vous satisfait ?"}
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [{"id": "Oui", "title": "Oui"},
                                                                    {"id": "Non", "title": "Non"}]
    assert sent["context"] == {"message_id": "wamid.Q"}


def test_more_choices_become_a_list(fake):
    send(fake, body="Notez-nous de 1 à 5", meta={"quick_replies": ["1", "2", "3", "4", "5"], "list_button": "Noter"})
    interactive = fake.sent[0]["interactive"]
    assert interactive["type"] == "list" and interactive["action"]["button"] == "Noter"
    assert [r["title"] for r in interactive["action"]["sections"][0]["rows"]] == ["1", "2", "3", "4", "5"]


def test_a_quick_reply_title_too_long_is_refused_before_sending(fake):
    with pytest.raises(PermanentDeliveryError, match="20 characters"):
        send(fake, body="?", meta={"quick_replies": ["Oui, tout à fait satisfait", "Non"]})
    assert fake.sent == []


def test_a_location_is_sent_as_a_location_message(fake):
    send(fake, meta={"location": {"latitude": 48.8556, "longitude": 2.3591, "name": "Boutique Rivoli",
                                  "address": "8 Rue de Rivoli"}})
    assert fake.sent[0]["location"] == {"latitude": 48.8556, "longitude": 2.3591, "name": "Boutique Rivoli",
                                        "address": "8 Rue de Rivoli"}


def test_a_template_carries_its_language_components_and_parameters(fake):
    send(fake, meta={"template": {"name": "rdv_confirmation", "language": "fr", "parameters": ["Camille", "mardi"],
                                  "components": [{"type": "header", "parameters": [
                                      {"type": "image", "image": {"link": "https://files.example.test/logo.png"}}]}]}})
    template = fake.sent[0]["template"]
    assert template["name"] == "rdv_confirmation" and template["language"] == {"code": "fr"}
    assert template["components"][0]["type"] == "header"
    assert template["components"][1] == {"type": "body", "parameters": [{"type": "text", "text": "Camille"},
                                                                        {"type": "text", "text": "mardi"}]}


def test_free_text_outside_the_window_is_refused_but_a_template_goes(fake):
    long_ago = datetime.now(UTC) - timedelta(hours=30)
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, body="Bonjour", meta={"last_inbound_at": long_ago})
    assert caught.value.code == "131047" and fake.sent == []
    send(fake, meta={"template": {"name": "relance", "language": "fr"}, "last_inbound_at": long_ago.isoformat()})
    assert fake.sent[0]["type"] == "template"


def test_meta_refusing_a_message_outside_the_window_is_permanent(fake):
    fake.fail_next(status=400, code=131047, message="(#131047) Re-engagement message",
                   details="Message failed to send because more than 24 hours have passed")
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, body="Bonjour")
    assert caught.value.code == "131047" and "template" in caught.value.message


@pytest.mark.parametrize("status, code", [(429, 130429), (500, 131000), (503, 2), (400, 131056)])
def test_rate_limits_and_outages_are_transient(fake, status, code):
    fake.fail_next(status=status, code=code, message="Try again later")
    with pytest.raises(TransientDeliveryError):
        send(fake, body="Bonjour")


def test_other_refusals_are_permanent_with_meta_s_message(fake):
    fake.fail_next(status=400, code=131009, message="(#131009) Parameter value is not valid",
                   details="Recipient phone number is not a valid WhatsApp number")
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, body="Bonjour")
    assert caught.value.code == "131009"
    assert caught.value.message == "Recipient phone number is not a valid WhatsApp number"


def test_an_expired_token_is_permanent(fake):
    with pytest.raises(PermanentDeliveryError) as caught:
        WhatsAppMeta(ChannelConfig(kind=ChannelKind.WHATSAPP, provider=Provider.META, address="+33757000303",
                                   credentials={"access_token": "expired"},
                                   settings={"phone_number_id": DEMO_PHONE_NUMBER_ID}, api_base_url=fake.base_url,
                                   )).send(OutboundMessage(to=CUSTOMER, body="Bonjour"))
    assert caught.value.code == "190" and "token" in caught.value.message


def test_a_too_long_text_goes_out_in_several_messages(fake):
    receipt = send(fake, body="mot " * 2000)  # 8000 characters
    assert [len(m["text"]["body"]) <= 4096 for m in fake.sent] == [True, True]
    assert receipt.message_ids == tuple(m["id"] for m in fake.sent)


def test_a_failure_after_the_first_part_keeps_what_went_out_for_the_retry(fake, monkeypatch):
    original = fake._accept

    def accept_then_break(payload):
        accepted = original(payload)
        fake.fail_next(status=503, code=2, message="Service temporarily unavailable")
        return accepted

    monkeypatch.setattr(fake, "_accept", accept_then_break)
    with pytest.raises(TransientDeliveryError) as caught:  # a 503: the rest is retried, the first part is not
        send(fake, body="Écoutez ceci", media_urls=("https://files.example.test/message.mp3",))
    assert "1 of 2" in str(caught.value) and caught.value.sent_ids == (fake.sent[0]["id"],)
    assert len(fake.sent) == 1


def test_meta_out_of_reach_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientDeliveryError):
        adapter(api_base_url=f"http://127.0.0.1:{port}").send(OutboundMessage(to=CUSTOMER, body="Bonjour"))


def test_inbound_media_is_downloaded_with_the_token(fake):
    fake.add_media("1013859600285441", b"\xff\xd8\xff\xe0 jpeg", "image/jpeg")
    content, content_type = adapter(api_base_url=fake.base_url).fetch_media("meta-media:1013859600285441")
    assert content == b"\xff\xd8\xff\xe0 jpeg" and content_type == "image/jpeg"


def test_a_channel_without_a_phone_number_id_cannot_send():
    bot = WhatsAppMeta(ChannelConfig(kind=ChannelKind.WHATSAPP, provider=Provider.META, address="",
                                     credentials={"access_token": DEMO_ACCESS_TOKEN}))
    with pytest.raises(PermanentDeliveryError, match="phone_number_id"):
        bot.send(OutboundMessage(to=CUSTOMER, body="Bonjour"))
