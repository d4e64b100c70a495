"""The home dashboard: counts, my tickets and the KPIs against their targets, in words as well as
colours; the fragment the page re-fetches when a ticket event arrives; bounded queries."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from inbox.actions.ratings import do_record_rating
from inbox.actions.tickets import do_change_status
from inbox.broker import redis_client, workspace_channel
from inbox.extensions import db
from inbox.models import TicketStatus, utcnow
from inbox.models.reports import dashboard

from ..conftest import login
from ..helpers import recorded_statements
from .ticket_fixtures import admin, contact, make_ticket  # noqa: F401

H = timedelta(hours=1)


@pytest.fixture
def board_data(app, workspace, agent, admin, contact):
    """a: critical, unassigned, first answer due in 2 h (at risk); b: Alice's, resolution 1 h late;
    c: Alice's, due in 3 days; d: resolved in 24 h of its 48 h, answered in 2 h, rated 5."""
    now = utcnow()
    tickets = {}
    for key, created, priority, assignee, fr_due, res_due, responded in (
            ("a", now - H, "critical", None, 3 * H, 24 * H, None),
            ("b", now - 30 * H, "high", agent, 4 * H, 29 * H, H),
            ("c", now - H, "medium", agent, 72 * H, 96 * H, None),
            ("d", now - 72 * H, "low", agent, 4 * H, 48 * H, 2 * H)):
        t = make_ticket(contact, now=created, priority=priority, assignee=assignee, subject=f"Ticket {key}")
        t.first_response_due_at, t.resolution_due_at = created + fr_due, created + res_due
        t.first_responded_at = created + responded if responded else None
        db.session.commit()
        tickets[key] = t
    do_change_status(tickets["d"], TicketStatus.RESOLVED, actor=agent, notify_customer=False, now=now - 48 * H)
    do_record_rating(tickets["d"], 5, "Merci", now=now - 47 * H)
    return now, tickets


def test_dashboard_counts_and_targets_from_known_tickets(board_data, workspace, agent):
    now, tickets = board_data
    board = dashboard(workspace.id, user_id=agent.id, now=now)
    assert (board.open, board.unassigned, board.critical, board.at_risk, board.breached, board.mine) == (3, 1, 1, 1, 1, 2)
    assert [t.subject for t in board.my_tickets] == ["Ticket b", "Ticket c"]  # the nearest deadline first
    assert {t.key: (t.value, t.met) for t in board.targets} == {
        "first_response": (90, True),  # (60 + 120) / 2 minutes, under 4 h
        "resolution": (1440, True),  # 24 h on average, the SLA allowed 48 h
        "satisfaction": (Decimal("5.0"), True),
        "unassigned": (1, False),
        "critical": (1, False),
    }
    assert board.missed == 2


def test_admin_sees_the_dashboard_with_missed_targets_in_words(board_data, client, admin):
    login(client, admin)
    html = client.get("/dashboard").get_data(as_text=True)
    assert "<h1>Tableau de bord</h1>" in html and 'aria-current="page">Tableau de bord</a>' in html
    assert 'id="count-unassigned"' in html and "dash-alarm" in html
    assert html.count(">Manqué<") == 2 and html.count(">Atteint<") == 3
    assert "objectif : moins de 4 h 00" in html and "Ticket b" not in html  # my tickets: the admin has none
    fragment = client.get("/dashboard", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith("{#") is False and "<html" not in fragment
    assert 'id="dashboard-live"' in fragment and "sse:ticket-changed" in fragment


def test_agent_sees_their_tickets_in_english(board_data, client, agent):
    agent.locale = "en"
    db.session.commit()
    login(client, agent)
    html = client.get("/dashboard").get_data(as_text=True)
    assert "Ticket b" in html and "Ticket c" in html and "Ticket a" not in html
    assert ">Missed<" in html and "target under 4 h 00" in html and "5.0/5" in html


def test_a_new_ticket_tells_open_dashboards_to_refresh(board_data, contact):
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(workspace_channel(contact.workspace_id))
    make_ticket(contact, now=utcnow(), priority="critical", subject="Panne totale")
    events, deadline = [], time.monotonic() + 3
    while "ticket-changed" not in events and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)  # None also for the subscription's confirmation
        if message is not None:
            events.append(json.loads(message["data"])["type"])
    pubsub.close()
    assert "ticket-changed" in events


def test_dashboard_queries_do_not_grow_with_the_tickets(board_data, client, admin, agent, contact):
    login(client, admin)

    def selects() -> int:
        with recorded_statements() as statements:
            assert client.get("/dashboard").status_code == 200
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    make_ticket(contact, now=utcnow(), assignee=admin, subject="Le mien")  # "my tickets" is not empty
    db.session.rollback()
    before = selects()
    for i in range(10):
        make_ticket(contact, now=utcnow() - i * H, assignee=admin if i % 2 else agent, subject=f"Plus {i}")
    db.session.rollback()
    assert selects() == before and before <= 12, before
