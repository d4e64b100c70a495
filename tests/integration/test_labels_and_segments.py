"""Labels on conversations and contacts, the inbox filtered by label (bounded queries), and
saved segments with their live count."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from inbox.actions.labels import do_add_label, do_create_label, do_remove_label
from inbox.actions.workspace import do_create_workspace
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Contact, Conversation, Label, Segment, SegmentRules, utcnow
from inbox.models.segment import segment_count

from ..conftest import login
from ..helpers import inbound, recorded_statements, signed_post
from .outbound_fixtures import admin, again, fresh, make_contact  # noqa: F401

HX = {"HX-Request": "true"}


def conversations_by_sender(client, channel, senders):
    for sender in senders:
        signed_post(client, channel, inbound(sender=sender, body=f"bonjour de {sender}"))
    fresh()
    return {c.contact.phone: c for c in db.session.scalars(select(Conversation))}


def test_admin_defines_labels_and_agents_put_them_on_conversations(client, admin, agent, workspace, sms_channel):
    login(client, admin)
    assert client.post("/outbound/labels", data={"name": "VIP", "color": "#c81d32"}).status_code == 302
    assert client.post("/outbound/labels", data={"name": "VIP", "color": "#c81d32"}).status_code == 422  # twice
    assert client.post("/outbound/labels", data={"name": "Bad", "color": "red"}).status_code == 422
    client.post("/logout")
    fresh()
    vip = db.session.scalar(select(Label).where(Label.name == "VIP"))
    assert vip.color == "#c81d32"

    login(client, agent)
    assert client.get("/outbound/labels").status_code == 403  # admins only
    conversation = conversations_by_sender(client, sms_channel, ["+33611111111"])["+33611111111"]
    response = client.post(f"/inbox/c/{conversation.id}/labels", data={"label_id": [vip.id]}, headers=HX)
    assert response.status_code == 200 and ">VIP</span>" in response.get_data(as_text=True)
    fresh()
    assert [l.name for l in db.session.get(Conversation, conversation.id).labels] == ["VIP"]
    page = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert 'id="conv-labels"' in page and f'name="label" value="{vip.id}"' in page  # control + sidebar view

    # Unticking everything removes it.
    client.post(f"/inbox/c/{conversation.id}/labels", data={}, headers=HX)
    fresh()
    assert db.session.get(Conversation, conversation.id).labels == []


def test_labels_of_another_workspace_are_ignored(logged_in, client, workspace, sms_channel):
    other = do_create_workspace("Autre", slug="autre-ws")
    foreign = do_create_label(other.id, name="Secret", color="#000000")
    conversation = conversations_by_sender(client, sms_channel, ["+33611111112"])["+33611111112"]
    logged_in.post(f"/inbox/c/{conversation.id}/labels", data={"label_id": [foreign.id]}, headers=HX)
    fresh()
    assert db.session.get(Conversation, conversation.id).labels == []


def test_contact_labels_from_the_contact_card_and_for_automations(logged_in, workspace):
    contact = make_contact(workspace, "Hugo", sms="+33622334455")
    label = do_create_label(again(workspace).id, name="Prospect", color="")
    response = logged_in.post(f"/contacts/{contact.id}/labels", data={"label_id": [label.id]}, headers=HX)
    assert response.status_code == 200 and ">Prospect</span>" in response.get_data(as_text=True)
    fresh()
    contact = db.session.get(Contact, contact.id)
    assert [l.name for l in contact.labels] == ["Prospect"]
    label = db.session.get(Label, label.id)
    assert do_add_label(contact, label) is False  # already there
    assert do_remove_label(contact, label) is True
    assert do_add_label(contact, label) is True


def test_inbox_filtered_by_label_with_a_bounded_number_of_queries(app, logged_in, client, workspace, sms_channel):
    conversations = conversations_by_sender(client, sms_channel, [f"+336000000{i:02d}" for i in range(30)])
    vip = do_create_label(again(workspace).id, name="VIP", color="#2563eb")
    late = do_create_label(again(workspace).id, name="Retard", color="#9a6700")
    fresh()
    vip, late = db.session.get(Label, vip.id), db.session.get(Label, late.id)
    tagged = sorted(conversations.values(), key=lambda c: c.id)[:20]
    for c in tagged:
        c = db.session.get(Conversation, c.id)
        c.labels = [vip, late] if c.id % 2 else [vip]
    db.session.commit()

    def page(size: int):
        app.config["INBOX_PAGE_SIZE"] = size
        with recorded_statements() as statements:
            response = logged_in.get(f"/inbox?label={vip.id}")
        return len(statements), response.get_data(as_text=True)

    few, html_few = page(5)
    many, html_many = page(50)
    assert len(re.findall(r'id="row-\d+"', html_few)) == 5
    assert len(re.findall(r'id="row-\d+"', html_many)) == 20  # only the labelled ones
    assert html_many.count('class="label-chip"') >= 30  # chips on rows, loaded in the same query
    assert few == many and few <= 8, (few, many)

    headers = {"HX-Request": "true", "HX-Target": "conv-list"}
    only_late = logged_in.get(f"/inbox?label={late.id}", headers=headers).get_data(as_text=True)
    assert len(re.findall(r'id="row-\d+"', only_late)) == 10
    assert f"label={late.id}" in only_late  # links keep the filter



def test_sidebar_counts_open_conversations_per_label_in_one_grouped_query(app, logged_in, client, workspace,
                                                                         sms_channel):
    """Each label in the sidebar shows its open conversations; the counts come back out of band
    when the list refreshes (live), and neither more labels nor more conversations add queries."""
    def inbox_page(headers=None):
        with recorded_statements() as statements:
            response = logged_in.get("/inbox", headers=headers or {})
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True)

    def label_all(labels, conversations, every=1):
        fresh()
        labels = [db.session.get(Label, l.id) for l in labels]
        for i, c in enumerate(sorted(conversations, key=lambda c: c.id)):
            db.session.get(Conversation, c.id).labels = labels if i % every == 0 else []
        db.session.commit()

    first = conversations_by_sender(client, sms_channel, ["+33600000001", "+33600000002", "+33600000003"])
    vip = do_create_label(again(workspace).id, name="VIP", color="#2563eb")
    label_all([vip], first.values(), every=2)  # 2 of 3
    small, html = inbox_page()
    assert re.search(rf'id="count-label-{vip.id}">2<', html)

    # Ten times the labels and the conversations: the same number of queries.
    more = conversations_by_sender(client, sms_channel, [f"+336100000{i:02d}" for i in range(30)])
    labels = [vip] + [do_create_label(again(workspace).id, name=f"L{i:02d}", color="") for i in range(9)]
    label_all(labels, more.values(), every=3)  # 11 of 33 conversations carry every label
    big, html = inbox_page()
    assert re.search(rf'id="count-label-{vip.id}">11<', html)
    assert re.search(rf'id="count-label-{labels[-1].id}">11<', html)
    assert big == small, (small, big)

    # A resolved conversation leaves the count; the list's live refresh carries the new figures.
    fresh()
    conversation = db.session.scalar(select(Conversation).join(Conversation.labels).where(Label.id == vip.id)
                                     .order_by(Conversation.id).limit(1))
    assert logged_in.post(f"/inbox/c/{conversation.id}/status", data={"status": "resolved"},
                          headers=HX).status_code == 200
    _n, fragment = inbox_page({"HX-Request": "true", "HX-Target": "conv-list"})
    assert re.search(rf'<span class="count" id="count-label-{vip.id}" hx-swap-oob="true">10</span>', fragment)


def test_segment_rules(workspace, sms_channel):
    now = utcnow()
    vip = do_create_label(again(workspace).id, name="VIP", color="#2563eb")
    a = make_contact(workspace, "Anne", sms="+33600000001", preferred=ChannelKind.SMS, company="Boulangerie Anne",
                     locale="fr")
    b = make_contact(workspace, "Bob", email="bob@example.test", preferred=ChannelKind.EMAIL, locale="en")
    make_contact(workspace, "Carl", sms="+33600000003", company="Garage Carl")
    fresh()
    db.session.get(Contact, a.id).labels = [db.session.get(Label, vip.id)]
    db.session.commit()
    ws = again(workspace).id

    def count(**rules):
        fresh()
        return segment_count(ws, SegmentRules(**rules), now=now)

    assert count() == 3
    assert count(label_ids=(vip.id,)) == 1
    assert count(channel=ChannelKind.SMS) == 2
    assert count(company="boulangerie") == 1
    assert count(preferred_channel=ChannelKind.EMAIL) == 1
    assert count(language="en") == 1
    assert count(open_tickets="any") == 0 and count(open_tickets="none") == 3
    assert count(last_contact_within_days=7) == 0 and count(no_contact_for_days=7) == 3
    assert count(channel=ChannelKind.SMS, company="garage") == 1
    assert SegmentRules.from_dict(SegmentRules(label_ids=(1,), channel=ChannelKind.SMS).to_dict()) == \
        SegmentRules(label_ids=(1,), channel=ChannelKind.SMS)
    assert b.id


def test_segment_page_with_live_count(client, admin, workspace, sms_channel):
    make_contact(workspace, "Anne", sms="+33600000001", company="Boulangerie Anne")
    make_contact(workspace, "Carl", sms="+33600000003", company="Garage Carl")
    signed_post(client, again(sms_channel), inbound(sender="+33600000001", body="Bonjour"))
    login(client, admin)
    assert client.get("/outbound/segments/new").status_code == 200
    live = client.post("/outbound/segments/count", data={"company": "boul"}, headers=HX)
    assert live.status_code == 200 and 'data-count="1"' in live.get_data(as_text=True)
    live = client.post("/outbound/segments/count", data={"last_contact_within_days": "1"}, headers=HX)
    assert 'data-count="1"' in live.get_data(as_text=True) and "Anne" in live.get_data(as_text=True)
    live = client.post("/outbound/segments/count", data={"channel": "sms"}, headers=HX)
    assert 'data-count="2"' in live.get_data(as_text=True)

    assert client.post("/outbound/segments/new", data={"name": ""}).status_code == 422
    saved = client.post("/outbound/segments/new", data={"name": "Boulangers", "company": "boul"})
    assert saved.status_code == 302
    fresh()
    segment = db.session.scalar(select(Segment))
    assert segment.rules == SegmentRules(company="boul")
    listing = client.get("/outbound/segments").get_data(as_text=True)
    assert "Boulangers" in listing and 'data-count="1"' in listing


def test_admin_pages_render(client, admin, workspace, sms_channel, email):
    login(client, admin)
    for path in ("/outbound/", "/outbound/campaigns", "/outbound/campaigns/new", "/outbound/segments",
                 "/outbound/templates", "/outbound/templates/new", "/outbound/followups", "/outbound/labels",
                 "/outbound/rules"):
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
    saved = client.post("/outbound/rules", data={"channel_id": again(sms_channel).id, "send_hours": "9:00-18:30",
                                                 "daily_limit": "500", "rate_per_minute": ""})
    assert saved.status_code == 302
    fresh()
    assert again(sms_channel).settings["send_hours"] == "09:00-18:30"
    assert again(sms_channel).settings["daily_limit"] == 500
    assert client.post("/outbound/rules", data={"channel_id": again(sms_channel).id,
                                                "send_hours": "tôt"}).status_code == 422
    assert timedelta  # noqa: B018
