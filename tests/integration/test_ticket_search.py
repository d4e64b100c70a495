"""The ticket list's keyword search (SQLite: a trigram index; PostgreSQL: the folded text kept in a table
by a trigger, with a pg_trgm index), seen through the list: by any part of the subject or description,
the reference or the client; accents and case ignored; one or two characters find a ticket number or
the start of a subject's word (a word index); the indexes follow edits and deletions; never another
workspace's tickets."""

from __future__ import annotations

import re

from sqlalchemy import delete, event, select

from inbox import search
from inbox.actions.gdpr import do_erase_contact
from inbox.actions.workspace import do_create_contact, do_create_workspace
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Notification, Ticket, TicketEvent

from .ticket_fixtures import admin, contact, make_ticket  # noqa: F401

LIST = {"HX-Request": "true", "HX-Target": "ticket-list"}


def listed(client, q: str, **args) -> list[int]:
    """The ids of the tickets the list shows for `q`, in their order."""
    response = client.get("/tickets", query_string={"status": "any", "q": q, **args}, headers=LIST)
    assert response.status_code == 200
    return [int(i) for i in re.findall(r'id="ticket-(\d+)"', response.get_data(as_text=True))]


def test_search_finds_tickets_by_subject_description_reference_or_client(logged_in, workspace, agent, contact):
    parcel = make_ticket(contact, subject="Commande n°4471 non livrée")
    invoice = make_ticket(contact, subject="Facture en double", description="Le client a été débité deux fois.")
    other_client = do_create_contact(workspace, name="Marc Dupuis",
                                     identities={ChannelKind.SMS: "+33611110000"})
    screen = make_ticket(other_client, subject="Écran cassé à la réception")

    assert listed(logged_in, "4471") == [parcel.id]  # any part of the subject
    assert listed(logged_in, "non livr") == [parcel.id]
    assert listed(logged_in, "NON LIVREE") == [parcel.id]  # case and accents ignored
    assert listed(logged_in, "debite deux") == [invoice.id]  # the description too
    assert listed(logged_in, "ecran casse") == listed(logged_in, "ÉCRAN CASSÉ") == [screen.id]
    assert listed(logged_in, invoice.reference) == listed(logged_in, "#2") == [invoice.id]
    assert listed(logged_in, "fournier") == [invoice.id, parcel.id]  # the client, newest first
    assert listed(logged_in, "dupuis") == [screen.id]
    assert listed(logged_in, "do") == [invoice.id]  # shorter than a trigram: the start of a subject word
    assert listed(logged_in, "xylophone") == []
    assert listed(logged_in, '"4471" OR *') == []  # FTS syntax is plain text
    assert listed(logged_in, "100%") == []  # so are LIKE's wildcards


def test_search_keeps_filters_order_and_pages(app, logged_in, agent, contact):
    ids = [make_ticket(contact, subject=f"Livraison {i}", priority="high" if i % 2 else "low").id
           for i in range(7)]
    app.config["TICKETS_PAGE_SIZE"] = 3
    response = logged_in.get("/tickets", query_string={"status": "any", "q": "livraison"}, headers=LIST)
    html = response.get_data(as_text=True)
    assert [int(i) for i in re.findall(r'id="ticket-(\d+)"', html)] == ids[::-1][:3]
    after = re.search(r"after=([\d_.]+)", html).group(1)
    assert listed(logged_in, "livraison", after=after) == ids[::-1][3:6]
    assert listed(logged_in, "livraison", priority="high") == [ids[5], ids[3], ids[1]]
    due_order = [t.id for t in sorted(db.session.scalars(select(Ticket)), key=lambda t: (t.resolution_due_at, t.id))]
    assert listed(logged_in, "livraison", sort="due") == due_order[:3]


def test_a_search_costs_as_many_queries_as_the_plain_list(app, logged_in, agent, contact):
    for i in range(5):
        make_ticket(contact, subject=f"Demande {i}")

    def queries(**args) -> int:
        statements = []
        listener = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert logged_in.get("/tickets", query_string={"status": "any", **args}).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    plain = queries()
    assert queries(q="demande") == queries(q="TKT-000003") == queries(q="de") == plain


def test_one_or_two_characters_find_a_ticket_number_or_a_subject_word_by_its_start(logged_in, agent, contact):
    requests = [make_ticket(contact, subject=f"Demande {i}") for i in range(1, 13)]
    parcel = make_ticket(contact, subject="Colis abîmé à l'entrepôt", description="Urgent : carton déchiré")
    by_number = {t.number: t.id for t in requests}

    assert listed(logged_in, "1") == [by_number[1]]  # the number, not "Demande 1", "Demande 10"…
    assert listed(logged_in, "12") == [by_number[12]]
    assert listed(logged_in, "#7") == [by_number[7]]
    assert listed(logged_in, "99") == []
    assert listed(logged_in, "ab") == listed(logged_in, "AB") == listed(logged_in, "Âb") == [parcel.id]
    assert listed(logged_in, "en") == [parcel.id]  # "entrepôt", not "Demande" (inside a word)
    assert listed(logged_in, "bi") == []  # inside "abîmé": three characters find that
    assert listed(logged_in, "ur") == listed(logged_in, "ca") == []  # the description is not a subject
    assert listed(logged_in, "fo") == []  # nor is the client's name ("Fournier"): from three characters
    assert listed(logged_in, "de") == [t.id for t in reversed(requests)]  # newest first
    assert listed(logged_in, "%") == listed(logged_in, "_") == listed(logged_in, '"') == []


def test_the_index_follows_edits_and_deletions(app, logged_in, agent, admin, contact):
    ticket = make_ticket(contact, subject="Colis abîmé", description="Carton déchiré")
    kept = make_ticket(contact, subject="Colis en retard")
    assert listed(logged_in, "abime") == [ticket.id]

    assert listed(logged_in, "ab") == [ticket.id]

    ticket.subject, ticket.description = "Remboursement demandé", ""
    db.session.commit()
    assert listed(logged_in, "rembourse") == listed(logged_in, "de") == [ticket.id]
    assert listed(logged_in, "abime") == listed(logged_in, "dechire") == listed(logged_in, "ab") == []

    for dependent in (TicketEvent, Notification):  # its history and the admins' "new ticket" alerts
        db.session.execute(delete(dependent).where(dependent.ticket_id == ticket.id))
    db.session.execute(delete(Ticket).where(Ticket.id == ticket.id))
    db.session.commit()
    assert listed(logged_in, "rembourse") == listed(logged_in, "de") == []
    assert listed(logged_in, "colis") == listed(logged_in, "co") == [kept.id]

    do_erase_contact(contact, actor=admin, confirmation=contact.name)  # subjects become references
    assert listed(logged_in, "retard") == []
    assert listed(logged_in, kept.reference) == [kept.id]


def test_search_never_shows_another_workspace(logged_in, agent, contact):
    mine = make_ticket(contact, subject="Livraison en retard")
    other = do_create_workspace("Concurrent", slug="other-ticket-search")
    stranger = do_create_contact(other, name="Élodie Fournier", identities={ChannelKind.SMS: "+33700000002"})
    make_ticket(stranger, subject="Livraison en retard")  # same words, same client name, same number

    for q in ("livraison", "LIVRAISON EN RETARD", "fournier", "TKT-000001", "li"):
        assert listed(logged_in, q) == [mine.id], q


def test_install_is_idempotent_and_rebuild_reindexes(app, agent, contact):
    ticket = make_ticket(contact, subject="Rendez-vous annulé")
    with db.engine.begin() as connection:
        for table in ("ticket", "ticket_words", "contact"):
            search.install(connection, table)
            search.install(connection, table)
            search.rebuild(connection, table)
    for q in ("annule", "an"):
        stmt = search.ticket_ids_matching(q, dialect_name=db.engine.dialect.name)
        assert list(db.session.scalars(stmt)) == [ticket.id], q
    stmt = search.contacts_matching(contact.workspace_id, contact.name[-4:], dialect_name=db.engine.dialect.name)
    assert list(db.session.scalars(stmt)) == [contact.id]
