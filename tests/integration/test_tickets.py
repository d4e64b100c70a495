"""Tickets as agents use them: escalate a conversation, create from a client page, reply or
note, move through the status flow, assign, see the list; and nothing leaks across workspaces."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from sqlalchemy import func, select

from inbox.actions.tickets import do_change_status, on_customer_message
from inbox.actions.workspace import do_create_contact, do_create_user, do_create_workspace
from inbox.broker import redis_client, workspace_channel
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import (
    Message, Notification, Role, Ticket, TicketConversation, TicketEvent, TicketStatus, utcnow,
)

from ..conftest import PASSWORD, login, run_jobs
from ..helpers import recorded_statements
from .ticket_fixtures import T0, admin, contact, customer_writes, fresh, make_ticket  # noqa: F401

HX = {"HX-Request": "true"}


def ticket_page(client, ticket_id: int) -> tuple[int, str]:
    """The ticket page as the agent gets it, with the number of SQL statements it took."""
    with recorded_statements() as statements:
        response = client.get(f"/tickets/{ticket_id}")
    assert response.status_code == 200
    return len(statements), response.get_data(as_text=True)


def test_escalating_a_conversation_opens_a_numbered_ticket_and_tells_the_customer(
        app, logged_in, client, sms_channel, agent, fake_twilio):
    conversation = customer_writes(client, sms_channel, "Mon terminal de paiement ne s'allume plus")
    thread = logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert f"/tickets/new?conversation_id={conversation.id}" in thread  # the "Escalate to ticket" button

    form = logged_in.get(f"/tickets/new?conversation_id={conversation.id}").get_data(as_text=True)
    assert "Mon terminal de paiement ne s&#39;allume plus" in form  # subject and description prefilled
    response = logged_in.post("/tickets", data={
        "conversation_id": conversation.id, "subject": "Terminal de paiement HS", "description": "Écran noir",
        "category": "technical", "priority": "high", "tags": "terminal, urgent", "assignee_id": "me",
        "notify": ["0", "1"]})

    assert response.status_code == 303
    ticket = fresh(Ticket, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert ticket.reference == "TKT-000001" and ticket.status == "open" and ticket.source == "conversation"
    assert ticket.category == "technical" and ticket.priority == "high" and ticket.tags == ["terminal", "urgent"]
    assert ticket.assignee_id == agent.id
    assert ticket.first_response_due_at < ticket.resolution_due_at  # computed in business time and stored
    assert db.session.get(TicketConversation, (ticket.id, conversation.id)) is not None
    run_jobs(app)
    assert len(fake_twilio.sent) == 1
    assert "TKT-000001" in fake_twilio.sent[0]["Body"] and fake_twilio.sent[0]["To"] == "+33612345678"

    page = logged_in.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Terminal de paiement HS" in page and "Écran noir" in page and 'id="ticket-side"' in page


def test_client_page_creates_a_ticket_and_reports_every_wrong_field(app, logged_in, contact):
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert f"/tickets/new?contact_id={contact.id}" in page and "Créer un ticket" in page

    bad = logged_in.post("/tickets", data={"contact_id": contact.id, "subject": "  ", "category": "weather",
                                           "priority": "medium"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Donnez un objet au ticket." in html and "Catégorie inconnue." in html  # the agent reads French

    ok = logged_in.post("/tickets", data={"contact_id": contact.id, "subject": "Facture en double",
                                          "category": "billing", "priority": "medium", "notify": "0"})
    assert ok.status_code == 303
    assert db.session.scalar(select(func.count(Ticket.id))) == 1


def test_internal_notes_never_leave_and_public_replies_go_to_the_customer(
        app, logged_in, client, sms_channel, agent, contact, fake_twilio):
    ticket = make_ticket(contact)
    note = logged_in.post(f"/tickets/{ticket.id}/notes", headers=HX,
                          data={"body": "Client VIP, rappeler avant midi", "internal": "1", "idempotency_key": "n1"})
    assert note.status_code == 200 and "msg-note" in note.get_data(as_text=True)
    logged_in.post(f"/tickets/{ticket.id}/notes", headers=HX,
                   data={"body": "Client VIP, rappeler avant midi", "internal": "1", "idempotency_key": "n1"})
    run_jobs(app)
    assert fake_twilio.sent == []

    reply = logged_in.post(f"/tickets/{ticket.id}/notes", headers=HX,
                           data={"body": "Bonjour Élodie, le colis part demain.", "idempotency_key": "r1"})
    assert reply.status_code == 200
    run_jobs(app)
    assert [m["Body"] for m in fake_twilio.sent] == ["Bonjour Élodie, le colis part demain."]

    ticket = fresh(Ticket, ticket.id)
    assert ticket.first_responded_at is not None and ticket.status == "in_progress"
    assert ticket.assignee_id == agent.id  # whoever answers first owns it
    public = TicketEvent.public_of(ticket.id)  # what a portal or customer API may show
    assert all(not e.internal for e in public) and "internal_note" not in {e.kind for e in public}
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.kind == "internal_note")) == 1
    empty = logged_in.post(f"/tickets/{ticket.id}/notes", headers=HX, data={"body": "  ", "internal": "1"})
    assert empty.status_code == 422 and empty.headers["HX-Retarget"] == "#ticket-composer"


def test_status_flow_refuses_illegal_moves_with_a_message(app, logged_in, contact):
    ticket = make_ticket(contact)
    url = f"/tickets/{ticket.id}/status"
    assert logged_in.post(url, headers=HX, data={"status": "in_progress"}).status_code == 200
    assert logged_in.post(url, headers=HX, data={"status": "closed", "notify": "0"}).status_code == 200
    refused = logged_in.post(url, headers=HX, data={"status": "open"})
    assert refused.status_code == 409
    assert "Un ticket fermé" in json.loads(refused.headers["HX-Trigger"])["toast"]["message"]
    assert refused.headers["HX-Reswap"] == "none"
    unknown = logged_in.post(url, headers=HX, data={"status": "exploded"})
    # htmx is configured to swap 422 bodies (forms answer with themselves): this empty one must not
    assert unknown.status_code == 422 and unknown.headers["HX-Reswap"] == "none" and unknown.data == b""
    assert "Statut inconnu." in json.loads(unknown.headers["HX-Trigger"])["toast"]["message"]
    page = logged_in.post(url, data={"status": "open"})  # a browser without htmx gets the error page
    assert page.status_code == 409 and "Un ticket fermé" in page.get_data(as_text=True)
    assert fresh(Ticket, ticket.id).status == "closed" and fresh(Ticket, ticket.id).closed_at is not None


def test_assignment_notifies_the_agent_live_in_the_bell(app, client, agent, admin, contact):
    ticket = make_ticket(contact)
    login(client, admin)
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(workspace_channel(agent.workspace_id))
    assert client.post(f"/tickets/{ticket.id}/assign", headers=HX, data={"assignee_id": str(agent.id)}).status_code == 200
    events, deadline = [], time.monotonic() + 2
    while time.monotonic() < deadline and not {f"notifications-{agent.id}", "ticket-changed"} <= set(events):
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            events.append(json.loads(message["data"])["type"])
    pubsub.close()
    assert f"notifications-{agent.id}" in events and "ticket-changed" in events

    notification = db.session.scalar(select(Notification).where(Notification.user_id == agent.id))
    assert notification.kind == "assigned" and notification.ticket_id == ticket.id
    client.post("/logout")
    login(client, agent)
    bell = client.get("/notifications/bell", headers=HX).get_data(as_text=True)
    assert 'data-unread="1"' in bell
    page = client.get("/tickets").get_data(as_text=True)  # every page's header refetches it on the user's event
    assert f'hx-trigger="load, sse:notifications-{agent.id}" hx-swap="innerHTML"' in page
    assert client.get(f"/notifications/{notification.id}").status_code == 302
    assert 'data-unread="0"' in client.get("/notifications/bell", headers=HX).get_data(as_text=True)


def test_customer_reply_reopens_a_resolved_ticket_within_the_window(app, client, sms_channel, agent, contact):
    conversation = customer_writes(client, sms_channel, "Toujours pas reçu")
    ticket = make_ticket(contact, conversation=conversation, assignee=agent, now=utcnow())
    do_change_status(ticket, TicketStatus.RESOLVED, actor=agent, notify_customer=False)

    customer_writes(client, sms_channel, "Finalement le colis est abîmé")
    message = db.session.scalar(select(Message).order_by(Message.id.desc()))
    assert [t.id for t in on_customer_message(message.conversation, message)] == [ticket.id]
    on_customer_message(message.conversation, message)  # a second call changes nothing

    ticket = fresh(Ticket, ticket.id)
    assert ticket.status == "in_progress" and ticket.reopened_count == 1 and ticket.resolved_at is None
    assert ticket.last_customer_message_at == message.created_at
    kinds = db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert kinds.count("customer_message") == 1 and "reopened" in kinds
    replied = db.session.scalar(select(Notification).where(Notification.kind == "customer_replied"))
    assert replied.user_id == agent.id and replied.data["reopened"] is True


def test_customer_reply_after_the_reopen_window_or_a_rating_digit_does_not_reopen(app, client, sms_channel, agent, contact):
    conversation = customer_writes(client, sms_channel, "Bonjour")
    ticket = make_ticket(contact, conversation=conversation, assignee=agent, now=utcnow())
    do_change_status(ticket, TicketStatus.RESOLVED, actor=agent)  # asks for a rating on SMS
    assert fresh(Ticket, ticket.id).rating_requested_at is not None

    customer_writes(client, sms_channel, "5")
    digit = db.session.scalar(select(Message).order_by(Message.id.desc()))
    on_customer_message(digit.conversation, digit)
    assert fresh(Ticket, ticket.id).status == "resolved"  # the routing step records the rating

    customer_writes(client, sms_channel, "Autre chose")
    late = db.session.scalar(select(Message).order_by(Message.id.desc()))
    on_customer_message(late.conversation, late, now=utcnow() + timedelta(days=8))  # window: 7 days
    assert fresh(Ticket, ticket.id).status == "resolved"


def test_waiting_on_customer_goes_back_to_the_team_when_the_customer_answers(app, client, sms_channel, agent, contact):
    conversation = customer_writes(client, sms_channel, "Bonjour")
    ticket = make_ticket(contact, conversation=conversation, now=utcnow())
    do_change_status(ticket, TicketStatus.WAITING_ON_CUSTOMER, actor=agent, notify_customer=False)
    customer_writes(client, sms_channel, "Voici mon numéro de commande : 4471")
    message = db.session.scalar(select(Message).order_by(Message.id.desc()))
    on_customer_message(message.conversation, message)
    assert fresh(Ticket, ticket.id).status == "open"  # unassigned → back to the queue


def test_agents_of_another_workspace_get_404_everywhere(app, logged_in, agent, contact):
    other = do_create_workspace("Concurrent", slug="other-ws")
    stranger = do_create_contact(other, name="Client de B", identities={ChannelKind.SMS: "+33700000001"})
    foreign = make_ticket(stranger, subject="Secret de B")
    mine = make_ticket(contact)
    assert foreign.number == mine.number == 1  # numbers are per workspace

    base = f"/tickets/{foreign.id}"
    assert logged_in.get(base).status_code == 404
    assert logged_in.get(base + "/timeline").status_code == 404
    assert logged_in.get(base + "/side").status_code == 404
    for path, data in [("/status", {"status": "closed"}), ("/assign", {"assignee_id": "me"}),
                       ("/priority", {"priority": "low"}), ("/notes", {"body": "x", "internal": "1"}),
                       ("/time", {"minutes": "10"}), ("/timer", {"action": "start"})]:
        assert logged_in.post(base + path, data=data).status_code == 404, path
    assert logged_in.get(f"/contacts/{stranger.id}").status_code == 404
    assert logged_in.get(f"/tickets/new?contact_id={stranger.id}").status_code == 404
    assert logged_in.post("/tickets", data={"contact_id": stranger.id, "subject": "x"}).status_code == 404
    listing = logged_in.get("/tickets?status=any&q=Secret").get_data(as_text=True)
    assert "Secret de B" not in listing
    assert fresh(Ticket, foreign.id).status == "open"


def test_ticket_list_filters_and_query_count_does_not_grow_with_page_size(app, logged_in, agent, contact):
    for i in range(30):
        make_ticket(contact, subject=f"Demande {i}", priority="critical" if i % 10 == 0 else "medium",
                    assignee=agent if i % 2 else None, now=T0 + timedelta(minutes=i))

    def queries_for(page_size: int):
        app.config["TICKETS_PAGE_SIZE"] = page_size
        with recorded_statements() as statements:
            response = logged_in.get("/tickets")
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True)

    few, html_few = queries_for(5)
    many, html_many = queries_for(30)
    assert len(re.findall(r'id="ticket-\d+"', html_few)) == 5
    assert len(re.findall(r'id="ticket-\d+"', html_many)) == 30
    assert few == many, (few, many)
    assert few <= 9, few

    fragment = logged_in.get("/tickets?priority=critical", headers={**HX, "HX-Target": "ticket-list"})
    assert len(re.findall(r'id="ticket-\d+"', fragment.get_data(as_text=True))) == 3
    assert "<html" not in fragment.get_data(as_text=True) and 'id="kpis"' in fragment.get_data(as_text=True)
    mine = logged_in.get("/tickets?assignee=me", headers={**HX, "HX-Target": "ticket-list"}).get_data(as_text=True)
    assert len(re.findall(r'id="ticket-\d+"', mine)) == 15
    found = logged_in.get("/tickets?q=TKT-000007", headers={**HX, "HX-Target": "ticket-list"}).get_data(as_text=True)
    assert re.findall(r">TKT-\d+<", found) == [">TKT-000007<"]
    page = logged_in.get("/tickets").get_data(as_text=True)
    assert "objectif 0" in page  # the KPI strip: unassigned, open critical

    app.config["TICKETS_PAGE_SIZE"] = 25
    first = logged_in.get("/tickets").get_data(as_text=True)
    after = re.search(r'after=([\d_.]+)', first).group(1)
    rest = logged_in.get(f"/tickets?after={after}", headers=HX).get_data(as_text=True)
    assert len(re.findall(r'id="ticket-\d+"', rest)) == 5


def test_ticket_page_query_count_does_not_grow_with_its_history(app, logged_in, client, sms_channel, agent,
                                                                 contact):
    from inbox.actions.tickets import do_add_ticket_note

    conversation = customer_writes(client, sms_channel, "Ma commande n'est pas arrivée")
    ticket_id = make_ticket(contact, conversation=conversation, assignee=agent).id

    short, _html = ticket_page(logged_in, ticket_id)
    for i in range(6):
        do_add_ticket_note(fresh(Ticket, ticket_id), f"Note n°{i}", actor=agent, internal=True)
    customer_writes(client, sms_channel, "Toujours rien reçu")
    long, html = ticket_page(logged_in, ticket_id)
    assert html.count('class="msg msg-outbound msg-note"') == 6 and "Toujours rien reçu" in html
    assert short == long, (short, long)
    assert long <= 14, long


def test_a_long_ticket_opens_on_its_latest_entries_and_shows_the_earlier_ones_on_demand(app, logged_in, agent,
                                                                                       contact):
    from inbox.actions.tickets import do_add_ticket_note

    app.config["TICKET_TIMELINE_SIZE"] = 5
    ticket_id = make_ticket(contact, assignee=agent).id
    for i in range(8):
        do_add_ticket_note(fresh(Ticket, ticket_id), f"Note n°{i}", actor=agent, internal=True)

    def notes(html: str) -> list[str]:
        return re.findall(r"Note n°(\d)", html)

    page = logged_in.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert notes(page) == ["3", "4", "5", "6", "7"]  # the latest five, in order
    assert "Afficher les entrées précédentes" in page
    whole = logged_in.get(f"/tickets/{ticket_id}/timeline?all=1", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert notes(whole) == [str(i) for i in range(8)]
    assert "Afficher les entrées précédentes" not in whole
    assert f'hx-get="/tickets/{ticket_id}/timeline?all=1" hx-trigger="sse:ticket-{ticket_id}-changed' in whole  # stays unfolded
    live = logged_in.get(f"/tickets/{ticket_id}/timeline", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert notes(live) == ["3", "4", "5", "6", "7"]
    app.config["TICKET_TIMELINE_SIZE"] = 30  # all of them fit: no button
    assert "Afficher les entrées précédentes" not in logged_in.get(f"/tickets/{ticket_id}").get_data(as_text=True)


def test_ticket_side_panel_shows_time_spend_timer_rating_and_conversations(app, logged_in, client, sms_channel,
                                                                          agent, admin, contact):
    """What the side panel reads with the ticket and in one time query, as the agent sees it."""
    from inbox.actions.ratings import do_record_rating
    from inbox.actions.timetracking import do_log_time, do_start_timer

    conversation = customer_writes(client, sms_channel, "Ma commande n'est pas arrivée")
    ticket_id = make_ticket(contact, conversation=conversation, assignee=agent).id
    other_id = make_ticket(contact, subject="Autre demande").id

    bare, html = ticket_page(logged_in, ticket_id)
    assert "Satisfaction" not in html and "(votre chronomètre sur un autre ticket s’arrêtera)" not in html
    do_log_time(fresh(Ticket, ticket_id), user=agent, minutes=90, note="Diagnostic du terminal")
    do_log_time(fresh(Ticket, ticket_id), user=admin, minutes=30)
    do_start_timer(fresh(Ticket, other_id), user=agent)  # the agent's timer runs on another ticket
    do_change_status(fresh(Ticket, ticket_id), TicketStatus.RESOLVED, actor=agent, notify_customer=False)
    do_record_rating(fresh(Ticket, ticket_id), 4, "Rapide et efficace")

    full, html = ticket_page(logged_in, ticket_id)
    assert "Diagnostic du terminal" in html and "Alice Agent" in html and "Camille Admin" in html
    assert "<strong>2 h 00</strong>" in html and "87,50" in html  # 90 min at 40 €/h + 30 min at 55 €/h
    assert "(votre chronomètre sur un autre ticket s’arrêtera)" in html
    assert "Satisfaction" in html and "Rapide et efficace" in html
    assert f"Conversation n° {conversation.id}" in html
    assert full <= bare + 1, (bare, full)  # the time entries' users come with them


def test_ticket_page_lists_the_time_of_a_ticket_with_more_entries_than_it_shows(app, logged_in, agent, contact):
    from inbox.actions.timetracking import do_log_time, do_start_timer
    from inbox.models.ticket_queries import ticket_time

    ticket_id = make_ticket(contact, assignee=agent).id
    other_id = make_ticket(contact, subject="Autre demande").id
    for _i in range(4):
        do_log_time(fresh(Ticket, ticket_id), user=agent, minutes=15)
    timer = do_start_timer(fresh(Ticket, other_id), user=agent)

    whole = ticket_time(fresh(Ticket, ticket_id), user_id=agent.id)
    cut = ticket_time(fresh(Ticket, ticket_id), user_id=agent.id, limit=3)
    assert len(whole.entries) == 4 and len(cut.entries) == 3
    assert whole.spend == cut.spend and whole.spend.minutes == 60 and str(whole.spend.cost) == "40.00"
    assert whole.running.id == cut.running.id == timer.id


def test_rating_link_records_one_rating(app, client, agent, contact):
    from inbox.actions.ratings import rating_url

    ticket = make_ticket(contact, assignee=agent)
    do_change_status(ticket, TicketStatus.RESOLVED, actor=agent, notify_customer=False)
    path = rating_url(ticket).removeprefix(app.config["PUBLIC_BASE_URL"])
    assert path.startswith("/portal/rate/")  # one rating page: the portal's
    assert client.get(path).status_code == 200
    assert client.get(path[:-3] + "xyz").status_code == 404  # altered token
    assert client.post(path, data={"score": "9"}).status_code == 422
    done = client.post(path, data={"score": "4", "comment": "Rapide et aimable"})
    assert done.status_code == 200 and "Votre note a bien été enregistrée" in done.get_data(as_text=True)
    again = client.post(path, data={"score": "1"})
    assert again.status_code == 200
    ticket = fresh(Ticket, ticket.id)
    assert ticket.rating.score == 4 and ticket.rating.agent_id == agent.id and ticket.rating.source == "link"


def test_other_agent_sees_the_ticket_in_the_inbox_contact_card(app, client, workspace, sms_channel, contact):
    conversation = customer_writes(client, sms_channel, "Bonjour")
    ticket = make_ticket(contact, conversation=conversation)
    colleague = do_create_user(workspace, email="bob@example.test", name="Bob", password=PASSWORD,
                               role=Role.AGENT)
    login(client, colleague)
    thread = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert ticket.reference in thread and f"/tickets/{ticket.id}" in thread


def test_rating_links_sent_before_the_portal_page_still_work(app, client, agent, contact):
    from inbox.actions.ratings import rating_token

    ticket = make_ticket(contact, assignee=agent)
    do_change_status(ticket, TicketStatus.RESOLVED, actor=agent, notify_customer=False)
    old = f"/rate/{rating_token(ticket)}"
    moved = client.get(old + "?score=5")
    assert moved.status_code == 308 and moved.headers["Location"].endswith(f"/portal{old}?score=5")
    done = client.post(old, data={"score": "5", "comment": "Merci"}, follow_redirects=True)
    assert done.status_code == 200 and "Votre note a bien été enregistrée" in done.get_data(as_text=True)
    assert fresh(Ticket, ticket.id).rating.score == 5


def test_a_new_unassigned_ticket_is_announced_to_the_admins(app, agent, admin, contact):
    from inbox.mailer import get_mailer

    nobodys = make_ticket(contact, subject="Question sans propriétaire")
    make_ticket(contact, subject="Déjà pris", assignee=agent)  # its assignee is told instead
    make_ticket(contact, subject="Créé par l'admin", actor=admin)  # nobody tells themselves
    run_jobs(app)
    news = db.session.scalars(select(Notification).where(Notification.kind == "new_ticket")).all()
    assert [(n.user_id, n.ticket_id) for n in news] == [(admin.id, nobodys.id)]
    [mail] = [m for m in get_mailer().sent if m.to == admin.email]
    assert f"Nouveau ticket non assigné {nobodys.reference} de Élodie Fournier" in mail.subject


def test_ticket_kpis_average_response_and_sla_in_the_database(app, agent, contact):
    """The KPI strip's 30-day figures, computed by SQL on either engine: mean first response over
    the tickets answered, share resolved within their deadline over those finished."""
    from inbox.models.ticket_queries import ticket_kpis

    quick, slow, silent = (make_ticket(contact, subject=s, now=T0) for s in ("Rapide", "Lent", "Muet"))
    quick.first_responded_at, quick.resolved_at = T0 + timedelta(minutes=30), quick.resolution_due_at - timedelta(hours=1)
    slow.first_responded_at, slow.closed_at = T0 + timedelta(minutes=90), slow.resolution_due_at + timedelta(hours=1)
    db.session.commit()
    kpis = ticket_kpis(contact.workspace_id, now=T0 + timedelta(days=2))
    assert (kpis.first_response_minutes, kpis.resolved_within_sla, kpis.resolved_count) == (60, 50, 2)
    assert silent.first_responded_at is None
    # Outside the 30-day window, nothing counts.
    later = ticket_kpis(contact.workspace_id, now=T0 + timedelta(days=40))
    assert (later.first_response_minutes, later.resolved_within_sla, later.resolved_count) == (None, None, 0)


def test_ticket_kpi_counters_read_only_active_tickets(app, agent, contact):
    """The strip's counters: unassigned, open critical, waiting over a day, missed deadline,
    active; finished tickets count nowhere, whatever their fields say."""
    from inbox.models.ticket_queries import ticket_kpis

    make_ticket(contact, subject="Personne", priority="critical", now=T0)
    make_ticket(contact, subject="Pris", assignee=agent, now=T0)
    done = make_ticket(contact, subject="Fini", priority="critical", now=T0)
    do_change_status(done, TicketStatus.CLOSED, actor=agent, notify_customer=False)
    kpis = ticket_kpis(contact.workspace_id, now=T0 + timedelta(hours=1))
    assert (kpis.active, kpis.unassigned, kpis.open_critical, kpis.waiting_over_24h, kpis.breached) == (2, 1, 1, 0, 0)
    # Weeks later, nobody has answered: both are waiting and past their deadlines.
    late = ticket_kpis(contact.workspace_id, now=T0 + timedelta(days=30))
    assert (late.active, late.unassigned, late.open_critical, late.waiting_over_24h, late.breached) == (2, 1, 1, 2, 2)
