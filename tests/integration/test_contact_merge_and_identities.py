"""One person, several identities: agents merge duplicates; a new channel joins an existing
contact only on a verified identity, never on an unverified claim."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from inbox.actions.contacts import ClaimOutcome, do_claim_identity, do_merge_contacts
from inbox.actions.tickets import do_create_ticket
from inbox.actions.workspace import do_create_contact, do_create_workspace
from inbox.channels.base import InboundMessage
from inbox.errors import ValidationError
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Contact, ContactIdentity, Conversation, Message, Ticket
from inbox.orchestrator.delivery import webhook_url
from inbox.orchestrator.ingest import do_ingest
from inbox.sandbox import telegram as telegram_fake
from inbox.sandbox.twilio import new_sid

from ..conftest import PUBLIC_BASE_URL

PHONE = "+33612345678"


def fresh():
    db.session.rollback()
    db.session.expire_all()


def wrote(channel, sender, body="Bonjour", *, name=None) -> Message:
    result = do_ingest(channel, InboundMessage(provider_message_id=new_sid("SM"), sender=sender, sender_name=name,
                                               recipient=channel.address, body=body))
    return db.session.get(Message, result.message_id)


def test_merging_moves_everything_to_the_kept_contact(app, logged_in, sms_channel, email):
    by_sms = wrote(sms_channel, PHONE, "Par SMS", name="Hugo")
    by_mail = wrote(email, "hugo@example.fr", "Par email", name="Hugo Lambert")
    kept_id, other_id = by_sms.contact_id, by_mail.contact_id
    ticket = do_create_ticket(db.session.get(Contact, other_id), subject="Facture en double")
    ticket_id = ticket.id
    assert kept_id != other_id

    response = logged_in.post(f"/contacts/{kept_id}/merge", data={"other_id": other_id},
                              headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/contacts/{kept_id}"
    fresh()
    assert db.session.get(Contact, other_id) is None
    kept = db.session.get(Contact, kept_id)
    assert {(i.kind, i.address) for i in kept.identities} == {("sms", PHONE), ("email", "hugo@example.fr")}
    assert kept.email == "hugo@example.fr"  # what the kept contact lacked
    assert set(db.session.scalars(select(Message.contact_id))) == {kept_id}
    assert db.session.get(Ticket, ticket_id).contact_id == kept_id
    active = db.session.scalars(select(Conversation).where(Conversation.status.in_(["open", "pending"]))).all()
    assert len(active) == 1 and active[0].contact_id == kept_id  # one open thread with both messages
    assert {m.body for m in db.session.scalars(select(Message).where(Message.conversation_id == active[0].id))} >= {
        "Par SMS", "Par email"}
    line = db.session.scalar(select(Message).where(Message.sender_kind == "system"))
    assert line.event["kind"] == "contacts_merged" and line.event["other"] == "Hugo Lambert"


def test_merge_search_and_the_partial(app, logged_in, sms_channel, email, workspace):
    keep = wrote(sms_channel, PHONE, name="Hugo").contact_id
    wrote(email, "hugo@example.fr", name="Hugo Lambert")
    results = logged_in.get(f"/contacts/{keep}/merge", query_string={"q": "hugo@ex"}).get_data(as_text=True)
    assert "Hugo Lambert" in results and "hx-confirm" in results
    assert "No other contact" in logged_in.get(f"/contacts/{keep}/merge", query_string={"q": "zzz"}).get_data(as_text=True) \
        or "Aucun" in logged_in.get(f"/contacts/{keep}/merge", query_string={"q": "zzz"}).get_data(as_text=True)


def test_no_merge_across_workspaces_or_with_itself(app, logged_in, sms_channel, workspace):
    mine = wrote(sms_channel, PHONE).contact
    elsewhere = do_create_contact(do_create_workspace("Autre", slug="autre-ws"), name="Intrus")
    assert logged_in.post(f"/contacts/{mine.id}/merge", data={"other_id": elsewhere.id}).status_code == 404
    with pytest.raises(ValidationError):
        do_merge_contacts(mine, mine, actor=None)


def test_a_whatsapp_message_from_a_known_phone_joins_that_contact(app, sms_channel, whatsapp):
    known = wrote(sms_channel, PHONE, name="Hugo").contact_id
    assert wrote(whatsapp, PHONE).contact_id == known  # WhatsApp proves the number
    kinds = db.session.scalars(select(ContactIdentity.kind).where(ContactIdentity.contact_id == known)).all()
    assert sorted(kinds) == ["sms", "whatsapp"]


def test_an_unverified_email_identity_never_pulls_another_channel_in(app, email, workspace):
    stranger = wrote(email, "someone@example.fr").contact
    identity = ContactIdentity.find(workspace.id, ChannelKind.EMAIL, "someone@example.fr")
    assert identity.verified is False  # a From header proves nothing
    victim = do_create_contact(workspace, name="Victime", identities={ChannelKind.SMS: PHONE})
    assert do_claim_identity(stranger, ChannelKind.SMS, PHONE, verified=False) == ClaimOutcome.IGNORED
    assert db.session.get(Contact, victim.id) is not None
    assert ContactIdentity.find(workspace.id, ChannelKind.SMS, PHONE).contact_id == victim.id


def post_update(client, channel, update):
    return client.post(webhook_url(channel).removeprefix(PUBLIC_BASE_URL), data=json.dumps(update),
                       content_type="application/json",
                       headers={telegram_fake.SECRET_HEADER: telegram_fake.DEMO_WEBHOOK_SECRET})


def test_telegram_user_sharing_their_own_verified_number_is_matched(app, client, sms_channel, telegram):
    known = wrote(sms_channel, PHONE, name="Élodie").contact_id
    assert post_update(client, telegram, telegram_fake.text_update(527401983, "Bonjour")).status_code == 200
    own_card = telegram_fake.contact_update(527401983, phone_number=PHONE.lstrip("+"), first_name="Élodie",
                                            user_id=527401983)
    assert post_update(client, telegram, own_card).status_code == 200
    fresh()
    assert db.session.scalar(select(func.count(Contact.id))) == 1
    telegram_identity = ContactIdentity.find(sms_channel.workspace_id, ChannelKind.TELEGRAM, "527401983")
    assert telegram_identity.contact_id == known
    line = db.session.scalar(select(Message).where(Message.sender_kind == "system"))
    assert line.event["kind"] == "contacts_merged" and line.event["actor"] is None


def test_someone_elses_contact_card_changes_nothing(app, client, sms_channel, telegram):
    wrote(sms_channel, PHONE, name="Élodie")
    post_update(client, telegram, telegram_fake.text_update(527401983, "Bonjour"))
    card = telegram_fake.contact_update(527401983, phone_number=PHONE.lstrip("+"), first_name="Élodie",
                                        user_id=999000111)  # not the sender: an unverified claim
    post_update(client, telegram, card)
    fresh()
    assert db.session.scalar(select(func.count(Contact.id))) == 2
