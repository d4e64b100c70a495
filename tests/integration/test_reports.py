"""Reports on a small, fully known workspace: every figure is worked out by hand in the comments
and asserted exactly; the page renders them per locale, the CSV exports carry them, agents see
only their own work, and the number of queries does not grow with the data."""

from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from inbox.actions.appointments import do_answer_appointment, do_create_appointment
from inbox.actions.budgets import do_set_budget
from inbox.actions.conversations import do_add_note, do_send_reply
from inbox.actions.ratings import do_record_rating
from inbox.actions.tickets import do_change_status
from inbox.actions.timetracking import do_log_time, do_set_user_rate
from inbox.actions.workspace import do_create_contact, do_create_user
from inbox.channels.base import InboundMessage
from inbox.errors import ValidationError
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Message, Role, SaraDecision, SenderKind, TicketStatus
from inbox.models.reports import (
    ReportFilter, Window, conversion, costs, message_facts, prorated, satisfaction,
    sla_compliance, ticket_flow,
)
from inbox.models.budget import BudgetPeriod
from inbox.orchestrator.ingest import do_ingest

from ..conftest import PASSWORD, login
from .ticket_fixtures import T0, admin, contact, make_ticket  # noqa: F401

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # long after the range: every deadline has passed
RANGE = ReportFilter(start=date(2026, 3, 2), end=date(2026, 3, 15))  # two weeks, Monday to Sunday
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def bob(workspace):
    return do_create_user(workspace, email="bob@example.test", name="Bob Agent", password=PASSWORD,
                          role=Role.AGENT, hourly_cost=Decimal("30.00"))


@pytest.fixture
def thomas(workspace, email):
    return do_create_contact(workspace, name="Thomas Lefèvre", identities={ChannelKind.EMAIL: "thomas@garage.test"},
                             preferred_channel=ChannelKind.EMAIL, email="thomas@garage.test")


@pytest.fixture
def nadia(workspace, sms_channel):
    return do_create_contact(workspace, name="Nadia Benali", identities={ChannelKind.SMS: "+33699887766"},
                             preferred_channel=ChannelKind.WHATSAPP, phone="+33699887766")


def _ticket(contact, *, created, category, assignee=None, first_due, resolution_due, responded=None,
            finished=None, status=TicketStatus.RESOLVED, actor=None):
    """A ticket through the real actions, with deadlines and first response set to known values."""
    ticket = make_ticket(contact, now=created, category=category, assignee=assignee)
    ticket.first_response_due_at, ticket.resolution_due_at = created + first_due, created + resolution_due
    ticket.first_responded_at = created + responded if responded else None
    db.session.commit()
    if finished:
        do_change_status(ticket, status, actor=actor, notify_customer=False, now=created + finished)
    return ticket


@pytest.fixture
def history(app, workspace, agent, admin, bob, contact, thomas, nadia, sms_channel, email):
    """Tickets, ratings, messages, Sara's decisions, appointments, time and budgets.

    t1 billing  Mar 2 (Élodie, Alice): answered in 1 h (due 2 h), resolved in 5 h (due 4 h) → rated 4
    t2 technical Mar 3 (Élodie, Alice): answered in 3 h (due 4 h), resolved in 6 h (due 8 h) → rated 5
    t3 technical Mar 10 (Thomas, Bob): never answered, never resolved, both deadlines passed
    t4 general  Mar 11 (Thomas, nobody): closed in 2 h without an answer (due 1 h / 48 h) → rated 3
    t5 general  Feb 27 (Élodie, Bob): resolved Mar 3, outside the range when opened → rated 2
    """
    t1 = _ticket(contact, created=T0, category="billing", assignee=agent, first_due=2 * H, resolution_due=4 * H,
                 responded=H, finished=5 * H, actor=agent)
    t2 = _ticket(contact, created=T0 + D, category="technical", assignee=agent, first_due=4 * H,
                 resolution_due=8 * H, responded=3 * H, finished=6 * H, actor=agent)
    t3 = _ticket(thomas, created=T0 + 8 * D, category="technical", assignee=bob, first_due=2 * H,
                 resolution_due=24 * H)
    t4 = _ticket(thomas, created=T0 + 9 * D, category="general", first_due=H, resolution_due=48 * H,
                 finished=2 * H, status=TicketStatus.CLOSED, actor=admin)
    t5 = _ticket(contact, created=T0 - 3 * D, category="general", assignee=bob, first_due=H, resolution_due=96 * H,
                 responded=H, finished=4 * D, actor=bob)
    do_record_rating(t1, 4, "Bien", source="sms", now=T0 + 8 * H)
    do_record_rating(t2, 5, "Parfait", source="sms", now=T0 + D + 8 * H)
    do_record_rating(t5, 2, "Trop long", source="sms", now=T0 + 2 * D)
    do_record_rating(t4, 3, None, source="email", now=T0 + 10 * D)

    # Messages: Élodie twice by SMS (Alice answers the first in 30 min), Thomas by email (Sara
    # answers in 10 min), Nadia by SMS (nobody answers); a note and an old message don't count.
    def writes(channel, sender, at, body="Bonjour"):
        result = do_ingest(channel, InboundMessage(provider_message_id=f"t-{secrets.token_hex(6)}", sender=sender,
                                                   recipient=channel.address, body=body, sent_at=at))
        return db.session.get(Message, result.message_id)

    old = writes(sms_channel, "+33612345678", T0 - 10 * D)
    first = writes(sms_channel, "+33612345678", T0)
    answer = do_send_reply(first.conversation, "Nous regardons.", actor=agent, channel=sms_channel)
    answer.created_at = T0 + 30 * timedelta(minutes=1)
    do_add_note(first.conversation, "Note interne", actor=agent)
    writes(sms_channel, "+33612345678", T0 + 2 * H)
    mail = writes(email, "thomas@garage.test", T0 + 8 * D)
    bot = do_send_reply(mail.conversation, "Voici nos horaires.", actor=agent, channel=email)
    bot.created_at, bot.sender_kind, bot.sender_user_id = T0 + 8 * D + 10 * timedelta(minutes=1), SenderKind.BOT, None
    sms = writes(sms_channel, "+33699887766", T0 + 9 * D)
    for message, kind in ((mail, "auto_reply"), (sms, "escalate"), (old, "escalate")):
        db.session.add(SaraDecision(workspace_id=workspace.id, message_id=message.id,
                                    conversation_id=message.conversation_id, kind=kind, category="general",
                                    priority="medium", language="fr", confidence=0.9, reason="test",
                                    engine="offline", model="test", created_at=message.created_at))
    db.session.commit()

    # Appointments: one confirmed (Mar 5), one cancelled (Mar 12), one after the range.
    for starts, confirmed in ((T0 + 3 * D, True), (T0 + 10 * D, False), (T0 + 20 * D, None)):
        appointment = do_create_appointment(contact, starts_at=starts, agent=agent)
        if confirmed is not None:
            do_answer_appointment(appointment, confirmed=confirmed, now=starts - D)

    # Time: Alice 40 €/h until Mar 8, 50 €/h from Mar 9; Camille 55 €/h; Bob 30 €/h.
    do_set_user_rate(agent, Decimal("50.00"), effective_from=date(2026, 3, 9), actor=admin)
    do_log_time(t1, user=agent, minutes=90, work_date=date(2026, 3, 2))  # 60.00
    do_log_time(t1, user=admin, minutes=30, work_date=date(2026, 3, 9))  # 27.50
    do_log_time(t3, user=bob, minutes=60, work_date=date(2026, 3, 10))  # 30.00
    do_log_time(t2, user=agent, minutes=60, work_date=date(2026, 3, 12))  # 50.00
    do_log_time(t5, user=agent, minutes=30, work_date=date(2026, 2, 28))  # before the range
    do_set_budget(contact, period=BudgetPeriod.MONTH, amount="310", actor=admin)  # 14 of 31 days: 140.00
    do_set_budget(thomas, period=BudgetPeriod.QUARTER, amount="900", actor=admin)  # 14 of 90 days: 140.00
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5}


def _window(f: ReportFilter = RANGE) -> Window:
    return Window.of(f, "Europe/Paris")


def test_tickets_opened_and_closed_per_week_with_their_mean_times(history, workspace):
    flow = ticket_flow(workspace.id, RANGE, _window())
    assert flow.unit == "week"
    assert [(p.start, p.end, p.opened, p.closed) for p in flow.periods] == [
        (date(2026, 3, 2), date(2026, 3, 9), 2, 3),  # t1, t2 opened; t1, t2, t5 resolved
        (date(2026, 3, 9), date(2026, 3, 16), 2, 1),  # t3, t4 opened; t4 closed
    ]
    assert [(p.first_response_minutes, p.resolution_minutes) for p in flow.periods] == [(120, 330), (None, 120)]
    assert (flow.opened, flow.closed, flow.first_response_minutes, flow.resolution_minutes) == (4, 4, 120, 260)
    assert (flow.responded, flow.resolved) == (2, 3)
    # Narrowed to a category, a client, an agent, a channel.
    technical = ticket_flow(workspace.id, RANGE.__class__(**{**_args(RANGE), "category": "technical"}), _window())
    assert (technical.opened, technical.resolution_minutes) == (2, 360)
    alice = ticket_flow(workspace.id, ReportFilter(RANGE.start, RANGE.end, agent_id=history["t1"].assignee_id), _window())
    assert (alice.opened, alice.closed, alice.first_response_minutes) == (2, 2, 120)
    by_email = ticket_flow(workspace.id, ReportFilter(RANGE.start, RANGE.end, channel=ChannelKind.EMAIL), _window())
    assert by_email.opened == 0  # no ticket was discussed in an email conversation


def _args(f: ReportFilter) -> dict:
    return {"start": f.start, "end": f.end, "channel": f.channel, "agent_id": f.agent_id, "category": f.category,
            "contact_id": f.contact_id}


def test_sla_compliance_per_category(history, workspace):
    sla = sla_compliance(workspace.id, RANGE, _window(), now=NOW)
    rows = {r.category: (r.first_response_met, r.first_response_missed, r.resolution_met, r.resolution_missed)
            for r in sla.rows}
    assert rows == {"general": (0, 1, 1, 0), "billing": (1, 0, 0, 1), "technical": (1, 1, 1, 1),
                    "bug_report": (0, 0, 0, 0), "account": (0, 0, 0, 0), "suggestion": (0, 0, 0, 0)}
    assert (sla.total.first_response_rate, sla.total.resolution_rate) == (Decimal("0.500"), Decimal("0.500"))
    assert sla.rows[4].first_response_rate is None  # nothing to measure is not 0 %


def test_satisfaction_per_agent_with_distribution_and_comments(history, workspace, agent, bob):
    result = satisfaction(workspace.id, RANGE, _window())
    assert [(a.name, a.count, a.mean, {s: n for s, n in a.distribution.items() if n}) for a in result.agents] == [
        ("Alice Agent", 2, Decimal("4.50"), {4: 1, 5: 1}),
        ("Bob Agent", 1, Decimal("2.00"), {2: 1}),
        ("", 1, Decimal("3.00"), {3: 1}),  # the page says "no agent" in the reader's language
    ]
    assert (result.total.count, result.total.mean) == (4, Decimal("3.50"))
    assert [(c.comment, c.score, c.agent_name) for c in result.comments] == [
        ("Trop long", 2, "Bob Agent"), ("Parfait", 5, "Alice Agent"), ("Bien", 4, "Alice Agent")]
    mine = satisfaction(workspace.id, ReportFilter(RANGE.start, RANGE.end, agent_id=bob.id), _window())
    assert [(a.name, a.count) for a in mine.agents] == [("Bob Agent", 1)] and len(mine.comments) == 1


def test_messages_per_channel_response_rate_and_time(history, workspace):
    activity = message_facts(workspace.id, RANGE, _window()).channels
    rows = {r.kind: (r.received, r.sent, r.answered, r.response_minutes) for r in activity.rows if r.received or r.sent}
    assert rows == {"sms": (3, 1, 1, 30), "email": (1, 1, 1, 10)}
    assert (activity.total.received, activity.total.sent, activity.total.answered) == (4, 2, 2)
    assert activity.total.response_minutes == 20 and activity.total.response_rate == Decimal("0.500")
    assert activity.rows[1].response_rate == Decimal("0.333")  # SMS: 1 of 3


def test_conversion_preferred_channels_and_appointments(history, workspace, contact):
    result = conversion(workspace.id, RANGE, _window())
    assert (result.conversations, result.by_bot, result.by_people, result.unanswered) == (3, 1, 1, 1)
    assert result.decisions == {"auto_reply": 1, "collect": 0, "escalate": 1, "hand_to_human": 0}
    assert (result.appointments["confirmed"], result.appointments["cancelled"], result.appointments["scheduled"]) == (1, 1, 0)
    assert result.appointments_confirmed_rate == Decimal("0.500") and result.bot_rate == Decimal("0.333")
    assert message_facts(workspace.id, RANGE, _window()).preferred == {
        "voice": 0, "sms": 1, "email": 1, "whatsapp": 1, "telegram": 0, "": 0}
    only_elodie = ReportFilter(RANGE.start, RANGE.end, contact_id=contact.id)
    assert conversion(workspace.id, only_elodie, _window()).conversations == 1


def test_cost_per_client_ticket_and_week_against_prorated_budgets(history, workspace, agent):
    result = costs(workspace.id, RANGE, _window())
    assert result.currency == "EUR"
    assert [(c.name, c.minutes, c.cost, c.tickets, c.cost_per_ticket, c.budget, c.budget_used) for c in result.clients] == [
        ("Élodie Fournier", 180, Decimal("137.50"), 2, Decimal("68.75"), Decimal("140.00"), Decimal("0.982")),
        ("Thomas Lefèvre", 60, Decimal("30.00"), 1, Decimal("30.00"), Decimal("140.00"), Decimal("0.214")),
    ]
    assert (result.minutes, result.cost, result.tickets, result.cost_per_ticket, result.budget) == (
        240, Decimal("167.50"), 3, Decimal("55.83"), Decimal("280.00"))
    assert [(p.start, p.cost, p.budget) for p in result.periods] == [
        (date(2026, 3, 2), Decimal("60.00"), Decimal("140.00")),
        (date(2026, 3, 9), Decimal("107.50"), Decimal("140.00"))]
    alice = costs(workspace.id, ReportFilter(RANGE.start, RANGE.end, agent_id=agent.id), _window())
    assert [(c.name, c.cost) for c in alice.clients if c.cost] == [("Élodie Fournier", Decimal("110.00"))]


def test_budgets_are_prorated_over_the_periods_a_range_crosses():
    assert prorated(BudgetPeriod.MONTH, Decimal("310"), date(2026, 3, 1), date(2026, 4, 1)) == Decimal("310")
    # 10 days of February (28 days) and 5 of March (31 days).
    assert round(prorated(BudgetPeriod.MONTH, Decimal("280"), date(2026, 2, 19), date(2026, 3, 6)), 2) == Decimal("145.16")
    assert prorated(BudgetPeriod.YEAR, Decimal("365"), date(2026, 12, 31), date(2027, 1, 2)) == Decimal("2")


def test_long_ranges_are_monthly_and_bad_dates_are_refused(app):
    today = date(2026, 11, 22)
    f = ReportFilter.from_args({"start": "2026-01-01", "end": "2026-11-22"}, today=today)
    w = Window.of(f, "Europe/Paris")
    assert w.unit == "month" and w.buckets[:2] == (date(2026, 1, 1), date(2026, 2, 1)) and len(w.buckets) == 11
    assert ReportFilter.from_args({}, today=today) == ReportFilter(date(2026, 9, 28), today)
    assert ReportFilter.from_args({"channel": "fax", "agent": "x", "category": "?"}, today=today).channel is None
    for bad in ({"start": "2026-13-01"}, {"start": "2026-11-22", "end": "2026-11-01"},
                {"start": "2020-01-01", "end": "2026-01-01"}):
        with pytest.raises(ValidationError):
            ReportFilter.from_args(bad, today=today)


# -- pages and exports -------------------------------------------------------------------------------
RANGE_ARGS = "start=2026-03-02&end=2026-03-15"


def test_admin_reads_the_reports_in_french_with_charts_tables_and_money(history, client, admin):
    login(client, admin)
    response = client.get(f"/reports?{RANGE_ARGS}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Tickets ouverts et fermés" in html and "Du 2 mars 2026 au 15 mars 2026" in html
    assert html.count("<svg viewBox") >= 8 and html.count("<desc id=") >= 8
    assert "4 tickets ouverts et 4 fermés" in html  # the chart's description, for screen readers
    assert "137,50\u00a0€" in html and "68,75\u00a0€" in html  # money per locale
    assert "98\u00a0%" in html  # Élodie's budget used
    assert "Trop long" in html and "Satisfaction par agent" in html
    assert "Coût du support" in html
    fragment = client.get(f"/reports?{RANGE_ARGS}&category=technical", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith("{#") is False and 'id="report-body"' in body and "<html" not in body


def test_reports_in_english_format_numbers_the_english_way(history, client, admin):
    admin.locale = "en"
    db.session.commit()
    login(client, admin)
    html = client.get(f"/reports?{RANGE_ARGS}").get_data(as_text=True)
    assert "From March 2, 2026 to March 15, 2026" in html
    assert "€137.50" in html and "98%" in html


def test_agents_see_their_own_figures_and_not_the_costs(history, client, bob):
    login(client, bob)
    html = client.get(f"/reports?{RANGE_ARGS}&agent={history['t1'].assignee_id}").get_data(as_text=True)
    assert "Vos chiffres" in html
    assert "Trop long" in html and "Parfait" not in html  # Bob's rating only, whatever the URL says
    assert "Coût du support" not in html
    assert client.get(f"/reports/costs.csv?{RANGE_ARGS}").status_code == 403
    assert client.get(f"/reports/nonsense.csv?{RANGE_ARGS}").status_code == 404
    assert client.get("/reports?start=2026-03-20&end=2026-03-01").status_code == 422


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_csv_exports_carry_the_exact_figures(history, client, admin):
    login(client, admin)
    flow = client.get(f"/reports/tickets.csv?{RANGE_ARGS}")
    assert "coccinelle-tickets-2026-03-02-2026-03-15.csv" in flow.headers["Content-Disposition"]
    assert _csv(flow) == [
        ["Début de période", "Fin de période", "Tickets ouverts", "Tickets fermés", "Première réponse moyenne (minutes)",
         "Résolution moyenne (minutes)"],
        ["2026-03-02", "2026-03-09", "2", "3", "120", "330"],
        ["2026-03-09", "2026-03-16", "2", "1", "", "120"]]
    assert _csv(client.get(f"/reports/costs.csv?{RANGE_ARGS}"))[1:] == [
        ["Élodie Fournier", "180", "137.50", "2", "68.75", "140.00", "0.982", "EUR"],
        ["Thomas Lefèvre", "60", "30.00", "1", "30.00", "140.00", "0.214", "EUR"],
        ["Total", "240", "167.50", "3", "55.83", "280.00", "0.598", "EUR"]]
    assert _csv(client.get(f"/reports/satisfaction.csv?{RANGE_ARGS}"))[-1] == ["Tous les agents", "4", "3.50", "0", "1", "1", "1", "1"]
    assert _csv(client.get(f"/reports/channels.csv?{RANGE_ARGS}"))[2] == ["sms", "3", "1", "1", "0.333", "30"]
    assert ["answered_by_sara_alone", "1"] in _csv(client.get(f"/reports/conversion.csv?{RANGE_ARGS}"))
    assert _csv(client.get(f"/reports/comments.csv?{RANGE_ARGS}"))[1][1:] == ["TKT-000005", "Bob Agent", "2", "Trop long"]
    assert _csv(client.get(f"/reports/sla.csv?{RANGE_ARGS}"))[-1] == ["Total", "2", "2", "2", "2"]
    assert _csv(client.get(f"/reports/cost-periods.csv?{RANGE_ARGS}"))[1] == [
        "2026-03-02", "2026-03-09", "90", "60.00", "140.00", "EUR"]


def _statements(client, url: str) -> list[str]:
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return statements


def _selects(client, url: str) -> int:
    return len([s for s in _statements(client, url) if s.lstrip().upper().startswith("SELECT")])


def test_the_reports_page_reads_the_ranges_messages_once(history, client, admin):
    """Channels, conversion and preferred channels come from one grouped pass over the messages."""
    login(client, admin)
    reading_messages = [s for s in _statements(client, f"/reports?{RANGE_ARGS}") if re.search(r"\bFROM message\b", s)]
    assert len(reading_messages) == 1, reading_messages


def test_the_reports_page_runs_the_same_number_of_queries_whatever_the_data(history, client, admin, contact, agent):
    login(client, admin)
    url = f"/reports?{RANGE_ARGS}"
    before = _selects(client, url)
    for i in range(12):  # three times more tickets, with time and ratings
        ticket = _ticket(contact, created=T0 + i * H, category="account", assignee=agent, first_due=H,
                         resolution_due=2 * H, responded=H / 2, finished=H + i * timedelta(minutes=5), actor=agent)
        do_log_time(ticket, user=agent, minutes=10 + i, work_date=date(2026, 3, 3 + i % 10))
        do_record_rating(ticket, 1 + i % 5, f"Commentaire {i}", now=T0 + 2 * D)
    db.session.rollback()
    assert _selects(client, url) == before
    assert before <= 30, before  # every report: one to four grouped queries
    assert _selects(client, f"/reports/costs.csv?{RANGE_ARGS}") <= 10


def test_the_demo_workspace_has_weeks_of_history_to_report_on(app):
    from seed import seed_demo

    from inbox.actions.timetracking import local_today
    from inbox.models import Workspace

    seed_demo()
    workspace = db.session.scalar(select(Workspace))
    f = ReportFilter.default(local_today(workspace.id))
    w = Window.of(f, workspace.timezone)
    flow = ticket_flow(workspace.id, f, w)
    assert sum(1 for p in flow.periods if p.opened and p.closed) >= 6
    assert satisfaction(workspace.id, f, w).total.count >= 10
    spend = costs(workspace.id, f, w)
    assert spend.cost > 0 and spend.budget > 0 and len([c for c in spend.clients if c.budget]) >= 3
