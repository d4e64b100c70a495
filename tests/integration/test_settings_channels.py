"""Admins configure channels: credentials stored encrypted, shown masked, replaceable; agents get 403."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from inbox.actions.workspace import do_create_user
from inbox.extensions import db
from inbox.models import Channel, Role
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

from ..conftest import PASSWORD, login


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Ada Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("50"))


def test_agents_get_a_clear_403(client, agent):
    login(client, agent)
    response = client.get("/settings/channels")
    assert response.status_code == 403
    assert "403" in response.get_data(as_text=True)


def test_admin_adds_an_sms_channel_and_sees_its_webhook_url(client, admin):
    login(client, admin)
    response = client.post("/settings/channels/new?kind=sms&provider=twilio", data={
        "name": "SMS Lyon", "address": "+33478000000",
        "account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN})
    assert response.status_code == 302
    channel = db.session.scalar(select(Channel))
    assert channel.credentials == {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}
    page = client.get("/settings/channels").get_data(as_text=True)
    assert f"https://support.example.test/webhooks/twilio/sms/{channel.public_id}" in page
    form = client.get(f"/settings/channels/{channel.id}").get_data(as_text=True)
    assert DEMO_AUTH_TOKEN not in form and "0001" in form  # masked: only the last characters


def test_blank_secret_keeps_it_and_a_new_one_replaces_it(client, admin, sms_channel):
    login(client, admin)
    data = {"name": "SMS", "address": sms_channel.address, "account_sid": DEMO_ACCOUNT_SID, "auth_token": ""}
    assert client.post(f"/settings/channels/{sms_channel.id}", data=data).status_code == 302
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Channel, sms_channel.id).credentials["auth_token"] == DEMO_AUTH_TOKEN
    assert client.post(f"/settings/channels/{sms_channel.id}", data={**data, "auth_token": "new-token-123"}).status_code == 302
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Channel, sms_channel.id).credentials["auth_token"] == "new-token-123"


def test_missing_field_is_refused_and_changes_nothing(client, admin, sms_channel):
    login(client, admin)
    response = client.post(f"/settings/channels/{sms_channel.id}",
                           data={"name": "Renamed", "address": "", "account_sid": DEMO_ACCOUNT_SID})
    assert response.status_code == 422
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Channel, sms_channel.id).name == "SMS"


def test_test_connection_calls_the_provider(client, admin, sms_channel, fake_twilio):
    login(client, admin)
    ok = client.post(f"/settings/channels/{sms_channel.id}/test").get_data(as_text=True)
    assert "Coccinelle sandbox" in ok
    client.post(f"/settings/channels/{sms_channel.id}", data={
        "name": "SMS", "address": sms_channel.address, "account_sid": DEMO_ACCOUNT_SID, "auth_token": "wrong-token"})
    failed = client.post(f"/settings/channels/{sms_channel.id}/test").get_data(as_text=True)
    assert "401" in failed


def test_disabled_channel_refuses_webhooks(client, admin, sms_channel):
    from ..helpers import inbound, signed_post

    assert signed_post(client, sms_channel, inbound()).status_code == 200  # the door now holds the channel
    login(client, admin)
    assert client.post(f"/settings/channels/{sms_channel.id}/enabled", data={"enabled": "0"}).status_code == 200
    assert signed_post(client, sms_channel, inbound()).status_code == 404


def test_a_new_auth_token_is_the_only_one_the_door_accepts_at_once(client, admin, sms_channel):
    from ..helpers import inbound, signed_post

    assert signed_post(client, sms_channel, inbound(body="Avant")).status_code == 200
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}", data={
        "name": "SMS", "address": sms_channel.address, "account_sid": DEMO_ACCOUNT_SID, "auth_token": "rotated-token"})

    assert signed_post(client, sms_channel, inbound(body="Ancien")).status_code == 403
    assert signed_post(client, sms_channel, inbound(body="Nouveau"), token="rotated-token").status_code == 200
