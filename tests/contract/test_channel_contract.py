"""Every channel adapter through the same checks (the contract of inbox/channels/base.py).

To put another adapter under contract (email, voice…), append an `AdapterCase` to CASES: its
class, a configured `ChannelConfig`, a factory of one genuine inbound webhook signed as the
provider signs it (from a documented fixture), and the header that carries the signature or
secret. Forged and unsigned variants are derived from the genuine request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from inbox.channels.base import (
    ChannelConfig, InboundMedia, InboundMessage, StatusUpdate, WebhookReply, WebhookRequest,
)
from inbox.channels.email import EmailChannel
from inbox.channels.telegram import TelegramBot
from inbox.channels.voice_twilio import VoiceTwilio
from inbox.channels.voice_vapi import VoiceVapi
from inbox.channels.twilio_sms import TwilioSms
from inbox.channels.whatsapp_meta import WhatsAppMeta
from inbox.channels.whatsapp_twilio import TwilioWhatsApp
from inbox.errors import InvalidSignature
from inbox.kinds import ChannelKind, Provider
from inbox.sandbox import meta as meta_sandbox
from inbox.sandbox import smtp as smtp_sandbox
from inbox.sandbox import vapi as vapi_sandbox
from inbox.sandbox import telegram as telegram_sandbox
from inbox.sandbox import twilio as twilio_sandbox

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PUBLIC = "https://support.example.test/webhooks"
ADAPTER_METHODS = ("handshake", "verify", "parse", "parse_status", "send", "webhook_reply")


def fixture(path: str) -> dict:
    data = json.loads((FIXTURES / path).read_text())
    data.pop("_source", None)
    return data


@dataclass(frozen=True)
class AdapterCase:
    name: str
    adapter_class: type
    config: ChannelConfig
    signed_request: Callable[[], WebhookRequest]  # a genuine inbound webhook
    signature_header: str  # where the provider puts its signature or shared secret
    signature_field: str | None = None  # …or the form field, for providers that sign in the body (Mailgun)
    handshake_request: Callable[[], WebhookRequest] | None = None  # a genuine subscription check, if any

    def adapter(self):
        return self.adapter_class(self.config)


# -- the cases ------------------------------------------------------------------------------------------------
def twilio_form_request(fixture_path: str, url: str, *, query: Mapping[str, str] | None = None,
                        ) -> Callable[[], WebhookRequest]:
    def build() -> WebhookRequest:
        params = fixture(fixture_path)
        signature = twilio_sandbox.sign(twilio_sandbox.DEMO_AUTH_TOKEN, url, params)
        return WebhookRequest(url=url, headers={"X-Twilio-Signature": signature}, form=MultiDict(params),
                              query=dict(query or {}))
    return build


def meta_request() -> WebhookRequest:
    body, headers = meta_sandbox.signed_request(fixture("meta/batch.json"))
    return WebhookRequest(url=f"{PUBLIC}/meta/whatsapp/c3", headers=headers, form={}, body=body)


def meta_handshake() -> WebhookRequest:
    return WebhookRequest(url=f"{PUBLIC}/meta/whatsapp/c3", headers={}, form={}, query={
        "hub.mode": "subscribe", "hub.verify_token": meta_sandbox.DEMO_VERIFY_TOKEN, "hub.challenge": "1158201444"})


def telegram_request() -> WebhookRequest:
    body = json.dumps(fixture("telegram/text.json"), ensure_ascii=False).encode()
    return WebhookRequest(url=f"{PUBLIC}/telegram/telegram/c4", form={}, body=body, headers={
        "Content-Type": "application/json", telegram_sandbox.SECRET_HEADER: telegram_sandbox.DEMO_WEBHOOK_SECRET})


MAILGUN_KEY = "key-demo-mailgun-signing-0001"


def mailgun_request() -> WebhookRequest:
    raw = (FIXTURES / "email" / "plain_fr.eml").read_bytes()
    return WebhookRequest(url=f"{PUBLIC}/smtp/email/c5", headers={}, form=MultiDict(mailgun_sandbox_form(raw)))


def mailgun_sandbox_form(raw: bytes) -> dict:
    form = smtp_sandbox.mailgun_mime_form(raw, signing_key=MAILGUN_KEY, recipient="support@coccinelle.test",
                                          sender="client@example.fr", token="a" * 50)
    return {**form, "body-mime": raw.decode("utf-8", "replace")}


def vapi_request() -> WebhookRequest:
    body = json.dumps(fixture("vapi/end_of_call_report.json")).encode()
    headers = vapi_sandbox.auth_headers(body, mode="secret", secret=vapi_sandbox.DEMO_VAPI_WEBHOOK_SECRET)
    return WebhookRequest(url=f"{PUBLIC}/vapi/voice/c6", headers=headers, form={}, body=body)


TWILIO_CREDENTIALS = {"account_sid": twilio_sandbox.DEMO_ACCOUNT_SID, "auth_token": twilio_sandbox.DEMO_AUTH_TOKEN}

CASES = [
    AdapterCase(
        name="twilio-sms", adapter_class=TwilioSms,
        config=ChannelConfig(kind=ChannelKind.SMS, provider=Provider.TWILIO, address="+33757000101",
                             credentials=TWILIO_CREDENTIALS),
        signed_request=twilio_form_request("twilio/inbound_sms.json", f"{PUBLIC}/twilio/sms/c1"),
        signature_header="X-Twilio-Signature",
    ),
    AdapterCase(
        name="twilio-whatsapp", adapter_class=TwilioWhatsApp,
        config=ChannelConfig(kind=ChannelKind.WHATSAPP, provider=Provider.TWILIO, address="+33757000202",
                             credentials=TWILIO_CREDENTIALS),
        signed_request=twilio_form_request("twilio_whatsapp/inbound_text.json", f"{PUBLIC}/twilio/whatsapp/c2"),
        signature_header="X-Twilio-Signature",
    ),
    AdapterCase(
        name="meta-whatsapp", adapter_class=WhatsAppMeta,
        config=ChannelConfig(kind=ChannelKind.WHATSAPP, provider=Provider.META, address="+33757000303",
                             credentials={"access_token": meta_sandbox.DEMO_ACCESS_TOKEN,
                                          "app_secret": meta_sandbox.DEMO_APP_SECRET,
                                          "verify_token": meta_sandbox.DEMO_VERIFY_TOKEN},
                             settings={"phone_number_id": meta_sandbox.DEMO_PHONE_NUMBER_ID}),
        signed_request=meta_request, signature_header="X-Hub-Signature-256", handshake_request=meta_handshake,
    ),
    AdapterCase(
        name="telegram", adapter_class=TelegramBot,
        config=ChannelConfig(kind=ChannelKind.TELEGRAM, provider=Provider.TELEGRAM,
                             address=f"@{telegram_sandbox.DEMO_BOT_USERNAME}",
                             credentials={"bot_token": telegram_sandbox.DEMO_BOT_TOKEN,
                                          "webhook_secret": telegram_sandbox.DEMO_WEBHOOK_SECRET}),
        signed_request=telegram_request, signature_header=telegram_sandbox.SECRET_HEADER,
    ),
    AdapterCase(
        name="email-mailgun", adapter_class=EmailChannel,
        config=ChannelConfig(kind=ChannelKind.EMAIL, provider=Provider.SMTP, address="support@coccinelle.test",
                             credentials={"mailgun_signing_key": MAILGUN_KEY}, settings={"inbound": "mailgun"}),
        signed_request=mailgun_request, signature_header="", signature_field="signature",
    ),
    AdapterCase(
        name="vapi-voice", adapter_class=VoiceVapi,
        config=ChannelConfig(kind=ChannelKind.VOICE, provider=Provider.VAPI, address="+33757000202",
                             credentials={"webhook_secret": vapi_sandbox.DEMO_VAPI_WEBHOOK_SECRET},
                             settings={"auth_mode": "secret"}),
        signed_request=vapi_request, signature_header="X-Vapi-Secret",
    ),
    AdapterCase(
        name="twilio-voice", adapter_class=VoiceTwilio,
        config=ChannelConfig(kind=ChannelKind.VOICE, provider=Provider.TWILIO, address="+33757000101",
                             credentials=TWILIO_CREDENTIALS),
        # Twilio's recording callback carries no From: the caller rides in the signed callback URL.
        signed_request=twilio_form_request("twilio_voice/recording_status_callback.json",
                                           f"{PUBLIC}/twilio/voice/c7?from_number=%2B33612345678",
                                           query={"from_number": "+33612345678"}),
        signature_header="X-Twilio-Signature",
    ),
]


# -- derived requests -------------------------------------------------------------------------------------------
def _without(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


def forged(case: AdapterCase) -> WebhookRequest:
    """The genuine request whose signature (or secret) has two characters changed."""
    genuine = case.signed_request()
    if case.signature_field:
        form = MultiDict(genuine.form)
        value = form[case.signature_field]
        form[case.signature_field] = value[:-2] + ("11" if value.endswith("00") else "00")
        return replace(genuine, form=form)
    value = next(v for k, v in genuine.headers.items() if k.lower() == case.signature_header.lower())
    wrong = value[:-2] + ("11" if value.endswith("00") else "00")
    return replace(genuine, headers={**_without(genuine.headers, case.signature_header), case.signature_header: wrong})


def unsigned(case: AdapterCase) -> WebhookRequest:
    genuine = case.signed_request()
    if case.signature_field:
        form = MultiDict(genuine.form)
        form.pop(case.signature_field)
        return replace(genuine, form=form)
    return replace(genuine, headers=_without(genuine.headers, case.signature_header))


each_case = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


# -- the contract --------------------------------------------------------------------------------------------------
@each_case
def test_an_adapter_names_its_kind_and_provider(case):
    assert isinstance(case.adapter_class.kind, ChannelKind)
    assert isinstance(case.adapter_class.provider, Provider)
    assert (case.adapter_class.kind, case.adapter_class.provider) == (case.config.kind, case.config.provider)


@each_case
def test_an_adapter_offers_every_method_of_the_contract(case):
    adapter = case.adapter()
    for name in ADAPTER_METHODS:
        assert callable(getattr(adapter, name, None)), f"{case.name} lacks {name}()"


@each_case
def test_handshake_answers_none_or_a_webhook_reply(case):
    adapter = case.adapter()
    reply = adapter.handshake(case.signed_request())
    assert reply is None or isinstance(reply, WebhookReply)
    if case.handshake_request:
        reply = adapter.handshake(case.handshake_request())
        assert isinstance(reply, WebhookReply) and reply.status == 200


@each_case
def test_a_genuine_request_verifies(case):
    assert case.adapter().verify(case.signed_request()) is None


@each_case
def test_a_forged_request_is_refused(case):
    with pytest.raises(InvalidSignature):
        case.adapter().verify(forged(case))


@each_case
def test_an_unsigned_request_is_refused(case):
    with pytest.raises(InvalidSignature):
        case.adapter().verify(unsigned(case))


@each_case
def test_a_genuine_request_parses_to_inbound_messages(case):
    messages = case.adapter().parse(case.signed_request())
    assert isinstance(messages, list) and messages, f"{case.name}: the fixture should give at least one message"
    for message in messages:
        assert isinstance(message, InboundMessage)
        assert isinstance(message.provider_message_id, str) and message.provider_message_id.strip()
        assert isinstance(message.sender, str) and message.sender.strip()
        assert isinstance(message.recipient, str)
        assert isinstance(message.body, str)
        assert all(isinstance(m, InboundMedia) for m in message.media)
        assert isinstance(message.meta, Mapping)
        assert message.sent_at is None or (isinstance(message.sent_at, datetime) and message.sent_at.tzinfo)


@each_case
def test_parsing_is_repeatable_so_provider_retries_dedupe(case):
    adapter = case.adapter()
    first = [m.provider_message_id for m in adapter.parse(case.signed_request())]
    again = [m.provider_message_id for m in adapter.parse(case.signed_request())]
    assert first == again and len(set(first)) == len(first)


@pytest.mark.parametrize("case", [c for c in CASES if getattr(c.adapter_class, "statuses_in_inbound_webhook", False)],
                         ids=lambda c: c.name)
def test_statuses_sent_to_the_inbound_url_parse_too(case):
    """Adapters whose provider posts statuses to the message URL (Meta) say so; the view then
    calls parse_status() on that request as well, which must give StatusUpdate values."""
    updates = case.adapter().parse_status(case.signed_request())
    assert isinstance(updates, list) and all(isinstance(u, StatusUpdate) for u in updates)


@each_case
def test_webhook_reply_is_a_success_reply(case):
    reply = case.adapter().webhook_reply()
    assert isinstance(reply, WebhookReply)
    assert 200 <= reply.status < 300 and isinstance(reply.body, str) and reply.content_type
