"""Builders for the requests Twilio Programmable Voice makes during a voicemail, signed as Twilio signs.

Shapes follow https://www.twilio.com/docs/voice/twiml#twilios-request-to-your-application (the
call webhook) and https://www.twilio.com/docs/voice/twiml/record (the <Record> action, the
recordingStatusCallback and the transcribeCallback requests).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from email.utils import format_datetime

import requests

from .twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, new_sid, post_signed

API_VERSION = "2010-04-01"


def recording_url(account_sid: str, recording_sid: str) -> str:
    return f"https://api.twilio.com/{API_VERSION}/Accounts/{account_sid}/Recordings/{recording_sid}"


def inbound_call_payload(*, account_sid: str, sender: str, to: str, call_sid: str | None = None,
                         status: str = "ringing", caller_name: str | None = None) -> dict:
    """The form Twilio POSTs to the number's voice URL when a call comes in."""
    payload = {
        "CallSid": call_sid or new_sid("CA"), "AccountSid": account_sid, "From": sender, "To": to,
        "CallStatus": status, "ApiVersion": API_VERSION, "Direction": "inbound",
        "FromCity": "", "FromState": "", "FromZip": "", "FromCountry": "FR",
        "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "FR",
    }
    if caller_name:
        payload["CallerName"] = caller_name
    return payload


def record_action_payload(*, account_sid: str, call_sid: str, sender: str, to: str,
                          recording_sid: str, duration: int, digits: str = "hangup") -> dict:
    """The form Twilio POSTs to <Record action> when the caller stops (``Digits=hangup``)."""
    return {
        "CallSid": call_sid, "AccountSid": account_sid, "From": sender, "To": to,
        "CallStatus": "completed" if digits == "hangup" else "in-progress",
        "ApiVersion": API_VERSION, "Direction": "inbound",
        "RecordingUrl": recording_url(account_sid, recording_sid),
        "RecordingDuration": str(duration), "Digits": digits,
    }


def recording_status_payload(*, account_sid: str, call_sid: str, recording_sid: str | None = None,
                             duration: int = 14, status: str = "completed",
                             started_at: datetime | None = None) -> dict:
    """The form Twilio POSTs to <Record recordingStatusCallback> (no From/To in it)."""
    sid = recording_sid or new_sid("RE")
    payload = {
        "AccountSid": account_sid, "CallSid": call_sid, "RecordingSid": sid,
        "RecordingUrl": recording_url(account_sid, sid), "RecordingStatus": status,
        "RecordingChannels": "1", "RecordingSource": "RecordVerb",
        "RecordingStartTime": format_datetime(started_at or datetime.now(UTC)),
    }
    if status == "completed":
        payload["RecordingDuration"] = str(duration)
    return payload


def transcription_payload(*, account_sid: str, call_sid: str, sender: str, to: str,
                          recording_sid: str, text: str, status: str = "completed",
                          transcription_sid: str | None = None) -> dict:
    """The form Twilio POSTs to <Record transcribeCallback>, with the standard call parameters."""
    sid = transcription_sid or new_sid("TR")
    base = f"https://api.twilio.com/{API_VERSION}/Accounts/{account_sid}"
    return {
        "TranscriptionSid": sid, "TranscriptionText": text if status == "completed" else "",
        "TranscriptionStatus": status,
        "TranscriptionUrl": f"{base}/Transcriptions/{sid}",
        "RecordingSid": recording_sid, "RecordingUrl": recording_url(account_sid, recording_sid),
        "CallSid": call_sid, "AccountSid": account_sid, "From": sender, "To": to,
        "CallStatus": "completed", "ApiVersion": API_VERSION, "Direction": "inbound",
    }


def call_status_payload(*, account_sid: str, call_sid: str, sender: str, to: str, status: str = "completed",
                        duration: int = 6, sequence: int = 0) -> dict:
    """The form Twilio POSTs to a call's status callback URL when the call ends
    (https://www.twilio.com/docs/voice/api/call-resource#statuscallback)."""
    return {
        "CallSid": call_sid, "AccountSid": account_sid, "From": sender, "To": to, "CallStatus": status,
        "ApiVersion": API_VERSION, "Direction": "inbound", "CallDuration": str(duration),
        "Duration": str(max(1, (duration + 59) // 60)) if duration else "0",
        "Timestamp": format_datetime(datetime.now(UTC)), "CallbackSource": "call-progress-events",
        "SequenceNumber": str(sequence), "CallerName": "", "ForwardedFrom": "",
        "FromCity": "", "FromState": "", "FromZip": "", "FromCountry": "FR",
        "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "FR",
    }


def record_urls(twiml: str) -> dict[str, str]:
    """The callback URLs a <Record> verb tells Twilio to use (action, recording, transcription)."""
    record = ElementTree.fromstring(twiml).find("Record")
    if record is None:
        raise ValueError("the TwiML has no <Record>")
    return {"action": record.get("action", ""),
            "recording": record.get("recordingStatusCallback", ""),
            "transcription": record.get("transcribeCallback", "")}


def leave_voicemail(voice_url: str, *, sender: str, to: str, text: str,
                    account_sid: str = DEMO_ACCOUNT_SID, auth_token: str = DEMO_AUTH_TOKEN,
                    transcription_first: bool = False, transcription_status: str = "completed",
                    duration: int = 14, signed_base: str | None = None,
                    timeout: float = 10) -> dict[str, requests.Response]:
    """Play one voicemail against a running app, request by request, as Twilio would.

    `voice_url` is the channel's voice webhook as reachable from here; `signed_base` is its
    public form when it differs (behind a proxy): Twilio signs the URL it was given.
    """
    call = inbound_call_payload(account_sid=account_sid, sender=sender, to=to)
    public = signed_base or voice_url
    answer = post_signed(voice_url, call, auth_token=auth_token, signed_url=public, timeout=timeout)
    urls = record_urls(answer.text)

    def local(url: str) -> str:  # the public URL Twilio was given, reached through voice_url
        return voice_url + url[len(public):] if signed_base and url.startswith(public) else url

    recording_sid = new_sid("RE")
    requests_made = {"call": answer}
    requests_made["action"] = post_signed(
        local(urls["action"]), record_action_payload(
            account_sid=account_sid, call_sid=call["CallSid"], sender=sender, to=to,
            recording_sid=recording_sid, duration=duration),
        auth_token=auth_token, signed_url=urls["action"], timeout=timeout)
    callbacks = [
        ("recording", recording_status_payload(account_sid=account_sid, call_sid=call["CallSid"],
                                               recording_sid=recording_sid, duration=duration)),
        ("transcription", transcription_payload(account_sid=account_sid, call_sid=call["CallSid"],
                                                sender=sender, to=to, recording_sid=recording_sid,
                                                text=text, status=transcription_status)),
    ]
    for name, params in reversed(callbacks) if transcription_first else callbacks:
        requests_made[name] = post_signed(local(urls[name]), params, auth_token=auth_token,
                                          signed_url=urls[name], timeout=timeout)
    return requests_made
