"""Outbound in a real browser (htmx): an agent labels a conversation and schedules a message for
tomorrow 9:00 from the composer, then cancels it; an admin builds a segment with its live count."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from inbox.actions.labels import do_create_label
from inbox.extensions import db

from ..helpers import inbound
from ..integration.outbound_fixtures import admin, make_contact  # noqa: F401
from .conftest import LIVE_TIMEOUT_MS
from .test_live_inbox import log_in, open_live_inbox, row_for

pytestmark = pytest.mark.e2e


def test_agent_labels_a_conversation_and_schedules_a_message(page: Page, live_server, agent, workspace, twilio,
                                                            artifacts):
    do_create_label(workspace.id, name="VIP", color="#c81d32")
    db.session.rollback()
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    twilio.post(inbound(sender="+33612345678", body="Pouvez-vous me rappeler demain ?"))
    row_for(page, "me rappeler demain").click()
    expect(page.locator("#thread .thread-title")).to_have_text("+33612345678")

    # Labels: tick VIP in the picker; the control shows the chip at once.
    page.locator("#conv-labels summary").click()
    page.locator("#conv-labels").get_by_label("VIP").check()
    expect(page.locator("#conv-labels summary .label-chip")).to_have_text("VIP", timeout=LIVE_TIMEOUT_MS)

    # Send later: tomorrow 9:00 (workspace time zone).
    page.locator("#reply-body").fill("Nous vous rappelons demain matin.")
    page.locator(".send-later summary").click()
    page.locator(".send-later button[data-when=tomorrow_9]").click()
    scheduled = page.locator(".scheduled-list article.msg-scheduled", has_text="Nous vous rappelons demain matin.")
    expect(scheduled).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(scheduled).to_have_attribute("data-status", "scheduled")
    expect(page.locator("#reply-body")).to_have_value("")
    page.screenshot(path=artifacts / "outbound-scheduled.png", full_page=True)

    # Cancel it (after the confirmation).
    page.once("dialog", lambda dialog: dialog.accept())
    scheduled.get_by_role("button", name=re.compile("Cancel|Annuler")).click()
    expect(scheduled).to_have_count(0, timeout=LIVE_TIMEOUT_MS)

    # The label is a view of the inbox.
    page.locator(".views-pane label.view", has_text="VIP").click()
    expect(page).to_have_url(re.compile(r"label=\d+"))
    expect(row_for(page, "me rappeler demain")).to_be_visible()


def test_admin_segment_live_count(page: Page, live_server, admin, workspace, artifacts):  # noqa: F811
    make_contact(workspace, "Anne Boulangère", sms="+33600000001", company="Boulangerie Anne")
    make_contact(workspace, "Carl Garage", sms="+33600000003", company="Garage Carl")
    db.session.rollback()
    log_in_admin(page, live_server.url, admin)
    page.goto(live_server.url + "/outbound/segments/new")
    page.get_by_label(re.compile("Company contains|Société contient", re.I)).fill("boul")
    expect(page.locator("#segment-count strong")).to_have_attribute("data-count", "1", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#segment-count")).to_contain_text("Anne Boulangère")
    page.get_by_label(re.compile("^Name$|^Nom$")).fill("Boulangers")
    page.get_by_role("button", name=re.compile("Save segment|Enregistrer", re.I)).click()
    expect(page).to_have_url(re.compile(r"/outbound/segments$"))
    expect(page.locator("table")).to_contain_text("Boulangers")
    page.screenshot(path=artifacts / "outbound-segments.png", full_page=True)


def log_in_admin(page: Page, base_url: str, user) -> None:
    page.goto(base_url + "/login")
    page.get_by_label(re.compile("e-?mail", re.I)).fill(user.email)
    page.locator("#password").fill("correct horse battery")
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
