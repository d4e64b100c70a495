"""An admin edits a Telegram bot's commands in the channel's settings: the list is checked
against Telegram's rules, sent with setMyCommands through python-telegram-bot to the fake Bot
API, and the bot answers what the list keeps; a command taken off is no longer advertised."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from inbox.actions.workspace import do_create_user
from inbox.extensions import db
from inbox.models import Channel, Message, Role, SenderKind
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import telegram as fake

from ..conftest import PASSWORD, PUBLIC_BASE_URL, login, run_jobs

CHAT = 527401983


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Ada Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("50"))


def form(channel, commands: str, **extra) -> dict:
    return {"name": channel.name, "address": channel.address, "bot_token": "", "webhook_secret": "",
            "notification_chat_id": "", "bot_commands": commands, **extra}


def stored(channel) -> Channel:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Channel, channel.id)


def say(app, client, channel, fake_telegram, text: str) -> list[dict]:
    """A customer writes `text` to the bot in private; what the bot answered."""
    db.session.rollback()
    before = len(fake_telegram.sent)
    response = client.post(webhook_url(channel).removeprefix(PUBLIC_BASE_URL),
                           data=json.dumps(fake.text_update(CHAT, text)), content_type="application/json",
                           headers={fake.SECRET_HEADER: fake.DEMO_WEBHOOK_SECRET})
    assert response.status_code == 200
    run_jobs(app)
    db.session.rollback()
    return fake_telegram.sent[before:]


def test_the_form_offers_the_default_commands_in_the_workspace_language(client, admin, telegram):
    login(client, admin)
    page = client.get(f"/settings/channels/{telegram.id}").get_data(as_text=True)
    assert "Commandes du bot" in page and "/ticket_create Ouvrir un ticket" in page
    assert "/ticket_list" not in page.split('name="bot_commands"')[1].split("</textarea>")[0]  # the team's, not advertised


def test_saving_sends_the_list_and_the_bot_answers_only_what_it_keeps(app, client, admin, telegram, fake_telegram):
    login(client, admin)
    commands = "/start Bonjour\n/help — Ce que je sais faire\nticket_create: Ouvrir un ticket\n/horaires Nos horaires"
    response = client.post(f"/settings/channels/{telegram.id}", data=form(telegram, commands))
    assert response.status_code == 302 and "commands=ok" in response.headers["Location"]
    assert fake_telegram.commands == [
        {"command": "start", "description": "Bonjour"}, {"command": "help", "description": "Ce que je sais faire"},
        {"command": "ticket_create", "description": "Ouvrir un ticket"},
        {"command": "horaires", "description": "Nos horaires"}]
    assert [c["command"] for c in stored(telegram).settings["bot_commands"]] == [
        "start", "help", "ticket_create", "horaires"]
    assert "Commandes du bot envoyées à Telegram." in client.get(response.headers["Location"]).get_data(as_text=True)

    [answer] = say(app, client, telegram, fake_telegram, "/help")  # kept: answered by the bot
    assert answer["chat"]["id"] == CHAT and "/ticket_create" in answer["text"] and "/info" not in answer["text"]
    assert say(app, client, telegram, fake_telegram, "/info") == []  # taken off: a message for the team
    info = db.session.scalars(select(Message).where(Message.body == "/info")).one()
    assert "command" not in (info.meta or {}) and info.sender_kind == SenderKind.CUSTOMER

    # Taken off the list: no longer advertised.
    response = client.post(f"/settings/channels/{telegram.id}", data=form(telegram, "/help Aide"))
    assert response.status_code == 302
    assert fake_telegram.commands == [{"command": "help", "description": "Aide"}]
    assert client.post(f"/settings/channels/{telegram.id}", data=form(telegram, "")).status_code == 302
    assert fake_telegram.commands == [] and fake_telegram.calls[-1]["method"] == "deleteMyCommands"


@pytest.mark.parametrize("commands, message", [
    ("/Aide Aide", "n’est pas une commande valable"),
    ("/ticket-create Ouvrir", "n’est pas une commande valable"),
    ("/" + "a" * 33 + " Trop long", "n’est pas une commande valable"),
    ("/help", "donnez à /help une description de 1 à 256 caractères"),
    ("/help " + "x" * 257, "donnez à /help une description de 1 à 256 caractères"),
    ("/help Aide\n/help Encore", "Ligne 2 : /help figure deux fois"),
    ("\n".join(f"/c{i} Commande {i}" for i in range(101)), "au plus 100 commandes"),
])
def test_commands_breaking_telegrams_rules_are_refused_and_change_nothing(client, admin, telegram, fake_telegram,
                                                                          commands, message):
    login(client, admin)
    response = client.post(f"/settings/channels/{telegram.id}", data=form(telegram, commands, name="Renamed"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and message in page and 'aria-invalid="true"' in page
    channel = stored(telegram)
    assert channel.name == "Bot" and "bot_commands" not in (channel.settings or {})
    assert not any(c["method"] == "setMyCommands" for c in fake_telegram.calls)


def test_the_team_group_is_checked_and_kept(client, admin, telegram, fake_telegram):
    login(client, admin)
    bad = client.post(f"/settings/channels/{telegram.id}", data=form(telegram, "/help Aide",
                                                                   notification_chat_id="équipe support"))
    assert bad.status_code == 422 and "-1001234567890" in bad.get_data(as_text=True)
    good = client.post(f"/settings/channels/{telegram.id}", data=form(
        telegram, "/help Aide", notification_chat_id=str(fake.DEMO_NOTIFICATION_CHAT_ID)))
    assert good.status_code == 302
    assert stored(telegram).settings["notification_chat_id"] == str(fake.DEMO_NOTIFICATION_CHAT_ID)
    assert stored(telegram).credentials["bot_token"] == fake.DEMO_BOT_TOKEN  # blank secret: kept
