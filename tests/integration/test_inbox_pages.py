"""What an agent sees: login, the inbox list with filters and search, a conversation."""

from __future__ import annotations

import re

from sqlalchemy import select, text

from inbox.actions.contacts import do_claim_identity
from inbox.actions.labels import do_create_label, do_set_contact_labels, do_set_conversation_labels
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Contact, Conversation, Label, Message

from ..conftest import login
from ..helpers import inbound, other_workspace_sms_channel, recorded_statements, signed_post
from .outbound_fixtures import again, fresh


def test_login_page_then_inbox(client, agent):
    assert client.get("/inbox").status_code == 302  # anonymous → login
    page = client.get("/login")
    assert page.status_code == 200 and b'name="password"' in page.data
    wrong = client.post("/login", data={"email": agent.email, "password": "nope nope nope"})
    assert wrong.status_code == 422
    login(client, agent)
    inbox = client.get("/inbox")
    assert inbox.status_code == 200
    assert b"Alice Agent" in inbox.data


def test_inbox_lists_conversations_with_contact_preview_and_channel(logged_in, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="Ma facture est fausse"))
    html = logged_in.get("/inbox").get_data(as_text=True)
    assert "+33611111111" in html
    assert "Ma facture est fausse" in html
    assert 'class="ch-icon ch-sms"' in html


def test_conversation_deep_link_renders_the_full_page(logged_in, client, sms_channel):
    signed_post(client, sms_channel, inbound(body="Bonjour, besoin d'aide"))
    conversation = db.session.scalar(select(Conversation))
    page = logged_in.get(f"/inbox/c/{conversation.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<html" in html and 'id="conv-list"' in html and 'id="thread"' in html
    assert "Bonjour, besoin d&#39;aide" in html
    fragment = logged_in.get(f"/inbox/c/{conversation.id}", headers={"HX-Request": "true", "HX-Target": "thread"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'id="thread"' in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_search_filters_by_contact_and_message_text(logged_in, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="problème de livraison"))
    signed_post(client, sms_channel, inbound(sender="+33622222222", body="question facture"))
    headers = {"HX-Request": "true", "HX-Target": "conv-list"}
    html = logged_in.get("/inbox?q=livraison", headers=headers).get_data(as_text=True)
    assert "+33611111111" in html and "+33622222222" not in html
    html = logged_in.get("/inbox?q=3362222", headers=headers).get_data(as_text=True)
    assert "+33622222222" in html and "+33611111111" not in html


def test_other_workspace_conversation_is_404(logged_in, client, app):
    channel = other_workspace_sms_channel("other")
    signed_post(client, channel, inbound(body="secret de B"))
    foreign = db.session.scalar(select(Conversation))
    message = db.session.scalar(select(Message))

    assert logged_in.get(f"/inbox/c/{foreign.id}").status_code == 404
    assert logged_in.post(f"/inbox/c/{foreign.id}/reply", data={"body": "hack"}).status_code == 404
    assert logged_in.post(f"/inbox/c/{foreign.id}/assign", data={"assignee_id": "me"}).status_code == 404
    assert logged_in.get(f"/inbox/m/{message.id}/status").status_code == 404
    assert "secret de B" not in logged_in.get("/inbox?q=secret").get_data(as_text=True)


def test_inbox_list_query_count_does_not_grow_with_page_size(app, logged_in, client, sms_channel):
    def queries_for_inbox(page_size: int) -> int:
        app.config["INBOX_PAGE_SIZE"] = page_size
        with recorded_statements() as statements:
            response = logged_in.get("/inbox")
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True)

    for i in range(50):
        signed_post(client, sms_channel, inbound(sender=f"+336000000{i:02d}", body=f"message {i}"))
    few, html_few = queries_for_inbox(5)
    many, html_many = queries_for_inbox(50)
    assert len(re.findall(r'id="row-\d+"', html_few)) == 5
    assert len(re.findall(r'id="row-\d+"', html_many)) == 50
    assert few == many, (few, many)
    assert few <= 6


def _thread_bodies(html: str) -> list[str]:
    return re.findall(r'<div class="msg-body">(thread \d+)</div>', html)


def test_long_conversation_shows_its_latest_page_and_loads_earlier_ones_in_order(app, logged_in, client,
                                                                                  sms_channel):
    app.config["THREAD_PAGE_SIZE"] = 20
    for i in range(45):
        signed_post(client, sms_channel, inbound(body=f"thread {i}"))
    conversation = db.session.scalar(select(Conversation))
    # An email imported late: its id is the highest, its date puts it between "thread 9" and "thread 10".
    late = db.session.scalar(select(Message).where(Message.body == "thread 44"))
    before, after = (db.session.scalar(select(Message.created_at).where(Message.body == b))
                     for b in ("thread 9", "thread 10"))
    late.created_at = before + (after - before) / 2
    db.session.commit()
    chronological = [f"thread {i}" for i in range(10)] + ["thread 44"] + [f"thread {i}" for i in range(10, 44)]

    html = logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    shown = _thread_bodies(html)
    assert shown == chronological[-20:]
    pages = [shown]
    while (link := re.search(r'id="older"[^>]*hx-get="([^"]+)"', html)) is not None:
        html = logged_in.get(link.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"}).get_data(as_text=True)
        pages.insert(0, _thread_bodies(html))
    assert [len(p) for p in pages] == [5, 20, 20]  # the last "Earlier messages" was not an empty page
    assert [body for page in pages for body in page] == chronological


def test_conversation_query_count_does_not_grow_with_thread_page_size(app, logged_in, client, sms_channel):
    for i in range(30):
        signed_post(client, sms_channel, inbound(body=f"thread {i}"))
    conversation = db.session.scalar(select(Conversation))

    def queries_for_thread(page_size: int) -> tuple[int, str]:
        app.config["THREAD_PAGE_SIZE"] = page_size
        with recorded_statements() as statements:
            response = logged_in.get(f"/inbox/c/{conversation.id}", headers={"HX-Request": "true", "HX-Target": "thread"})
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True)

    queries_for_thread(5)  # the first opening marks the conversation read (a write)
    few, html_few = queries_for_thread(5)
    many, html_many = queries_for_thread(25)
    assert len(_thread_bodies(html_few)) == 5 and len(_thread_bodies(html_many)) == 25
    assert few == many, (few, many)


def _counted(client, path: str, headers: dict | None = None) -> tuple[int, str]:
    with recorded_statements() as statements:
        response = client.get(path, headers=headers or {})
    assert response.status_code == 200
    return len(statements), response.get_data(as_text=True)


def test_conversation_page_queries_stay_bounded_whatever_its_labels_identities_and_messages(
        logged_in, client, workspace, sms_channel):
    """The full page (list, thread, controls, composer, contact card) and the thread alone read a
    fixed number of statements: labels and identities come with the conversation, rows and
    messages with their own page query."""
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="bonjour"))
    conversation_id = db.session.scalar(select(Conversation.id))
    thread = {"HX-Request": "true", "HX-Target": "thread"}
    _counted(logged_in, f"/inbox/c/{conversation_id}")  # the first opening marks it read (a write)
    page_small, _html = _counted(logged_in, f"/inbox/c/{conversation_id}")
    thread_small, _html = _counted(logged_in, f"/inbox/c/{conversation_id}", thread)

    for i in range(12):
        signed_post(client, sms_channel, inbound(sender="+33611111111", body=f"suite {i}"))
        signed_post(client, sms_channel, inbound(sender=f"+336220000{i:02d}", body=f"autre {i}"))
    fresh()  # the requests above committed: no read snapshot of the test may hold the database
    labels = [do_create_label(again(workspace).id, name=name, color="#2563eb") for name in ("VIP", "Retard", "Devis")]
    conversation = db.session.get(Conversation, conversation_id)
    do_set_conversation_labels(conversation, labels[:2])
    contact = db.session.get(Contact, conversation.contact_id)
    do_set_contact_labels(contact, [db.session.get(Label, labels[2].id)])
    do_claim_identity(db.session.get(Contact, contact.id), ChannelKind.EMAIL, "jeanne@example.test", verified=True)
    fresh()
    _counted(logged_in, f"/inbox/c/{conversation_id}")
    page_big, html = _counted(logged_in, f"/inbox/c/{conversation_id}")
    thread_big, fragment = _counted(logged_in, f"/inbox/c/{conversation_id}", thread)

    assert (page_big, thread_big) == (page_small, thread_small)
    assert page_big <= 15 and thread_big <= 13, (page_big, thread_big)
    for shown in (html, fragment):
        assert ">VIP</span>" in shown and ">Retard</span>" in shown and ">Devis</span>" in shown
        assert "jeanne@example.test" in shown and "+33611111111" in shown
        assert '<div class="msg-body">suite 11</div>' in shown
    assert len(re.findall(r'id="row-\d+"', html)) == 13


def test_priority_first_pages_skip_no_conversation_when_one_moves_up_meanwhile(app, logged_in, client, sms_channel):
    """"More conversations" continues after the last row shown, not at an offset: a live change moving
    a conversation above the page already shown no longer shifts the next page by one."""
    from html import unescape

    from inbox.models import Priority

    app.config["INBOX_PAGE_SIZE"] = 2
    numbers = [f"+3361010100{n}" for n in range(6)]
    for number in numbers:
        signed_post(client, sms_channel, inbound(sender=number, body=f"Demande {number}"))
    fresh()
    conversations = {c.contact.display_name: c for c in db.session.scalars(select(Conversation))}
    for number in numbers[:3]:
        conversations[number].priority = Priority.HIGH
    db.session.commit()

    def page(url: str) -> tuple[list[str], str | None]:
        html = logged_in.get(url, headers={"HX-Request": "true", "HX-Target": "conv-list"}).get_data(as_text=True)
        more = re.search(r'class="btn btn-more" hx-get="([^"]+)"', html)
        return re.findall(r'<span class="row-name">([^<]+)</span>', html), more and unescape(more.group(1))

    first, more = page("/inbox?sort=priority")
    assert first == [numbers[2], numbers[1]]  # high first, latest activity first
    signed_post(client, sms_channel, inbound(sender=numbers[5], body="Relance"))  # a normal one, now the latest
    signed_post(client, sms_channel, inbound(sender=numbers[0], body="Relance"))  # a high one moves to the top
    seen = list(first)
    while more:
        rows, more = page(more)
        seen += rows
    assert seen == [numbers[2], numbers[1], numbers[5], numbers[4], numbers[3]]  # each once, none skipped
    assert numbers[0] not in seen  # it moved above the pages shown: the live row brings it


def test_sidebar_counts_read_the_open_conversations_index_whatever_sqlites_statistics(app, workspace, sms_channel):
    """A workspace of years: most conversations resolved, a few open. The counts are right on both
    engines; on SQLite, whether it has statistics or not (they keep no distribution: two statuses,
    half each, it thinks), they read the partial index of the open ones, not every conversation.
    PostgreSQL keeps each status's share, so its plan is its own: only the figures are checked there."""
    from inbox.models.queries import _OPEN_COUNTS, OpenCounts

    contacts = [Contact(workspace_id=workspace.id, name=f"Client {i}", phone=f"+3360000{i:04d}") for i in range(400)]
    db.session.add_all(contacts)
    db.session.flush()
    db.session.add_all([Conversation(workspace_id=workspace.id, contact_id=c.id, channel_id=sms_channel.id,
                                     status="open" if i < 8 else "resolved", assignee_id=None)
                        for i, c in enumerate(contacts)])
    db.session.commit()
    sqlite = db.engine.dialect.name == "sqlite"
    sql = str(_OPEN_COUNTS.compile(db.engine))

    def plan() -> str:
        with db.engine.connect() as connection:  # a new connection reads the statistics as they are now
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (workspace.id,))
            return " ".join(str(row) for row in rows)

    if sqlite:
        assert "ix_conversation_open" in plan()  # no statistics yet (a database nobody ANALYZEd)
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    if sqlite:
        assert "ix_conversation_open" in plan()
    counts = OpenCounts.of(workspace.id).views_of(0)
    assert (counts["all"], counts["unassigned"], counts["sms"]) == (8, 8, 8)


def test_a_row_says_who_of_the_team_wrote_the_last_message(app, logged_in, client, sms_channel, agent, workspace):
    """« Sara : » for Sara's answer, the agent's first name for theirs, nothing for the customer's: the
    same words for every reader (a live row is rendered once per language)."""
    from inbox.actions.contacts import do_merge_contacts
    from inbox.actions.conversations import do_send_bot_reply, do_send_reply

    for phone in ("+33611111111", "+33622222222", "+33633333333"):
        signed_post(client, sms_channel, inbound(sender=phone, body=f"Bonjour de {phone}"))
    by_phone = {c.contact.phone: c for c in db.session.scalars(select(Conversation))}
    do_send_bot_reply(by_phone["+33622222222"], "Votre colis part demain.", channel=sms_channel)
    do_send_reply(by_phone["+33633333333"], "Je regarde votre dossier.", actor=agent, channel=sms_channel)

    html = logged_in.get("/inbox", headers={"HX-Request": "true", "HX-Target": "conv-list"}).get_data(as_text=True)
    previews = {phone: re.search(rf'id="row-{c.id}".*?class="row-preview">(.*?)</span>\s*<span class="row-meta"',
                                 html, re.S).group(1) for phone, c in by_phone.items()}
    assert previews["+33611111111"] == "Bonjour de +33611111111"
    assert previews["+33622222222"] == '<span class="muted">Sara :</span> Votre colis part demain.'
    assert previews["+33633333333"] == '<span class="muted">Alice :</span> Je regarde votre dossier.'
    assert "Vous :" not in html

    # A merge keeps the newest preview with its writer.
    kept, other = by_phone["+33611111111"].contact, by_phone["+33633333333"].contact
    do_merge_contacts(kept, other, actor=agent)
    merged = db.session.get(Conversation, by_phone["+33611111111"].id)
    assert (merged.last_message_sender_kind, merged.last_message_sender_id) == ("agent", agent.id)
