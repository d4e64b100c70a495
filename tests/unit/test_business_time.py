"""SLA deadlines count business hours only: frozen times, passed in explicitly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from inbox.business_time import (
    ALWAYS_OPEN, BusinessCalendar, format_day_openings, parse_day_openings, week_from_json, week_to_json,
)
from inbox.models.sla import DEFAULT_TARGETS, SlaScope, SlaTargets, deadlines, targets_for

PARIS = ZoneInfo("Europe/Paris")
CAL = BusinessCalendar("Europe/Paris")  # Monday–Friday 09:00–18:00


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_deadline_within_the_same_day():
    assert CAL.add(paris(2026, 3, 2, 10, 0), timedelta(hours=3)) == paris(2026, 3, 2, 13, 0)


def test_deadline_carries_over_the_night_and_the_weekend():
    friday_5pm = paris(2026, 3, 6, 17, 0)
    # 1 h left on Friday, 8 h on Monday → Monday 17:00
    assert CAL.add(friday_5pm, timedelta(hours=9)) == paris(2026, 3, 9, 17, 0)


def test_ticket_created_at_night_starts_counting_at_opening():
    assert CAL.add(paris(2026, 3, 2, 22, 30), timedelta(hours=1)) == paris(2026, 3, 3, 10, 0)
    assert CAL.add(paris(2026, 3, 7, 12, 0), timedelta(minutes=30)) == paris(2026, 3, 9, 9, 30)  # Saturday


def test_holidays_are_skipped():
    cal = BusinessCalendar("Europe/Paris", holidays=frozenset({date(2026, 5, 1)}))  # Friday, 1 May
    assert cal.add(paris(2026, 4, 30, 17, 0), timedelta(hours=2)) == paris(2026, 5, 4, 10, 0)


def test_24_business_hours_is_about_three_working_days():
    assert CAL.add(paris(2026, 3, 2, 9, 0), timedelta(hours=24)) == paris(2026, 3, 4, 15, 0)


def test_split_days_and_lunch_breaks():
    week = tuple([parse_day_openings("09:00-12:30, 13:30-18:00")] * 5 + [(), ()])
    cal = BusinessCalendar("Europe/Paris", week=week)
    assert cal.add(paris(2026, 3, 2, 12, 0), timedelta(hours=1)) == paris(2026, 3, 2, 14, 0)
    assert cal.between(paris(2026, 3, 2, 12, 0), paris(2026, 3, 2, 14, 0)) == timedelta(hours=1)
    assert not cal.is_open(paris(2026, 3, 2, 13, 0)) and cal.is_open(paris(2026, 3, 2, 13, 30))


def test_daylight_saving_change_counts_real_hours():
    always = BusinessCalendar("Europe/Paris", week=ALWAYS_OPEN)
    # Clocks go forward on 29 March 2026 at 02:00: that day has 23 hours.
    start = paris(2026, 3, 28, 12, 0)
    end = always.add(start, timedelta(hours=24))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)
    assert end.astimezone(PARIS).hour == 13


def test_result_is_utc_and_naive_input_is_refused():
    result = CAL.add(paris(2026, 3, 2, 10, 0), timedelta(hours=1))
    assert result.tzinfo == UTC and result == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 11:00 Paris
    with pytest.raises(ValueError):
        CAL.add(datetime(2026, 3, 2, 10, 0), timedelta(hours=1))


def test_between_is_the_inverse_of_add():
    start = paris(2026, 3, 5, 16, 20)
    for hours in (0.5, 3, 9, 17, 48, 72):
        end = CAL.add(start, timedelta(hours=hours))
        assert CAL.between(start, end) == timedelta(hours=hours)


def test_calendar_without_openings_is_refused():
    with pytest.raises(ValueError):
        BusinessCalendar("Europe/Paris", week=((),) * 7).add(paris(2026, 3, 2, 9, 0), timedelta(hours=1))
    with pytest.raises(ValueError):
        parse_day_openings("18:00-09:00")


def test_week_round_trips_through_json():
    week = tuple([parse_day_openings("08:30-12:00, 14:00-19:00")] * 6 + [()])
    assert week_from_json(week_to_json(week)) == week
    assert format_day_openings(week[0]) == "08:30-12:00, 14:00-19:00"
    assert week_from_json(None) == CAL.week


def test_the_stricter_of_category_and_priority_applies():
    # billing 24 h vs critical 12 h → 12 h; general 72 h vs high 24 h → 24 h; technical 48 h vs low 72 h → 48 h
    assert targets_for(DEFAULT_TARGETS, "billing", "critical").resolution == timedelta(hours=12)
    assert targets_for(DEFAULT_TARGETS, "general", "high").resolution == timedelta(hours=24)
    assert targets_for(DEFAULT_TARGETS, "technical", "low").resolution == timedelta(hours=48)
    assert targets_for(DEFAULT_TARGETS, "suggestion", "medium").first_response == timedelta(hours=12)
    custom = {**DEFAULT_TARGETS, (SlaScope.CATEGORY, "billing"): SlaTargets(timedelta(hours=1), timedelta(hours=4))}
    assert targets_for(custom, "billing", "low") == SlaTargets(timedelta(hours=1), timedelta(hours=4))


def test_deadlines_of_a_ticket_in_business_time():
    created = paris(2026, 3, 6, 16, 0)  # Friday 16:00, billing / medium → 6 h and 24 h
    first, resolution = deadlines(CAL, created, targets_for(DEFAULT_TARGETS, "billing", "medium"))
    assert first == paris(2026, 3, 9, 13, 0)  # 2 h Friday + 4 h Monday
    assert resolution == paris(2026, 3, 11, 13, 0)  # 2 + 9 + 9 + 4


def test_waiting_on_the_customer_moves_the_deadlines_by_the_paused_business_time():
    from inbox.models.sla import paused_time, resumed_deadline

    created = paris(2026, 3, 2, 10, 0)  # Monday 10:00, billing / medium → 6 h and 24 h
    targets = targets_for(DEFAULT_TARGETS, "billing", "medium")
    first, resolution = deadlines(CAL, created, targets)
    assert (first, resolution) == (paris(2026, 3, 2, 16, 0), paris(2026, 3, 4, 16, 0))
    # Waiting from Monday 14:00 to Tuesday 11:00: 4 h on Monday + 2 h on Tuesday; the night is free.
    paused = paused_time(CAL, paris(2026, 3, 2, 14, 0), paris(2026, 3, 3, 11, 0))
    assert paused == timedelta(hours=6)
    assert resumed_deadline(CAL, first, paused) == paris(2026, 3, 3, 13, 0)  # 2 h Monday + 4 h Tuesday
    assert resumed_deadline(CAL, resolution, paused) == paris(2026, 3, 5, 13, 0)  # 2 h Wednesday + 4 h Thursday
    # Recomputing from the creation with the pauses so far gives the same deadlines.
    assert deadlines(CAL, created, targets, paused=paused) == (paris(2026, 3, 3, 13, 0), paris(2026, 3, 5, 13, 0))


def test_a_pause_outside_opening_hours_moves_nothing():
    from inbox.models.sla import paused_time, resumed_deadline

    paused = paused_time(CAL, paris(2026, 3, 6, 18, 30), paris(2026, 3, 9, 8, 45))  # Friday night → Monday early
    assert paused == timedelta(0)
    assert resumed_deadline(CAL, paris(2026, 3, 9, 12, 0), paused) == paris(2026, 3, 9, 12, 0)
