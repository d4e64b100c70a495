"""Post one customer message to a running app exactly as each provider would, signed with the
channel's own credentials. Used by `flask simulate inbound`, the demo and the benchmarks."""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid

import requests

from ..kinds import ChannelKind, Provider
from . import meta, smtp, telegram, twilio, twilio_whatsapp, vapi


def post_inbound(*, kind: ChannelKind, provider: Provider, credentials: dict, settings: dict,
                 channel_address: str, sender: str, text: str, public_url: str, target_url: str,
                 sender_name: str | None = None) -> requests.Response:
    """`public_url` is what the provider signs; `target_url` is where the request goes."""
    builder = BUILDERS.get((kind, provider))
    if builder is None:
        raise ValueError(f"no simulator for {kind}/{provider}")
    return builder(credentials=credentials, settings=settings, channel_address=channel_address, sender=sender,
                   text=text, public_url=public_url, target_url=target_url, sender_name=sender_name)


def _twilio_sms(*, credentials, channel_address, sender, text, public_url, target_url, **_):
    params = twilio.inbound_sms_payload(account_sid=credentials["account_sid"], sender=sender,
                                        to=channel_address, body=text)
    return twilio.post_signed(target_url, params, auth_token=credentials["auth_token"], signed_url=public_url)


def _twilio_whatsapp(*, credentials, channel_address, sender, text, public_url, target_url, sender_name, **_):
    params = twilio_whatsapp.inbound_whatsapp_payload(
        account_sid=credentials["account_sid"], sender=sender, to=channel_address.removeprefix("whatsapp:"),
        body=text, **({"profile_name": sender_name} if sender_name else {}))
    return twilio.post_signed(target_url, params, auth_token=credentials["auth_token"], signed_url=public_url)


def _meta_whatsapp(*, credentials, settings, sender, text, target_url, sender_name, **_):
    number = sender.lstrip("+")
    payload = meta.envelope(meta.value(messages=[meta.text_message(number, text)],
                                       contacts=[(number, sender_name or sender)],
                                       phone_number_id=str(settings.get("phone_number_id") or "")))
    return meta.post_signed(target_url, payload, app_secret=credentials["app_secret"])


def _telegram(*, credentials, sender, text, target_url, sender_name, **_):
    first, _space, last = (sender_name or "Client").partition(" ")
    update = telegram.text_update(int(sender), text,
                                  sender=telegram.user(int(sender), first_name=first, last_name=last or None))
    return telegram.post_update(target_url, update, secret_token=credentials.get("webhook_secret"))


def _email(*, credentials, settings, channel_address, sender, text, target_url, sender_name, **_):
    mail = EmailMessage()
    mail["From"] = f"{sender_name} <{sender}>" if sender_name else sender
    mail["To"] = channel_address
    mail["Subject"] = text.split("\n", 1)[0][:60]
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "example.org")
    mail.set_content(text)
    raw = mail.as_bytes()
    if settings.get("inbound") == "mailgun":
        form = smtp.mailgun_mime_form(raw, signing_key=credentials["mailgun_signing_key"],
                                      recipient=channel_address, sender=sender)
        return requests.post(target_url, data=form, timeout=10)
    fields = smtp.sendgrid_raw_form(raw, to=channel_address, from_header=sender, subject=mail["Subject"])
    body, content_type = smtp.encode_multipart(fields)
    return requests.post(target_url, params={"token": credentials.get("sendgrid_token", "")}, data=body,
                         headers={"Content-Type": content_type}, timeout=10)


def _vapi(*, credentials, settings, channel_address, sender, text, target_url, sender_name, **_):
    call = vapi.call_object(customer_number=sender, phone_number=channel_address, transcript=f"User: {text}",
                            customer_name=sender_name)
    payload = vapi.end_of_call_report(call)
    return vapi.post_webhook(target_url, payload, mode=str(settings.get("auth_mode") or "bearer"),
                             secret=credentials["webhook_secret"])


BUILDERS = {
    (ChannelKind.SMS, Provider.TWILIO): _twilio_sms,
    (ChannelKind.WHATSAPP, Provider.TWILIO): _twilio_whatsapp,
    (ChannelKind.WHATSAPP, Provider.META): _meta_whatsapp,
    (ChannelKind.TELEGRAM, Provider.TELEGRAM): _telegram,
    (ChannelKind.EMAIL, Provider.SMTP): _email,
    (ChannelKind.VOICE, Provider.VAPI): _vapi,
}


def demo_sender(kind: ChannelKind) -> str:
    """A believable address for a new customer on this channel kind."""
    if kind == ChannelKind.EMAIL:
        return f"client.{secrets.token_hex(2)}@example.fr"
    if kind == ChannelKind.TELEGRAM:
        return str(500_000_000 + secrets.randbelow(99_999_999))
    return "+336" + "".join(str(secrets.randbelow(10)) for _ in range(8))

