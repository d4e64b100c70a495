"""In the browser, in French: an admin gives the Telegram bot a team group and edits its
commands (sent to the fake Bot API on save); a missed call shows in the thread with its phone
icon. Screenshots under test-artifacts/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from inbox.extensions import db
from inbox.models import Message
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox.telegram import DEMO_NOTIFICATION_CHAT_ID
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN, post_signed

from ..conftest import PUBLIC_BASE_URL, run_ingest
from ..integration.ticket_fixtures import admin  # noqa: F401
from .test_live_inbox import log_in

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_admin_sets_the_team_group_and_the_bot_commands(page: Page, live_server, admin, telegram,  # noqa: F811
                                                        fake_telegram, artifacts):
    db.session.rollback()
    log_in(page, live_server.url, admin)
    page.goto(f"{live_server.url}/settings/channels/{telegram.id}")
    commands = page.get_by_label("Commandes du bot")
    expect(commands).to_contain_text("/ticket_create Ouvrir un ticket")
    page.get_by_label(re.compile("Groupe de notification")).fill("mon groupe")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("-1001234567890")  # refused, said why

    page.get_by_label(re.compile("Groupe de notification")).fill(str(DEMO_NOTIFICATION_CHAT_ID))
    commands.fill("/start Bonjour !\n/help Ce que je sais faire\n/ticket_create Ouvrir un ticket")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    expect(page.locator(".notice.ok")).to_contain_text("Commandes du bot envoyées à Telegram.")
    assert [c["command"] for c in fake_telegram.commands] == ["start", "help", "ticket_create"]
    page.screenshot(path=str(artifacts / "channels-telegram-settings.png"), full_page=True)


def test_a_missed_call_shows_in_the_thread(page: Page, live_server, admin, twilio_voice, artifacts):  # noqa: F811
    status = json.loads((FIXTURES / "twilio_voice/call_status_completed_no_voicemail.json").read_text())
    status.pop("_source")
    public = webhook_url(twilio_voice)
    db.session.rollback()
    local = live_server.url + public.removeprefix(PUBLIC_BASE_URL)
    assert post_signed(local, status, auth_token=DEMO_AUTH_TOKEN, signed_url=public).status_code == 200
    run_ingest()
    conversation_id = db.session.scalar(select(Message.conversation_id))
    db.session.rollback()
    log_in(page, live_server.url, admin)
    page.goto(f"{live_server.url}/inbox/c/{conversation_id}")
    call = page.locator(".msg-call.msg-missed")
    expect(call).to_contain_text("Appel manqué")
    expect(call.locator("svg.ch-voice")).to_be_visible()  # the phone icon
    expect(page.locator("#conversation-list, .conv-list, main").first).to_contain_text("Appel manqué")  # the preview
    page.screenshot(path=str(artifacts / "channels-missed-call.png"), full_page=True)


def test_admin_sets_a_channels_behaviour(page: Page, live_server, admin, agent, sms_channel, artifacts):  # noqa: F811
    db.session.rollback()
    log_in(page, live_server.url, admin)
    page.goto(f"{live_server.url}/settings/channels/{sms_channel.id}")
    section = page.locator("#behaviour")
    expect(section.get_by_role("heading", name="Comportement")).to_be_visible()
    expect(section.locator("#sending-rules")).to_contain_text("à toute heure")  # shown, edited on its own page
    section.get_by_label("Toujours disponible").uncheck()
    for day in ("Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi"):
        section.get_by_label(day, exact=True).fill("09:00-12:30, 13:30-18:00")
    section.get_by_label(re.compile("dire au client quand nous répondrons")).check()
    section.get_by_label(re.compile("Transférer une copie")).fill("pas-une-adresse")
    section.get_by_role("button", name="Enregistrer le comportement").click()
    expect(page.get_by_role("alert")).to_contain_text("n’est pas une adresse e-mail")  # refused, said why

    page.locator("#behaviour").get_by_label(re.compile("Transférer une copie")).fill("chef@example.test")
    page.locator("#behaviour").get_by_label("Attribuer les nouvelles conversations de ce canal à").select_option(
        label=agent.name)
    page.locator("#behaviour").get_by_role("button", name="Enregistrer le comportement").click()
    expect(page.locator("#behaviour [role=status]")).to_contain_text("Comportement enregistré.")
    expect(page.locator("#behaviour").get_by_label("Lundi", exact=True)).to_have_value("09:00-12:30, 13:30-18:00")
    page.screenshot(path=str(artifacts / "channels-behaviour.png"), full_page=True)
    db.session.rollback()
    db.session.expire_all()
    settings = db.session.get(type(sms_channel), sms_channel.id).settings
    assert settings["forward_to"] == "chef@example.test" and settings["assign_to"] == agent.id
    assert settings["closed_reply"] is True and settings["availability"][6] == []
