"""The Twilio voice adapter alone: signatures, the TwiML answer, voicemail callbacks in any order."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from inbox.channels.base import ChannelConfig, InboundMessage, OutboundMessage, WebhookRequest
from inbox.channels.voice_twilio import PENDING_BODY, UNAVAILABLE_BODY, VoiceTwilio
from inbox.errors import InvalidSignature, MalformedPayload, PermanentDeliveryError
from inbox.kinds import ChannelKind, Provider
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, new_sid, post_signed, sign
from inbox.sandbox.twilio_voice import (
    inbound_call_payload, leave_voicemail, record_urls, recording_status_payload, transcription_payload,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio_voice"
BASE = "https://support.example.test/webhooks/twilio/voice/abc"
CALL_SID = "CA5f3c8d2e1b0a9f8e7d6c5b4a39281706"
CALLER, OUR_NUMBER = "+33612345678", "+33757000202"
TRANSCRIPT = ("Bonjour, c'est Camille Martin, ma commande 4512 n'est pas arrivée, "
              "pouvez-vous me rappeler ? Merci.")


def fixture(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


def adapter(token: str = DEMO_AUTH_TOKEN, **settings) -> VoiceTwilio:
    return VoiceTwilio(ChannelConfig(kind=ChannelKind.VOICE, provider=Provider.TWILIO, address=OUR_NUMBER,
                                     credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": token},
                                     settings=settings))


def request(params: dict, *, url: str = BASE, signature: str | None = None) -> WebhookRequest:
    """The request as the webhook blueprint builds it: the signed URL keeps its query string."""
    sig = sign(DEMO_AUTH_TOKEN, url, params) if signature is None else signature
    return WebhookRequest(url=url, headers={"X-Twilio-Signature": sig}, form=MultiDict(params),
                          query=dict(parse_qsl(urlsplit(url).query)))


def answer(params: dict | None = None, **settings) -> ElementTree.Element:
    reply = adapter(**settings).call_reply(request(params or fixture("inbound_call.json")), BASE)
    assert reply.status == 200 and reply.content_type == "text/xml"
    return ElementTree.fromstring(reply.body)


def callback_url() -> str:
    """The URL the greeting hands to Twilio for the recording and transcription callbacks."""
    return answer().find("Record").get("recordingStatusCallback")


def recording(**changes) -> InboundMessage:
    [message] = adapter().parse(request({**fixture("recording_status_callback.json"), **changes},
                                        url=callback_url()))
    return message


def transcription(kind: str = "completed") -> InboundMessage:
    [message] = adapter().parse(request(fixture("transcription_callbacks.json")[kind], url=callback_url()))
    return message


# -- signatures (the SMS adapter's check, reused) ---------------------------------------------------

def test_valid_signature_passes():
    adapter().verify(request(fixture("inbound_call.json")))


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "x"])
def test_bad_signatures_are_refused(signature):
    with pytest.raises(InvalidSignature):
        adapter().verify(request(fixture("inbound_call.json"), signature=signature))


def test_missing_signature_header_is_refused():
    req = request(fixture("inbound_call.json"))
    with pytest.raises(InvalidSignature, match="missing X-Twilio-Signature"):
        adapter().verify(WebhookRequest(url=req.url, headers={}, form=req.form, query=req.query))


def test_signature_checked_with_the_channel_token():
    with pytest.raises(InvalidSignature):
        adapter(token="another-token").verify(request(fixture("inbound_call.json")))


def test_callback_url_query_is_covered_by_the_signature():
    """from_number rides in the callback URL; changing it breaks Twilio's signature."""
    url = callback_url()
    params = fixture("recording_status_callback.json")
    sig = sign(DEMO_AUTH_TOKEN, url, params)
    adapter().verify(request(params, url=url, signature=sig))
    forged = url.replace("%2B33612345678", "%2B33699999999")
    assert forged != url
    with pytest.raises(InvalidSignature):
        adapter().verify(request(params, url=forged, signature=sig))


# -- the incoming call: TwiML answer ---------------------------------------------------------------

def test_ringing_call_creates_no_message():
    assert adapter().parse(request(fixture("inbound_call.json"))) == []


def test_call_is_answered_in_french_by_default_then_recorded():
    twiml = answer()
    say, record, hangup = list(twiml)
    assert (say.tag, record.tag, hangup.tag) == ("Say", "Record", "Hangup")
    assert say.get("language") == "fr-FR" and say.get("voice") == "Polly.Lea"
    assert say.text.startswith("Bonjour") and "après le bip" in say.text
    assert record.get("maxLength") == "120"
    assert record.get("playBeep") == "true" and record.get("transcribe") == "true"
    assert record.get("method") == "POST" and record.get("recordingStatusCallbackMethod") == "POST"
    assert record.get("recordingStatusCallbackEvent") == "completed"


def test_callback_urls_point_back_to_the_channel_with_the_call_parties():
    record = answer().find("Record")
    urls = {record.get(name) for name in ("action", "recordingStatusCallback", "transcribeCallback")}
    assert len(urls) == 1
    [url] = urls
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == BASE
    assert parse_qs(parts.query) == {"from_number": [CALLER], "to_number": [OUR_NUMBER]}


def test_callback_base_url_keeps_its_own_query():
    reply = adapter().call_reply(request(fixture("inbound_call.json")), BASE + "?channel=7&from_number=x")
    url = ElementTree.fromstring(reply.body).find("Record").get("transcribeCallback")
    assert parse_qs(urlsplit(url).query) == {
        "channel": ["7"], "from_number": [CALLER], "to_number": [OUR_NUMBER]}


def test_english_channel_greets_in_english():
    say = answer(language="en-US").find("Say")
    assert say.get("language") == "en-US" and say.get("voice") == "Polly.Joanna"
    assert say.text.startswith("Hello") and "after the beep" in say.text


def test_greeting_voice_and_length_come_from_the_channel_settings():
    twiml = answer(greeting="Coccinelle, bonjour ! Laissez un message.", voice="Google.fr-FR-Standard-A",
                   max_length=45)
    assert twiml.find("Say").text == "Coccinelle, bonjour ! Laissez un message."
    assert twiml.find("Say").get("voice") == "Google.fr-FR-Standard-A"
    assert twiml.find("Record").get("maxLength") == "45"


def test_greeting_per_language_and_length_capped_for_transcription():
    twiml = answer(language="en-GB", greeting={"en-GB": "Hiya, leave a message."}, max_length=600)
    assert twiml.find("Say").text == "Hiya, leave a message." and twiml.find("Say").get("language") == "en-GB"
    assert twiml.find("Say").get("voice") is None  # no default voice for en-GB: Twilio's own
    assert twiml.find("Record").get("maxLength") == "120"  # Twilio transcribes two minutes at most


def test_record_action_thanks_and_hangs_up_without_creating_a_message():
    params = fixture("record_action.json")
    assert adapter().parse(request(params, url=callback_url())) == []
    say, hangup = list(ElementTree.fromstring(adapter().call_reply(request(params), BASE).body))
    assert say.text.startswith("Merci") and hangup.tag == "Hangup"
    silent = ElementTree.fromstring(adapter(goodbye="").call_reply(request(params), BASE).body)
    assert [e.tag for e in silent] == ["Hangup"]


def test_callbacks_get_empty_twiml():
    for params in (fixture("recording_status_callback.json"),
                   fixture("transcription_callbacks.json")["completed"],
                   {**fixture("inbound_call.json"), "CallStatus": "completed"}):
        reply = adapter().call_reply(request(params), BASE)
        assert reply.body == adapter().webhook_reply().body and "<Response></Response>" in reply.body


# -- voicemail callbacks ---------------------------------------------------------------------------

def test_recording_callback_makes_a_pending_voicemail():
    message = recording()
    assert message.provider_message_id == f"{CALL_SID}:voicemail"
    assert message.sender == CALLER and message.recipient == OUR_NUMBER  # from the signed callback URL
    assert message.body == PENDING_BODY
    assert message.sent_at == datetime(2025, 10, 9, 9, 45, 27, tzinfo=UTC)
    assert message.meta == {
        "merge": "voicemail", "call_sid": CALL_SID, "recording_sid": "RE0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
        "recording_url": fixture("recording_status_callback.json")["RecordingUrl"],
        "duration_seconds": 14, "transcript": None, "transcription_sid": None,
        "transcription_status": "pending", "transcription_pending": True,
    }


def test_transcription_callback_carries_the_transcript():
    message = transcription()
    assert message.provider_message_id == f"{CALL_SID}:voicemail"
    assert message.sender == CALLER and message.body == TRANSCRIPT
    assert message.meta["transcript"] == TRANSCRIPT and message.meta["transcription_status"] == "completed"
    assert message.meta["transcription_pending"] is False and message.meta["duration_seconds"] is None
    assert message.meta["recording_url"].endswith("RE0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a")


def test_failed_transcription_is_final_without_transcript():
    message = transcription("failed")
    assert message.body == UNAVAILABLE_BODY
    assert message.meta["transcript"] is None and message.meta["transcription_status"] == "failed"
    assert message.meta["transcription_pending"] is False


@pytest.mark.parametrize("kind", ["completed", "failed"])
def test_callbacks_merge_to_the_same_voicemail_in_either_order(kind):
    rec, tr = recording(), transcription(kind)
    merged = VoiceTwilio.merge(rec, tr)
    assert VoiceTwilio.merge(tr, rec) == merged
    assert VoiceTwilio.merge(merged, tr) == merged and VoiceTwilio.merge(merged, rec) == merged
    assert merged.meta["duration_seconds"] == 14  # only the recording callback knows it
    assert merged.meta["transcription_sid"] == "TR3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
    assert merged.meta["transcription_pending"] is False
    assert merged.sent_at == rec.sent_at
    if kind == "completed":
        assert merged.body == TRANSCRIPT and merged.meta["transcript"] == TRANSCRIPT
    else:
        assert merged.body == UNAVAILABLE_BODY and merged.meta["transcript"] is None


def test_merge_refuses_parts_of_different_calls():
    other = recording(CallSid="CA" + "0" * 32)
    with pytest.raises(ValueError):
        VoiceTwilio.merge(recording(), other)


@pytest.mark.parametrize("status", ["in-progress", "absent", "failed"])
def test_recordings_that_did_not_complete_create_nothing(status):
    params = recording_status_payload(account_sid=DEMO_ACCOUNT_SID, call_sid=CALL_SID, status=status)
    assert adapter().parse(request(params, url=callback_url())) == []


def test_transcription_in_progress_creates_nothing():
    params = {**fixture("transcription_callbacks.json")["completed"], "TranscriptionStatus": "in-progress"}
    assert adapter().parse(request(params)) == []


@pytest.mark.parametrize("field, value, reason", [
    ("CallSid", "", "CallSid"),
    ("CallSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f", "CallSid"),
    ("AccountSid", "AC" + "0" * 32, "AccountSid"),
    ("RecordingSid", "RE-nope", "RecordingSid"),
    ("RecordingUrl", "", "RecordingUrl is missing"),
    ("RecordingDuration", "quatorze", "RecordingDuration"),
])
def test_malformed_recording_callbacks_say_why(field, value, reason):
    with pytest.raises(MalformedPayload, match=reason):
        recording(**{field: value})


def test_recording_callback_without_caller_anywhere_is_malformed():
    with pytest.raises(MalformedPayload, match="From is missing"):
        adapter().parse(request(fixture("recording_status_callback.json")))  # URL without from_number


@pytest.mark.parametrize("field, value, reason", [
    ("TranscriptionStatus", "teleported", "teleported"),
    ("TranscriptionSid", "TX123", "TranscriptionSid"),
    ("RecordingSid", "nope", "RecordingSid"),
])
def test_malformed_transcription_callbacks_say_why(field, value, reason):
    params = {**fixture("transcription_callbacks.json")["completed"], field: value}
    with pytest.raises(MalformedPayload, match=reason):
        adapter().parse(request(params))


def test_unknown_form_is_malformed():
    with pytest.raises(MalformedPayload, match="not a Twilio voice call"):
        adapter().parse(request({"AccountSid": DEMO_ACCOUNT_SID, "Body": "hello"}))
    with pytest.raises(MalformedPayload, match="not a Twilio voice call"):
        adapter().call_reply(request({"AccountSid": DEMO_ACCOUNT_SID}), BASE)


def test_voice_cannot_send_text_and_has_no_statuses():
    with pytest.raises(PermanentDeliveryError, match="voice channels cannot send text"):
        adapter().send(OutboundMessage(to=CALLER, body="Bonjour"))
    assert adapter().parse_status(request(fixture("inbound_call.json"))) == []
    assert adapter().handshake(request(fixture("inbound_call.json"))) is None


# -- a whole voicemail over real HTTP, signed by the sandbox as Twilio would ----------------------

class _VoiceApp:
    """The few lines the webhook blueprint will run for voice: verify, parse, call_reply."""

    def __init__(self, public_base: str):
        self.public_base = public_base
        self.adapter = adapter()
        self.messages: dict[str, InboundMessage] = {}  # what the orchestrator would store
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def local_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/voice"

    def _handler(self):
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = app.public_base + self.path.removeprefix("/voice")
                req = WebhookRequest(url=url, headers=self.headers, body=body,
                                     form=MultiDict(parse_qsl(body.decode(), keep_blank_values=True)),
                                     query=dict(parse_qsl(urlsplit(url).query)))
                try:
                    app.adapter.verify(req)
                except InvalidSignature:
                    return self._send(403, b"forbidden")
                for message in app.adapter.parse(req):
                    known = app.messages.get(message.provider_message_id)
                    app.messages[message.provider_message_id] = (
                        VoiceTwilio.merge(known, message) if known else message)
                self._send(200, app.adapter.call_reply(req, app.public_base).body.encode())

            def _send(self, status, data):
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def voice_app():
    app = _VoiceApp(BASE)
    yield app
    app.stop()


@pytest.mark.parametrize("transcription_first", [False, True])
def test_a_voicemail_played_over_http_ends_as_one_transcribed_message(voice_app, transcription_first):
    replies = leave_voicemail(voice_app.local_url, sender=CALLER, to=OUR_NUMBER, text=TRANSCRIPT,
                              signed_base=BASE, transcription_first=transcription_first)
    assert {name: r.status_code for name, r in replies.items()} == {
        "call": 200, "action": 200, "recording": 200, "transcription": 200}
    assert set(record_urls(replies["call"].text).values()) == {
        BASE + "?from_number=%2B33612345678&to_number=%2B33757000202"}
    [message] = voice_app.messages.values()
    assert message.sender == CALLER and message.body == TRANSCRIPT
    assert message.meta["duration_seconds"] == 14 and message.meta["transcription_pending"] is False


def test_a_call_signed_with_another_token_is_refused_over_http(voice_app):
    call = inbound_call_payload(account_sid=DEMO_ACCOUNT_SID, sender=CALLER, to=OUR_NUMBER)
    response = post_signed(voice_app.local_url, call, auth_token="not-the-channel-token", signed_url=BASE)
    assert response.status_code == 403 and voice_app.messages == {}


def test_sandbox_payloads_parse():
    call_sid, recording_sid = new_sid("CA"), new_sid("RE")
    url = BASE + "?from_number=%2B33600000000"
    [rec] = adapter().parse(request(recording_status_payload(
        account_sid=DEMO_ACCOUNT_SID, call_sid=call_sid, recording_sid=recording_sid, duration=7), url=url))
    [tr] = adapter().parse(request(transcription_payload(
        account_sid=DEMO_ACCOUNT_SID, call_sid=call_sid, sender="+33600000000", to=OUR_NUMBER,
        recording_sid=recording_sid, text="Rappelez-moi"), url=url))
    merged = VoiceTwilio.merge(rec, tr)
    assert merged.body == "Rappelez-moi" and merged.meta["duration_seconds"] == 7
    assert merged.sender == "+33600000000" and merged.recipient == OUR_NUMBER
