"""Accessible by construction: every form control on the main pages has a name a screen reader
announces (read from chromium's accessibility tree, as Playwright's role queries see it), and
the inbox works from the keyboard alone (j / k / Enter / r / ? and the skip link)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from inbox.actions.workspace import do_create_channel
from inbox.extensions import db
from inbox.kinds import ChannelKind, Provider
from inbox.models import Conversation

from ..helpers import inbound
from ..integration.ticket_fixtures import admin, contact, make_ticket  # noqa: F401
from .test_live_inbox import log_in, open_live_inbox, row_for

pytestmark = pytest.mark.e2e
CUSTOMER = "+33612345678"
# Roles of form controls: each must have an accessible name.
CONTROL_ROLES = ("textbox", "searchbox", "combobox", "listbox", "checkbox", "radio", "switch", "spinbutton",
                 "slider", "button")
# An aria snapshot line for a control without a name: `- textbox`, `- combobox:`, `- checkbox [checked]`.
UNNAMED = re.compile(rf"^\s*- ({'|'.join(CONTROL_ROLES)})(\s*\[[^\]]*\])*\s*(:.*)?$")


@pytest.fixture
def english(workspace):
    workspace.default_locale = "en"
    db.session.commit()


def unnamed_controls(page: Page) -> list[str]:
    """The controls of the page (folded sections opened) that have no accessible name."""
    page.wait_for_function("!document.querySelector('.htmx-request')")  # fragments loaded on "load"
    page.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
    snapshot = page.locator("body").aria_snapshot()
    return [line.strip() for line in snapshot.splitlines() if UNNAMED.match(line)]


def test_every_form_control_on_the_main_pages_has_a_label(page: Page, live_server, workspace, admin, agent, contact,
                                                          twilio, english):  # noqa: F811
    twilio.post(inbound(sender=CUSTOMER, body="Bonjour, ma commande 1042 n'est pas arrivée."))
    db.session.rollback()
    conversation = db.session.scalar(select(Conversation))
    ticket = make_ticket(contact)
    email = do_create_channel(workspace, kind=ChannelKind.EMAIL, provider=Provider.SMTP, name="Support",
                              address="support@coccinelle.test", credentials={},
                              settings={"inbound": "sendgrid", "smtp_host": "localhost"})
    ids = {"conversation": conversation.id, "ticket": ticket.id, "contact": contact.id, "agent": agent.id,
           "email": email.id, "sms": twilio.channel.id}
    db.session.rollback()
    pages = [
        "/inbox", "/inbox/c/{conversation}", "/tickets", "/tickets/{ticket}", "/tickets/new?contact_id={contact}", "/contacts",
        "/contacts/{contact}", "/contacts/{contact}/edit", "/me",
        "/settings/channels", "/settings/channels/{sms}", "/settings/channels/{email}",
        "/settings/channels/new?kind=telegram&provider=telegram", "/settings/team", "/settings/team/{agent}",
        "/settings/workspace", "/settings/audit", "/tickets/settings", "/settings/api-tokens", "/settings/sara",
        "/settings/knowledge", "/outbound/templates/new",
    ]
    log_in(page, live_server.url, admin)
    failures = {}
    for path in pages:
        url = path.format(**ids)
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        if missing := unnamed_controls(page):
            failures[url] = missing
    assert failures == {}, "controls without an accessible name"


def test_the_inbox_is_usable_with_the_keyboard(page: Page, live_server, agent, twilio, english, artifacts):
    for i, sender in enumerate(("+33611111111", "+33622222222", "+33633333333")):
        twilio.post(inbound(sender=sender, body=f"Message numéro {i + 1}"))
    log_in(page, live_server.url, agent)
    open_live_inbox(page)

    # The first Tab reaches the skip link, which jumps to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    rows = page.locator("#conv-list .row")
    expect(rows).to_have_count(3)
    page.locator("body").click(position={"x": 5, "y": 700})  # nothing focused: shortcuts are live
    page.keyboard.press("j")
    expect(rows.nth(0)).to_be_focused()
    expect(rows.nth(0)).to_have_class(re.compile(r"\bkbd-focus\b"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(2)).to_be_focused()
    page.keyboard.press("k")
    expect(rows.nth(1)).to_be_focused()
    second = rows.nth(1).get_attribute("data-conversation-id")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{second}$"))
    expect(rows.nth(1)).to_have_attribute("aria-current", "true")
    expect(page.locator("#messages")).to_contain_text("Message numéro")

    page.keyboard.press("r")
    reply = page.locator("#reply-body")
    expect(reply).to_be_focused()
    page.keyboard.type("jk")  # letters typed in the composer stay there
    expect(reply).to_have_value("jk")
    expect(page).to_have_url(re.compile(rf"/inbox/c/{second}$"))

    page.keyboard.press("Escape")
    reply.evaluate("el => el.blur()")
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Next / previous conversation")
    page.screenshot(path=artifacts / "inbox-keyboard-shortcuts.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Enter on a focused button presses that button (it does not reopen the row).
    page.get_by_role("button", name="Assign to me").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#assignee")).to_have_value(str(agent.id))
    expect(page).to_have_url(re.compile(rf"/inbox/c/{second}$"))
    # "a" and "e": assign to me is done; resolve from the keyboard.
    page.locator("#assignee").evaluate("el => el.blur()")
    page.keyboard.press("e")
    expect(page.locator("#conv-status")).to_have_text("Resolved")

    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    assert row_for(page, "Message numéro 3").count() == 1


def test_pages_reflow_at_200_percent_zoom(page: Page, live_server, admin, twilio, english, artifacts):  # noqa: F811
    """At 200 % zoom a 1366 × 800 screen is 683 × 400 CSS pixels: nothing may need a sideways scroll."""
    twilio.post(inbound(sender=CUSTOMER, body="Bonjour, ma commande 1042 n'est pas arrivée."))
    db.session.rollback()
    conversation_id = db.session.scalar(select(Conversation.id))
    db.session.rollback()
    log_in(page, live_server.url, admin)
    page.set_viewport_size({"width": 683, "height": 400})
    overflowing = {}
    for path in ("/inbox", f"/inbox/c/{conversation_id}", "/me", "/settings/channels",
                 f"/settings/channels/{twilio.channel.id}", "/settings/team", "/settings/workspace",
                 "/settings/audit"):
        page.goto(live_server.url + path)
        page.wait_for_function("!document.querySelector('.htmx-request')")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 683:
            overflowing[path] = width
    page.goto(live_server.url + f"/settings/channels/{twilio.channel.id}")
    page.screenshot(path=artifacts / "zoom-200-channel.png", full_page=True)
    assert overflowing == {}, "pages wider than the window at 200 % zoom"
