"""A customer in a real browser: asks for a sign-in link, follows it, opens a ticket with a
screenshot, reads the team's answer (never its internal note) and rates the help."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from inbox.actions.tickets import do_add_ticket_note, do_change_status
from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.mailer import get_mailer
from inbox.models import Ticket

from ..conftest import PUBLIC_BASE_URL, run_jobs

pytestmark = pytest.mark.e2e

EMAIL = "lea.petit@example.test"


def test_a_customer_signs_in_by_email_opens_a_ticket_and_rates_the_answer(page: Page, app, live_server, workspace,
                                                                         agent, email, artifacts, tmp_path):
    do_create_contact(workspace, name="Léa Petit", email=EMAIL, identities={ChannelKind.EMAIL: EMAIL})
    db.session.rollback()  # no transaction held by the test while the server writes
    get_mailer().sent.clear()

    page.goto(live_server.url + f"/portal/login?w={workspace.slug}")
    page.get_by_label(re.compile("email", re.I)).fill(EMAIL)
    page.get_by_role("button").filter(has_text=re.compile("Continu", re.I)).click()
    expect(page.locator("[role=status]")).to_contain_text(EMAIL)
    page.screenshot(path=artifacts / "portal-check-email.png", full_page=True)

    run_jobs(app)  # the sign-in job, in this process: the console mailer keeps the mail
    [mail] = [m for m in get_mailer().sent if m.to == EMAIL]
    link = re.search(r"https://\S+/portal/login/\S+", mail.body).group(0).replace(PUBLIC_BASE_URL, live_server.url)
    page.goto(link)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets$"))

    page.locator(".portal-card.empty a.btn-primary").click()
    page.locator("#subject").fill("Facture de mars illisible")
    page.locator("#description").fill("Le PDF s'ouvre en blanc, capture jointe.")
    page.locator("#category").select_option("billing")
    screenshot = tmp_path / "capture.png"
    screenshot.write_bytes(b"\x89PNG\r\n\x1a\nnot really an image")
    page.locator("#files").set_input_files(str(screenshot))
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets/\d+"))
    expect(page.locator("h1")).to_have_text("Facture de mars illisible")
    expect(page.locator(".portal-files")).to_contain_text("capture.png")
    ticket_id = int(re.search(r"/portal/tickets/(\d+)", page.url).group(1))

    db.session.rollback()
    ticket = db.session.get(Ticket, ticket_id)
    do_add_ticket_note(ticket, "Cliente fidèle, geste commercial possible", actor=agent, internal=True)
    do_add_ticket_note(ticket, "Voici la facture régénérée, elle s'ouvre correctement.", actor=agent, internal=False)
    do_change_status(ticket, "resolved", actor=agent, resolution="Facture régénérée.", notify_customer=False)
    db.session.rollback()

    page.reload()
    expect(page.locator(".pt-team")).to_contain_text("Voici la facture régénérée")
    expect(page.locator("body")).not_to_contain_text("geste commercial")
    expect(page.locator("#ticket-status")).to_have_class(re.compile("tstatus-resolved"))
    page.locator("label.rating-choice", has_text="5").click()
    page.locator("#rating-comment").fill("Rapide et clair, merci")
    page.locator("#rating form button[type=submit]").click()
    expect(page.locator("#rating")).to_contain_text("5/5")
    page.screenshot(path=artifacts / "portal-ticket.png", full_page=True)
