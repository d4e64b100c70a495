"""The REST API as integrators use it: a member's token or a customer's token, JSON in and out.
Every response below is checked against the app's own OpenAPI document."""

from __future__ import annotations

import concurrent.futures
import re
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import event, select

from inbox.actions.api_tokens import do_create_api_token
from inbox.actions.ratings import do_record_rating
from inbox.actions.tickets import do_add_ticket_note, do_change_status
from inbox.actions.workspace import do_create_contact, do_create_user, do_create_workspace
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import ApiToken, Ticket, TicketEvent
from inbox.openapi import spec

from ..conftest import PASSWORD, PUBLIC_BASE_URL, login, run_jobs
from ..helpers import recorded_statements
from .openapi_check import OpenApiChecker
from .ticket_fixtures import T0, admin, contact, customer_writes, fresh, make_ticket  # noqa: F401

OTHER_CUSTOMER = "+33698765432"


class Api:
    """The test client speaking to /api with a bearer token; every answer is checked against
    the OpenAPI document."""

    def __init__(self, client, checker: OpenApiChecker, token: str | None):
        self.client, self.checker, self.token = client, checker, token

    def _headers(self, extra=None) -> dict:
        headers = {"Accept": "application/json", **(extra or {})}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(self, path: str, **params):
        response = self.client.get(path, query_string=params, headers=self._headers())
        self.checker.check("GET", path, response)
        return response

    def delete(self, path: str):
        response = self.client.delete(path, headers=self._headers())
        self.checker.check("DELETE", path, response)
        return response

    def post(self, path: str, body=None, *, headers=None, raw: bytes | None = None):
        if raw is not None:
            response = self.client.post(path, data=raw, content_type="application/json", headers=self._headers(headers))
        else:
            response = self.client.post(path, json=body, headers=self._headers(headers))
        self.checker.check("POST", path, response)
        return response


@pytest.fixture
def checker():
    return OpenApiChecker(spec(PUBLIC_BASE_URL))


@pytest.fixture
def api(client, checker):
    return lambda token=None: Api(client, checker, token)


def token_for(*, user=None, contact=None) -> str:
    owner = user or contact
    return do_create_api_token(owner.workspace_id, name="test", user=user, contact=contact)[1]


@pytest.fixture
def other_contact(workspace, sms_channel):
    return do_create_contact(workspace, name="Marc Petit", identities={ChannelKind.SMS: OTHER_CUSTOMER},
                             preferred_channel=ChannelKind.SMS, phone=OTHER_CUSTOMER)


@pytest.fixture
def elsewhere():
    """Another workspace, with its own agent and client."""
    ws = do_create_workspace("Ailleurs", slug=f"other-{uuid.uuid4().hex[:6]}")
    agent = do_create_user(ws, email="agent@elsewhere.test", name="Bob Ailleurs", password=PASSWORD)
    client_ = do_create_contact(ws, name="Client Ailleurs", phone="+33611111111")
    return ws, agent, client_


# -- the document --------------------------------------------------------------------------------
def test_openapi_document_is_served_and_describes_every_api_route(app, client, checker):
    response = client.get("/api/openapi.json")  # public: no token needed to read the manual
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1") and document["servers"][0]["url"] == PUBLIC_BASE_URL

    routed = {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in rule.methods - {"HEAD", "OPTIONS"} if rule.endpoint != "api.openapi"}
    documented = {(re.sub(r"\{(\w+)\}", r"<int:\1>", path), method.upper())
                  for path, operations in document["paths"].items() for method in operations}
    assert documented == routed
    for operation in (op for ops in document["paths"].values() for op in ops.values()):
        assert operation["operationId"] and operation["responses"]


# -- authentication --------------------------------------------------------------------------------
def test_missing_invalid_or_revoked_tokens_get_401(app, api, agent):
    response = api().get("/api/tickets")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api("coc_not-a-real-token").get("/api/tickets").status_code == 401
    assert api("something else").get("/api/tickets/stats").status_code == 401

    token = token_for(user=agent)
    assert api(token).get("/api/tickets").status_code == 200
    row = db.session.scalar(select(ApiToken))
    assert row.token_hash != token and token not in (row.prefix, row.name) and token.startswith(row.prefix)
    assert row.last_used_at is not None

    agent.is_active_member = False  # a deactivated member's tokens stop working
    db.session.commit()
    assert api(token).get("/api/tickets").status_code == 401
    agent.is_active_member = True
    db.session.commit()
    from inbox.actions.api_tokens import do_revoke_api_token
    do_revoke_api_token(row, actor=None)
    assert api(token).get("/api/tickets").status_code == 401


# -- creating, reading -----------------------------------------------------------------------------
def test_member_opens_a_ticket_and_the_customer_is_told(app, api, agent, contact, fake_twilio):
    me = api(token_for(user=agent))
    response = me.post("/api/tickets", {"contact_id": contact.id, "category": "billing", "subject": "Facture en double",
                                        "description": "Débitée deux fois en mars", "priority": "high"})

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"ticket_id", "number", "status", "created_at", "url"}
    assert body["number"] == "TKT-000001" and body["status"] == "open"
    assert body["url"] == f"{PUBLIC_BASE_URL}/tickets/{body['ticket_id']}"
    assert response.headers["Location"] == f"/api/tickets/{body['ticket_id']}"
    ticket = fresh(Ticket, body["ticket_id"])
    assert ticket.source == "api" and ticket.created_by_id == agent.id and ticket.category == "billing"
    run_jobs(app)
    assert "TKT-000001" in fake_twilio.sent[0]["Body"]  # the confirmation, on the customer's channel

    detail = me.get(f"/api/tickets/{ticket.id}").get_json()
    assert detail["subject"] == "Facture en double" and detail["contact"] == {"id": contact.id, "name": contact.name}
    assert detail["events"][0]["kind"] == "created" and detail["rating"] is None


def test_a_ticket_opened_through_the_api_is_announced_after_the_answer_and_once(app, api, agent, admin, contact,
                                                                              fake_twilio):
    from inbox.broker import get_queue
    from inbox.models import Notification, TicketEventKind

    me = api(token_for(user=agent))
    with recorded_statements() as statements:
        response = me.post("/api/tickets", {"contact_id": contact.id, "subject": "Colis abîmé"})
    assert response.status_code == 201
    ticket_id = response.get_json()["ticket_id"]
    reads = [m.group(1) for s in statements if s.startswith("SELECT") and (m := re.search(r"\bFROM\s+(\w+)", s))]
    # The token with its member and their workspace, the client, the SLA's settings, targets and holidays,
    # the next number: nothing read twice (PostgreSQL also takes the workspace's ticket-number lock).
    assert sorted(reads) == sorted(["api_token", "contact", "ticket_settings", "sla_policy", "holiday", "ticket"])

    def told():
        db.session.rollback()
        notified = db.session.scalars(select(Notification).where(Notification.user_id == admin.id)).all()
        events = TicketEvent.public_of(ticket_id)
        return ([n.kind for n in notified], [e.kind for e in events], len(fake_twilio.sent))

    assert told() == ([], [TicketEventKind.CREATED], 0)  # stored; the job tells people
    run_jobs(app)
    announced = told()
    assert announced == (["new_ticket"], [TicketEventKind.CREATED, TicketEventKind.CUSTOMER_NOTIFIED], 1)
    assert "Colis abîmé" in fake_twilio.sent[0]["Body"]
    get_queue().enqueue("inbox.jobs.tickets.announce_new_ticket", ticket_id, True)  # relayed twice
    run_jobs(app)
    assert told() == announced


def test_tickets_opened_at_once_get_distinct_numbers_in_a_row(app, agent, contact, live_server):
    """The number is the workspace's next one: SQLite's write lock orders the creations, PostgreSQL's
    per-workspace advisory lock too (retrying on the unique key, some of 8 at once failed with a 500)."""
    token = token_for(user=agent)

    def open_one(i):
        return requests.post(f"{live_server.url}/api/tickets", json={"contact_id": contact.id, "subject": f"Colis {i}"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(open_one, range(12)))

    assert [a.status_code for a in answers] == [201] * 12
    db.session.rollback()
    numbers = sorted(db.session.scalars(select(Ticket.number).where(Ticket.workspace_id == agent.workspace_id)))
    assert numbers == list(range(1, 13))
    assert sorted(a.json()["number"] for a in answers) == [f"TKT-{n:06d}" for n in range(1, 13)]


def test_wrong_fields_get_422_with_a_message_per_field(app, api, agent, contact, elsewhere):
    me = api(token_for(user=agent))
    response = me.post("/api/tickets", {"contact_id": contact.id, "subject": "  ", "category": "weather",
                                        "priority": "urgent", "description": 42})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"subject", "category", "priority", "description"}

    missing = me.post("/api/tickets", {"subject": "Sans client"}).get_json()["errors"]
    assert set(missing) == {"contact_id"}
    foreign = me.post("/api/tickets", {"contact_id": elsewhere[2].id, "subject": "Pas chez nous"})
    assert foreign.status_code == 422 and "contact_id" in foreign.get_json()["errors"]
    assert me.post("/api/tickets", raw=b"not json").status_code == 400
    assert me.post("/api/tickets", [1, 2]).status_code == 400
    assert me.get("/api/tickets", status="exploded", limit="1000").get_json()["errors"].keys() == {"status", "limit"}
    assert db.session.scalar(select(Ticket.id)) is None


def test_list_is_filtered_and_keyset_paginated_with_a_fixed_number_of_queries(app, api, agent, contact,
                                                                             other_contact):
    tickets = [make_ticket(contact if i % 2 else other_contact, subject=f"Demande {i}", now=T0 + timedelta(minutes=i),
                           priority="critical" if i == 3 else "medium", category="technical" if i < 4 else "general")
               for i in range(9)]
    do_change_status(tickets[0], "closed", actor=agent, notify_customer=False)
    from inbox.actions.tickets import do_assign_ticket
    do_assign_ticket(tickets[5], agent, actor=agent)
    me = api(token_for(user=agent))

    seen, cursor, pages = [], None, 0
    while True:
        page = me.get("/api/tickets", limit=4, **({"cursor": cursor} if cursor else {})).get_json()
        seen += [t["ticket_id"] for t in page["tickets"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == [t.id for t in reversed(tickets)]  # newest first, each once

    def ids(**params):
        return {t["ticket_id"] for t in me.get("/api/tickets", **params).get_json()["tickets"]}

    assert ids(status="closed") == {tickets[0].id}
    assert tickets[0].id not in ids(status="active")
    assert ids(priority="critical") == {tickets[3].id}
    assert ids(category="technical") == {t.id for t in tickets[:4]}
    assert ids(assignee="me") == {tickets[5].id} == ids(assignee=str(agent.id))
    assert tickets[5].id not in ids(assignee="none")
    assert ids(contact_id=str(contact.id)) == {t.id for t in tickets if t.contact_id == contact.id}
    assert me.get("/api/tickets", cursor="garbage!").status_code == 422

    def queries(limit: int) -> int:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert me.get("/api/tickets", limit=limit).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    assert queries(2) == queries(9) <= 4  # the token, the page (contact and assignee joined in)


def test_customer_token_sees_and_touches_only_its_own_tickets(app, api, agent, contact, other_contact):
    mine, theirs = make_ticket(contact, subject="Le mien"), make_ticket(other_contact, subject="Le sien")
    customer = api(token_for(contact=contact))

    listed = customer.get("/api/tickets").get_json()["tickets"]
    assert [t["ticket_id"] for t in listed] == [mine.id]
    assert "assignee" not in listed[0] and "tags" not in listed[0]  # the team's own fields stay home
    assert listed[0]["url"] == f"{PUBLIC_BASE_URL}/portal/tickets/{mine.id}"
    for path in (f"/api/tickets/{theirs.id}", "/api/tickets/999999"):
        assert customer.get(path).status_code == 404
    assert customer.post(f"/api/tickets/{theirs.id}/reply", {"message": "coucou"}).status_code == 404
    assert customer.post(f"/api/tickets/{theirs.id}/close", {}).status_code == 404
    assert customer.get("/api/tickets", contact_id=str(other_contact.id)).status_code == 403
    assert customer.get("/api/tickets", assignee="me").status_code == 403
    assert customer.get("/api/tickets/stats").status_code == 403
    assert customer.post("/api/tickets", {"contact_id": other_contact.id, "subject": "Pour lui"}).status_code == 403

    created = customer.post("/api/tickets", {"subject": "Nouvelle demande", "category": "account",
                                             "notify_user": False})
    assert created.status_code == 201
    ticket = fresh(Ticket, created.get_json()["ticket_id"])
    assert ticket.contact_id == contact.id and ticket.source == "api" and ticket.created_by_id is None
    assert fresh(Ticket, theirs.id).status == "open" and not TicketEvent.public_of(theirs.id)[1:]


def test_agents_of_another_workspace_get_404(app, api, contact, elsewhere):
    ticket = make_ticket(contact)
    outsider = api(token_for(user=elsewhere[1]))
    assert outsider.get(f"/api/tickets/{ticket.id}").status_code == 404
    assert outsider.post(f"/api/tickets/{ticket.id}/reply", {"message": "Bonjour", "internal_note": True}).status_code == 404
    assert outsider.post(f"/api/tickets/{ticket.id}/close", {"resolution": "non"}).status_code == 404
    assert outsider.get("/api/tickets").get_json()["tickets"] == []
    assert outsider.get("/api/tickets", contact_id=str(contact.id)).get_json()["tickets"] == []
    assert outsider.get("/api/tickets/stats").get_json()["total"] == 0
    assert fresh(Ticket, ticket.id).status == "open"


def test_internal_notes_are_for_agents_and_never_reach_customers(app, api, agent, contact, fake_twilio):
    ticket = make_ticket(contact)
    me, customer = api(token_for(user=agent)), api(token_for(contact=contact))

    note = me.post(f"/api/tickets/{ticket.id}/reply", {"message": "Client VIP, rappeler avant midi",
                                                       "internal_note": True}, headers={"Idempotency-Key": "n1"})
    assert note.status_code == 201 and note.get_json()["event"]["internal"] is True
    again = me.post(f"/api/tickets/{ticket.id}/reply", {"message": "Client VIP, rappeler avant midi",
                                                        "internal_note": True}, headers={"Idempotency-Key": "n1"})
    assert again.get_json()["event"]["event_id"] == note.get_json()["event"]["event_id"]
    assert customer.post(f"/api/tickets/{ticket.id}/reply", {"message": "psst", "internal_note": True}).status_code == 403

    public = me.post(f"/api/tickets/{ticket.id}/reply", {"message": "Votre colis part demain."})
    assert public.status_code == 201 and public.get_json()["status"] == "in_progress"
    answer = customer.post(f"/api/tickets/{ticket.id}/reply", {"message": "Merci beaucoup !"})
    assert answer.status_code == 201 and answer.get_json()["event"]["kind"] == "customer_message"
    run_jobs(app)
    assert [m["Body"] for m in fake_twilio.sent] == ["Votre colis part demain."]  # the note never left

    seen_by_customer = customer.get(f"/api/tickets/{ticket.id}").get_json()
    assert "Client VIP" not in str(seen_by_customer)
    assert all(not e["internal"] and "data" not in e for e in seen_by_customer["events"])
    assert {e["kind"] for e in seen_by_customer["events"]} >= {"public_reply", "customer_message"}
    seen_by_agent = me.get(f"/api/tickets/{ticket.id}").get_json()
    assert "internal_note" in {e["kind"] for e in seen_by_agent["events"]}
    assert me.post(f"/api/tickets/{ticket.id}/reply", {"message": "   "}).get_json()["errors"].keys() == {"message"}
    assert me.post(f"/api/tickets/{ticket.id}/reply", {"message": "x", "internal_note": "yes"}).status_code == 422


def test_closing_with_a_resolution_tells_the_customer_once(app, api, agent, contact, fake_twilio):
    ticket = make_ticket(contact)
    me = api(token_for(user=agent))
    closed = me.post(f"/api/tickets/{ticket.id}/close", {"resolution": "Remboursement effectué.", "notify_user": True})
    assert closed.status_code == 200
    body = closed.get_json()
    assert body["status"] == "closed" and body["resolution"] == "Remboursement effectué." and body["closed_at"]
    run_jobs(app)
    assert len(fake_twilio.sent) == 1 and "Remboursement effectué." in fake_twilio.sent[0]["Body"]
    assert me.post(f"/api/tickets/{ticket.id}/close", {}).status_code == 409  # closed is final
    customer = api(token_for(contact=contact))
    assert customer.post(f"/api/tickets/{ticket.id}/reply", {"message": "Encore moi"}).status_code == 409

    quiet = make_ticket(contact, subject="Autre")
    assert customer.post(f"/api/tickets/{quiet.id}/close", {"resolution": "Réglé de mon côté"}).status_code == 200
    run_jobs(app)
    assert len(fake_twilio.sent) == 1  # a customer closing their own ticket gets no message about it


def test_stats_count_by_status_priority_category_with_times_and_satisfaction(app, api, agent, admin, contact):
    first = make_ticket(contact, now=T0, category="billing", priority="high")
    second = make_ticket(contact, now=T0 + timedelta(hours=1))
    make_ticket(contact, now=T0 + timedelta(hours=2), priority="critical")
    do_add_ticket_note(first, "Nous regardons.", actor=agent, internal=False, now=T0 + timedelta(minutes=30))
    do_change_status(first, "resolved", actor=agent, notify_customer=False, now=T0 + timedelta(hours=4))
    do_change_status(second, "closed", actor=agent, notify_customer=False, now=T0 + timedelta(hours=3))
    do_record_rating(first, 4, "Bien", source="sms", now=T0 + timedelta(hours=5))

    stats = api(token_for(user=admin)).get("/api/tickets/stats", days="365")
    assert stats.status_code == 200
    body = stats.get_json()
    assert body["total"] == 3
    assert body["by_status"] == {"open": 1, "in_progress": 0, "waiting_on_customer": 0, "resolved": 1, "closed": 1}
    assert body["by_priority"]["critical"] == 1 and body["by_category"]["billing"] == 1
    assert body["mean_resolution_minutes"] == (4 * 60 + 2 * 60) // 2
    assert body["mean_first_response_minutes"] == 30
    assert body["satisfaction"] == {"mean": 4.0, "count": 1, "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}
    assert api(token_for(user=agent)).get("/api/tickets/stats", days="0").status_code == 422


# -- where tokens come from -----------------------------------------------------------------------
def test_admin_creates_a_token_in_settings_sees_it_once_and_revokes_it(app, client, api, admin, agent, contact):
    login(client, admin)
    page = client.get("/settings/api-tokens")
    assert page.status_code == 200 and "Jetons d’API" in page.get_data(as_text=True)  # the workspace speaks French
    created = client.post("/settings/api-tokens", data={"name": "Synchro CRM", "owner": "member",
                                                        "user_id": str(agent.id)})
    html = created.get_data(as_text=True)
    secret = re.search(r'<code id="new-token">(coc_[^<]+)</code>', html).group(1)
    assert created.headers["Cache-Control"] == "no-store"
    assert api(secret).get("/api/tickets").status_code == 200
    listing = client.get("/settings/api-tokens").get_data(as_text=True)
    assert secret not in listing and secret[:12] in listing and "Synchro CRM" in listing  # shown once

    customer = client.post("/settings/api-tokens", data={"name": "Portail maison", "owner": "customer",
                                                         "contact_email": "nobody@example.test"})
    assert customer.status_code == 422 and "Aucun client de cet espace" in customer.get_data(as_text=True)
    contact.email = "elodie@fournier.test"
    db.session.commit()
    customer = client.post("/settings/api-tokens", data={"name": "Portail maison", "owner": "customer",
                                                         "contact_email": "Elodie@Fournier.test"})
    assert customer.status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == agent.id))
    assert client.post(f"/settings/api-tokens/{token.id}/revoke").status_code == 303
    assert api(secret).get("/api/tickets").status_code == 401

    client.post("/logout")
    login(client, agent)
    assert client.get("/settings/api-tokens").status_code == 403  # admins only


def test_cli_prints_a_token_once_for_a_member_or_a_customer(app, api, agent, contact):
    result = app.test_cli_runner().invoke(args=["api-token", "create", "--email", agent.email, "--name", "Zapier"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("coc_") and api(secret).get("/api/tickets").status_code == 200

    contact.email = "elodie@fournier.test"
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["api-token", "create", "--email", "elodie@fournier.test"])
    assert result.exit_code == 0, result.output
    assert api(result.output.strip().splitlines()[-1]).get("/api/tickets/stats").status_code == 403
    unknown = app.test_cli_runner().invoke(args=["api-token", "create", "--email", "who@nowhere.test"])
    assert unknown.exit_code != 0 and "no member" in unknown.output


# -- labels ----------------------------------------------------------------------------------------
def test_labels_on_conversations_and_clients_through_the_api(app, api, client, agent, contact, other_contact,
                                                             sms_channel, elsewhere):
    from inbox.actions.labels import do_create_label
    from inbox.models import Contact, Conversation

    vip = do_create_label(agent.workspace_id, name="VIP", color="#c81d32")
    late = do_create_label(agent.workspace_id, name="Retard", color="#9a6700")
    theirs = do_create_label(elsewhere[0].id, name="Secret", color="#000000")
    conversation = customer_writes(client, sms_channel, "Bonjour, ma commande ?")
    other = customer_writes(client, sms_channel, "Et la mienne ?", sender=OTHER_CUSTOMER)
    me = api(token_for(user=agent))

    labels = me.get("/api/labels").get_json()["labels"]
    assert labels == [{"label_id": late.id, "name": "Retard", "color": "#9a6700"},
                      {"label_id": vip.id, "name": "VIP", "color": "#c81d32"}]  # by name, never another workspace's

    response = me.post(f"/api/conversations/{conversation.id}/labels", {"label_id": vip.id})
    assert response.status_code == 200 and [l["name"] for l in response.get_json()["labels"]] == ["VIP"]
    assert me.post(f"/api/conversations/{conversation.id}/labels", {"label_id": vip.id}).status_code == 200  # twice: once
    me.post(f"/api/conversations/{conversation.id}/labels", {"label_id": late.id})
    assert [l.name for l in fresh(Conversation, conversation.id).labels] == ["Retard", "VIP"]

    # Filter by label; the representation carries the labels.
    listed = me.get("/api/conversations", label=str(vip.id)).get_json()["conversations"]
    assert [c["conversation_id"] for c in listed] == [conversation.id]
    assert {l["name"] for l in listed[0]["labels"]} == {"VIP", "Retard"}
    assert {c["conversation_id"] for c in me.get("/api/conversations").get_json()["conversations"]} == \
        {conversation.id, other.id}
    detail = me.get(f"/api/conversations/{conversation.id}").get_json()
    assert detail["contact"] == {"id": contact.id, "name": contact.name} and len(detail["labels"]) == 2

    removed = me.delete(f"/api/conversations/{conversation.id}/labels/{late.id}")
    assert removed.status_code == 200 and [l["name"] for l in removed.get_json()["labels"]] == ["VIP"]
    assert me.delete(f"/api/conversations/{conversation.id}/labels/{late.id}").status_code == 200  # already off
    assert [l.name for l in fresh(Conversation, conversation.id).labels] == ["VIP"]

    # Clients too.
    response = me.post(f"/api/contacts/{other_contact.id}/labels", {"label_id": late.id})
    assert response.status_code == 200 and [l["label_id"] for l in response.get_json()["labels"]] == [late.id]
    assert me.get(f"/api/contacts/{other_contact.id}").get_json()["labels"][0]["name"] == "Retard"
    assert me.delete(f"/api/contacts/{other_contact.id}/labels/{late.id}").get_json()["labels"] == []
    assert fresh(Contact, other_contact.id).labels == []

    # Wrong input: a clear 4xx, nothing changes.
    assert set(me.post(f"/api/conversations/{conversation.id}/labels", {}).get_json()["errors"]) == {"label_id"}
    assert me.post(f"/api/conversations/{conversation.id}/labels", {"label_id": "VIP"}).status_code == 422
    foreign = me.post(f"/api/contacts/{contact.id}/labels", {"label_id": theirs.id})
    assert foreign.status_code == 422 and "label_id" in foreign.get_json()["errors"]
    assert me.post(f"/api/contacts/{contact.id}/labels", raw=b"nope").status_code == 400
    assert me.delete(f"/api/contacts/{contact.id}/labels/{theirs.id}").get_json()["error"] == "Étiquette introuvable."
    assert me.get("/api/conversations", label=str(theirs.id), limit="0").get_json()["errors"].keys() == \
        {"label", "limit"}
    assert me.get("/api/conversations", cursor="garbage").status_code == 422
    assert fresh(Contact, contact.id).labels == []


def test_label_endpoints_are_scoped_to_the_tokens_workspace_and_to_members(app, api, client, agent, contact,
                                                                           sms_channel, elsewhere):
    from inbox.actions.labels import do_create_label
    from inbox.models import Conversation

    vip = do_create_label(agent.workspace_id, name="VIP", color="#c81d32")
    conversation = customer_writes(client, sms_channel, "Bonjour")
    outsider = api(token_for(user=elsewhere[1]))
    assert outsider.get("/api/labels").get_json()["labels"] == []
    assert outsider.get(f"/api/conversations/{conversation.id}").status_code == 404
    assert outsider.post(f"/api/conversations/{conversation.id}/labels", {"label_id": vip.id}).status_code == 404
    assert outsider.delete(f"/api/conversations/{conversation.id}/labels/{vip.id}").status_code == 404
    assert outsider.get(f"/api/contacts/{contact.id}").get_json()["error"] == "Client introuvable."
    assert outsider.get("/api/conversations").get_json()["conversations"] == []
    assert outsider.get("/api/conversations", label=str(vip.id)).status_code == 422

    customer = api(token_for(contact=contact))
    assert customer.get("/api/labels").status_code == 403
    assert customer.get(f"/api/contacts/{contact.id}").status_code == 403
    assert customer.post(f"/api/conversations/{conversation.id}/labels", {"label_id": vip.id}).status_code == 403
    assert fresh(Conversation, conversation.id).labels == []


def test_conversation_list_pages_with_a_fixed_number_of_queries(app, api, client, agent, sms_channel):
    from inbox.actions.labels import do_create_label
    from inbox.models import Conversation, Label

    labels = [do_create_label(agent.workspace_id, name=f"L{i}", color="") for i in range(3)]
    for i in range(9):
        customer_writes(client, sms_channel, f"message {i}", sender=f"+336000000{i:02d}")
    fresh(Label, labels[0].id)
    every = [db.session.get(Label, label.id) for label in labels]
    for conversation in db.session.scalars(select(Conversation)):
        conversation.labels = every
    db.session.commit()
    me = api(token_for(user=agent))

    seen, cursor = [], None
    while True:
        page = me.get("/api/conversations", label=str(labels[0].id), limit=4,
                      **({"cursor": cursor} if cursor else {})).get_json()
        seen += [c["conversation_id"] for c in page["conversations"]]
        assert all(len(c["labels"]) == 3 for c in page["conversations"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 9

    def queries(limit: int) -> int:
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert me.get("/api/conversations", label=str(labels[0].id), limit=limit).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    assert queries(2) == queries(9) <= 4  # the token, the label, the page (labels, contact, assignee joined)
