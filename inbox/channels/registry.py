"""One place that maps a (kind, provider) pair to its adapter class."""

from __future__ import annotations

from ..errors import ChannelError
from ..kinds import ChannelKind, Provider
from .base import ChannelAdapter, ChannelConfig
from .email import EmailChannel
from .telegram import TelegramBot
from .twilio_sms import TwilioSms
from .voice_twilio import VoiceTwilio
from .voice_vapi import VoiceVapi
from .whatsapp_meta import WhatsAppMeta
from .whatsapp_twilio import TwilioWhatsApp

ADAPTERS: dict[tuple[ChannelKind, Provider], type[ChannelAdapter]] = {
    (adapter.kind, adapter.provider): adapter
    for adapter in (TwilioSms, TwilioWhatsApp, WhatsAppMeta, TelegramBot, EmailChannel, VoiceVapi,
                    VoiceTwilio)
}


def is_supported(kind: ChannelKind, provider: Provider) -> bool:
    return (kind, provider) in ADAPTERS


def can_send_text(kind: ChannelKind, provider: Provider) -> bool:
    """Voice channels receive calls but cannot carry a written reply."""
    adapter = ADAPTERS.get((kind, provider))
    return adapter is not None and getattr(adapter, "can_send_text", True)


def build_adapter(config: ChannelConfig) -> ChannelAdapter:
    try:
        adapter_class = ADAPTERS[(config.kind, config.provider)]
    except KeyError:
        raise ChannelError(f"no adapter for {config.kind}/{config.provider}") from None
    return adapter_class(config)
