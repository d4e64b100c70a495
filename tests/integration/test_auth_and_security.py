"""Logging in, CSRF on every form and HTMX request, session cookie flags, no open redirect."""

from __future__ import annotations

import re

from sqlalchemy import select

from inbox import create_app
from inbox.extensions import db
from inbox.models import Channel, Conversation

from ..conftest import PASSWORD, IsolatedClient
from ..helpers import inbound, signed_post


def csrf_app(app_config):
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    app.test_client_class = IsolatedClient
    return app


def token_from(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def test_login_and_htmx_posts_need_the_csrf_token(app, app_config, agent, sms_channel):
    signed_post(app.test_client(), sms_channel, inbound())  # webhooks are exempt: signed instead
    conversation = db.session.scalar(select(Conversation))
    client = csrf_app(app_config).test_client()

    refused = client.post("/login", data={"email": agent.email, "password": PASSWORD})
    assert refused.status_code == 400
    login_page = client.get("/login").get_data(as_text=True)
    ok = client.post("/login", data={"email": agent.email, "password": PASSWORD,
                                     "csrf_token": token_from(login_page)})
    assert ok.status_code == 302

    url = f"/inbox/c/{conversation.id}/reply"
    no_token = client.post(url, data={"body": "Bonjour"}, headers={"HX-Request": "true"})
    assert no_token.status_code == 400 and "toast" in no_token.headers["HX-Trigger"]
    page = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    header_token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    sent = client.post(url, data={"body": "Bonjour", "idempotency_key": "a"},
                       headers={"HX-Request": "true", "X-CSRFToken": header_token})
    assert sent.status_code == 200


def test_session_cookie_is_secure_behind_https(app_config, agent, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://support.example.test")
    app = create_app({k: v for k, v in app_config.items() if k != "PUBLIC_BASE_URL"})
    response = app.test_client().post("/login", data={"email": agent.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_never_redirects_off_site(client, agent):
    response = client.post("/login?next=https://evil.example/", data={"email": agent.email, "password": PASSWORD})
    assert response.headers["Location"] == "/inbox"
    client.post("/logout")
    response = client.post("/login?next=//evil.example/x", data={"email": agent.email, "password": PASSWORD})
    assert response.headers["Location"] == "/inbox"


def test_deactivated_agent_cannot_log_in(client, agent):
    agent.is_active_member = False
    db.session.commit()
    assert client.post("/login", data={"email": agent.email, "password": PASSWORD}).status_code == 422


def test_channel_credentials_are_encrypted_at_rest(app, sms_channel):
    raw = db.session.execute(select(Channel.credentials_encrypted)).scalar_one()
    assert "demo-auth-token" not in raw and raw.startswith("gAAAAA")  # a Fernet token
    assert db.session.get(Channel, sms_channel.id).credentials["auth_token"].startswith("demo-auth-token")
    assert "auth_token" not in repr(sms_channel)
