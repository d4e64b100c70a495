"""One place that maps a (kind, provider) pair to its adapter class."""

from __future__ import annotations

from ..errors import ChannelError
from ..kinds import ChannelKind, Provider
from .base import ChannelAdapter, ChannelConfig
from .twilio_sms import TwilioSms

ADAPTERS: dict[tuple[ChannelKind, Provider], type[ChannelAdapter]] = {
    (TwilioSms.kind, TwilioSms.provider): TwilioSms,
}


def is_supported(kind: ChannelKind, provider: Provider) -> bool:
    return (kind, provider) in ADAPTERS


def build_adapter(config: ChannelConfig) -> ChannelAdapter:
    try:
        adapter_class = ADAPTERS[(config.kind, config.provider)]
    except KeyError:
        raise ChannelError(f"no adapter for {config.kind}/{config.provider}") from None
    return adapter_class(config)
