"""An admin runs the workspace from the browser: connects an SMS channel and receives a message
on it, writes a template with its live preview, invites an agent who joins from the emailed
link; and anyone switches the UI to English and back. Screenshots under test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from inbox.extensions import db
from inbox.models import Channel, OutboundTemplate
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, inbound_sms_payload, post_signed

from ..conftest import PUBLIC_BASE_URL, SMS_NUMBER, run_ingest, run_jobs
from ..integration.ticket_fixtures import admin  # noqa: F401
from .conftest import LIVE_TIMEOUT_MS
from .test_live_inbox import log_in, open_live_inbox, row_for

pytestmark = pytest.mark.e2e
CUSTOMER = "+33698765432"
NEW_PASSWORD = "une phrase de passe solide"


@pytest.fixture
def english(workspace):
    workspace.default_locale = "en"
    db.session.commit()
    db.session.rollback()  # no transaction left open while the live server writes


def test_admin_connects_an_sms_channel_and_receives_a_message_on_it(page: Page, live_server, admin, english,
                                                                    fake_twilio, artifacts):  # noqa: F811
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, live_server.url, admin)
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_url(re.compile(r"/settings/channels$"))
    expect(page.locator("table.table")).to_contain_text("No channel yet")
    page.get_by_role("link", name=re.compile(r"SMS · Twilio")).click()

    page.get_by_label("Name", exact=True).fill("SMS Lyon")
    page.get_by_label(re.compile(r"^Address")).fill(SMS_NUMBER)
    page.get_by_label("Account SID").fill(DEMO_ACCOUNT_SID)
    page.get_by_label("Auth token").fill(DEMO_AUTH_TOKEN)
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/settings/channels/\d+"))

    db.session.rollback()
    channel = db.session.scalar(select(Channel).where(Channel.name == "SMS Lyon"))
    public_url = webhook_url(channel)
    db.session.rollback()
    # The secret is stored, never shown again: the field is empty with a masked hint.
    expect(page.get_by_label("Auth token")).to_have_value("")
    assert DEMO_AUTH_TOKEN not in page.content()
    expect(page.locator("#webhook-url")).to_have_text(public_url)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="✓")).to_be_visible()  # the button says it copied
    assert page.evaluate("navigator.clipboard.readText()") == public_url

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connected:")  # the fake Twilio answered
    page.screenshot(path=artifacts / "settings-sms-channel.png", full_page=True)

    # Twilio posts a customer's SMS to the URL the admin pasted: it shows up in the inbox, live.
    page.get_by_role("link", name="Inbox").click()
    open_live_inbox(page)
    payload = inbound_sms_payload(account_sid=DEMO_ACCOUNT_SID, sender=CUSTOMER, to=SMS_NUMBER,
                                  body="Bonjour, je vous écris sur le nouveau numéro.")
    response = post_signed(live_server.url + public_url.removeprefix(PUBLIC_BASE_URL), payload,
                           auth_token=DEMO_AUTH_TOKEN, signed_url=public_url)
    assert response.status_code == 200, response.text[:300]
    run_ingest()  # what the worker does with it
    row = row_for(page, "nouveau numéro")
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text(CUSTOMER)
    page.screenshot(path=artifacts / "settings-sms-channel-inbox.png", full_page=True)

    # A request that is not signed with the channel's token is refused and stored nowhere.
    forged = post_signed(live_server.url + public_url.removeprefix(PUBLIC_BASE_URL),
                         {**payload, "Body": "forged", "MessageSid": "SMforged"}, auth_token="not-the-token",
                         signed_url=public_url)
    assert forged.status_code == 403


def test_admin_edits_a_template_with_its_live_preview(page: Page, live_server, admin, english,
                                                      artifacts):  # noqa: F811
    log_in(page, live_server.url, admin)
    page.goto(live_server.url + "/settings/templates")  # Settings → Message templates
    page.get_by_role("link", name=re.compile("New template")).click()
    page.get_by_label("Name", exact=True).fill("Colis prêt")
    page.get_by_label("Channel", exact=True).select_option("sms")
    body = page.get_by_label(re.compile(r"^Text \(SMS"))
    body.fill("Bonjour {{first_name}}, votre colis est arrivé au magasin.")
    preview = page.locator("#template-preview")
    expect(preview.locator(".template-preview")).to_have_text("Bonjour Camille, votre colis est arrivé au magasin.")
    expect(preview.locator(".sms-count")).to_contain_text("1 SMS")
    expect(preview.locator(".sms-count")).to_contain_text("GSM-7")

    body.fill("Bonjour {{first_name}}, votre colis est arrivé au magasin de {{company}}. " * 3)
    expect(preview.locator(".sms-count")).to_have_attribute("data-segments", "2")
    expect(preview.locator(".sms-count")).to_contain_text("2 SMS")
    page.screenshot(path=artifacts / "settings-template-preview.png", full_page=True)
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("link", name="Colis prêt")).to_be_visible()

    # Editing it later: the preview follows the saved text, then every change.
    page.get_by_role("link", name="Colis prêt").click()
    expect(preview.locator(".sms-count")).to_contain_text("2 SMS")
    body.fill("Votre colis vous attend 🎁")
    expect(preview.locator(".sms-count")).to_contain_text("1 SMS")
    expect(preview.locator(".sms-count")).to_contain_text("UCS-2")  # an emoji switches the encoding
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("link", name="Colis prêt")).to_be_visible()
    db.session.rollback()
    saved = db.session.scalar(select(OutboundTemplate).where(OutboundTemplate.name == "Colis prêt"))
    assert saved.body == "Votre colis vous attend 🎁" and saved.kind == "sms"
    db.session.rollback()


def test_admin_invites_an_agent_who_joins_from_the_emailed_link(page: Page, app, live_server, admin, english,
                                                                fake_smtp, artifacts):  # noqa: F811
    app.config["MAIL_URL"] = fake_smtp.url  # the team's email goes to the local SMTP server
    app.extensions.pop("mailer", None)
    log_in(page, live_server.url, admin)
    page.goto(live_server.url + "/settings/team")
    page.get_by_label("Email", exact=True).fill("nadia@example.test")
    page.get_by_label("Role", exact=True).select_option("agent")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".notice.ok")).to_contain_text("nadia@example.test")
    expect(page.locator("body")).to_contain_text("Pending invitations")
    page.screenshot(path=artifacts / "settings-invite.png", full_page=True)

    db.session.rollback()
    run_jobs(app)  # the worker's job sends the email
    db.session.rollback()
    [mail] = fake_smtp.wait_for(1)
    assert mail.rcpt_tos == ("nadia@example.test",)
    message = mail.message
    assert "Camille Admin invites you" in message["Subject"]
    link = re.search(r"https?://\S+/invite/\S+", message.get_content()).group(0)
    assert link.startswith(PUBLIC_BASE_URL)

    page.get_by_role("button", name="Log out").click()
    page.goto(live_server.url + link.removeprefix(PUBLIC_BASE_URL))
    expect(page.locator("body")).to_contain_text("as nadia@example.test")
    page.get_by_label("Your name").fill("Nadia Benali")
    page.get_by_label("Password (10 characters or more)").fill(NEW_PASSWORD)
    page.get_by_label("Password again").fill(NEW_PASSWORD)
    page.screenshot(path=artifacts / "invite-accept.png", full_page=True)
    page.get_by_role("button", name="Join the team").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    expect(page.locator(".topbar")).to_contain_text("Nadia Benali")
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)  # an agent, not an admin
    page.screenshot(path=artifacts / "invite-joined-inbox.png", full_page=True)


def test_a_member_switches_the_ui_to_english_and_back(page: Page, live_server, agent, twilio, artifacts):
    twilio.post(inbound_sms_payload(account_sid=DEMO_ACCOUNT_SID, sender=CUSTOMER, to=SMS_NUMBER,
                                    body="Bonjour, où en est ma commande ?"))
    log_in(page, live_server.url, agent)  # the workspace speaks French
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("link", name="Boîte de réception")).to_be_visible()
    expect(page.locator("#thread")).to_contain_text("Choisissez une conversation")

    page.get_by_role("link", name=re.compile("Alice Agent")).click()
    expect(page.get_by_role("heading", name="Vos préférences")).to_be_visible()
    page.get_by_label("Langue").select_option("en")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("heading", name="Your preferences")).to_be_visible()
    expect(page.locator(".notice.ok")).to_contain_text("Saved.")

    page.get_by_role("link", name="Inbox").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#thread")).to_contain_text("Pick a conversation")
    expect(row_for(page, "où en est ma commande")).to_contain_text("just now")
    page.screenshot(path=artifacts / "inbox-english.png", full_page=True)

    page.goto(live_server.url + "/me")
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("link", name="Boîte de réception").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#thread")).to_contain_text("Choisissez une conversation")
    page.screenshot(path=artifacts / "inbox-french.png", full_page=True)
