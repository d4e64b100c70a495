"""French for the demo workspace, English available."""

from __future__ import annotations

from inbox.extensions import db

from ..conftest import login


def test_workspace_default_locale_is_french(client, agent):
    login(client, agent)
    html = client.get("/inbox").get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Boîte de réception" in html and "Choisissez une conversation" in html


def test_an_agent_can_work_in_english(client, agent):
    agent.locale = "en"
    db.session.commit()
    login(client, agent)
    html = client.get("/inbox").get_data(as_text=True)
    assert '<html lang="en">' in html and "Pick a conversation" in html


def test_login_page_follows_the_browser_language(client):
    assert "Se connecter" in client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).get_data(as_text=True)
    assert "Log in" in client.get("/login", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
