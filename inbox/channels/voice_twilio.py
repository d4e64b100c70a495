"""Voicemail through Twilio Programmable Voice: greet, record, transcribe; no text out.

Docs:
- Incoming call request: https://www.twilio.com/docs/voice/twiml#twilios-request-to-your-application
  (CallSid, AccountSid, From, To, CallStatus, Direction, ApiVersion, geographic fields…)
- <Say>: https://www.twilio.com/docs/voice/twiml/say — an invalid voice/language pair fails, so
  each default language comes with a voice that speaks it.
- <Record>: https://www.twilio.com/docs/voice/twiml/record — ``action`` (without it Twilio
  re-requests the current URL and the greeting loops), ``maxLength``, ``playBeep``,
  ``transcribe`` + ``transcribeCallback`` (transcription only works up to 120 s, hence the
  cap), ``recordingStatusCallback``.
- Signatures: https://www.twilio.com/docs/usage/security#validating-requests — checked by the
  SMS adapter's verify(), reused here (the full URL, query string included, is signed).

The flow for one call (every request goes to the URL the blueprint passes to call_reply):

  1. call webhook (CallStatus=ringing)  parse → []          call_reply → <Say> + <Record>
  2. <Record> action (RecordingUrl)       parse → []          call_reply → thanks + <Hangup>
  3. recording status callback            parse → [voicemail, transcription pending]
  4. transcription callback               parse → [voicemail, transcript or failure]
  5. call status callback (the number's   parse → [missed call] when the call ended
     "Call status changes" URL, or the             (completed, busy, no-answer, failed,
     statusCallback of the call)                   canceled)

3, 4 and 5 arrive in any order and share ``provider_message_id = f"{CallSid}:voicemail"``: the
orchestrator must *merge* the later ones into the stored message (``VoiceTwilio.merge``)
instead of dropping them as duplicates; ``meta["merge"] == "voicemail"`` marks such messages.
A call that left neither recording nor transcription stays a *missed call*
(``meta["missed_call"]``, body from MISSED_BODIES, `automated`: there is nothing to answer, the team
calls back); a recording arriving after the status callback turns it into the voicemail.
Docs: https://www.twilio.com/docs/voice/api/call-resource#statuscallback (CallStatus,
CallDuration, Timestamp, CallbackSource=call-progress-events, SequenceNumber).

The recording status callback carries no From/To, so the callback URLs we hand to Twilio carry
them as query parameters (``from_number``, ``to_number``); Twilio signs the full URL, so they
cannot be forged.

Channel configuration
    credentials["account_sid"], credentials["auth_token"]
    settings["language"]     "fr-FR" or "en-US" (default: the workspace's language, given by the
                             orchestrator as settings["workspace_locale"]) — any Twilio locale works with
                             settings["voice"] and settings["greeting"] set
    settings["voice"]        a Twilio voice (default: Polly.Lea for French, Polly.Joanna for English)
    settings["greeting"]     the text read before the beep (default per language)
    settings["goodbye"]      the text read after the message (default per language; "" for none)
    settings["max_length"]   seconds of recording, at most 120 (Twilio transcribes ≤ 2 minutes)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twilio.twiml.voice_response import VoiceResponse

from ..errors import MalformedPayload, PermanentDeliveryError
from ..kinds import ChannelKind, Provider
from .base import (
    ConfigField,
    ChannelConfig, DeliveryReceipt, InboundMessage, OutboundMessage, StatusUpdate, WebhookReply,
    WebhookRequest,
)
from .twilio_sms import TwilioSms

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
TRANSCRIPTION_SID = re.compile(r"^TR[0-9a-fA-F]{32}$")

MAX_RECORDING_SECONDS = 120  # Twilio only transcribes <Record> recordings up to two minutes
DEFAULT_LANGUAGE = "fr-FR"
WORKSPACE_LANGUAGES = {"fr": "fr-FR", "en": "en-US"}  # the workspace's UI language → a Twilio locale
DEFAULT_VOICES = {"fr-FR": "Polly.Lea", "en-US": "Polly.Joanna"}
DEFAULT_GREETINGS = {
    "fr": "Bonjour, vous êtes bien au service client. Nous ne pouvons pas vous répondre pour le "
          "moment : laissez-nous un message après le bip, nous vous recontacterons rapidement.",
    "en": "Hello, you have reached customer support. We cannot take your call right now: please "
          "leave a message after the beep and we will get back to you shortly.",
}
DEFAULT_GOODBYES = {
    "fr": "Merci, votre message a bien été enregistré. Au revoir.",
    "en": "Thank you, your message has been recorded. Goodbye.",
}

# Bodies for a voicemail without a usable transcript. The UI shows its own translated label
# from meta["transcription_pending"] / meta["transcription_status"]; these keep the inbox
# preview and search meaningful meanwhile.
PENDING_BODY = "transcription pending"
UNAVAILABLE_BODY = "transcription unavailable"
# A missed call's body (the inbox list's preview, search), in the workspace's language.
MISSED_BODIES = {"fr": "Appel manqué", "en": "Missed call"}
ENDED = ("completed", "busy", "no-answer", "failed", "canceled")  # CallStatus of an ended call
VOICEMAIL_KEYS = ("recording_sid", "recording_url", "transcription_sid", "transcript")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FINAL_TRANSCRIPTION = ("completed", "failed")
ANSWERABLE = ("ringing", "in-progress", "queued")  # CallStatus values that still expect TwiML
MERGE_MARKER = "voicemail"


class VoiceTwilio:
    kind = ChannelKind.VOICE
    provider = Provider.TWILIO
    can_send_text = False
    config_fields = (
        ConfigField("account_sid"),
        ConfigField("auth_token", secret=True),
        ConfigField("language", target="settings", required=False),
        ConfigField("greeting", target="settings", required=False),
    )

    def __init__(self, config: ChannelConfig):
        self.config = config
        self.account_sid = config.credentials.get("account_sid", "")
        # Signature checking is the SMS adapter's: same credentials, same algorithm.
        self._signatures = TwilioSms(config)

    # -- inbound ---------------------------------------------------------------------------
    def handshake(self, request: WebhookRequest) -> WebhookReply | None:
        return None

    def verify(self, request: WebhookRequest) -> None:
        self._signatures.verify(request)

    def parse(self, request: WebhookRequest) -> list[InboundMessage]:
        form = request.form
        event = _event(form)
        self._check_account(form)
        call_sid = _call_sid(form)
        if event in ("call", "record-action"):
            # A ringing call is not a message yet, and the <Record> action only tells us the
            # caller stopped talking: the recording and transcription callbacks carry the content.
            return []
        if event == "recording":
            return self._recording(request, call_sid)
        if event == "call-status":
            return [self._missed_call(request, call_sid)]
        return self._transcription(request, call_sid)

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        return []  # nothing is sent on voice, so there is no delivery to follow

    def webhook_reply(self) -> WebhookReply:
        return WebhookReply(EMPTY_TWIML, "text/xml")

    def call_reply(self, request: WebhookRequest, callback_base_url: str) -> WebhookReply:
        """The TwiML for this request: what Twilio does next depends on what it told us.

        `callback_base_url` is the public URL of this channel's voice webhook (without query):
        Twilio calls it back for the <Record> action, the recording and the transcription.
        Call verify() first, like for every webhook.
        """
        form = request.form
        event = _event(form)
        self._check_account(form)
        _call_sid(form)
        language = self._language()
        response = VoiceResponse()
        if event == "call" and (form.get("CallStatus") or "").lower() in ANSWERABLE:
            callback = _with_query(callback_base_url, {
                "from_number": (form.get("From") or "").strip(),
                "to_number": (form.get("To") or self.config.address).strip(),
            })
            response.say(self._setting_text("greeting", DEFAULT_GREETINGS, language),
                         language=language, voice=self._voice(language))
            response.record(
                action=callback, method="POST", max_length=self._max_length(), play_beep=True,
                transcribe=True, transcribe_callback=callback,
                recording_status_callback=callback, recording_status_callback_method="POST",
                recording_status_callback_event="completed",
            )
            # Reached only when Twilio got an empty recording (it then skips the action URL).
            response.hangup()
        elif event == "record-action":
            goodbye = self._setting_text("goodbye", DEFAULT_GOODBYES, language)
            if goodbye:
                response.say(goodbye, language=language, voice=self._voice(language))
            response.hangup()
        else:  # callbacks (recording, transcription, call status): Twilio ignores the body
            return self.webhook_reply()
        return WebhookReply(str(response), "text/xml")

    @staticmethod
    def merge(existing: InboundMessage, update: InboundMessage) -> InboundMessage:
        """The voicemail once both callbacks are known, whatever order they came in.

        Pure and idempotent: merge(a, b) and merge(b, a) agree, merging a callback twice
        changes nothing. Known values win over None; a final transcription status (completed,
        failed) is never replaced by "pending".
        """
        if existing.provider_message_id != update.provider_message_id:
            raise ValueError("only parts of the same voicemail can be merged")
        meta = dict(existing.meta)
        for key, value in update.meta.items():
            if meta.get(key) is None:
                meta[key] = value
        starts = [m.sent_at for m in (existing, update) if m.sent_at is not None]
        if not any(meta.get(key) for key in VOICEMAIL_KEYS):  # the call ended, nothing was left
            meta.update(missed_call=True, transcription_status=None, transcription_pending=False, transcript=None)
            return InboundMessage(
                provider_message_id=existing.provider_message_id, sender=existing.sender or update.sender,
                recipient=existing.recipient or update.recipient,
                body=existing.body if existing.meta.get("missed_call") else update.body,
                sent_at=min(starts) if starts else None, meta=meta, automated=True)
        meta["missed_call"] = False
        statuses = {existing.meta.get("transcription_status"), update.meta.get("transcription_status")}
        final = [s for s in FINAL_TRANSCRIPTION if s in statuses]
        status = final[0] if final else "pending"
        meta["transcription_status"] = status
        meta["transcription_pending"] = status not in FINAL_TRANSCRIPTION
        if status != "completed":
            meta["transcript"] = None
        return InboundMessage(
            provider_message_id=existing.provider_message_id,
            sender=existing.sender or update.sender,
            recipient=existing.recipient or update.recipient,
            body=_body(status, meta.get("transcript")),
            sender_name=existing.sender_name or update.sender_name,
            media=existing.media or update.media,
            sent_at=min(starts) if starts else None,
            meta=meta,
            automated=existing.automated and update.automated,
        )

    # -- outbound --------------------------------------------------------------------------
    def test_connection(self) -> str:
        return self._signatures.test_connection()  # same Twilio account as SMS

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        # A voicemail cannot be answered on the call; the delivery policy falls back to SMS.
        raise PermanentDeliveryError("voice channels cannot send text", code="unsupported")

    # -- internals -------------------------------------------------------------------------
    def _recording(self, request: WebhookRequest, call_sid: str) -> list[InboundMessage]:
        form = request.form
        if (form.get("RecordingStatus") or "").lower() != "completed":
            return []  # in-progress, absent (nothing said) or failed: no voicemail to show
        recording_sid = form.get("RecordingSid") or ""
        if not RECORDING_SID.match(recording_sid):
            raise MalformedPayload("RecordingSid is missing or is not a Twilio recording SID")
        recording_url = (form.get("RecordingUrl") or "").strip()
        if not recording_url:
            raise MalformedPayload("RecordingUrl is missing")
        try:
            duration = int(form.get("RecordingDuration") or "")
        except ValueError:
            raise MalformedPayload("RecordingDuration is not a number of seconds") from None
        return [self._voicemail(request, call_sid, recording_sid=recording_sid,
                                recording_url=recording_url, duration=duration, transcript=None,
                                status="pending", sent_at=_rfc2822(form.get("RecordingStartTime")))]

    def _transcription(self, request: WebhookRequest, call_sid: str) -> list[InboundMessage]:
        form = request.form
        status = (form.get("TranscriptionStatus") or "").lower()
        if status not in FINAL_TRANSCRIPTION:
            if status == "in-progress":
                return []
            raise MalformedPayload(f"unknown TranscriptionStatus {status!r}")
        transcription_sid = form.get("TranscriptionSid") or ""
        if not TRANSCRIPTION_SID.match(transcription_sid):
            raise MalformedPayload("TranscriptionSid is missing or is not a Twilio transcription SID")
        recording_sid = form.get("RecordingSid") or None
        if recording_sid and not RECORDING_SID.match(recording_sid):
            raise MalformedPayload("RecordingSid is not a Twilio recording SID")
        text = (form.get("TranscriptionText") or "").strip()
        return [self._voicemail(request, call_sid, recording_sid=recording_sid,
                                recording_url=(form.get("RecordingUrl") or "").strip() or None,
                                duration=None, transcript=text if status == "completed" else None,
                                status=status, sent_at=None, transcription_sid=transcription_sid)]

    def _voicemail(self, request: WebhookRequest, call_sid: str, *, recording_sid: str | None,
                   recording_url: str | None, duration: int | None, transcript: str | None,
                   status: str, sent_at: datetime | None,
                   transcription_sid: str | None = None) -> InboundMessage:
        form, query = request.form, request.query
        sender = (form.get("From") or query.get("from_number") or "").strip()
        if not sender:
            raise MalformedPayload("From is missing (neither in the callback nor in its URL)")
        recipient = (form.get("To") or query.get("to_number") or self.config.address).strip()
        return InboundMessage(
            provider_message_id=f"{call_sid}:voicemail",
            sender=sender,
            recipient=recipient,
            body=_body(status, transcript),
            sent_at=sent_at,
            meta={
                "merge": MERGE_MARKER,
                "call_sid": call_sid,
                "recording_sid": recording_sid,
                "recording_url": recording_url,
                "duration_seconds": duration,
                "transcript": transcript,
                "transcription_sid": transcription_sid,
                "transcription_status": status,
                "transcription_pending": status not in FINAL_TRANSCRIPTION,
            },
        )

    def _missed_call(self, request: WebhookRequest, call_sid: str) -> InboundMessage:
        """The call ended. Stored as a missed call, which a voicemail's callbacks (before or
        after this one) complete: merge() decides which it was."""
        form = request.form
        sender = (form.get("From") or "").strip()
        if not sender:
            raise MalformedPayload("From is missing from the call status callback")
        try:
            duration = int(form.get("CallDuration") or 0)
        except ValueError:
            raise MalformedPayload("CallDuration is not a number of seconds") from None
        return InboundMessage(
            provider_message_id=f"{call_sid}:voicemail", sender=sender,
            recipient=(form.get("To") or self.config.address).strip(), body=missed_call_body(self.config.settings),
            sent_at=_rfc2822(form.get("Timestamp")), automated=True,
            meta={"merge": MERGE_MARKER, "call_sid": call_sid, "missed_call": True,
                  "call_status": (form.get("CallStatus") or "").lower(), "call_duration_seconds": duration,
                  "recording_sid": None, "recording_url": None, "duration_seconds": None, "transcript": None,
                  "transcription_sid": None, "transcription_status": None, "transcription_pending": False},
        )

    def _check_account(self, form) -> None:
        if form.get("AccountSid") != self.account_sid:
            raise MalformedPayload("AccountSid does not belong to this channel")

    def _language(self) -> str:
        """The channel's own setting, else the workspace's language (settings["workspace_locale"],
        given by the orchestrator), else French."""
        locale = str(self.config.settings.get("workspace_locale") or "").split("_")[0].lower()
        return str(self.config.settings.get("language") or WORKSPACE_LANGUAGES.get(locale, DEFAULT_LANGUAGE))

    def _voice(self, language: str) -> str | None:
        return str(self.config.settings.get("voice") or "") or DEFAULT_VOICES.get(language)

    def _setting_text(self, name: str, defaults: Mapping[str, str], language: str) -> str:
        value = self.config.settings.get(name)
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, Mapping):  # {"fr-FR": "...", "en-US": "..."} or {"fr": ...}
            chosen = value.get(language) or value.get(language.split("-")[0].lower())
            if isinstance(chosen, str):
                return chosen.strip()
        return defaults.get(language.split("-")[0].lower(), defaults["en"])

    def _max_length(self) -> int:
        try:
            seconds = int(self.config.settings.get("max_length") or MAX_RECORDING_SECONDS)
        except (TypeError, ValueError):
            seconds = MAX_RECORDING_SECONDS
        return max(1, min(seconds, MAX_RECORDING_SECONDS))


def missed_call_body(settings) -> str:
    """ "Appel manqué" / "Missed call", after settings["workspace_locale"] (the orchestrator's)."""
    locale = str(settings.get("workspace_locale") or "").split("_")[0].lower()
    return MISSED_BODIES.get(locale, MISSED_BODIES["fr"])


def _event(form) -> str:
    """Which of Twilio's voice requests this is, from the fields only that request carries."""
    if form.get("TranscriptionSid") or form.get("TranscriptionStatus"):
        return "transcription"
    if form.get("RecordingStatus"):
        return "recording"
    if form.get("RecordingUrl") or form.get("RecordingSid"):
        return "record-action"
    if form.get("CallSid") and (form.get("CallStatus") or "").lower() in ENDED:
        return "call-status"
    if form.get("CallSid") and form.get("CallStatus"):
        return "call"
    raise MalformedPayload("not a Twilio voice call, recording or transcription request")


def _call_sid(form) -> str:
    sid = form.get("CallSid") or ""
    if not CALL_SID.match(sid):
        raise MalformedPayload("CallSid is missing or is not a Twilio call SID")
    return sid


def _body(status: str, transcript: str | None) -> str:
    if status == "completed" and transcript:
        return transcript
    return PENDING_BODY if status not in FINAL_TRANSCRIPTION else UNAVAILABLE_BODY


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _rfc2822(value: str | None) -> datetime | None:
    """RecordingStartTime ("Tue, 17 Sep 2024 09:15:02 +0000"); None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
