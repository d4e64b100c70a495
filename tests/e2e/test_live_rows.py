"""A changed conversation's row comes with its live event: the open inbox applies its list's
filters to it and puts it in place without asking the server, except a search, which asks."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from inbox.actions.workspace import do_create_user
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Contact, Conversation, ConversationStatus, Priority, Role
from inbox.models.label import ConversationLabel, Label
from inbox.models.queries import EVERY_CONVERSATION, STATUS_ANY, InboxFilter, inbox_page, inbox_row, row_facts
from inbox.models.base import utcnow

from ..conftest import PASSWORD
from ..helpers import inbound
from .conftest import LIVE_TIMEOUT_MS
from .test_live_inbox import assert_never_reloaded, log_in, open_live_inbox, row_for, write_and_see

pytestmark = pytest.mark.e2e


def row_requests(page: Page) -> list[str]:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/inbox/rows/" in request.url else None)
    return asked


def test_the_page_keeps_a_pushed_row_exactly_where_the_server_would(page, live_server, agent, workspace,
                                                                   sms_channel, whatsapp):
    colleague = do_create_user(workspace, email="bob@example.test", name="Bob", password=PASSWORD, role=Role.AGENT)
    urgent, vip = Label(workspace_id=workspace.id, name="Urgent"), Label(workspace_id=workspace.id, name="VIP")
    db.session.add_all([urgent, vip])
    db.session.flush()
    shapes = itertools.product([ConversationStatus.OPEN, ConversationStatus.RESOLVED], [Priority.HIGH, Priority.LOW],
                               [None, agent.id, colleague.id], [sms_channel.id, whatsapp.id, None],
                               [(), (urgent.id,), (urgent.id, vip.id)])
    conversations = []
    for n, (status, priority, assignee, channel, labels) in enumerate(shapes):
        contact = Contact(workspace_id=workspace.id, name=f"Client {n}")
        db.session.add(contact)
        db.session.flush()
        conversation = Conversation(workspace_id=workspace.id, contact_id=contact.id, status=status, priority=priority,
                                    assignee_id=assignee, channel_id=channel,
                                    last_activity_at=utcnow() - timedelta(minutes=n))
        db.session.add(conversation)
        db.session.flush()
        db.session.add_all(ConversationLabel(conversation_id=conversation.id, label_id=label) for label in labels)
        conversations.append(conversation.id)
    db.session.commit()
    facts = {cid: json.loads(json.dumps(row_facts(inbox_row(workspace.id, EVERY_CONVERSATION, user_id=0,
                                                            conversation_id=cid))))
             for cid in conversations}  # as the event carries them
    filters = [InboxFilter(view=view, status=status, priority=priority, assignee_id=assignee, channel=channel,
                           label=label)
               for view, status, priority, assignee, channel, label in itertools.product(
                   ["all", "mine", "unassigned"], [ConversationStatus.OPEN, ConversationStatus.RESOLVED, STATUS_ANY],
                   [None, Priority.HIGH], [None, colleague.id], [None, ChannelKind.WHATSAPP, ChannelKind.EMAIL],
                   [None, vip.id])]
    log_in(page, live_server.url, agent)

    cases = [(f.match_spec(agent.id), facts[cid]) for f in filters for cid in conversations]
    page_says = page.evaluate("cases => cases.map(([spec, facts]) => window.coccinelleRowMatches(spec, facts))", cases)
    listed = [{c.id for c in inbox_page(workspace.id, f, user_id=agent.id, after=None, limit=1000)[0]}
              for f in filters]
    server_says = [cid in ids for ids in listed for cid in conversations]
    db.session.rollback()
    assert len(cases) == 216 * 108 and any(server_says) and not all(server_says)
    assert page_says == server_says


def test_an_open_inbox_follows_changes_from_the_events_alone(page, live_server, agent, twilio, worker):
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    asked = row_requests(page)
    write_and_see(page, twilio, "+33616666600", "Première demande")
    write_and_see(page, twilio, "+33616666601", "Seconde demande")
    expect(page.locator("#conv-list .row").first).to_contain_text("Seconde demande")
    expect(page.locator("#count-all")).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#count-unassigned")).to_have_text("2")
    expect(row_for(page, "Seconde demande")).to_contain_text("Normale")  # rendered in the agent's French

    row_for(page, "Première demande").click()  # the pushed row's link opens the thread, filters kept
    expect(page.locator("#thread .thread-title")).to_have_text("+33616666600")
    assert asked == []  # no row was asked for
    assert_never_reloaded(page)


def test_a_search_list_asks_for_the_changed_row(page, live_server, agent, twilio, worker):
    log_in(page, live_server.url, agent)
    open_live_inbox(page)
    write_and_see(page, twilio, "+33617777700", "Colis abîmé à la livraison")
    page.goto(live_server.url + "/inbox?q=colis")
    open_live_inbox(page)
    asked = row_requests(page)

    twilio.post(inbound(sender="+33617777700", body="Le colis est arrivé ouvert"))
    expect(row_for(page, "Le colis est arrivé ouvert")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    assert asked and all("q=colis" in url for url in asked)  # only the server can tell what a search matches
    expect(page.locator("#conv-list .row")).to_have_count(1)
    assert re.search(r"\bq=colis\b", row_for(page, "Le colis").get_attribute("href"))
    assert_never_reloaded(page)
