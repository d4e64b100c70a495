"""Telegram ticket commands through the real webhook, the route job and the fake Bot API:
customers act on their own tickets only; the team's notification group lists and counts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.jobs.route import route_message
from inbox.kinds import ChannelKind
from inbox.models import Conversation, Message, SenderKind, Ticket, TicketEvent
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import telegram as fake

from ..conftest import PUBLIC_BASE_URL, run_jobs
from .ticket_fixtures import fresh, make_ticket

CHAT = 527401983  # the customer's private chat with the bot (= their Telegram user id)
STRANGER = 611122233
GROUP = fake.DEMO_NOTIFICATION_CHAT_ID
TEAM_ALERT_MARKS = ("🆕", "🚨", "⏰", "🔥")


@pytest.fixture
def bot(telegram):
    telegram.settings = {"notification_chat_id": str(GROUP)}
    db.session.commit()
    return telegram


@pytest.fixture
def customer(workspace, bot):
    return do_create_contact(workspace, name="Camille Martin", identities={ChannelKind.TELEGRAM: str(CHAT)},
                             preferred_channel=ChannelKind.TELEGRAM, telegram_id=str(CHAT))


def say(app, client, bot, fake_telegram, text: str, *, chat: int = CHAT, group: bool = False) -> list[dict]:
    """Send `text` to the bot as Telegram would, run the jobs, return what the bot answered."""
    before = len(fake_telegram.sent)
    update = fake.group_update(GROUP, text) if group else fake.text_update(chat, text)
    response = client.post(webhook_url(bot).removeprefix(PUBLIC_BASE_URL), data=json.dumps(update),
                           content_type="application/json", headers={fake.SECRET_HEADER: fake.DEMO_WEBHOOK_SECRET})
    assert response.status_code == 200
    run_jobs(app)
    db.session.rollback()
    # The team's group also hears of new tickets (inbox/actions/team_alerts.py): not an answer.
    return [m for m in fake_telegram.sent[before:] if not m.get("text", "").startswith(TEAM_ALERT_MARKS)]


def test_a_customer_opens_follows_answers_and_closes_a_ticket_by_commands(app, client, bot, customer, fake_telegram):
    [answer] = say(app, client, bot, fake_telegram, "/ticket_create Facture en double\nDébitée deux fois en mars")
    assert answer["chat"]["id"] == CHAT and "TKT-000001" in answer["text"]
    [alert] = [m for m in fake_telegram.sent if m["chat"]["id"] == GROUP]
    assert alert["text"].startswith("🆕 Nouveau ticket TKT-000001 : Facture en double")
    ticket = db.session.scalar(select(Ticket))
    assert (ticket.subject, ticket.description, ticket.source, ticket.contact_id) == (
        "Facture en double", "Débitée deux fois en mars", "telegram", customer.id)
    bot_message = db.session.scalars(select(Message).where(Message.sender_kind == SenderKind.BOT)).one()
    assert bot_message.body == answer["text"] and bot_message.delivery_status == "sent"

    [view] = say(app, client, bot, fake_telegram, "/ticket_view tkt-1")
    assert "Facture en double" in view["text"] and "TKT-000001" in view["text"]

    [added] = say(app, client, bot, fake_telegram, "/ticket_reply TKT-000001 J'ai joint le relevé")
    assert "TKT-000001" in added["text"]
    said = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "customer_message")).one()
    assert said.body == "J'ai joint le relevé" and said.data["source"] == "telegram"  # recorded once, clean

    [closed] = say(app, client, bot, fake_telegram, "/ticket_close TKT-000001")
    assert "TKT-000001" in closed["text"] and fresh(Ticket, ticket.id).status == "closed"
    [refused] = say(app, client, bot, fake_telegram, "/ticket_reply TKT-000001 Encore une chose")
    assert "closed" in refused["text"].lower() or "ferm" in refused["text"].lower()


def test_a_customer_never_reaches_someone_elses_ticket(app, client, bot, workspace, customer, fake_telegram):
    stranger = do_create_contact(workspace, name="Marc Petit", identities={ChannelKind.TELEGRAM: str(STRANGER)})
    theirs = make_ticket(stranger, subject="Secret de Marc")
    for text in ("/ticket_view TKT-000001", "/ticket_reply TKT-000001 coucou", "/ticket_close TKT-000001"):
        [answer] = say(app, client, bot, fake_telegram, text)
        assert "TKT-000001" in answer["text"] and "Secret de Marc" not in answer["text"]
    assert fresh(Ticket, theirs.id).status == "open"
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.ticket_id == theirs.id)) == 1

    [which] = say(app, client, bot, fake_telegram, "/ticket_view")
    assert "TKT-000123" in which["text"]  # usage, with an example number


def test_listing_and_stats_are_for_the_team_group_only(app, client, bot, workspace, customer, fake_telegram):
    make_ticket(customer, subject="Terminal HS", priority="critical")
    make_ticket(customer, subject="Question facture")

    for command in ("/ticket_list", "/ticket_stats"):
        [refused] = say(app, client, bot, fake_telegram, command)
        assert refused["chat"]["id"] == CHAT and "Terminal HS" not in refused["text"]
        assert "/ticket_view" in refused["text"]

    [listing] = say(app, client, bot, fake_telegram, "/ticket_list", group=True)
    assert listing["chat"]["id"] == GROUP  # answered in the group, not to the member privately
    assert "TKT-000001" in listing["text"] and "TKT-000002" in listing["text"] and "Camille Martin" in listing["text"]
    [critical] = say(app, client, bot, fake_telegram, "/ticket_list critical", group=True)
    assert "TKT-000001" in critical["text"] and "TKT-000002" not in critical["text"]
    [stats] = say(app, client, bot, fake_telegram, "/ticket_stats", group=True)
    assert stats["chat"]["id"] == GROUP and "2" in stats["text"]
    [view] = say(app, client, bot, fake_telegram, "/ticket_view TKT-000002", group=True)
    assert "Question facture" in view["text"] and f"{PUBLIC_BASE_URL}/tickets/" in view["text"]
    [inbox] = say(app, client, bot, fake_telegram, "/ticket_close TKT-000002", group=True)
    assert f"{PUBLIC_BASE_URL}/tickets" in inbox["text"] and fresh(Ticket, 2).status == "open"


def test_start_help_info_and_contact_are_answered(app, client, bot, customer, fake_telegram):
    for command in ("/start", "/help", "/info"):
        [answer] = say(app, client, bot, fake_telegram, command)
        assert answer["chat"]["id"] == CHAT and answer["text"].strip()
    [human] = say(app, client, bot, fake_telegram, "/contact")
    assert human["text"].strip()
    conversation = db.session.scalar(select(Conversation).where(Conversation.contact_id == customer.id))
    assert conversation.unread_count == 1  # only /contact waits for a person
    assert "/ticket_create" in fake_telegram.sent[-3]["text"]  # /help lists the ticket commands


def test_a_command_is_answered_once_and_other_commands_are_left_alone(app, client, bot, customer, fake_telegram):
    say(app, client, bot, fake_telegram, "/help")
    command = db.session.scalars(select(Message).where(Message.sender_kind == SenderKind.CUSTOMER)).one()
    route_message(command.id)  # the route job running twice
    run_jobs(app)
    assert len(fake_telegram.sent) == 1
    assert len(say(app, client, bot, fake_telegram, "/rdv")) == 1  # appointments: answered by their own handler
    assert say(app, client, bot, fake_telegram, "Bonjour, une question") == []
