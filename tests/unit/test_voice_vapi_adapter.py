"""The VAPI voice adapter alone: the three credential modes, end-of-call reports, reconciliation."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers

from inbox.channels.base import ChannelConfig, OutboundMessage, WebhookRequest
from inbox.channels.voice_vapi import VoiceVapi
from inbox.errors import (
    ChannelError, InvalidSignature, MalformedPayload, PermanentDeliveryError, TransientDeliveryError,
)
from inbox.kinds import ChannelKind, Provider
from inbox.sandbox.vapi import (
    DEMO_VAPI_API_KEY, DEMO_VAPI_WEBHOOK_SECRET, FakeVapi, auth_headers, call_object, encode,
    end_of_call_report, hmac_signature, iso, server_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vapi"
URL = "https://support.example.test/webhooks/vapi/voice/abc"
CALL_ID = "3f2b8c1e-6d4a-4b7e-9a1f-5c0d2e8b7a61"


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def adapter(mode: str = "bearer", *, secret: str = DEMO_VAPI_WEBHOOK_SECRET, api_base_url: str | None = None,
            api_key: str = DEMO_VAPI_API_KEY, **settings) -> VoiceVapi:
    return VoiceVapi(ChannelConfig(
        kind=ChannelKind.VOICE, provider=Provider.VAPI, address="+33757000202",
        credentials={"webhook_secret": secret, "api_key": api_key},
        settings={"auth_mode": mode, **settings}, api_base_url=api_base_url))


def request(payload: dict | bytes, headers: dict | Headers | None = None) -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return WebhookRequest(url=URL, headers=headers or {}, form={}, body=body)


def signed(payload: dict, mode: str, **options) -> WebhookRequest:
    body = encode(payload)
    return request(body, auth_headers(body, mode=mode, secret=DEMO_VAPI_WEBHOOK_SECRET, **options))


REPORT = fixture("end_of_call_report.json")


# -- authentication: bearer token ---------------------------------------------------------------

def test_bearer_token_credential_is_accepted():
    adapter("bearer").verify(signed(REPORT, "bearer"))


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic " + base64.b64encode(b"a:b").decode(),
                                    DEMO_VAPI_WEBHOOK_SECRET, "Bearer ", ""])
def test_bad_bearer_tokens_are_refused(header):
    with pytest.raises(InvalidSignature):
        adapter("bearer").verify(request(REPORT, {"Authorization": header}))


def test_missing_bearer_token_is_refused():
    with pytest.raises(InvalidSignature, match="missing Authorization"):
        adapter("bearer").verify(request(REPORT))


def test_bearer_token_in_a_custom_header_without_prefix():
    channel = adapter("bearer", token_header="X-Support-Token", bearer_prefix=False)
    channel.verify(request(REPORT, {"x-support-token": DEMO_VAPI_WEBHOOK_SECRET}))
    with pytest.raises(InvalidSignature):
        channel.verify(request(REPORT, {"X-Support-Token": "nope"}))


# -- authentication: X-Vapi-Secret --------------------------------------------------------------

def test_x_vapi_secret_is_accepted_whatever_the_header_case():
    adapter("secret").verify(signed(REPORT, "secret"))
    adapter("secret").verify(request(REPORT, {"x-vapi-secret": DEMO_VAPI_WEBHOOK_SECRET}))


def test_wrong_x_vapi_secret_is_refused():
    with pytest.raises(InvalidSignature, match="X-Vapi-Secret does not match"):
        adapter("secret").verify(request(REPORT, {"X-Vapi-Secret": "guess"}))


def test_missing_x_vapi_secret_is_refused():
    with pytest.raises(InvalidSignature, match="missing X-Vapi-Secret"):
        adapter("secret").verify(request(REPORT, {"Authorization": f"Bearer {DEMO_VAPI_WEBHOOK_SECRET}"}))


def test_a_channel_accepts_only_its_configured_mode():
    with pytest.raises(InvalidSignature):
        adapter("bearer").verify(signed(REPORT, "secret"))


def test_no_configured_secret_refuses_everything():
    with pytest.raises(InvalidSignature, match="no VAPI webhook credential"):
        adapter("secret", secret="").verify(request(REPORT, {"X-Vapi-Secret": ""}))


def test_unknown_auth_mode_is_refused():
    with pytest.raises(InvalidSignature, match="unknown VAPI auth_mode"):
        adapter("oauth2").verify(signed(REPORT, "bearer"))


# -- authentication: HMAC -----------------------------------------------------------------------

def test_hmac_signature_with_the_default_plan_is_accepted():
    adapter("hmac").verify(signed(REPORT, "hmac"))


def test_hmac_headers_are_case_insensitive_with_werkzeug_headers():
    body = encode(REPORT)
    headers = Headers(auth_headers(body, mode="hmac", secret=DEMO_VAPI_WEBHOOK_SECRET,
                                   signature_header="X-Signature", timestamp_header="X-Timestamp"))
    adapter("hmac").verify(request(body, headers))


def test_hmac_signature_over_another_body_is_refused():
    body = encode(REPORT)
    headers = auth_headers(body, mode="hmac", secret=DEMO_VAPI_WEBHOOK_SECRET)
    tampered = body.replace(b"+33612345678", b"+33699999999")
    with pytest.raises(InvalidSignature, match="x-signature does not match"):
        adapter("hmac").verify(request(tampered, headers))


def test_hmac_signed_with_another_secret_is_refused():
    body = encode(REPORT)
    headers = auth_headers(body, mode="hmac", secret="someone-else")
    with pytest.raises(InvalidSignature):
        adapter("hmac").verify(request(body, headers))


def test_missing_hmac_signature_is_refused():
    with pytest.raises(InvalidSignature, match="missing x-signature"):
        adapter("hmac").verify(request(REPORT, {"x-timestamp": "1760003165500"}))


def test_missing_hmac_timestamp_is_refused():
    body = encode(REPORT)
    headers = auth_headers(body, mode="hmac", secret=DEMO_VAPI_WEBHOOK_SECRET)
    del headers["x-timestamp"]
    with pytest.raises(InvalidSignature, match="missing x-timestamp"):
        adapter("hmac").verify(request(body, headers))


@pytest.mark.parametrize("age_seconds", [600, -600])
def test_stale_or_future_hmac_timestamps_are_refused(age_seconds):
    moment = datetime.now(UTC) - timedelta(seconds=age_seconds)
    for timestamp in (str(int(moment.timestamp())), str(int(moment.timestamp() * 1000))):
        with pytest.raises(InvalidSignature, match="outside the allowed window"):
            adapter("hmac").verify(signed(REPORT, "hmac", timestamp=timestamp))


@pytest.mark.parametrize("timestamp", ["nan", "inf", "yesterday"])
def test_unreadable_hmac_timestamps_are_refused(timestamp):
    with pytest.raises(InvalidSignature, match="not a number"):
        adapter("hmac").verify(signed(REPORT, "hmac", timestamp=timestamp))


def test_hmac_timestamp_in_seconds_is_accepted():
    adapter("hmac").verify(signed(REPORT, "hmac", timestamp=str(int(datetime.now(UTC).timestamp()))))


def test_hmac_replay_window_can_be_disabled():
    channel = adapter("hmac", hmac_tolerance_seconds=0)
    channel.verify(signed(REPORT, "hmac", timestamp="1000000000"))


def test_hmac_plan_options_are_honoured():
    """sha512, base64, a GitHub-style prefix, custom headers and a base64 secret."""
    secret = base64.b64encode(b"\x00binary-key\xff").decode()
    channel = adapter("hmac", secret=secret, hmac_algorithm="sha512", hmac_signature_encoding="base64",
                      hmac_signature_prefix="sha512=", hmac_signature_header="X-Vapi-Signature",
                      hmac_timestamp_header="X-Vapi-Timestamp", hmac_secret_is_base64=True)
    body = encode(REPORT)
    timestamp = str(int(datetime.now(UTC).timestamp() * 1000))
    headers = {"X-Vapi-Timestamp": timestamp, "X-Vapi-Signature": hmac_signature(
        body, secret=secret, timestamp=timestamp, algorithm="sha512", encoding="base64",
        prefix="sha512=", secret_is_base64=True)}
    channel.verify(request(body, headers))
    headers["X-Vapi-Signature"] = headers["X-Vapi-Signature"].removeprefix("sha512=")
    with pytest.raises(InvalidSignature, match="prefix"):
        channel.verify(request(body, headers))


def test_hmac_without_timestamp_signs_the_body_alone():
    channel = adapter("hmac", hmac_include_timestamp=False)
    body = encode(REPORT)
    channel.verify(request(body, {"x-signature": hmac_signature(body, secret=DEMO_VAPI_WEBHOOK_SECRET,
                                                                 payload_format="{body}")}))


def test_hmac_custom_payload_format_covers_method_and_url():
    fmt = "{method}\n{url}\n{timestamp}\n{body}"
    channel = adapter("hmac", hmac_payload_format=fmt)
    channel.verify(signed(REPORT, "hmac", payload_format=fmt, url=URL))
    with pytest.raises(InvalidSignature):
        channel.verify(signed(REPORT, "hmac", payload_format=fmt, url=URL + "/other"))


# -- parsing ------------------------------------------------------------------------------------

def test_end_of_call_report_becomes_one_message_keyed_by_call_and_event():
    [message] = adapter().parse(request(REPORT))
    assert message.provider_message_id == f"{CALL_ID}:end-of-call-report"
    assert message.sender == "+33612345678" and message.recipient == "+33757000202"
    assert message.sender_name == "Camille Martin"
    assert message.sent_at == datetime(2025, 10, 9, 9, 46, 3, 870000, tzinfo=UTC)
    summary = "La cliente signale un colis non livré ; rappel promis aujourd'hui."
    assert message.body.startswith(summary + "\n\n")
    assert "ma commande n'est pas arrivée" in message.body
    meta = message.meta
    assert meta["call_id"] == CALL_ID and meta["source"] == "webhook"
    assert meta["summary"] == summary
    assert meta["transcript"].startswith("AI: Bonjour") and meta["transcript"] in message.body
    assert meta["duration_seconds"] == 42.75
    assert meta["recording_url"].endswith("-mono.wav")
    assert meta["stereo_recording_url"].endswith("-stereo.wav")
    assert meta["ended_reason"] == "customer-ended-call"
    assert message.media == () and message.automated is False


def test_legacy_report_with_fields_directly_under_message():
    [message] = adapter().parse(request(fixture("end_of_call_report_legacy.json")))
    assert message.provider_message_id == "9c4e2a7b-1f3d-4c8e-b5a6-2d7f0e9c1b34:end-of-call-report"
    assert message.sender == "+447700900123" and message.recipient == "+33757000202"
    assert message.meta["transcript"].startswith("AI: Hello, how can I help?")
    assert message.meta["summary"] == "The caller asked whether the shop ships to the United Kingdom."
    assert message.meta["recording_url"].endswith("9c4e2a7b-1f3d-4c8e-b5a6-2d7f0e9c1b34.wav")
    assert message.meta["duration_seconds"] == 87.4
    assert message.meta["ended_reason"] == "hangup"
    assert message.sent_at == datetime(2024, 5, 14, 16, 3, 39, 800000, tzinfo=UTC)


def test_report_without_summary_has_the_transcript_as_body():
    call = call_object(customer_number="+33611111111", transcript="User: Allô ? 📞")
    [message] = adapter().parse(request(end_of_call_report(call)))
    assert message.body == "User: Allô ? 📞" and message.meta["summary"] is None


def test_sandbox_reports_parse_in_both_layouts():
    call = call_object(customer_number="+33622222222", transcript="User: Bonjour", summary="Salut",
                       duration_seconds=30)
    [current] = adapter().parse(request(end_of_call_report(call)))
    [legacy] = adapter().parse(request(end_of_call_report(call, legacy=True)))
    assert current.provider_message_id == legacy.provider_message_id == f"{call['id']}:end-of-call-report"
    assert current.body == legacy.body == "Salut\n\nUser: Bonjour"
    assert current.meta["duration_seconds"] == legacy.meta["duration_seconds"] == 30


def test_customer_number_falls_back_to_the_call_object():
    payload = fixture("end_of_call_report.json")
    del payload["message"]["customer"]
    [message] = adapter().parse(request(payload))
    assert message.sender == "+33612345678"


@pytest.mark.parametrize("payload", [
    fixture("status_update.json"),
    server_message("transcript", {"id": CALL_ID}, role="user", transcriptType="final", transcript="Allô"),
    server_message("hang", {"id": CALL_ID}),
    server_message("speech-update", {"id": CALL_ID}, status="started", role="assistant"),
    server_message("conversation-update", {"id": CALL_ID}, messages=[]),
])
def test_other_server_messages_are_acknowledged_and_ignored(payload):
    assert adapter().parse(request(payload)) == []


def _without(path: str) -> dict:
    payload = fixture("end_of_call_report.json")
    *parents, leaf = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    del node[leaf]
    return payload


@pytest.mark.parametrize("body, reason", [
    (b"<xml>not json</xml>", "body is not JSON"),
    (b"\xff\xfe", "body is not JSON"),
    (b"[]", "'message' object"),
    (b'{"type": "end-of-call-report"}', "'message' object"),
    (encode({"message": {"call": {}}}), "message.type is missing"),
    (encode(_without("message.call.id")), "message.call.id is missing"),
    (encode(_without("message.call")), "message.call is missing"),
])
def test_malformed_bodies_say_why(body, reason):
    with pytest.raises(MalformedPayload, match=reason):
        adapter().parse(request(body))


def test_report_without_customer_number_is_malformed():
    payload = _without("message.customer")
    del payload["message"]["call"]["customer"]
    with pytest.raises(MalformedPayload, match="customer phone number is missing"):
        adapter().parse(request(payload))


def test_report_with_unreadable_end_time_is_malformed():
    payload = fixture("end_of_call_report.json")
    payload["message"]["endedAt"] = "yesterday"
    with pytest.raises(MalformedPayload, match="endedAt is not an ISO 8601"):
        adapter().parse(request(payload))


def test_voice_cannot_send_text():
    with pytest.raises(PermanentDeliveryError, match="voice channels cannot send text"):
        adapter().send(OutboundMessage(to="+33612345678", body="Bonjour"))


def test_webhook_reply_is_an_empty_json_object_and_no_statuses():
    reply = adapter().webhook_reply()
    assert (reply.status, reply.content_type, json.loads(reply.body)) == (200, "application/json", {})
    assert adapter().parse_status(request(REPORT)) == []
    assert adapter().handshake(request(REPORT)) is None


# -- reconciliation against the fake API, over real HTTP ------------------------------------------

@pytest.fixture(scope="module")
def fake_vapi():
    fake = FakeVapi().start()
    yield fake
    fake.stop()


def api_adapter(fake: FakeVapi, **kwargs) -> VoiceVapi:
    return adapter(api_base_url=fake.base_url, **kwargs)


def test_fetch_call_rebuilds_the_report_the_webhook_would_have_sent(fake_vapi):
    fake_vapi.add_call(fixture("call.json"))
    message = api_adapter(fake_vapi).fetch_call(CALL_ID)
    [from_webhook] = adapter().parse(request(REPORT))
    assert message.provider_message_id == from_webhook.provider_message_id
    assert (message.sender, message.recipient, message.body, message.sent_at) == (
        from_webhook.sender, from_webhook.recipient, from_webhook.body, from_webhook.sent_at)
    assert message.meta["source"] == "api"
    assert message.meta["recording_url"] == from_webhook.meta["recording_url"]
    assert fake_vapi.requests[-1] == f"/call/{CALL_ID}"


def test_fetch_call_of_a_sandbox_call(fake_vapi):
    call = fake_vapi.add_call(call_object(customer_number="+33633333333",
                                          transcript="User: Où en est mon colis ?"))
    message = api_adapter(fake_vapi).fetch_call(call["id"])
    assert message.sender == "+33633333333" and message.body == "User: Où en est mon colis ?"


def test_fetch_unknown_call_is_none(fake_vapi):
    assert api_adapter(fake_vapi).fetch_call("00000000-0000-4000-8000-000000000000") is None


def test_fetch_call_still_in_progress_is_none(fake_vapi):
    call = fake_vapi.add_call(call_object(customer_number="+33644444444", status="in-progress"))
    assert api_adapter(fake_vapi).fetch_call(call["id"]) is None


def test_fetch_web_call_without_phone_number_is_none(fake_vapi):
    call = fake_vapi.add_call(call_object(customer_number=None, call_type="webCall", transcript="User: hi"))
    assert api_adapter(fake_vapi).fetch_call(call["id"]) is None


def test_fetch_call_with_a_wrong_api_key_is_a_channel_error_not_a_retry(fake_vapi):
    with pytest.raises(ChannelError, match="refused the API key") as caught:
        api_adapter(fake_vapi, api_key="wrong").fetch_call(CALL_ID)
    assert not isinstance(caught.value, TransientDeliveryError)


def test_fetch_call_without_api_key_is_a_channel_error(fake_vapi):
    with pytest.raises(ChannelError, match="no VAPI API key"):
        api_adapter(fake_vapi, api_key="").fetch_call(CALL_ID)


def test_fetch_call_when_vapi_is_overloaded_is_transient(fake_vapi):
    fake_vapi.add_call(fixture("call.json"))
    fake_vapi.fail_next(503)
    with pytest.raises(TransientDeliveryError, match="503"):
        api_adapter(fake_vapi).fetch_call(CALL_ID)
    assert api_adapter(fake_vapi).fetch_call(CALL_ID) is not None  # the retry succeeds


def test_fetch_call_when_vapi_is_unreachable_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientDeliveryError, match="could not reach VAPI"):
        adapter(api_base_url=f"http://127.0.0.1:{port}").fetch_call(CALL_ID)


def test_list_calls_returns_ids_created_after_the_window_start(fake_vapi):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    def call_at(offset: timedelta) -> dict:
        return fake_vapi.add_call(call_object(customer_number="+33655555555", started_at=start + offset))

    old = call_at(-timedelta(hours=1))
    new = [call_at(timedelta(minutes=m)) for m in (5, 10)]
    ids = api_adapter(fake_vapi, phone_number_id="5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d").list_calls(start)
    assert set(ids) == {c["id"] for c in new} and old["id"] not in ids
    path = fake_vapi.requests[-1]
    assert path.startswith("/call?") and "createdAtGt=2030-01-01T00%3A00%3A00.000Z" in path
    assert "phoneNumberId=5a6b7c8d" in path and "limit=100" in path


def test_list_calls_with_an_upper_bound(fake_vapi):
    start = datetime(2031, 1, 1, tzinfo=UTC)
    early, _late = (fake_vapi.add_call(call_object(customer_number="+33666666666", started_at=start + offset))
                    for offset in (timedelta(minutes=1), timedelta(hours=2)))
    window_end = start + timedelta(hours=1)
    assert api_adapter(fake_vapi).list_calls(start, created_before=window_end) == [early["id"]]


def test_sandbox_iso_matches_vapi_format():
    assert iso(datetime(2025, 10, 9, 9, 45, 21, 120000, tzinfo=UTC)) == "2025-10-09T09:45:21.120Z"
