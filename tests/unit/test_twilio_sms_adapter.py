"""The Twilio SMS adapter alone: signature check, parsing of documented payloads, status mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from inbox.channels.base import ChannelConfig, WebhookRequest
from inbox.channels.twilio_sms import TwilioSms
from inbox.errors import InvalidSignature, MalformedPayload
from inbox.kinds import ChannelKind, DeliveryStatus, Provider
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
URL = "https://support.example.test/webhooks/twilio/sms/abc"


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def adapter(token: str = DEMO_AUTH_TOKEN) -> TwilioSms:
    return TwilioSms(ChannelConfig(kind=ChannelKind.SMS, provider=Provider.TWILIO, address="+33757000101",
                                   credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": token}))


def request(params: dict, *, signature: str | None = None, url: str = URL) -> WebhookRequest:
    sig = sign(DEMO_AUTH_TOKEN, url, params) if signature is None else signature
    return WebhookRequest(url=url, headers={"X-Twilio-Signature": sig}, form=MultiDict(params))


def test_valid_signature_passes():
    adapter().verify(request(fixture("inbound_sms.json")))


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "x"])
def test_bad_signatures_are_refused(signature):
    with pytest.raises(InvalidSignature):
        adapter().verify(request(fixture("inbound_sms.json"), signature=signature))


def test_signature_for_a_changed_body_is_refused():
    params = fixture("inbound_sms.json")
    sig = sign(DEMO_AUTH_TOKEN, URL, params)
    params["Body"] = "Montant modifié"
    with pytest.raises(InvalidSignature):
        adapter().verify(request(params, signature=sig))


def test_signature_checked_with_the_channel_token():
    with pytest.raises(InvalidSignature):
        adapter(token="another-token").verify(request(fixture("inbound_sms.json")))


def test_parse_inbound_sms_keeps_accents_and_emoji():
    [message] = adapter().parse(request(fixture("inbound_sms.json")))
    assert message.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert message.sender == "+33612345678" and message.recipient == "+33757000101"
    assert message.body == "Bonjour, ma commande n'est pas arrivée 📦"
    assert message.media == ()


def test_parse_mms_media():
    [message] = adapter().parse(request(fixture("inbound_mms.json")))
    assert [m.content_type for m in message.media] == ["image/jpeg", "application/pdf"]
    assert message.media[0].url.endswith("/Media/ME27c9c0d8f4a6c0c5d7e8f9a0b1c2d3e4")


@pytest.mark.parametrize("field, value, reason", [
    ("MessageSid", "", "MessageSid"),
    ("MessageSid", "XX123", "MessageSid"),
    ("From", "", "From is missing"),
    ("AccountSid", "AC" + "0" * 32, "AccountSid"),
    ("NumMedia", "3", "MediaUrl0"),
    ("NumMedia", "99", "between 0 and 10"),
])
def test_malformed_payloads_say_why(field, value, reason):
    params = fixture("inbound_sms.json")
    params[field] = value
    if field == "MessageSid":
        params["SmsMessageSid"] = value
    with pytest.raises(MalformedPayload, match=reason):
        adapter().parse(request(params))


def test_status_callbacks_map_to_our_statuses():
    callbacks = fixture("status_callbacks.json")
    [delivered] = adapter().parse_status(request(callbacks["delivered"]))
    [undelivered] = adapter().parse_status(request(callbacks["undelivered"]))
    assert delivered.status == DeliveryStatus.DELIVERED and delivered.error_code is None
    assert undelivered.status == DeliveryStatus.FAILED
    assert undelivered.error_code == "30005" and undelivered.error_message == "Unknown destination handset"


def test_unknown_status_is_malformed():
    params = fixture("status_callbacks.json")["delivered"]
    params["MessageStatus"] = params["SmsStatus"] = "teleported"
    with pytest.raises(MalformedPayload, match="teleported"):
        adapter().parse_status(request(params))


def test_webhook_reply_is_empty_twiml():
    reply = adapter().webhook_reply()
    assert reply.content_type == "text/xml" and "<Response></Response>" in reply.body


def test_statuses_only_move_forward():
    order = [DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.ACCEPTED, DeliveryStatus.SENT,
             DeliveryStatus.DELIVERED, DeliveryStatus.READ]
    assert [s.rank for s in order] == sorted(s.rank for s in order)
    assert DeliveryStatus.FAILED.rank == DeliveryStatus.DELIVERED.rank  # neither overrides the other
