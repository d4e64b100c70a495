"""GDPR: an admin downloads everything a client told us (and only theirs), or erases it for
good while the statistics keep their counts and amounts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from inbox.actions.budgets import do_set_budget
from inbox.actions.ratings import do_record_rating
from inbox.actions.tickets import do_add_ticket_note, do_change_status
from inbox.actions.timetracking import do_log_time
from inbox.actions.workspace import do_create_contact, do_create_workspace
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import (
    Attachment, AuditEntry, Contact, ContactErasure, ContactIdentity, Conversation, Message, Rating, Ticket,
    TicketEvent, TimeEntry,
)
from inbox.models.timeentry import spend_of
from inbox import storage  # noqa: I001

from ..conftest import login
from .ticket_fixtures import CUSTOMER, admin, contact, customer_writes, fresh, make_ticket  # noqa: F401

OTHER = "+33699887766"


@pytest.fixture(autouse=True)
def english(workspace):
    """The pages in their source language (the French catalogue is filled in later)."""
    workspace.default_locale = "en"
    db.session.commit()


def history(client, sms_channel, contact, agent, admin):
    """Two clients who both wrote; the first has a rated ticket with time, a note and a file."""
    conversation = customer_writes(client, sms_channel, "Bonjour, je suis Élodie, commande 4471")
    customer_writes(client, sms_channel, "Message de quelqu'un d'autre", sender=OTHER)
    ticket = make_ticket(contact, subject="Commande 4471 de Mme Fournier", description="Livrer au 3 rue des Lilas",
                         assignee=agent)
    do_add_ticket_note(ticket, "Cliente fidèle, code portail 1234", actor=agent, internal=True)
    do_log_time(ticket, user=agent, minutes=90, note="Appel avec Élodie")
    do_set_budget(contact, period="month", amount="500", actor=admin)
    do_change_status(ticket, "resolved", actor=agent, notify_customer=False)
    do_record_rating(fresh(Ticket, ticket.id), 5, "Merci Julien !", source="sms")
    message = db.session.scalar(select(Message).where(Message.conversation_id == conversation.id))
    key = storage.save(b"%PDF- facture de Mme Fournier")
    db.session.add(Attachment(message_id=message.id, content_type="application/pdf", filename="facture.pdf",
                              size=30, storage_key=key))
    db.session.commit()
    return conversation, fresh(Ticket, ticket.id), key


def test_export_holds_the_clients_data_and_nothing_else(app, client, workspace, admin, agent, contact, sms_channel):
    conversation, ticket, _key = history(client, sms_channel, contact, agent, admin)
    login(client, admin)
    response = client.get(f"/contacts/{contact.id}/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    text = json.dumps(data, ensure_ascii=False)

    assert data["contact"]["name"] == "Élodie Fournier" and data["contact"]["phone"] == CUSTOMER
    assert data["identities"] == [{"channel": "sms", "address": CUSTOMER, "created_at": data["identities"][0]["created_at"]}]
    assert [m["body"] for m in data["messages"] if m["from"] == "you"] == ["Bonjour, je suis Élodie, commande 4471"]
    assert data["messages"][0]["attachments"] == [{"filename": "facture.pdf", "content_type": "application/pdf", "size": 30}]
    [exported] = data["tickets"]
    assert exported["reference"] == "TKT-000001" and exported["description"] == "Livrer au 3 rue des Lilas"
    assert data["ratings"] == [{"ticket": "TKT-000001", "score": 5, "comment": "Merci Julien !",
                                "created_at": data["ratings"][0]["created_at"]}]
    # Nobody else's messages, no agent-only notes, times, costs, budgets or agents' addresses.
    assert "quelqu'un d'autre" not in text and OTHER not in text
    assert "code portail" not in text and "Appel avec" not in text
    # The budget's 500: as a value (a timestamp's fraction of a second may well hold "500").
    assert not any(str(value) in ("500", "500.0", "500.00") for value in _values(data)) and "budget" not in text
    assert agent.email not in text and "hourly" not in text
    db.session.rollback()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "contact.export"))
    assert entry.actor_id == admin.id and entry.object_id == contact.id


def test_only_admins_export_or_erase(logged_in, contact):
    assert logged_in.get(f"/contacts/{contact.id}/export").status_code == 403
    assert logged_in.get(f"/contacts/{contact.id}/erase").status_code == 403
    assert logged_in.post(f"/contacts/{contact.id}/erase", data={"confirm": contact.name}).status_code == 403
    assert fresh(Contact, contact.id).name == "Élodie Fournier"


def test_erase_wipes_personal_data_and_keeps_the_statistics(app, client, workspace, admin, agent, contact, sms_channel):
    conversation, ticket, key = history(client, sms_channel, contact, agent, admin)
    other = db.session.scalar(select(ContactIdentity).where(ContactIdentity.address == OTHER)).contact_id
    spend_before = spend_of(workspace.id, contact_id=contact.id)
    messages_before = db.session.scalar(select(func.count(Message.id)).where(Message.contact_id == contact.id))
    assert storage.path_of(key).exists()
    login(client, admin)

    confirm_page = client.get(f"/contacts/{contact.id}/erase").get_data(as_text=True)
    assert "This cannot be undone." in confirm_page and "Élodie Fournier" in confirm_page
    wrong = client.post(f"/contacts/{contact.id}/erase", data={"confirm": "Élodie"})
    assert wrong.status_code == 422 and fresh(Contact, contact.id).name == "Élodie Fournier"
    done = client.post(f"/contacts/{contact.id}/erase", data={"confirm": "  élodie   FOURNIER "})
    assert done.status_code == 303

    erased = fresh(Contact, contact.id)
    assert erased.name == f"#{contact.id}" and erased.phone is None and erased.company is None
    assert erased.identities == [] and db.session.get(ContactErasure, 1).erased_by_id == admin.id
    bodies = db.session.scalars(select(Message.body).where(Message.contact_id == contact.id)).all()
    assert len(bodies) == messages_before and set(bodies) == {""}
    assert db.session.scalar(select(func.count(Attachment.id))) == 0 and not storage.path_of(key).exists()
    t = fresh(Ticket, ticket.id)
    assert t.subject == "TKT-000001" and t.description == "" and t.status == "resolved"
    assert all(e.body == "" for e in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id)))
    rating = db.session.scalar(select(Rating))
    assert rating.score == 5 and rating.comment is None
    assert db.session.scalar(select(TimeEntry.note)) == ""
    assert spend_of(workspace.id, contact_id=contact.id) == spend_before  # minutes and cost unchanged
    assert fresh(Conversation, conversation.id).status == "resolved"
    # The other client is untouched.
    assert "quelqu'un d'autre" in db.session.scalar(select(Message.body).where(Message.contact_id == other))

    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "contact.erase"))
    assert entry.after["messages"] == messages_before and entry.after["tickets"] == 1
    assert "Élodie" not in json.dumps(entry.after, ensure_ascii=False)

    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Anonymized client" in page and "Élodie" not in page and "Erase personal data" not in page
    assert client.post(f"/contacts/{contact.id}/edit", data={"name": "Élodie"}).status_code == 409
    assert client.post(f"/contacts/{contact.id}/erase", data={"confirm": f"#{contact.id}"}).status_code == 303
    assert db.session.scalar(select(func.count(ContactErasure.id))) == 1

    # The same number writes again: a new client, not the anonymized one.
    customer_writes(client, sms_channel, "Re-bonjour")
    assert db.session.scalar(select(ContactIdentity).where(ContactIdentity.address == CUSTOMER)).contact_id != contact.id


def test_erase_cancels_messages_not_sent_yet_and_closes_active_work(app, client, workspace, admin, agent, contact):
    ticket = make_ticket(contact, subject="Ouvert")
    db.session.add(Message(workspace_id=workspace.id, conversation_id=_conversation(workspace, contact).id,
                           contact_id=contact.id, direction="outbound", sender_kind="agent", body="Votre code: 4242",
                           delivery_status="queued"))
    db.session.commit()
    login(client, admin)
    assert client.post(f"/contacts/{contact.id}/erase", data={"confirm": contact.name}).status_code == 303
    queued = db.session.scalar(select(Message).where(Message.contact_id == contact.id))
    assert queued.delivery_status == "failed" and queued.error_code == "erased" and queued.body == ""
    assert fresh(Ticket, ticket.id).status == "closed"


def _conversation(workspace, contact) -> Conversation:
    conversation = Conversation(workspace_id=workspace.id, contact_id=contact.id)
    db.session.add(conversation)
    db.session.commit()
    return conversation


def test_another_workspaces_client_cannot_be_exported_or_erased(client, admin, workspace):
    elsewhere = do_create_workspace("Ailleurs", slug="ailleurs-gdpr")
    stranger = do_create_contact(elsewhere, name="Secret", identities={ChannelKind.SMS: "+33700000001"})
    login(client, admin)
    assert client.get(f"/contacts/{stranger.id}/export").status_code == 404
    assert client.post(f"/contacts/{stranger.id}/erase", data={"confirm": "Secret"}).status_code == 404
    assert fresh(Contact, stranger.id).name == "Secret"


def _values(data):
    """Every scalar of a JSON document."""
    if isinstance(data, dict):
        for value in data.values():
            yield from _values(value)
    elif isinstance(data, list):
        for value in data:
            yield from _values(value)
    else:
        yield data
