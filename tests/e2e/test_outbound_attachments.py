"""An agent attaches a photo in the inbox composer: it shows in the thread at once, the worker
hands Twilio a signed link to it, and the delivery badge follows Twilio's callbacks."""

from __future__ import annotations

import requests
import pytest
from playwright.sync_api import expect

from ..conftest import PUBLIC_BASE_URL
from ..helpers import inbound, status
from .conftest import LIVE_TIMEOUT_MS, wait_for
from .test_live_inbox import log_in, open_live_inbox, row_for, thread_message

pytestmark = pytest.mark.e2e

CUSTOMER = "+33612345678"
PNG = bytes.fromhex(  # a 1×1 red pixel
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cfc000"
    "0003010100c9fe92ef0000000049454e44ae426082")


def test_agent_attaches_an_image_and_sees_it_delivered(page, live_server, agent, twilio, worker,
                                                       fake_twilio, artifacts):
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    twilio.post(inbound(sender=CUSTOMER, body="Pouvez-vous m'envoyer une photo du colis ?"))
    row_for(page, "une photo du colis").click()
    expect(thread_message(page, "une photo du colis")).to_be_visible()

    page.locator("#composer input[type=file][name=files]").set_input_files(
        {"name": "colis.png", "mimeType": "image/png", "buffer": PNG})
    page.locator("#reply-body").fill("Voici la photo du colis.")
    page.locator("#composer button[type=submit]").click()

    message = page.locator("#messages article.msg-outbound", has_text="Voici la photo du colis.")
    expect(message).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    image = message.locator("img.msg-image")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("alt", "colis.png")
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) == 1  # the file really loads
    message_id = int(message.get_attribute("id").removeprefix("msg-"))
    badge = page.locator(f"#delivery-{message_id}")

    wait_for(lambda: fake_twilio.sent, message="the worker to send the reply to Twilio")
    [sent] = fake_twilio.sent
    assert sent["Body"] == "Voici la photo du colis."
    [url] = sent["MediaUrls"]
    assert url.startswith(PUBLIC_BASE_URL + "/media/") and url.endswith("/colis.png")
    fetched = requests.get(live_server.url + url.removeprefix(PUBLIC_BASE_URL), timeout=10)
    assert fetched.status_code == 200 and fetched.content == PNG  # what Twilio fetches
    expect(badge).to_have_attribute("data-status", "accepted", timeout=LIVE_TIMEOUT_MS)

    twilio.post(status(sent["sid"], "delivered", to=CUSTOMER), suffix="/status")
    expect(badge).to_have_attribute("data-status", "delivered", timeout=LIVE_TIMEOUT_MS)
    expect(image).to_be_visible()
    worker.assert_alive()
    page.screenshot(path=artifacts / "conversation-attachment.png", full_page=True)
