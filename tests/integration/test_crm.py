"""The CRM: agents find a client by name, company, email or phone, narrow the list with filters,
page through it at a constant cost, and work from the client's page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from inbox.actions.budgets import do_set_budget
from inbox.actions.ratings import do_record_rating
from inbox.actions.tickets import do_change_status
from inbox.actions.timetracking import do_log_time
from inbox.actions.workspace import do_create_contact, do_create_user, do_create_workspace
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Contact, ContactIdentity, Role

from ..conftest import PASSWORD, login
from .ticket_fixtures import CUSTOMER, admin, contact, customer_writes, fresh, make_ticket  # noqa: F401

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def english(workspace):
    """The pages in their source language (the French catalogue is filled in later)."""
    workspace.default_locale = "en"
    db.session.commit()


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="contact-(\d+)"', html)]


def clients(workspace, n: int, **fields) -> list[Contact]:
    return [do_create_contact(workspace, name=f"Client {i:02d}", company=fields.get("company"),
                              identities={ChannelKind.EMAIL: f"client{i:02d}@example.test"},
                              email=f"client{i:02d}@example.test") for i in range(n)]


def test_search_finds_clients_by_name_company_email_and_phone(logged_in, workspace, contact):
    other = do_create_contact(workspace, name="Thomas Lefèvre", company="Garage Lefèvre & Fils",
                              identities={ChannelKind.EMAIL: "thomas@garage-lefevre.fr"},
                              email="thomas@garage-lefevre.fr", preferred_channel=ChannelKind.EMAIL)
    for query, expected in [("fournier", contact.id), ("Boulangerie", contact.id), ("garage-lefevre.fr", other.id),
                            ("612345", contact.id), ("Lefèvre", other.id)]:
        html = logged_in.get("/contacts", query_string={"q": query}).get_data(as_text=True)
        assert row_ids(html) == [expected], query
    assert row_ids(logged_in.get("/contacts?q=100%25").get_data(as_text=True)) == []  # % is not a wildcard

    fragment = logged_in.get("/contacts?q=garage", headers={**HX, "HX-Target": "contact-list"})
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="contact-list"') and "<html" not in html
    assert "HX-Request" in fragment.headers["Vary"]


def test_filters_company_preferred_channel_open_tickets_and_over_budget(app, client, workspace, admin, agent,
                                                                          contact):
    quiet = do_create_contact(workspace, name="Nadia Benali", company="Cabinet Benali",
                              identities={ChannelKind.WHATSAPP: "+33645112233"}, preferred_channel=ChannelKind.WHATSAPP)
    spender = do_create_contact(workspace, name="Lucas Girard", company="boulangerie fournier",
                                identities={ChannelKind.TELEGRAM: "527401983"}, preferred_channel=ChannelKind.TELEGRAM)
    make_ticket(contact)  # open
    done = make_ticket(spender, subject="Facture")
    do_change_status(done, "resolved", actor=admin, notify_customer=False)
    do_set_budget(spender, period="month", amount="50", actor=admin)
    do_log_time(done, user=agent, minutes=60, note="analyse")  # 60 min × 40 €/h = 40 €: 80 %
    login(client, agent)

    def ids(**args):
        return sorted(row_ids(client.get("/contacts", query_string=args).get_data(as_text=True)))

    assert ids() == sorted([contact.id, quiet.id, spender.id])
    assert ids(company="Boulangerie Fournier") == sorted([contact.id, spender.id])  # case-insensitive, exact
    assert ids(channel="whatsapp") == [quiet.id]
    assert ids(open="1") == [contact.id]
    assert ids(over_budget="1") == []
    do_log_time(done, user=agent, minutes=15)  # 75 min = 50 €: 100 %
    assert ids(over_budget="1") == [spender.id]
    assert ids(over_budget="1", channel="sms") == []
    page = client.get("/contacts").get_data(as_text=True)
    assert "Over budget" in page and "1 open" in page


def test_keyset_pages_cost_the_same_number_of_queries_at_any_size(app, logged_in, workspace, agent):
    everyone = clients(workspace, 30)
    for c in everyone[:10]:
        make_ticket(c, subject=f"Demande {c.name}")

    def queries_for(page_size: int, **args):
        app.config["CONTACTS_PAGE_SIZE"] = page_size
        statements = []
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            response = logged_in.get("/contacts", query_string=args)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True)

    few, html_few = queries_for(5)
    many, html_many = queries_for(30)
    assert len(row_ids(html_few)) == 5 and len(row_ids(html_many)) == 30
    assert few == many, (few, many)
    assert few <= 10, few

    # Following the "More" cursor walks the whole list once, in name order, without repeats.
    app.config["CONTACTS_PAGE_SIZE"] = 7
    seen, url = [], "/contacts"
    while url:
        html = logged_in.get(url, headers=HX if seen else {}).get_data(as_text=True)
        seen += row_ids(html)
        more = re.search(r'hx-get="([^"]*after=[^"]*)"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
    assert seen == [c.id for c in sorted(everyone, key=lambda c: c.name)]


def test_client_page_shows_identities_conversations_tickets_budget_and_satisfaction(
        app, client, workspace, admin, agent, contact, sms_channel):
    conversation = customer_writes(client, sms_channel, "Ma commande n'est pas arrivée")
    ticket = make_ticket(contact, subject="Commande 4471", assignee=agent)
    do_log_time(ticket, user=agent, minutes=90)
    do_set_budget(contact, period="month", amount="100", actor=admin)
    do_change_status(ticket, "resolved", actor=agent, notify_customer=False)
    do_record_rating(fresh(type(ticket), ticket.id), 4, "Rapide et efficace", source="sms")
    login(client, agent)

    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Élodie Fournier" in page and "Boulangerie Fournier" in page and CUSTOMER in page
    assert f'href="/inbox/c/{conversation.id}"' in page and "pas arrivée" in page
    assert "TKT-000001" in page and "Commande 4471" in page
    assert "<meter" in page and "€60.00" in page  # 90 min × 40 €/h, against a 100 € budget
    assert "4.0" in page and "Rapide et efficace" in page
    assert f"/tickets/new?contact_id={contact.id}" in page and "Create ticket" in page
    assert 'id="contact-outbound-' in page  # the labels and consent partial
    assert "Erase personal data" not in page  # admins only


def test_agents_create_and_edit_clients_and_manage_their_addresses(logged_in, workspace, contact):
    bad = logged_in.post("/contacts/new", data={"name": " ", "email": "nope", "phone": "06 12"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Give the client a name." in html and "Enter a valid email address." in html
    assert "international format" in html

    taken = logged_in.post("/contacts/new", data={"name": "Doublon", "phone": CUSTOMER})
    assert taken.status_code == 422 and "already belongs to the client Élodie Fournier" in taken.get_data(as_text=True)

    created = logged_in.post("/contacts/new", data={
        "name": "Martine Roux", "company": "Pharmacie du Centre", "email": "Martine@Pharmacie.test",
        "phone": "+33 6 11 22 33 44", "preferred_channel": "sms", "locale": "fr"})
    assert created.status_code == 303
    martine = fresh(Contact, int(created.headers["Location"].rsplit("/", 1)[1]))
    assert martine.email == "martine@pharmacie.test" and martine.phone == "+33611223344"
    assert sorted((i.kind, i.address) for i in martine.identities) == [
        ("email", "martine@pharmacie.test"), ("sms", "+33611223344"), ("voice", "+33611223344")]

    edited = logged_in.post(f"/contacts/{martine.id}/edit", data={
        "name": "Martine Roux-Petit", "company": "", "email": "martine@pharmacie.test", "preferred_channel": "email"})
    assert edited.status_code == 303
    martine = fresh(Contact, martine.id)
    assert martine.name == "Martine Roux-Petit" and martine.company is None and martine.preferred_channel == "email"

    added = logged_in.post(f"/contacts/{martine.id}/identities", data={"kind": "whatsapp", "address": "+33611223355"},
                           headers=HX)
    assert added.status_code == 200 and "+33611223355" in added.get_data(as_text=True)
    conflict = logged_in.post(f"/contacts/{martine.id}/identities", data={"kind": "sms", "address": CUSTOMER},
                              headers=HX)
    assert conflict.status_code == 422 and "already belongs" in conflict.get_data(as_text=True)
    db.session.rollback()
    whatsapp = db.session.scalar(select(ContactIdentity).where(ContactIdentity.address == "+33611223355"))
    assert logged_in.post(f"/contacts/{martine.id}/identities/{whatsapp.id}", data={"address": "+33611223366"},
                          headers=HX).status_code == 200
    assert fresh(ContactIdentity, whatsapp.id).address == "+33611223366"
    assert logged_in.post(f"/contacts/{martine.id}/identities/{whatsapp.id}/delete", headers=HX).status_code == 200
    assert fresh(ContactIdentity, whatsapp.id) is None
    # An identity of another client cannot be reached through this one.
    [sms] = [i for i in fresh(Contact, contact.id).identities]
    assert logged_in.post(f"/contacts/{martine.id}/identities/{sms.id}/delete", headers=HX).status_code == 404


def test_clients_of_another_workspace_stay_invisible(logged_in, workspace, contact):
    elsewhere = do_create_workspace("Ailleurs", slug="ailleurs")
    stranger = do_create_contact(elsewhere, name="Secret Client", company="Boulangerie Fournier",
                                 identities={ChannelKind.SMS: "+33700000000"})
    do_create_user(elsewhere, email="b@example.test", name="B", password=PASSWORD, role=Role.ADMIN)
    assert "Secret Client" not in logged_in.get("/contacts?q=Secret").get_data(as_text=True)
    assert row_ids(logged_in.get("/contacts?company=Boulangerie+Fournier").get_data(as_text=True)) == [contact.id]
    for url in (f"/contacts/{stranger.id}", f"/contacts/{stranger.id}/edit"):
        assert logged_in.get(url).status_code == 404
    assert logged_in.post(f"/contacts/{stranger.id}/edit", data={"name": "x"}).status_code == 404
    assert logged_in.post(f"/contacts/{stranger.id}/identities", data={"kind": "sms", "address": "+33611111111"}
                          ).status_code == 404
    assert fresh(Contact, stranger.id).name == "Secret Client"


def test_the_list_links_to_new_client_and_shows_an_empty_state(logged_in):
    page = logged_in.get("/contacts").get_data(as_text=True)
    assert 'href="/contacts/new"' in page and "No client yet" in page
    assert 'aria-current="page">Clients<' in page.replace("\n", "")


def test_budget_state_in_the_list_matches_the_client_page(app, client, workspace, admin, agent, contact):
    ticket = make_ticket(contact)
    do_set_budget(contact, period="quarter", amount="10.00", actor=admin)
    do_log_time(ticket, user=agent, minutes=15, work_date=None)  # 10.00 €: exactly 100 %
    login(client, agent)
    assert row_ids(client.get("/contacts?over_budget=1").get_data(as_text=True)) == [contact.id]
    assert "budget-over" in client.get(f"/contacts/{contact.id}").get_data(as_text=True)
