"""An admin keeps the dashboard open; a critical ticket arrives (an agent's tool creates it through
the REST API):
the counts and the "open critical = 0" target turn red, in words too, without a reload. The
reports page is rendered with its charts (screenshots under test-artifacts/)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

import requests

from inbox.actions.api_tokens import do_create_api_token
from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.kinds import ChannelKind

from ..integration.ticket_fixtures import admin  # noqa: F401
from .test_live_inbox import assert_never_reloaded, log_in, open_live_inbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def agent_token(workspace, agent) -> str:
    _token, secret = do_create_api_token(workspace.id, name="Outil de l'agent", user=agent)
    db.session.rollback()
    return secret


@pytest.fixture
def client_in_english(workspace, sms_channel):
    workspace.default_locale = "en"
    db.session.commit()
    contact = do_create_contact(workspace, name="Martine Roux", company="Pharmacie du Centre",
                                identities={ChannelKind.SMS: "+33611223344"}, phone="+33611223344")
    db.session.rollback()  # no transaction left open while the live server writes
    return contact


def test_admin_sees_the_dashboard_change_live_when_a_critical_ticket_arrives(
        page: Page, live_server, admin, agent_token, client_in_english, artifacts):
    log_in(page, live_server.url, admin)
    page.get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    open_live_inbox(page)
    critical = page.locator("#count-critical")
    expect(critical.locator(".dash-count-value")).to_have_text("0")
    expect(page.locator("#target-critical")).to_contain_text("Met")

    # Through the server, as another user would: the test thread writes nothing while the page is live.
    created = requests.post(f"{live_server.url}/api/tickets", headers={"Authorization": f"Bearer {agent_token}"},
                            json={"contact_id": client_in_english.id, "subject": "Terminal de paiement hors service",
                                  "priority": "critical", "category": "technical", "notify_user": False}, timeout=10)
    assert created.status_code == 201, created.text

    expect(critical.locator(".dash-count-value")).to_have_text("1")
    expect(critical).to_have_class(re.compile(r"\bdash-alarm\b"))
    expect(page.locator("#target-critical")).to_contain_text("Missed")
    expect(page.locator("#count-unassigned .dash-count-value")).to_have_text("1")
    expect(page.locator("#target-unassigned .target-status")).to_have_text("Missed")
    assert_never_reloaded(page)
    page.screenshot(path=artifacts / "dashboard-live.png", full_page=True)

    page.get_by_role("link", name="Reports").click()
    expect(page).to_have_url(re.compile(r"/reports$"))
    expect(page.locator("#chart-flow svg title").first).to_have_text(re.compile("Tickets opened and closed"))
    expect(page.locator("#report-tickets tfoot")).to_contain_text("1")
    page.locator("#report-filters select[name=category]").select_option("billing")
    expect(page).to_have_url(re.compile(r"category=billing"))  # the filters are in the URL
    expect(page.locator("#report-tickets tfoot td").first).to_have_text("0")
    page.locator("#report-filters select[name=category]").select_option("")
    expect(page.locator("#report-tickets tfoot td").first).to_have_text("1")
    page.screenshot(path=artifacts / "reports.png", full_page=True)
