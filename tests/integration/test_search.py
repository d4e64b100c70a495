"""Full-text search of messages (FTS5 on SQLite, tsvector on PostgreSQL), seen through the inbox."""

from __future__ import annotations

from sqlalchemy import select, text

from inbox import search
from inbox.extensions import db
from inbox.models import Conversation, Message

from ..helpers import inbound, other_workspace_sms_channel, signed_post

LIST = {"HX-Request": "true", "HX-Target": "conv-list"}


def listed(client, q: str) -> str:
    response = client.get("/inbox", query_string={"q": q, "status": "any"}, headers=LIST)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_search_ignores_accents_and_matches_word_prefixes(logged_in, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33611111111", body="Ma réservation du 12 est annulée ?"))
    signed_post(client, sms_channel, inbound(sender="+33622222222", body="Question sur la facture"))

    for q in ("reservation", "réservation", "RESERV", "annulee", "reserv 12"):
        html = listed(logged_in, q)
        assert "+33611111111" in html and "+33622222222" not in html, q
    html = listed(logged_in, "factur")
    assert "+33622222222" in html and "+33611111111" not in html
    assert "+336" not in listed(logged_in, "reservation facture")  # every word must match
    assert "+336" not in listed(logged_in, "servation")  # words match from their start


def test_search_never_shows_another_workspace(logged_in, client, sms_channel):
    channel = other_workspace_sms_channel("other-search")
    signed_post(client, channel, inbound(sender="+33633333333", body="confidentiel chez B"))
    signed_post(client, sms_channel, inbound(sender="+33644444444", body="confidentiel chez A"))

    html = listed(logged_in, "confidentiel")
    assert "+33644444444" in html and "+33633333333" not in html


def test_operators_and_punctuation_are_plain_text(logged_in, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33655555555", body="colis NOT livré OR perdu"))
    for q in ('NOT livré', 'perdu OR', '"colis', "colis*", "(perdu)", "colis:"):
        assert "+33655555555" in listed(logged_in, q), q
    assert listed(logged_in, "%%").count('id="row-') == 0


def test_index_follows_edits_and_deletes(app, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33666666666", body="premier texte"))
    db.session.rollback()
    db.session.expire_all()
    message = db.session.scalar(select(Message))
    conversation = db.session.scalar(select(Conversation))
    dialect = db.engine.dialect.name

    def found(q: str) -> bool:
        stmt = search.conversations_matching(conversation.workspace_id, q, dialect_name=dialect)
        return conversation.id in set(db.session.scalars(stmt))

    assert found("premier")
    message.body = "second texte"
    db.session.commit()
    assert found("second") and not found("premier")
    db.session.execute(text("DELETE FROM message WHERE id = :id"), {"id": message.id})
    db.session.commit()
    assert not found("second")


def test_install_is_idempotent_and_rebuild_reindexes(app, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33677777777", body="rendez-vous lundi"))
    db.session.rollback()
    with db.engine.begin() as connection:
        search.install(connection)
        search.install(connection)
        search.rebuild(connection)
    conversation = db.session.scalar(select(Conversation))
    stmt = search.conversations_matching(conversation.workspace_id, "lundi", dialect_name=db.engine.dialect.name)
    assert list(db.session.scalars(stmt)) == [conversation.id]


def test_a_very_common_word_searches_the_most_recent_matches(app, logged_in, client, sms_channel, monkeypatch):
    for i in range(3):
        signed_post(client, sms_channel, inbound(sender=f"+3367000000{i}", body=f"commande numéro {i}"))
    monkeypatch.setattr(search, "MAX_MATCHES", 2)

    html = listed(logged_in, "commande")
    assert "+33670000002" in html and "+33670000001" in html
    if db.engine.dialect.name == "sqlite":  # FTS5 stops after the newest matches
        assert "+33670000000" not in html
        assert "+33670000000" in listed(logged_in, "commande 0")  # a narrower query reaches it
    else:  # the GIN index returns every match; the bound is the newest messages' (below)
        assert "+33670000000" in html


def test_a_common_word_on_postgresql_keeps_the_conversations_of_the_newest_messages(
        app, logged_in, client, sms_channel, monkeypatch):
    """PostgreSQL's bound: when the newest RECENT_MESSAGES messages hold RECENT_MATCHES_ENOUGH matches,
    only their conversations are listed; otherwise every match is (SQLite: the test above)."""
    for i in range(3):
        signed_post(client, sms_channel, inbound(sender=f"+3367100000{i}", body=f"facture numéro {i}"))
    monkeypatch.setattr(search, "RECENT_MESSAGES", 2)  # the two newest messages
    monkeypatch.setattr(search, "RECENT_MATCHES_ENOUGH", 2)

    html = listed(logged_in, "facture")
    if db.engine.dialect.name == "postgresql":
        assert "+33671000002" in html and "+33671000001" in html and "+33671000000" not in html
        assert "+33671000000" in listed(logged_in, "facture 0")  # too few recent matches: all are read
    else:  # FTS5's own bound (MAX_MATCHES newest matches) is far off
        assert "+33671000000" in html


def test_search_finds_contacts_by_any_part_of_their_name_company_email_or_phone(
        logged_in, client, agent, sms_channel):
    from inbox.actions.crm import ContactInput, do_update_contact
    from inbox.models import Contact

    signed_post(client, sms_channel, inbound(sender="+33611112222", body="bonjour"))
    signed_post(client, sms_channel, inbound(sender="+33699998888", body="bonjour"))
    channel = other_workspace_sms_channel("other-contacts")
    signed_post(client, channel, inbound(sender="+33633334444", body="bonjour"))
    db.session.rollback()
    contacts = {c.phone: c for c in db.session.scalars(select(Contact))}
    rows = {phone: f'id="row-{db.session.scalar(select(Conversation.id).where(Conversation.contact_id == c.id))}"'
            for phone, c in contacts.items()}
    do_update_contact(contacts["+33611112222"], ContactInput(
        name="Élodie Martin", company="Boulangerie Dupain", email="elodie@dupain.example", phone="+33611112222"),
        actor=agent)
    do_update_contact(contacts["+33633334444"], ContactInput(name="Élodie Martin", phone="+33633334444"),
                      actor=agent)  # same name, another workspace

    for q in ("lodie", "MARTIN", "élodie martin", "dupain", "@dupain.ex", "1111222", "ti"):
        html = listed(logged_in, q)
        assert rows["+33611112222"] in html and rows["+33699998888"] not in html, q
        assert rows["+33633334444"] not in html, q
    assert 'id="row-' not in listed(logged_in, "martine")

    do_update_contact(contacts["+33611112222"], ContactInput(name="Chloé Bernard", phone="+33611112222"),
                      actor=agent)  # the index follows edits
    assert rows["+33611112222"] not in listed(logged_in, "martin")
    assert rows["+33611112222"] not in listed(logged_in, "dupain")
    assert rows["+33611112222"] in listed(logged_in, "bernard")
