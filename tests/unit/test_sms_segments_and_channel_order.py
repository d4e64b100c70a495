"""Pure rules: what an SMS costs, and in which order a contact's channels are tried."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from inbox.channels.sms_segments import count_sms, is_gsm7
from inbox.kinds import ChannelKind
from inbox.orchestrator.delivery import fallback_reason, rank_channels


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", "GSM-7", 0, 0),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),  # 153 + 8
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("Votre rendez-vous est confirmé à 9h", "GSM-7", 35, 1),  # é and à are in the basic table
    ("Prix : 12 €", "GSM-7", 12, 1),  # € takes two septets
    ("€" * 80, "GSM-7", 160, 1),
    ("€" * 81, "GSM-7", 162, 2),
    ("Ça coûte 12 €", "UCS-2", 13, 1),  # û is not GSM-7: the whole text goes UCS-2
    ("ê" * 70, "UCS-2", 70, 1),
    ("ê" * 71, "UCS-2", 71, 2),  # 67 + 4
    ("ê" * 134, "UCS-2", 134, 2),
    ("ê" * 135, "UCS-2", 135, 3),
    ("Merci 👍", "UCS-2", 8, 1),  # an emoji is two UTF-16 code units
])
def test_sms_segment_count(text, encoding, units, segments):
    count = count_sms(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_limits_per_segment_and_room_left():
    assert count_sms("a" * 10).per_segment == 160 and count_sms("a" * 10).remaining == 150
    assert count_sms("a" * 200).per_segment == 153 and count_sms("a" * 200).remaining == 106
    assert count_sms("é" * 10 + "ô").per_segment == 70
    assert is_gsm7("Bonjour {name}\n") and not is_gsm7("Œuvre")


def channel(id_, kind):
    return SimpleNamespace(id=id_, kind=ChannelKind(kind))


def test_the_channel_the_customer_last_wrote_on_comes_first():
    sms, wa, mail, tg = channel(1, "sms"), channel(2, "whatsapp"), channel(3, "email"), channel(4, "telegram")
    ranked = rank_channels([sms, wa, mail, tg], last_used_channel_id=3, preferred_kind=ChannelKind.SMS,
                           recent_channel_ids=[3, 4])
    assert [c.id for c in ranked] == [3, 1, 4, 2]  # last used, preferred, other recent, then default order


def test_without_history_the_preferred_kind_then_whatsapp_sms_telegram_email():
    sms, wa, mail, tg = channel(1, "sms"), channel(2, "whatsapp"), channel(3, "email"), channel(4, "telegram")
    assert [c.id for c in rank_channels([mail, tg, sms, wa], last_used_channel_id=None, preferred_kind=None,
                                        recent_channel_ids=[])] == [2, 1, 4, 3]
    assert [c.id for c in rank_channels([mail, tg, sms, wa], last_used_channel_id=None,
                                        preferred_kind=ChannelKind.EMAIL, recent_channel_ids=[])][0] == 3


def test_fallback_reasons_shown_in_the_thread():
    assert fallback_reason("63016") == fallback_reason("131047") == "window"
    assert fallback_reason("disabled") == "disabled" and fallback_reason("30007") == "failed"
