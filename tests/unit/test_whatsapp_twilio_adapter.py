"""WhatsApp through Twilio: the SMS signature scheme, WhatsApp payloads, templates and the 24-hour window."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from inbox.channels.base import ChannelConfig, OutboundMessage, WebhookRequest
from inbox.channels.whatsapp_twilio import TwilioWhatsApp, window_closes_at, window_open
from inbox.errors import InvalidSignature, MalformedPayload, PermanentDeliveryError, TransientDeliveryError
from inbox.kinds import ChannelKind, DeliveryStatus, Provider
from inbox.sandbox.twilio_whatsapp import (
    DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, DEMO_WHATSAPP_NUMBER, FakeTwilioWhatsApp, location_payload, sign,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio_whatsapp"
URL = "https://support.example.test/webhooks/twilio/whatsapp/abc"
CUSTOMER = "+33612345678"
TEMPLATE_SID = "HX" + "0" * 31 + "1"


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def adapter(*, token: str = DEMO_AUTH_TOKEN, api_base_url: str | None = None, address: str = DEMO_WHATSAPP_NUMBER,
            settings: dict | None = None) -> TwilioWhatsApp:
    return TwilioWhatsApp(ChannelConfig(
        kind=ChannelKind.WHATSAPP, provider=Provider.TWILIO, address=address,
        credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": token}, settings=settings or {},
        api_base_url=api_base_url))


def request(params: dict, *, signature: str | None = None) -> WebhookRequest:
    sig = sign(DEMO_AUTH_TOKEN, URL, params) if signature is None else signature
    headers = {"X-Twilio-Signature": sig} if sig else {}
    return WebhookRequest(url=URL, headers=headers, form=MultiDict(params))


@pytest.fixture(scope="module")
def server():
    fake = FakeTwilioWhatsApp().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server):
    server.reset()
    return server


def send(fake, **kw) -> tuple:
    message = OutboundMessage(to=kw.pop("to", CUSTOMER), body=kw.pop("body", ""), **kw)
    return adapter(api_base_url=fake.base_url).send(message)


# -- signatures (the SMS scheme, inherited) ------------------------------------------------------------
def test_a_whatsapp_webhook_signed_by_twilio_passes():
    adapter().verify(request(fixture("inbound_text.json")))


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_a_missing_or_forged_signature_is_refused(signature):
    with pytest.raises(InvalidSignature):
        adapter().verify(request(fixture("inbound_text.json"), signature=signature))


def test_a_signature_for_another_body_or_token_is_refused():
    params = fixture("inbound_text.json")
    signature = sign(DEMO_AUTH_TOKEN, URL, params)
    params["Body"] = "Remboursez-moi 1000 €"
    with pytest.raises(InvalidSignature):
        adapter().verify(request(params, signature=signature))
    with pytest.raises(InvalidSignature):
        adapter(token="another-token").verify(request(fixture("inbound_text.json")))


# -- inbound -----------------------------------------------------------------------------------------
def test_a_text_arrives_with_plain_numbers_and_the_profile_name():
    [message] = adapter().parse(request(fixture("inbound_text.json")))
    assert message.provider_message_id == "SM3a7c1e5b9d2f4a6c8e0b1d3f5a7c9e2b"
    assert message.sender == CUSTOMER and message.recipient == DEMO_WHATSAPP_NUMBER
    assert message.sender_name == "Camille Martin"
    assert message.body == "Bonjour, ma commande n'est pas arrivée 📦"
    assert message.meta == {"wa_id": "33612345678", "message_type": "text"}


def test_an_image_keeps_its_caption_and_media_url():
    [message] = adapter().parse(request(fixture("inbound_image.json")))
    assert message.body == "Le colis était abîmé"
    [media] = message.media
    assert media.content_type == "image/jpeg" and media.url.endswith("/Media/ME5c9e3a7b1d4f6a8c0e2b3d5f7a9c1e4b")


def test_a_location_is_kept_in_meta_and_summarised_in_the_body():
    [message] = adapter().parse(request(fixture("inbound_location.json")))
    assert message.meta["location"] == {"latitude": 48.8556, "longitude": 2.3591,
                                        "address": "8 Rue de Rivoli, 75004 Paris", "label": "Boutique Rivoli"}
    assert message.body == "Boutique Rivoli, 8 Rue de Rivoli, 75004 Paris"


def test_a_bare_location_shows_its_coordinates():
    params = location_payload(sender=CUSTOMER, latitude=43.2965, longitude=5.3698)
    [message] = adapter().parse(request(params))
    assert message.body == "43.2965, 5.3698" and message.meta["location"]["label"] is None


def test_a_contact_card_arrives_as_vcard_media():
    [message] = adapter().parse(request(fixture("inbound_contact.json")))
    [card] = message.media
    assert card.content_type == "text/vcard" and card.filename == "contact.vcf"
    assert message.meta["contacts"] == [{"vcard_url": card.url}]


def test_a_tapped_quick_reply_gives_its_text_payload_and_the_quoted_message():
    [message] = adapter().parse(request(fixture("inbound_button.json")))
    assert message.body == "Oui"
    assert message.meta["button"] == {"text": "Oui", "payload": "satisfaction_oui"}
    assert message.meta["reply_to"] == "SM8c1a7d8b0f5c6e2f3a4b5c6d7e8f9a0b"


@pytest.mark.parametrize("field, value, reason", [
    ("From", "+33612345678", "not a WhatsApp address"),
    ("MessageSid", "XX1", "MessageSid"),
    ("AccountSid", "AC" + "0" * 32, "AccountSid"),
])
def test_payloads_we_cannot_trust_say_why(field, value, reason):
    params = fixture("inbound_text.json")
    params[field] = value
    if field == "MessageSid":
        params["SmsMessageSid"] = value
    with pytest.raises(MalformedPayload, match=reason):
        adapter().parse(request(params))


def test_a_location_without_numbers_is_malformed():
    params = fixture("inbound_location.json")
    params["Latitude"] = "nord"
    with pytest.raises(MalformedPayload, match="Latitude"):
        adapter().parse(request(params))


# -- statuses ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, status", [
    ("sent", DeliveryStatus.SENT), ("delivered", DeliveryStatus.DELIVERED), ("read", DeliveryStatus.READ),
])
def test_whatsapp_statuses_map_to_ours(name, status):
    [update] = adapter().parse_status(request(fixture("status_callbacks.json")[name]))
    assert update.status == status and update.error_code is None
    assert update.provider_message_id == "SM9f2b6d0e4a7c9e1b3d5f6a8c0e2b4d7f"


def test_a_message_failed_outside_the_window_says_so():
    [update] = adapter().parse_status(request(fixture("status_callbacks.json")["failed_outside_window"]))
    assert update.status == DeliveryStatus.FAILED and update.error_code == "63016"
    assert "24-hour" in update.error_message and "template" in update.error_message


def test_an_inbound_message_carries_no_status_update():
    assert adapter().parse_status(request(fixture("inbound_text.json"))) == []


def test_webhook_reply_is_empty_twiml():
    reply = adapter().webhook_reply()
    assert reply.content_type == "text/xml" and "<Response></Response>" in reply.body


# -- the 24-hour window ------------------------------------------------------------------------------------
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("last, is_open", [
    (None, False),
    (NOW - timedelta(minutes=5), True),
    (NOW - timedelta(hours=23, minutes=59, seconds=59), True),
    (NOW - timedelta(hours=24), False),
    (NOW - timedelta(days=3), False),
    (NOW + timedelta(seconds=30), True),  # clock skew: still open
    (datetime(2026, 3, 1, 1, 0), True),  # naive = UTC
])
def test_the_customer_service_window_lasts_24_hours(last, is_open):
    assert window_open(last, NOW) is is_open


def test_the_window_closes_24_hours_after_the_last_message():
    assert window_closes_at(NOW) == NOW + timedelta(hours=24)


# -- outbound ---------------------------------------------------------------------------------------------
def test_a_reply_goes_out_with_whatsapp_addresses(fake):
    receipt = send(fake, body="Bonjour Camille, je regarde votre commande.",
                   status_callback_url="https://support.example.test/webhooks/twilio/whatsapp/abc/status")
    [sent] = fake.sent
    assert sent["To"] == f"whatsapp:{CUSTOMER}" and sent["From"] == f"whatsapp:{DEMO_WHATSAPP_NUMBER}"
    assert sent["Body"] == "Bonjour Camille, je regarde votre commande."
    assert sent["StatusCallback"].endswith("/status")
    assert receipt.provider_message_id == sent["sid"] and receipt.status == DeliveryStatus.ACCEPTED


def test_addresses_already_prefixed_are_not_prefixed_twice(fake):
    adapter(api_base_url=fake.base_url, address=f"whatsapp:{DEMO_WHATSAPP_NUMBER}").send(
        OutboundMessage(to=f"whatsapp:{CUSTOMER}", body="Bonjour"))
    assert fake.sent[0]["To"] == f"whatsapp:{CUSTOMER}"
    assert fake.sent[0]["From"] == f"whatsapp:{DEMO_WHATSAPP_NUMBER}"


def test_a_messaging_service_replaces_the_from_number(fake):
    adapter(api_base_url=fake.base_url, settings={"messaging_service_sid": "MG" + "1" * 32}).send(
        OutboundMessage(to=CUSTOMER, body="Bonjour"))
    assert fake.sent[0]["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in fake.sent[0]


def test_an_image_and_a_document_go_as_two_messages(fake):
    receipt = send(fake, body="Voici le bon de retour", media_urls=(
        "https://files.example.test/colis.jpg", "https://files.example.test/bon-de-retour.pdf"))
    first, second = fake.sent
    assert first["Body"] == "Voici le bon de retour" and first["MediaUrl"].endswith("colis.jpg")
    assert "Body" not in second and second["MediaUrl"].endswith("bon-de-retour.pdf")
    assert receipt.provider_message_id == first["sid"]


def test_an_approved_template_is_sent_by_content_sid_with_json_variables(fake):
    send(fake, meta={"content_sid": TEMPLATE_SID, "content_variables": {1: "Camille", "2": "mardi 10 h"}})
    [sent] = fake.sent
    assert sent["ContentSid"] == TEMPLATE_SID
    assert json.loads(sent["ContentVariables"]) == {"1": "Camille", "2": "mardi 10 h"}
    assert sent["Body"] == "Bonjour Camille, votre rendez-vous du mardi 10 h est confirmé."  # rendered by the fake


def test_quick_replies_without_a_template_become_numbered_choices(fake):
    send(fake, body="Êtes-vous satisfait ?", meta={"quick_replies": ["Oui", "Non"]})
    assert fake.sent[0]["Body"] == "Êtes-vous satisfait ?\n\n1. Oui\n2. Non"


def test_a_location_is_sent_as_a_geo_persistent_action(fake):
    send(fake, body="Notre boutique", meta={"location": {"latitude": 48.8556, "longitude": 2.3591,
                                                         "label": "Boutique Rivoli"}})
    assert fake.sent[0]["PersistentAction"] == "geo:48.8556,2.3591|Boutique Rivoli"


def test_free_text_outside_the_window_is_refused_before_calling_twilio(fake):
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, body="Bonjour", meta={"last_inbound_at": datetime.now(UTC) - timedelta(hours=25)})
    assert caught.value.code == "63016" and "template" in caught.value.message
    assert fake.sent == []


def test_a_template_may_go_outside_the_window_and_iso_dates_are_understood(fake):
    long_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    send(fake, meta={"content_sid": TEMPLATE_SID, "content_variables": {"1": "Camille", "2": "mardi"},
                     "last_inbound_at": long_ago})
    send(fake, body="Re-bonjour", meta={"last_inbound_at": datetime.now(UTC).isoformat()})
    assert len(fake.sent) == 2


def test_twilio_refusing_free_text_outside_the_window_is_permanent_and_explained(fake):
    fake.fail_next(status=400, code=63016, message="Failed to send freeform message because you are outside "
                                                   "the allowed window.")
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, body="Bonjour")
    assert caught.value.code == "63016" and "24-hour" in caught.value.message


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_outages_are_transient(fake, status):
    fake.fail_next(status=status, code=20429 if status == 429 else 20500, message="Try later")
    with pytest.raises(TransientDeliveryError):
        send(fake, body="Bonjour")


@pytest.mark.parametrize("code, reason", [(21211, "Invalid 'To' phone number"), (21655, "template"),
                                          (63007, "No WhatsApp sender")])
def test_refusals_are_permanent_with_a_reason(fake, code, reason):
    fake.fail_next(status=400, code=code, message="Refused")
    with pytest.raises(PermanentDeliveryError, match=reason) as caught:
        send(fake, body="Bonjour")
    assert caught.value.code == str(code)


def test_an_unknown_template_is_refused_by_twilio(fake):
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, meta={"content_sid": "HX" + "9" * 32})
    assert caught.value.code == "21655"


def test_a_second_file_that_fails_does_not_resend_the_first(fake, monkeypatch):
    original = fake._create_message

    def create_then_break(account_sid, form, *media):  # the first message goes out, the next request fails
        created = original(account_sid, form, *media)
        fake.fail_next(status=503, code=20503, message="Service unavailable")
        return created

    monkeypatch.setattr(fake, "_create_message", create_then_break)
    with pytest.raises(PermanentDeliveryError) as caught:
        send(fake, body="Deux fichiers", media_urls=("https://files.example.test/a.jpg",
                                                     "https://files.example.test/b.pdf"))
    assert caught.value.code == "partial" and "1 of 2" in caught.value.message
    assert len(fake.sent) == 1


def test_twilio_out_of_reach_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientDeliveryError):
        adapter(api_base_url=f"http://127.0.0.1:{port}").send(OutboundMessage(to=CUSTOMER, body="Bonjour"))


def test_nothing_to_send_is_refused():
    with pytest.raises(PermanentDeliveryError, match="Nothing to send"):
        adapter(api_base_url="http://127.0.0.1:9").send(OutboundMessage(to=CUSTOMER, body=""))


@pytest.mark.parametrize("value", ["hier", 1767607200])
def test_an_unreadable_last_inbound_date_is_refused_with_a_reason(value):
    with pytest.raises(PermanentDeliveryError, match="last_inbound_at"):
        adapter(api_base_url="http://127.0.0.1:9").send(
            OutboundMessage(to=CUSTOMER, body="Bonjour", meta={"last_inbound_at": value}))
