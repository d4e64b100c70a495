"""An agent finds a client in the CRM, creates a ticket from the client's page, assigns it, logs
time and resolves it, and sees the client's rating arrive; the client page then shows the work. Admins' team, workspace and audit
pages are rendered too (screenshots under test-artifacts/)."""

from __future__ import annotations

import contextlib
import re

import pytest
from playwright.sync_api import Page, expect

from inbox.actions.ratings import rating_url
from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Ticket

from ..conftest import PUBLIC_BASE_URL
from ..integration.ticket_fixtures import admin  # noqa: F401
from .conftest import LIVE_TIMEOUT_MS
from .test_live_inbox import assert_never_reloaded, log_in, open_live_inbox
from .test_tickets import rate_as_customer

pytestmark = pytest.mark.e2e
CUSTOMER = "+33612345678"


@pytest.fixture
def clients(workspace, sms_channel):
    workspace.default_locale = "en"
    db.session.commit()
    elodie = do_create_contact(workspace, name="Élodie Fournier", company="Boulangerie Fournier",
                               identities={ChannelKind.SMS: CUSTOMER}, preferred_channel=ChannelKind.SMS,
                               phone=CUSTOMER)
    do_create_contact(workspace, name="Thomas Lefèvre", company="Garage Lefèvre",
                      identities={ChannelKind.EMAIL: "thomas@garage-lefevre.fr"}, email="thomas@garage-lefevre.fr")
    db.session.rollback()  # no transaction left open while the live server writes
    return elodie


def test_create_a_ticket_from_the_client_page_assign_log_time_resolve_and_see_the_rating(
        page: Page, browser, browser_context_args, live_server, agent, clients, artifacts):
    log_in(page, live_server.url, agent)
    page.get_by_role("link", name="Clients").click()
    expect(page).to_have_url(re.compile(r"/contacts$"))
    page.get_by_label("Search clients").fill("boulangerie")
    expect(page).to_have_url(re.compile(r"q=boulangerie"))  # active search pushed the URL
    rows = page.locator("#contact-list a.crow")
    expect(rows).to_have_count(1)
    page.screenshot(path=artifacts / "crm-list.png", full_page=True)
    rows.first.click()

    expect(page.get_by_role("heading", name="Élodie Fournier")).to_be_visible()
    page.get_by_role("link", name="Create ticket").click()
    expect(page).to_have_url(re.compile(rf"/tickets/new\?contact_id={clients.id}$"))
    page.get_by_label("Subject").fill("Commande 4471 non livrée")
    page.locator("form.ticket-form input[name=notify][type=checkbox]").uncheck()
    page.locator("form.ticket-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+$"))
    expect(page.locator(".ticket-head")).to_contain_text("Commande 4471 non livrée")

    # Assign it.
    page.locator("#t-assignee").select_option(label="Alice Agent")
    expect(page.get_by_role("button", name="Take it")).to_have_count(0)  # the panel came back assigned to me
    expect(page.locator("#t-assignee")).to_have_value(str(agent.id))
    # Log 45 minutes.
    page.locator("#t-minutes").fill("45")
    page.locator("form.time-form button[type=submit]").click()
    expect(page.locator("#ticket-side")).to_contain_text("45 min")
    # Resolve.
    page.locator("#ticket-side summary", has_text="Resolve").click()
    resolve_form = page.locator("#ticket-side details[open] form")
    resolve_form.get_by_label("Resolution").fill("Colis relivré le lendemain.")
    resolve_form.locator("input[name=notify][type=checkbox]").uncheck()
    resolve_form.locator("button[type=submit]").click()
    expect(page.locator("#side-status")).to_contain_text("Resolved")

    # The client rates it through the link they were sent; the agent's page shows it without a reload.
    open_live_inbox(page)
    ticket_id = int(page.url.rsplit("/", 1)[1])
    ticket = db.session.get(Ticket, ticket_id)
    link = rating_url(ticket).replace(PUBLIC_BASE_URL, live_server.url)
    db.session.rollback()
    rate_as_customer(browser, browser_context_args, link, score=4, comment="Merci pour la relivraison")
    expect(page.locator("#ticket-live .stars span.on")).to_have_count(4, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#ticket-live blockquote")).to_have_text("Merci pour la relivraison")
    assert_never_reloaded(page)

    # The client page shows the ticket, its status and the time spent.
    page.goto(f"{live_server.url}/contacts/{clients.id}")
    ticket_row = page.locator("#c-tickets + .ticket-list a.trow", has_text="Commande 4471 non livrée")
    expect(ticket_row).to_contain_text("Resolved")
    expect(page.locator(".contact-grid")).to_contain_text("45 min")
    page.screenshot(path=artifacts / "crm-client.png", full_page=True)


def test_admin_pages_render(page: Page, live_server, admin, agent, clients, artifacts):  # noqa: F811
    log_in(page, live_server.url, admin)
    page.goto(f"{live_server.url}/settings/team")
    expect(page.locator(f"#member-{agent.id}")).to_contain_text("Alice Agent")
    page.get_by_label("Email", exact=True).fill("sophie@example.test")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".notice.ok")).to_contain_text("sophie@example.test")
    page.screenshot(path=artifacts / "settings-team.png", full_page=True)

    page.get_by_role("link", name=re.compile("Manage.*Alice Agent")).click()
    page.get_by_label("Active tickets at most").fill("6")
    page.locator("#capacity button[type=submit]").click()
    expect(page.locator(".notice.ok")).to_be_visible()
    page.screenshot(path=artifacts / "settings-member.png", full_page=True)

    page.get_by_role("link", name="Workspace").click()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    page.screenshot(path=artifacts / "settings-workspace.png", full_page=True)

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table.audit-table")).to_contain_text("Capacity changed")
    expect(page.locator("table.audit-table")).to_contain_text("Agent invited")
    page.screenshot(path=artifacts / "settings-audit.png", full_page=True)

    page.goto(f"{live_server.url}/contacts/{clients.id}")
    page.get_by_label("Address", exact=True).fill("elodie@boulangerie-fournier.test")
    page.locator("#identities").get_by_label("Channel", exact=True).select_option("email")
    page.locator(".crm-add-identity button[type=submit]").click()
    expect(page.locator('#identities input[value="elodie@boulangerie-fournier.test"]')).to_have_count(1)
    page.screenshot(path=artifacts / "crm-client-admin.png", full_page=True)
    page.get_by_role("link", name="Erase personal data").click()
    expect(page.get_by_role("button", name="Erase for good")).to_be_visible()
    page.screenshot(path=artifacts / "crm-erase.png", full_page=True)


def test_new_message_later_and_appointments_from_the_client_page(page: Page, live_server, agent, sms_channel,
                                                                  clients, artifacts):
    """On the client page: schedule a message for tomorrow 9:00 on the preferred channel, edit it,
    cancel it; then reschedule an appointment and cancel it (the client told each time)."""
    from datetime import timedelta

    from inbox.actions.appointments import do_create_appointment
    from inbox.models import Contact, utcnow

    sms_id, contact_id = sms_channel.id, clients.id
    do_create_appointment(db.session.get(Contact, clients.id), starts_at=utcnow() + timedelta(days=4),
                          subject="Devis vitrine")
    db.session.rollback()
    log_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/contacts/{contact_id}")

    # New message later: SMS (her preferred channel) is preselected.
    form = page.locator("#new-later")
    expect(form.get_by_label("Channel")).to_have_value(str(sms_id))
    form.get_by_label("Message").fill("Votre commande est prête.")
    form.locator("button[data-when=tomorrow_9]").click()
    scheduled = page.locator(f"#scheduled-{contact_id} article.msg-scheduled", has_text="Votre commande est prête.")
    expect(scheduled).to_have_attribute("data-status", "scheduled")
    expect(form.get_by_label("Message")).to_have_value("")  # a fresh form
    page.screenshot(path=artifacts / "crm-new-message-later.png", full_page=True)

    scheduled = _edit_scheduled(page, scheduled, "Votre commande est prête, passez quand vous voulez.")
    page.once("dialog", lambda dialog: dialog.accept())
    scheduled.get_by_role("button", name="Cancel").click()
    expect(page.locator("article.msg-scheduled")).to_have_count(0)

    # The appointment: moved one day later, then cancelled.
    appointments = page.locator("#appointments")
    row = appointments.locator("li", has_text="Devis vitrine")
    row.get_by_role("button", name="Edit").click()
    moved = (utcnow() + timedelta(days=5)).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    editing = appointments.locator("li form.appt-form")
    editing.get_by_label("Date and time").fill(moved.strftime("%Y-%m-%dT%H:%M"))
    editing.get_by_role("button", name="Save").click()
    expect(page.locator(".toast").last).to_contain_text("Appointment saved.")
    row = appointments.locator("li", has_text="Devis vitrine")
    expect(row).to_contain_text("To confirm")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Cancel").click()
    expect(appointments.locator("li", has_text="Devis vitrine")).to_contain_text("Cancelled")
    page.screenshot(path=artifacts / "crm-appointments.png", full_page=True)


def test_a_late_refresh_of_the_scheduled_list_does_not_bring_back_a_cancelled_message(
        page: Page, live_server, agent, sms_channel, clients):
    """The list of scheduled messages refetches itself on each change (SSE). When the agent cancels
    while an earlier refetch is still on its way, that refetch answers with the message still
    scheduled; the cancellation's own refetch must still follow and win (the CI failure of 9b9a099)."""
    from playwright.sync_api import Error as PlaywrightError

    contact_id = clients.id
    log_in(page, live_server.url, agent)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    form = page.locator("#new-later")
    form.get_by_label("Message").fill("Votre commande est prête.")
    form.locator("button[data-when=tomorrow_9]").click()
    scheduled = page.locator("article.msg-scheduled", has_text="Votre commande est prête.")
    expect(scheduled).to_have_attribute("data-status", "scheduled")

    # From now on the first refetch is held: its answer is read at once (the message still scheduled)
    # and handed to the page only after the cancellation. The ones after it go through.
    held, refetches = [], []

    def hold_the_first(route):
        refetches.append(route.request.url)
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(re.compile(rf"/contacts/{contact_id}/scheduled$"), hold_the_first)
    scheduled = _edit_scheduled(page, scheduled, "Votre commande est prête, passez quand vous voulez.")
    _pump_until(page, lambda: held)  # the save's refetch is on its way

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(re.compile(r"/scheduled/\d+/cancel$")):
        scheduled.get_by_role("button", name="Cancel").click()
    _pump_until(page, lambda: len(refetches) >= 2, required=False)  # the cancellation's refetch
    route, stale = held[0]
    with contextlib.suppress(PlaywrightError):  # already given up by the page: nothing to answer
        route.fulfill(response=stale)
    expect(page.locator("article.msg-scheduled")).to_have_count(0)
    page.unroute_all()


def _edit_scheduled(page: Page, scheduled, text: str):
    """Edit a scheduled message's text; returns the edited message once it is shown."""
    scheduled.get_by_role("button", name="Edit").click()
    editing = page.locator("form.scheduled-edit")
    editing.get_by_label("Message").fill(text)
    editing.get_by_role("button", name="Save").click()
    edited = page.locator("article.msg-scheduled", has_text=text)
    expect(edited).to_be_visible()
    return edited


def _pump_until(page: Page, condition, *, required: bool = True, timeout_ms: int = LIVE_TIMEOUT_MS) -> None:
    """Wait in the browser's clock, so Playwright keeps dispatching route handlers meanwhile."""
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    assert not required, "the page never sent the expected request"
