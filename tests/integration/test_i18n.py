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


def test_a_member_switches_their_own_language_and_back(client, agent, workspace):
    login(client, agent)
    page = client.get("/me").get_data(as_text=True)
    assert "Vos préférences" in page and '<option value="" selected>' in page
    assert client.post("/me", data={"locale": "en"}).status_code == 303
    html = client.get("/inbox").get_data(as_text=True)
    assert '<html lang="en">' in html and "Pick a conversation" in html
    assert client.post("/me", data={"locale": "de"}).status_code == 422  # refused, nothing changed
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(type(agent), agent.id).locale == "en"
    assert client.post("/me", data={"locale": ""}).status_code == 303  # back to the workspace's language
    assert '<html lang="fr">' in client.get("/inbox").get_data(as_text=True)
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(type(agent), agent.id).locale is None
    workspace_entries = client.get("/me").get_data(as_text=True)
    assert 'href="/me"' in workspace_entries  # the name in the top bar leads here


def test_dates_percentages_and_money_follow_the_reader_language(client, workspace, agent):
    from decimal import Decimal

    from inbox.actions.budgets import do_set_budget
    from inbox.actions.ticket_settings import do_add_holiday
    from inbox.actions.workspace import do_create_contact, do_create_user
    from inbox.models import Role

    from ..conftest import PASSWORD
    from .ticket_fixtures import make_ticket

    admin = do_create_user(workspace, email="admin@example.test", name="Camille Admin", password=PASSWORD,
                           role=Role.ADMIN, hourly_cost=Decimal("55.00"))
    contact = do_create_contact(workspace, name="Élodie Fournier")
    do_set_budget(contact, period="month", amount="1234.5", actor=admin)
    do_add_holiday(workspace.id, "2026-05-01", "Fête du travail", actor=admin)
    make_ticket(contact)
    login(client, admin)
    french = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "1\u202f234,50\xa0€" in french and "0\xa0%" in french  # French grouping, decimal comma, spaced %
    assert "1 mai 2026" in client.get("/tickets/settings").get_data(as_text=True)

    client.post("/me", data={"locale": "en"})
    english = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "€1,234.50" in english and "0%" in english
    assert "May 1, 2026" in client.get("/tickets/settings").get_data(as_text=True)


def test_dates_in_threads_read_as_flask_babel_writes_them_in_both_languages_and_time_zones(app, agent, workspace):
    from datetime import UTC, datetime

    from flask_babel import force_locale, format_datetime, get_timezone, refresh
    from flask_login import login_user

    from inbox.i18n import format_user_datetime

    moments = [datetime(2026, 11, 3, 12, 5, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # DST night
               datetime(2026, 7, 3, 23, 59)]  # naive: stored UTC
    for zone in ("Europe/Paris", "America/Montreal"):
        workspace.timezone = zone
        db.session.commit()
        with app.test_request_context("/"):
            login_user(agent)
            refresh()  # the test's app context (and flask_babel's cache) outlives this request
            assert str(get_timezone()) == zone
            for locale in ("fr", "en"):
                with force_locale(locale):
                    for moment in moments:
                        for fmt in ("short", "medium"):
                            assert format_user_datetime(moment, fmt) == format_datetime(moment, fmt), (zone, locale)
    assert format_user_datetime(None) == ""
