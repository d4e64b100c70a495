"""An admin adds a Telegram bot: it is pointed at its webhook URL, with the channel's secret, at
once; a button registers it again after a change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from inbox.actions.workspace import do_create_user
from inbox.extensions import db
from inbox.models import Channel, Role
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import telegram as telegram_fake

from ..conftest import PASSWORD, login


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Ada Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("50"))


def test_creating_a_telegram_channel_sets_its_webhook_with_the_secret(client, admin, fake_telegram):
    login(client, admin)
    response = client.post("/settings/channels/new?kind=telegram&provider=telegram", data={
        "name": "Bot", "address": "@" + telegram_fake.DEMO_BOT_USERNAME,
        "bot_token": telegram_fake.DEMO_BOT_TOKEN, "webhook_secret": telegram_fake.DEMO_WEBHOOK_SECRET})
    assert response.status_code == 302 and "webhook=ok" in response.headers["Location"]
    channel = db.session.scalar(select(Channel))
    assert fake_telegram.webhook["url"] == webhook_url(channel)
    assert fake_telegram.webhook["secret_token"] == telegram_fake.DEMO_WEBHOOK_SECRET


def test_the_button_registers_again_and_reports_a_refusal(client, admin, telegram, fake_telegram):
    login(client, admin)
    ok = client.post(f"/settings/channels/{telegram.id}/telegram-webhook", headers={"HX-Request": "true"})
    assert ok.status_code == 200 and webhook_url(telegram) in ok.get_data(as_text=True)
    assert fake_telegram.webhook["url"] == webhook_url(telegram)

    fake_telegram.fail_next(status=401, description="Unauthorized", method="getMe")
    refused = client.post(f"/settings/channels/{telegram.id}/telegram-webhook", headers={"HX-Request": "true"})
    assert refused.status_code == 200 and "form-error" in refused.get_data(as_text=True)


def test_enabling_a_telegram_channel_registers_its_webhook(client, admin, telegram, fake_telegram):
    login(client, admin)
    client.post(f"/settings/channels/{telegram.id}/enabled", data={"enabled": "0"})
    assert fake_telegram.webhook is None
    response = client.post(f"/settings/channels/{telegram.id}/enabled", data={"enabled": "1"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "toast" in response.headers.get("HX-Trigger", "")
    assert fake_telegram.webhook["url"] == webhook_url(telegram)


def test_the_channel_page_offers_the_button(client, admin, telegram):
    login(client, admin)
    page = client.get(f"/settings/channels/{telegram.id}").get_data(as_text=True)
    assert f"/settings/channels/{telegram.id}/telegram-webhook" in page


def test_agents_cannot_register_webhooks(client, agent, telegram, fake_telegram):
    login(client, agent)
    assert client.post(f"/settings/channels/{telegram.id}/telegram-webhook").status_code == 403
    assert fake_telegram.webhook is None
