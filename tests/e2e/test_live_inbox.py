"""An agent keeps the inbox open: customers' SMS show up live, replies go out through the
worker and their delivery badge follows Twilio's callbacks, without ever reloading the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from inbox.actions.workspace import do_create_user
from inbox.extensions import db
from inbox.models import Conversation, Role

from ..conftest import PASSWORD
from ..helpers import inbound, status
from .conftest import LIVE_TIMEOUT_MS, wait_for

pytestmark = pytest.mark.e2e

CUSTOMER = "+33612345678"
DANGER_RED = "rgb(180, 35, 24)"  # --danger in app.css (light scheme)


def log_in(page: Page, base_url: str, user) -> None:
    page.goto(base_url + "/login")
    page.get_by_label(re.compile("e-?mail", re.I)).fill(user.email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))


def open_live_inbox(page: Page) -> None:
    """Wait until the page listens to the server's events, then mark it to catch any reload."""
    expect(page.locator("#live-dot")).to_have_class(re.compile(r"\bconnected\b"), timeout=LIVE_TIMEOUT_MS)
    page.evaluate("window.__sameDocument = true")


def assert_never_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def row_for(page: Page, text: str):
    return page.locator("#conv-list .row", has_text=text)


def open_conversation(page: Page, text: str) -> None:
    """Click the row, again if a live refresh of the list swapped it away under the click
    (the worker's routing job may announce the conversation a second time meanwhile)."""
    for _attempt in range(3):
        row_for(page, text).click()
        try:
            page.wait_for_url(re.compile(r"/inbox/c/\d+"), timeout=3000)
            break
        except Exception:  # noqa: BLE001  (a Playwright timeout: the click was lost)
            continue
    expect(thread_message(page, text)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    wait_for_thread_ready(page)


def wait_for_thread_ready(page: Page) -> None:
    """htmx gives a swapped-in thread its behaviours when it settles (~20 ms after it shows), and
    removes `htmx-added` in the same step: a control used before then does nothing (CI met it)."""
    expect(page.locator("#thread.htmx-added")).to_have_count(0)


def thread_message(page: Page, text: str):
    return page.locator("#messages article.msg", has_text=text)


def send_reply(page: Page, text: str, *, with_keyboard: bool):
    page.locator("#reply-body").fill(text)
    if with_keyboard:
        page.locator("#reply-body").press("Control+Enter")
    else:
        page.locator("#composer button[type=submit]").click()
    message = page.locator("#messages article.msg-outbound", has_text=text)
    expect(message).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#reply-body")).to_have_value("")  # the composer came back empty
    message_id = int(message.get_attribute("id").removeprefix("msg-"))
    return message, page.locator(f"#delivery-{message_id}")


def test_inbound_sms_appears_live_and_reply_is_delivered(page, live_server, agent, twilio, worker,
                                                         fake_twilio, artifacts):
    log_in(page, live_server.url, agent)
    expect(page.locator("#thread.thread-empty")).to_be_visible()
    open_live_inbox(page)

    # A customer writes: the conversation shows up in the list by itself.
    twilio.post(inbound(sender=CUSTOMER, body="Bonjour, ma commande 1042 n'est pas arrivée."))
    row = row_for(page, "ma commande 1042")
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text(CUSTOMER)
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    page.screenshot(path=artifacts / "inbox.png", full_page=True)

    # The agent opens it.
    row.click()
    expect(page).to_have_url(re.compile(r"/inbox/c/\d+"))
    expect(page.locator("#thread .thread-title")).to_have_text(CUSTOMER)
    expect(thread_message(page, "ma commande 1042")).to_be_visible()
    expect(row).to_have_attribute("aria-current", "true")

    # The customer writes again: the open thread grows, once.
    twilio.post(inbound(sender=CUSTOMER, body="Je suis à Lyon, si ça aide."))
    expect(thread_message(page, "Je suis à Lyon")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#messages article.msg-inbound")).to_have_count(2)
    expect(row_for(page, "Je suis à Lyon")).to_be_visible(timeout=LIVE_TIMEOUT_MS)

    # The agent answers (Ctrl+Enter); the worker is held so the queued state can be seen.
    reply_text = "Bonjour ! Le colis part demain matin depuis notre entrepôt."
    with worker.paused():
        message, badge = send_reply(page, reply_text, with_keyboard=True)
        expect(badge).to_have_attribute("data-status", "queued")
        assert fake_twilio.sent == []

    # The worker sends it through Twilio; Twilio's answer moves the badge on.
    wait_for(lambda: fake_twilio.sent, message="the worker to send the reply to Twilio")
    assert len(fake_twilio.sent) == 1
    sent = fake_twilio.sent[0]
    assert sent["To"] == CUSTOMER and sent["Body"] == reply_text
    expect(badge).to_have_attribute("data-status", "accepted", timeout=LIVE_TIMEOUT_MS)

    # The handset got it: Twilio calls back, the badge turns delivered, live.
    twilio.post(status(sent["sid"], "delivered", to=CUSTOMER), suffix="/status")
    expect(badge).to_have_attribute("data-status", "delivered", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#messages article.msg-outbound")).to_have_count(1)
    expect(row_for(page, "Le colis part demain")).to_be_visible(timeout=LIVE_TIMEOUT_MS)

    assert_never_reloaded(page)
    worker.assert_alive()
    page.screenshot(path=artifacts / "conversation.png", full_page=True)


def test_a_receipt_arriving_while_the_badge_is_being_checked_is_not_lost(page, live_server, agent, twilio,
                                                                        worker, fake_twilio):
    """The race CI met twice: the badge's own check was on its way when the next status event
    came; the check answered the older status and the event's check was dropped with the element
    the answer replaced. The browser holds the first check's answer (the server has answered it)
    until the later events have arrived."""
    held = []

    def hold_first_check(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # answered now, delivered to the page later

    page.route(re.compile(r"/inbox/m/\d+/status$"), hold_first_check)
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    twilio.post(inbound(sender=CUSTOMER, body="Le code promo ne marche pas"))
    open_conversation(page, "code promo")

    with worker.paused():
        _message, badge = send_reply(page, "Essayez BIENVENUE, il est valable.", with_keyboard=False)
        while not held:  # the reply's own check, 1.5 s after it showed up (Playwright dispatches while waiting)
            page.wait_for_timeout(50)
        page.evaluate("""() => { window.__receipts = [];  // before the worker sends: "accepted" is counted
            document.body.addEventListener("htmx:sseMessage", e => window.__receipts.push(e.detail.type)); }""")

    statuses_heard = "n => window.__receipts.filter(t => t.endsWith('-status')).length >= n"
    wait_for(lambda: fake_twilio.sent, message="the worker to send the reply to Twilio")
    page.wait_for_function(statuses_heard, arg=1, timeout=LIVE_TIMEOUT_MS)  # "accepted": the send is stored
    twilio.post(status(fake_twilio.sent[0]["sid"], "delivered", to=CUSTOMER), suffix="/status")
    page.wait_for_function(statuses_heard, arg=2, timeout=LIVE_TIMEOUT_MS)  # and "delivered"

    route, answer = held[0]
    route.fulfill(response=answer)  # the older "queued" badge lands last
    expect(badge).to_have_attribute("data-status", "delivered", timeout=LIVE_TIMEOUT_MS)
    assert_never_reloaded(page)


def test_reply_twilio_refuses_is_shown_failed_with_the_reason(page, live_server, agent, twilio, worker,
                                                              fake_twilio, artifacts):
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    twilio.post(inbound(sender=CUSTOMER, body="Vous pouvez me rappeler ?"))
    open_conversation(page, "me rappeler")

    fake_twilio.fail_next(status=400, code=21211, message="The 'To' number is not a valid phone number.")
    message, badge = send_reply(page, "Bien sûr, à quel numéro ?", with_keyboard=False)

    expect(badge).to_have_attribute("data-status", "failed", timeout=LIVE_TIMEOUT_MS)
    expect(badge).to_contain_text("Numéro de destinataire (« To ») invalide")  # agents read their workspace's French
    expect(badge).to_contain_text("21211")
    expect(message).to_have_css("border-top-color", DANGER_RED)  # outlined in red, as after a reload
    assert fake_twilio.sent == []

    assert_never_reloaded(page)
    worker.assert_alive()
    page.screenshot(path=artifacts / "conversation-failed.png", full_page=True)


def test_a_burst_of_new_conversations_all_show_up_live_with_the_counts(page, live_server, agent, twilio, worker):
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    customers = [f"+3361111110{n}" for n in range(6)]
    for n, number in enumerate(customers):  # back to back: each row meets the next events
        twilio.post(inbound(sender=number, body=f"Rafale {n}, merci de me rappeler"))

    for n in range(len(customers)):  # none lost when they came while another row was being placed
        expect(row_for(page, f"Rafale {n},")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#conv-list .row")).to_have_count(len(customers))
    keys = page.eval_on_selector_all("#conv-list .row", "rows => rows.map(r => r.dataset.sort)")
    assert keys == sorted(keys, reverse=True)  # in the list's order, latest activity first
    expect(page.locator("#conv-list #conv-list")).to_have_count(0)  # rows swapped in, no list in the list
    expect(page.locator("#count-all")).to_have_text(str(len(customers)), timeout=LIVE_TIMEOUT_MS)  # the sidebar follows

    open_conversation(page, "Rafale 3,")  # the rows' own requests still open the thread
    expect(page.locator("#thread .thread-title")).to_have_text(customers[3])
    assert_never_reloaded(page)


def row_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#conv-list .row", "rows => rows.map(r => r.dataset.conversationId)")


def open_thread_of(page: Page, number: str) -> None:
    row_for(page, number).click()
    expect(page.locator("#thread .thread-title")).to_have_text(number)
    wait_for_thread_ready(page)


def conversations_stored() -> int:
    try:
        return db.session.scalar(select(func.count(Conversation.id)))
    finally:
        db.session.rollback()  # no snapshot left open: on SQLite it would block the server's writers


def write_and_see(page: Page, twilio, number: str, body: str) -> None:
    twilio.post(inbound(sender=number, body=body))
    expect(row_for(page, body)).to_be_visible(timeout=LIVE_TIMEOUT_MS)


def test_a_change_moves_its_row_to_the_top_without_a_duplicate(page, live_server, agent, twilio, worker):
    """The list follows each change with the row its event brings, placed by its activity."""
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    for n in range(3):
        write_and_see(page, twilio, f"+3361222220{n}", f"Premier {n}")
    expect(page.locator("#conv-list .row").first).to_contain_text("Premier 2")  # a new one comes in on top

    open_conversation(page, "Premier 0")  # the oldest, at the bottom, open on the right
    opened = row_for(page, "Premier 0")
    expect(opened).to_have_attribute("aria-current", "true")
    expect(opened).not_to_have_class(re.compile(r"\bunread\b"), timeout=LIVE_TIMEOUT_MS)  # read once opened

    write_and_see(page, twilio, "+33612222201", "Relance 1")  # another one moves up, the open one stays open
    expect(page.locator("#conv-list .row").first).to_contain_text("Relance 1")
    expect(row_for(page, "Relance 1")).to_have_class(re.compile(r"\bunread\b"))
    expect(row_for(page, "Premier 0")).to_have_attribute("aria-current", "true")

    write_and_see(page, twilio, "+33612222200", "Relance 0")  # the open one moves to the top, once, still selected
    expect(page.locator("#conv-list .row").first).to_contain_text("Relance 0")
    expect(page.locator("#conv-list .row")).to_have_count(3)
    top = page.locator("#conv-list .row").first
    expect(top).to_have_attribute("aria-current", "true")
    expect(thread_message(page, "Relance 0")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(top).not_to_have_class(re.compile(r"\bunread\b"), timeout=LIVE_TIMEOUT_MS)  # read in the open thread
    assert len(set(row_ids(page))) == 3
    assert_never_reloaded(page)


def test_a_conversation_beyond_the_loaded_page_comes_to_the_top(app, page, live_server, agent, twilio, worker):
    app.config["INBOX_PAGE_SIZE"] = 2
    for n in range(4):
        twilio.post(inbound(sender=f"+3361333330{n}", body=f"Ancien {n}"))
    wait_for(lambda: conversations_stored() == 4, message="the worker to store the 4 conversations")
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    expect(page.locator("#conv-list .row")).to_have_count(2)  # Ancien 3, Ancien 2, then "More"

    write_and_see(page, twilio, "+33613333300", "Revenu 0")  # it was on no loaded page
    expect(page.locator("#conv-list .row").first).to_contain_text("Revenu 0")
    expect(page.locator("#conv-list .row")).to_have_count(3)
    page.locator("#conv-list .btn-more").click()  # the next page: the rest, without the moved one again
    expect(page.locator("#conv-list .row")).to_have_count(4)
    assert [page.locator(f"#row-{i}").count() for i in row_ids(page)] == [1, 1, 1, 1]
    assert_never_reloaded(page)


def test_assigning_away_removes_the_row_from_mine(page, live_server, agent, workspace, twilio, worker):
    colleague = do_create_user(workspace, email="bob@example.test", name="Bob Collègue", password=PASSWORD,
                               role=Role.AGENT)
    db.session.commit()
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    mine, given = "+33614444400", "+33614444401"
    write_and_see(page, twilio, mine, "Dossier A")
    write_and_see(page, twilio, given, "Dossier B")
    for number in (given, mine):
        open_thread_of(page, number)
        page.locator("[data-shortcut=a]").click()  # Assign to me
        expect(page.locator("[data-shortcut=a]")).to_have_count(0)

    page.locator("label.view", has=page.locator("input[name=view][value=mine]")).click()  # "Mine"
    expect(page).to_have_url(re.compile(r"view=mine"))
    expect(page.locator("#conv-list .row")).to_have_count(2)
    open_thread_of(page, given)
    page.locator("#assignee").select_option(str(colleague.id))  # given to Bob: no longer mine

    expect(row_for(page, given)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#conv-list .row")).to_have_count(1)
    expect(row_for(page, mine)).to_be_visible()
    expect(page.locator("#count-mine")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#conv-list .empty-state")).to_have_count(0)

    open_thread_of(page, mine)  # the last one goes too: the list says it is empty, as when it loads so
    page.locator("#assignee").select_option(str(colleague.id))
    expect(page.locator("#conv-list .row")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#conv-list .empty-state")).to_have_text("Rien ici. Les nouveaux messages apparaîtront en direct.")
    expect(page.locator("#count-mine")).to_have_text("0", timeout=LIVE_TIMEOUT_MS)
    assert_never_reloaded(page)


def announce(page: Page, *conversation_ids: int | None) -> None:
    """Events as the stream delivers them, dispatched back to back (none naming a conversation for None)."""
    page.evaluate("""ids => ids.forEach(id => htmx.trigger(document.getElementById('conv-list'),
        'sse:conversation-changed', {data: JSON.stringify(id === null ? {} : {conversation_id: id})}))""",
                  list(conversation_ids))


def test_an_event_naming_no_conversation_or_a_flood_refetches_the_list(page, live_server, agent, twilio, worker):
    numbers = [f"+336155555{n:02d}" for n in range(12)]
    for n, number in enumerate(numbers):
        twilio.post(inbound(sender=number, body=f"Lot {n}"))
    wait_for(lambda: conversations_stored() == len(numbers), message="the worker to store the conversations")
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    expect(page.locator("#conv-list .row")).to_have_count(len(numbers))
    ids = [int(i) for i in row_ids(page)]

    # A rename of a label says "something changed", no conversation: the rows are fetched again.
    page.evaluate("document.querySelectorAll('#conv-list .row').forEach(r => r.remove())")
    announce(page, None)
    expect(page.locator("#conv-list .row")).to_have_count(len(numbers))

    # Twelve rows at once (a sweep): more than the page fetches one by one; they all come back, in order, once.
    page.evaluate("document.querySelectorAll('#conv-list .row').forEach(r => r.remove())")
    announce(page, *ids, *ids)
    expect(page.locator("#conv-list .row")).to_have_count(len(numbers))
    assert [int(i) for i in row_ids(page)] == ids
    assert_never_reloaded(page)
