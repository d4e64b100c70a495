"""The open list follows a change by fetching the changed conversation's row (issue #7): the row
where the list's filters keep it, nothing where they leave it out, the sidebar counts out of band."""

from __future__ import annotations

import re

from sqlalchemy import select

from inbox.actions.labels import do_create_label, do_set_conversation_labels
from inbox.extensions import db
from inbox.models import ContactIdentity, Conversation

from ..helpers import inbound, other_workspace_sms_channel, recorded_statements, signed_post
from .outbound_fixtures import again, fresh

HTMX = {"HX-Request": "true"}


def _conversation_of(number: str) -> int:
    fresh()  # the webhooks committed in their own sessions
    return db.session.scalar(select(Conversation.id).join(
        ContactIdentity, ContactIdentity.contact_id == Conversation.contact_id).where(ContactIdentity.address == number))


def _rows(html: str) -> list[str]:
    return re.findall(r'id="row-(\d+)"', html)


def _counts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<span class="count" id="count-([\w-]+)" hx-swap-oob="true">(\d+)</span>', html))


def test_a_changed_conversation_in_the_view_answers_its_row_and_the_counts(logged_in, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="Ma facture est fausse"))
    signed_post(client, sms_channel, inbound(sender="+33622222222", body="Autre sujet"))
    conversation_id = _conversation_of("+33611111111")

    response = logged_in.get(f"/inbox/rows/{conversation_id}", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _rows(html) == [str(conversation_id)]  # that row only, not the list
    assert "Ma facture est fausse" in html and "+33611111111" in html and "Autre sujet" not in html
    assert 'class="row unread"' in html and 'data-sort="' in html
    assert _counts(html)["all"] == "2" and _counts(html)["sms"] == "2"
    # The same markup as the list's own row (one macro): the row as the list page renders it.
    page = logged_in.get("/inbox", headers={**HTMX, "HX-Target": "conv-list"}).get_data(as_text=True)
    row = re.search(rf'<a id="row-{conversation_id}".*?</a>', html, re.S).group(0)
    assert row in page


def test_a_conversation_leaving_the_view_answers_no_row(logged_in, client, sms_channel, agent):
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="À qui le tour ?"))
    conversation_id = _conversation_of("+33611111111")

    assert _rows(logged_in.get(f"/inbox/rows/{conversation_id}?view=mine").get_data(as_text=True)) == []
    unassigned = logged_in.get(f"/inbox/rows/{conversation_id}?view=unassigned").get_data(as_text=True)
    assert _rows(unassigned) == [str(conversation_id)]

    logged_in.post(f"/inbox/c/{conversation_id}/assign", data={"assignee_id": "me"})
    mine = logged_in.get(f"/inbox/rows/{conversation_id}?view=mine").get_data(as_text=True)
    assert _rows(mine) == [str(conversation_id)] and _counts(mine)["mine"] == "1"
    assert _rows(logged_in.get(f"/inbox/rows/{conversation_id}?view=unassigned").get_data(as_text=True)) == []

    logged_in.post(f"/inbox/c/{conversation_id}/status", data={"status": "resolved"})
    resolved = logged_in.get(f"/inbox/rows/{conversation_id}?view=mine").get_data(as_text=True)
    assert _rows(resolved) == [] and _counts(resolved)["mine"] == "0"  # resolved: out of the open list
    assert _rows(logged_in.get(f"/inbox/rows/{conversation_id}?view=mine&status=resolved").get_data(as_text=True)) \
        == [str(conversation_id)]
    assert "empty-state" not in resolved  # no "Nothing here" in a removal: the list may hold other rows


def test_another_workspace_conversation_answers_like_one_not_in_the_view(logged_in, client, sms_channel):
    channel = other_workspace_sms_channel("other")
    signed_post(client, channel, inbound(sender="+33633333333", body="secret de B"))
    foreign_id = _conversation_of("+33633333333")

    foreign = logged_in.get(f"/inbox/rows/{foreign_id}")
    missing = logged_in.get(f"/inbox/rows/{foreign_id + 1000}")
    assert foreign.status_code == missing.status_code == 200
    assert foreign.get_data(as_text=True) == missing.get_data(as_text=True)  # nothing tells them apart
    assert "secret de B" not in foreign.get_data(as_text=True) and _rows(foreign.get_data(as_text=True)) == []
    assert _counts(foreign.get_data(as_text=True))["all"] == "0"  # our workspace's counts only


def test_row_queries_stay_few_whatever_the_labels_and_conversations(logged_in, client, workspace, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="bonjour"))
    conversation_id = _conversation_of("+33611111111")

    def counted() -> int:
        with recorded_statements() as statements:
            html = logged_in.get(f"/inbox/rows/{conversation_id}?view=all&sort=priority", headers=HTMX) \
                .get_data(as_text=True)
        assert _rows(html) == [str(conversation_id)]
        return len(statements), html

    small, _html = counted()
    for i in range(20):
        signed_post(client, sms_channel, inbound(sender=f"+336220000{i:02d}", body=f"autre {i}"))
    fresh()
    labels = [do_create_label(again(workspace).id, name=name, color="#2563eb") for name in ("VIP", "Retard", "Devis")]
    do_set_conversation_labels(db.session.get(Conversation, conversation_id), labels)
    fresh()
    big, html = counted()
    assert ">VIP</span>" in html and ">Devis</span>" in html
    assert big == small, (small, big)
    # The signed-in user, the row (its labels, contact, channel and assignee joined), the view counts
    # and the label counts (and SQLite's BEGIN): whatever the workspace holds.
    assert big <= 5, big


def test_rows_carry_their_place_in_the_list_order(logged_in, client, sms_channel):
    for i in range(5):
        signed_post(client, sms_channel, inbound(sender=f"+336110000{i:02d}", body=f"message {i}"))
    third = _conversation_of("+33611000002")
    logged_in.post(f"/inbox/c/{third}/priority", data={"priority": "critical"})
    signed_post(client, sms_channel, inbound(sender="+33611000000", body="encore"))  # the first moves to the top

    for sort in ("recent", "priority"):
        page = logged_in.get(f"/inbox?sort={sort}", headers={**HTMX, "HX-Target": "conv-list"}).get_data(as_text=True)
        keys = re.findall(r'data-sort="([^"]+)"', page)
        assert len(keys) == 5 and keys == sorted(keys, reverse=True), (sort, keys)  # the page's order is the key's
        row = logged_in.get(f"/inbox/rows/{third}?sort={sort}").get_data(as_text=True)
        assert re.search(r'data-sort="([^"]+)"', row).group(1) in keys
    by_priority = logged_in.get("/inbox?sort=priority", headers={**HTMX, "HX-Target": "conv-list"})
    assert _rows(by_priority.get_data(as_text=True))[0] == str(third)


def test_the_row_pushed_with_an_event_is_the_row_each_reader_would_fetch(app, logged_in, client, sms_channel,
                                                                         agent, workspace):
    """The row comes with its event (live_rows.py), rendered once per language of the readers, each
    with their own counts: what their list would fetch, but for the list's filters in the link,
    which the page adds, and its sort key, which the facts carry."""
    from inbox.actions.workspace import do_create_user
    from inbox.blueprints.live_rows import _row_details
    from inbox.broker import StreamViewer
    from inbox.models import Role

    from ..conftest import PASSWORD

    english = do_create_user(workspace, email="en@example.test", name="Ed", password=PASSWORD, role=Role.AGENT)
    english.locale = "en"
    db.session.commit()
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="Ma facture est fausse"))
    conversation_id = _conversation_of("+33611111111")
    logged_in.post(f"/inbox/c/{conversation_id}/assign", data={"assignee_id": "me"})
    fetched = logged_in.get(f"/inbox/rows/{conversation_id}?view=mine", headers=HTMX).get_data(as_text=True)

    french, other = StreamViewer(agent.id, "fr", lists=True), StreamViewer(english.id, "en", lists=True)
    details = _row_details(app, workspace.id, {"conversation_id": conversation_id}, frozenset({french, other}))
    for_agent, for_english = details(french), details(other)

    expected = re.search(rf'<a id="row-{conversation_id}".*?</a>', fetched, re.S).group(0)
    expected = expected.replace(f"/inbox/c/{conversation_id}?view=mine", f"/inbox/c/{conversation_id}")
    expected = re.sub(r'data-sort="[^"]*"', f'data-sort="{for_agent["row"]["facts"]["sort"]["recent"]}"', expected)
    assert for_agent["row"]["html"].strip() == expected
    assert "Assignée à" in for_agent["row"]["html"] and "Assigned to" in for_english["row"]["html"]
    assert for_agent["row"]["facts"] == for_english["row"]["facts"] == {
        "status": "open", "priority": "medium", "assignee": agent.id, "channel": "sms", "labels": [],
        "sort": for_agent["row"]["facts"]["sort"]}
    assert {key: str(n) for key, n in for_agent["counts"].items()} == _counts(fetched)
    assert (for_agent["counts"]["mine"], for_english["counts"]["mine"]) == (1, 0)  # each their own


def test_an_event_for_a_conversation_gone_or_elsewhere_pushes_no_row(app, agent, workspace):
    from inbox.blueprints.live_rows import _row_details
    from inbox.broker import StreamViewer

    channel = other_workspace_sms_channel("ailleurs-push")
    elsewhere = Conversation(workspace_id=channel.workspace_id, contact_id=_other_contact(channel).id)
    db.session.add(elsewhere)
    db.session.commit()
    viewer = StreamViewer(agent.id, "fr", lists=True)
    for conversation_id in (elsewhere.id, 999_999):
        details = _row_details(app, workspace.id, {"conversation_id": conversation_id}, frozenset({viewer}))
        assert details(viewer)["row"] is None  # the page removes the row it may have
    assert _row_details(app, workspace.id, {}, frozenset({viewer})) is None  # no conversation named: the page refetches


def test_rows_are_pushed_to_pages_that_show_a_list_with_links_under_the_apps_path(app, logged_in, client, agent,
                                                                               workspace, sms_channel):
    """The inbox page opens its stream with ?rows=1; other pages (a ticket, the dashboard) get the plain
    event, and when no open page shows a list nothing is read nor rendered. A reader of an app mounted
    under a path (SCRIPT_NAME) gets the row's link under it, as a fetched row has it."""
    from inbox.blueprints.live_rows import _row_details
    from inbox.broker import StreamViewer

    assert 'sse-connect="/stream?rows=1"' in logged_in.get("/inbox").get_data(as_text=True)
    assert 'sse-connect="/stream"' in logged_in.get("/tickets").get_data(as_text=True)
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="Bonjour"))
    conversation_id = _conversation_of("+33611111111")
    event, workspace_id = {"conversation_id": conversation_id}, workspace.id

    on_a_ticket = StreamViewer(agent.id, "fr")
    with recorded_statements() as statements:
        assert _row_details(app, workspace_id, event, frozenset({on_a_ticket})) is None
    assert statements == []

    at_root, under_path = StreamViewer(agent.id, "fr", lists=True), StreamViewer(agent.id, "fr", True, "/support")
    details = _row_details(app, workspace_id, event, frozenset({on_a_ticket, at_root, under_path}))
    assert details(on_a_ticket) is None  # its stream gets the event as published
    assert f'href="/inbox/c/{conversation_id}"' in details(at_root)["row"]["html"]
    assert f'href="/support/inbox/c/{conversation_id}"' in details(under_path)["row"]["html"]
    fetched = logged_in.get(f"/inbox/rows/{conversation_id}", headers=HTMX, base_url="http://localhost/support")
    assert f'href="/support/inbox/c/{conversation_id}"' in fetched.get_data(as_text=True)


def _other_contact(channel):
    from inbox.models import Contact

    contact = Contact(workspace_id=channel.workspace_id, name="Ailleurs")
    db.session.add(contact)
    db.session.flush()
    return contact
