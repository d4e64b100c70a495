"""An agent keeps a resolved ticket open while the customer, in another browser, follows the
rating link from their email: the stars and the comment arrive on the agent's page live,
without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from inbox.actions.ratings import rating_url
from inbox.actions.tickets import do_change_status, do_create_ticket
from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Rating

from ..conftest import PUBLIC_BASE_URL
from .conftest import LIVE_TIMEOUT_MS, wait_for
from .test_live_inbox import assert_never_reloaded, log_in, open_live_inbox

pytestmark = pytest.mark.e2e

EMAIL = "lea.petit@example.test"
COMMENT = "Rapide et clair, merci !"


def test_the_agent_sees_the_customers_rating_arrive_live(page: Page, browser, browser_context_args, live_server,
                                                         workspace, agent, artifacts):
    contact = do_create_contact(workspace, name="Léa Petit", email=EMAIL, identities={ChannelKind.EMAIL: EMAIL})
    ticket = do_create_ticket(contact, subject="Facture de mars illisible", assignee=agent, actor=agent,
                              notify_customer=False)
    do_change_status(ticket, "resolved", actor=agent, resolution="Facture régénérée.", notify_customer=False)
    ticket_id, link = ticket.id, rating_url(ticket).replace(PUBLIC_BASE_URL, live_server.url)
    db.session.rollback()  # no transaction held by the test while the server writes

    log_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/tickets/{ticket_id}")
    expect(page.locator(".ticket-head h1")).to_have_text("Facture de mars illisible")
    expect(page.locator("#ticket-live .stars")).to_have_count(0)  # not rated yet
    open_live_inbox(page)  # listening to the server's events; a reload would be caught

    rate_as_customer(browser, browser_context_args, link, score=5, comment=COMMENT)
    db.session.rollback()

    # The side panel and the history both show it, on the page the agent never left.
    stars = page.locator("#ticket-live .stars")
    expect(stars).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(stars.locator("span.on")).to_have_count(5)
    expect(page.locator("#ticket-live blockquote")).to_have_text(COMMENT)
    expect(page.locator("#timeline .sysline-rating")).to_contain_text(COMMENT)
    expect(page.locator("#timeline .sysline-rating .stars span.on")).to_have_count(5)
    assert_never_reloaded(page)
    page.screenshot(path=artifacts / "ticket-rating-live.png", full_page=True)


def rate_as_customer(browser, browser_context_args, link: str, *, score: int, comment: str) -> None:
    """The customer, in a browser of their own, follows the rating link and rates; returns once stored."""
    customer = browser.new_context(**browser_context_args)
    try:
        rating_page = customer.new_page()
        rating_page.set_default_timeout(LIVE_TIMEOUT_MS)
        rating_page.goto(link)
        expect(rating_page).to_have_url(re.compile(r"/portal/rate/"))
        rating_page.locator("label.rating-choice", has_text=str(score)).click()
        rating_page.locator("#comment").fill(comment)
        rating_page.locator("form button[type=submit]").click()
        expect(rating_page.locator("[role=status]")).to_be_visible()
    finally:
        customer.close()
    wait_for(lambda: (db.session.rollback(), db.session.scalar(db.select(Rating.score)))[1] == score,
             message="the rating to be stored")
    db.session.rollback()
