"""Rules with no database: status flow, priority ladder, costs at effective-dated rates,
budget periods and thresholds, the auto-assignment choice, rating replies, references."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import Flask
from flask_babel import Babel

from inbox.actions.assignment import Candidate, choose_agent
from inbox.actions.ratings import parse_rating_reply
from inbox.errors import NotAllowed
from inbox.models.budget import crossed_thresholds, percent_used, period_bounds
from inbox.models.ticket import (
    TicketStatus, allowed_transitions, check_transition, format_reference, parse_reference, raised_priority,
)
from inbox.models.timeentry import cost_of, total_spend


@pytest.fixture
def babel_context():
    app = Flask(__name__)
    Babel(app)
    with app.app_context():
        yield


def test_status_flow_allows_the_documented_moves(babel_context):
    assert allowed_transitions(TicketStatus.OPEN) == {"in_progress", "waiting_on_customer", "resolved", "closed"}
    for current, target in [("open", "in_progress"), ("in_progress", "waiting_on_customer"),
                            ("waiting_on_customer", "in_progress"), ("in_progress", "resolved"),
                            ("resolved", "closed"), ("resolved", "open"), ("open", "closed")]:
        check_transition(current, target)  # no error


def test_illegal_transitions_are_refused_with_a_message(babel_context):
    with pytest.raises(NotAllowed, match="closed ticket"):
        check_transition("closed", "open")
    with pytest.raises(NotAllowed, match="already"):
        check_transition("resolved", "resolved")
    with pytest.raises(NotAllowed, match="Resolved.*Waiting on customer"):
        check_transition("resolved", "waiting_on_customer")


def test_priority_goes_up_one_step_and_stops_at_critical():
    assert [raised_priority(p) for p in ("low", "medium", "high", "critical")] == ["medium", "high", "critical", "critical"]


def test_references():
    assert format_reference(123) == "TKT-000123"
    assert [parse_reference(r) for r in ("TKT-000123", "tkt-123", "#123", "123", "abc", "")] == [123, 123, 123, 123, None, None]


def test_cost_is_exact_and_rounded_once():
    assert cost_of(90, Decimal("40.00")) == Decimal("60")
    # 3 × 20 min at 38.50 €/h = 3 × 12.8333… = 38.50 exactly, not 3 × 12.83
    assert total_spend([(20, Decimal("38.50"))] * 3).cost == Decimal("38.50")
    spend = total_spend([(60, Decimal("40")), (30, Decimal("55.00"))])
    assert spend.minutes == 90 and spend.cost == Decimal("67.50") and spend.hours == Decimal("1.50")


def test_budget_periods():
    assert period_bounds("month", date(2026, 12, 15)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert period_bounds("quarter", date(2026, 5, 31)) == (date(2026, 4, 1), date(2026, 7, 1))
    assert period_bounds("quarter", date(2026, 11, 2)) == (date(2026, 10, 1), date(2027, 1, 1))
    assert period_bounds("year", date(2026, 2, 28)) == (date(2026, 1, 1), date(2027, 1, 1))


def test_budget_thresholds_fire_once_each():
    amount = Decimal("1000")
    assert crossed_thresholds(Decimal("799.99"), amount) == []
    assert crossed_thresholds(Decimal("800.00"), amount) == [80]
    assert crossed_thresholds(Decimal("1200"), amount) == [80, 100]
    assert crossed_thresholds(Decimal("1200"), amount, already={80}) == [100]
    assert crossed_thresholds(Decimal("1200"), amount, already={80, 100}) == []
    assert crossed_thresholds(Decimal("5"), Decimal("0")) == []
    assert percent_used(Decimal("812.50"), amount) == Decimal("81.3")


def test_auto_assignment_picks_least_load_then_round_robin():
    t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    later = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert choose_agent([Candidate(1, 3, 10, None), Candidate(2, 1, 10, later)]) == 2  # least load
    assert choose_agent([Candidate(1, 2, 10, later), Candidate(2, 2, 10, t)]) == 2  # assigned longest ago
    assert choose_agent([Candidate(1, 2, 10, t), Candidate(2, 2, 10, None)]) == 2  # never assigned first
    assert choose_agent([Candidate(1, 5, 5, None), Candidate(2, 9, 10, t)]) == 2  # 1 is at capacity
    assert choose_agent([Candidate(1, 5, 5, None)]) is None
    assert choose_agent([]) is None


def test_rating_replies():
    assert parse_rating_reply("5") == (5, None)
    assert parse_rating_reply(" 4/5 ") == (4, None)
    assert parse_rating_reply("3 - un peu lent") == (3, "un peu lent")
    assert parse_rating_reply("5 étoiles") == (5, None)
    for text in ("6", "0", "10", "merci", "5 colis perdus", "", None):
        assert parse_rating_reply(text) is None, text
