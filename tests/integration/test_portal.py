"""The customer portal as a customer lives it: sign in by a link in an email or a code by text
message, see only their own tickets, read the team's answers (never its notes), reply with a
file, open a ticket, rate the help."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from inbox.actions.ratings import rating_token
from inbox.actions.tickets import do_add_ticket_note, do_change_status
from inbox.actions.workspace import do_create_contact
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.mailer import get_mailer
from inbox.models import Message, PortalLogin, Rating, Ticket, TicketAttachment, TicketEvent, utcnow

from ..conftest import IsolatedClient, login, run_jobs
from .ticket_fixtures import CUSTOMER, contact, fresh, make_ticket  # noqa: F401

EMAIL = "elodie@fournier.test"
RATE_QUESTION = "Comment évaluez-vous notre aide"  # the portal speaks the workspace's French
OTHER = "+33698765432"


@pytest.fixture
def customer(contact):
    contact.email = EMAIL
    db.session.commit()
    return contact


@pytest.fixture
def other_contact(workspace, sms_channel):
    return do_create_contact(workspace, name="Marc Petit", identities={ChannelKind.SMS: OTHER},
                             preferred_channel=ChannelKind.SMS, phone=OTHER, email="marc@petit.test")


def new_client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


def signed_in(app, contact):
    """A browser whose portal session is this contact's (the sign-in itself is tested below)."""
    browser = new_client(app)
    with browser.session_transaction() as session:
        session["portal_contact_id"] = contact.id
        session["portal_workspace_id"] = contact.workspace_id
        session["portal_since"] = utcnow().timestamp()
    return browser


def mails_to(address: str) -> list:
    return [m for m in get_mailer().sent if m.to == address]


def link_in(mail) -> str:
    return re.search(r"https://support\.example\.test(/portal/login/\S+)", mail.body).group(1)


# -- signing in ----------------------------------------------------------------------------------
def test_a_magic_link_signs_the_customer_in_once(app, client, customer):
    get_mailer().sent.clear()
    page = client.post("/portal/login", data={"identifier": "  Elodie@Fournier.test "})
    assert page.status_code == 200 and "un lien de connexion est en route" in page.get_data(as_text=True)
    unknown = client.post("/portal/login", data={"identifier": "nobody@example.test"})
    assert unknown.status_code == 200  # the same answer: nobody learns who is a customer
    run_jobs(app)
    assert mails_to("nobody@example.test") == []
    [mail] = mails_to(EMAIL)
    path = link_in(mail)
    assert "15 minutes" in mail.body and path not in str(db.session.scalar(select(PortalLogin)).__dict__)

    confirm = client.get(path)  # a mail scanner following the link does not spend it
    assert confirm.status_code == 200 and "Élodie Fournier" in confirm.get_data(as_text=True)
    assert client.get("/portal/tickets").status_code == 302
    signed = client.post(path)
    assert signed.status_code == 303 and signed.headers["Location"].endswith("/portal/tickets")
    assert client.get("/portal/tickets").status_code == 200

    assert new_client(app).post(path).status_code == 410  # single use
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert new_client(app).get(forged).status_code == 410
    client.post("/portal/logout")
    assert client.get("/portal/tickets").status_code == 302


def test_an_expired_link_is_refused(app, client, customer):
    client.post("/portal/login", data={"identifier": EMAIL})
    run_jobs(app)
    path = link_in(mails_to(EMAIL)[-1])
    db.session.execute(update(PortalLogin).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert new_client(app).post(path).status_code == 410


def test_a_code_by_sms_with_wrong_codes_counted(app, client, customer, sms_channel, fake_twilio):
    to_code = client.post("/portal/login", data={"identifier": "+33 6 12 34 56 78"})
    assert to_code.status_code == 303 and "/portal/code" in to_code.headers["Location"]
    run_jobs(app)
    [sms] = fake_twilio.sent
    code = re.search(r"\b(\d{6})\b", sms["Body"]).group(1)
    assert sms["To"] == CUSTOMER
    assert db.session.scalar(select(func.count(Message.id))) == 0  # not in any thread an agent reads
    assert code not in str([tuple(row) for row in db.session.execute(select(PortalLogin.__table__)).all()])

    wrong = "000000" if code != "000000" else "111111"
    refused = client.post("/portal/code", data={"code": wrong})
    assert refused.status_code == 422 and "incorrect ou a expiré" in refused.get_data(as_text=True)
    assert client.post("/portal/code", data={"code": "12"}).status_code == 422
    assert client.post("/portal/code", data={"code": f"{code[:3]} {code[3:]}"}).status_code == 303
    assert client.get("/portal/tickets").status_code == 200


def test_five_wrong_codes_burn_the_code(app, client, customer, sms_channel, fake_twilio):
    client.post("/portal/login", data={"identifier": CUSTOMER})
    run_jobs(app)
    code = re.search(r"\b(\d{6})\b", fake_twilio.sent[-1]["Body"]).group(1)
    wrong = "000000" if code != "000000" else "111111"
    for _attempt in range(5):
        assert client.post("/portal/code", data={"code": wrong}).status_code == 422
    assert client.post("/portal/code", data={"code": code}).status_code == 422  # too late: ask again
    assert fresh(PortalLogin, db.session.scalar(select(PortalLogin.id))).attempts == 5


def test_an_unknown_number_sees_the_same_code_page(app, client, sms_channel, fake_twilio):
    response = client.post("/portal/login", data={"identifier": "+33700000000"})
    assert response.status_code == 303 and "/portal/code" in response.headers["Location"]
    run_jobs(app)
    assert fake_twilio.sent == []
    assert client.post("/portal/code", data={"code": "123456"}).status_code == 422
    assert client.post("/portal/login", data={"identifier": "hello"}).status_code == 422


def test_sign_in_requests_are_rate_limited_per_contact(app, customer):
    for _ in range(5):  # each from a fresh browser: the per-contact limit is what holds
        new_client(app).post("/portal/login", data={"identifier": EMAIL})
    assert db.session.scalar(select(func.count(PortalLogin.id))) == 3
    browser = new_client(app)
    answers = [browser.post("/portal/login", data={"identifier": "x@example.test"}).status_code for _ in range(6)]
    assert answers[-1] == 429  # and one browser cannot hammer the form


# -- only one's own tickets ------------------------------------------------------------------------
def test_a_customer_sees_only_their_own_tickets(app, client, agent, customer, other_contact):
    mine, theirs = make_ticket(customer, subject="Mon colis"), make_ticket(other_contact, subject="Son colis")
    do_add_ticket_note(theirs, "Note sur Marc", actor=agent, internal=True)
    browser = signed_in(app, customer)

    listing = browser.get("/portal/tickets").get_data(as_text=True)
    assert "Mon colis" in listing and "Son colis" not in listing
    for path in (f"/portal/tickets/{theirs.id}", f"/portal/tickets/{theirs.id + 1000}"):
        assert browser.get(path).status_code == 404
    assert browser.post(f"/portal/tickets/{theirs.id}/reply", data={"body": "Coucou"}).status_code == 404
    assert browser.post(f"/portal/tickets/{theirs.id}/rate", data={"score": "5"}).status_code == 404
    assert len(TicketEvent.public_of(theirs.id)) == 1

    login(client, agent)  # an agent's session opens no portal, and a portal session no inbox
    assert client.get("/portal/tickets").status_code == 302
    assert browser.get("/inbox").status_code == 302 and "/login" in browser.get("/inbox").headers["Location"]
    assert browser.get(f"/tickets/{mine.id}").status_code == 302


def test_the_ticket_page_shows_public_replies_and_never_internal_notes(app, agent, customer):
    ticket = make_ticket(customer, subject="Terminal HS", description="Écran noir depuis ce matin")
    do_add_ticket_note(ticket, "Client VIP: rappeler avant midi", actor=agent, internal=True)
    do_add_ticket_note(ticket, "Un technicien passe demain à 9 h.", actor=agent, internal=False)
    html = signed_in(app, customer).get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert "Écran noir depuis ce matin" in html and "Un technicien passe demain à 9 h." in html
    assert "Client VIP" not in html and "Alice Agent" in html


def test_a_customer_opens_a_ticket_and_replies_with_files(app, customer):
    browser = signed_in(app, customer)
    bad = browser.post("/portal/tickets/new", data={"subject": " ", "category": "weather"})
    assert bad.status_code == 422 and "Donnez un objet au ticket." in bad.get_data(as_text=True)
    created = browser.post("/portal/tickets/new", content_type="multipart/form-data", data={
        "subject": "Facture illisible", "description": "Voir la capture", "category": "billing", "priority": "medium",
        "files": [(io.BytesIO(b"\x89PNG fake image"), "capture écran.png", "image/png")]})
    assert created.status_code == 303
    ticket = fresh(Ticket, int(re.search(r"/portal/tickets/(\d+)", created.headers["Location"]).group(1)))
    assert ticket.source == "portal" and ticket.contact_id == customer.id and ticket.category == "billing"
    [attachment] = TicketAttachment.of_ticket(ticket.id, public_only=True)
    assert attachment.filename == "capture écran.png" and attachment.uploaded_by_contact_id == customer.id
    download = browser.get(f"/portal/tickets/{ticket.id}/files/{attachment.id}")
    assert download.status_code == 200 and download.data == b"\x89PNG fake image"

    dangerous = browser.post(f"/portal/tickets/{ticket.id}/reply", content_type="multipart/form-data",
                             data={"body": "Voici", "files": [(io.BytesIO(b"MZ"), "facture.exe", "application/pdf")]})
    assert dangerous.status_code == 422 and "facture.exe" in dangerous.get_data(as_text=True)
    replied = browser.post(f"/portal/tickets/{ticket.id}/reply", content_type="multipart/form-data",
                           data={"body": "La voici en PDF", "files": [(io.BytesIO(b"%PDF-1.4"), "../../facture.pdf",
                                                                       "application/pdf")]})
    assert replied.status_code == 303
    db.session.rollback()
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "customer_message")).one()
    assert event.body == "La voici en PDF" and event.data["source"] == "portal"
    pdf = db.session.scalars(select(TicketAttachment).where(TicketAttachment.event_id == event.id)).one()
    assert pdf.filename == "facture.pdf"  # a name to show, never a path
    page = browser.get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert "La voici en PDF" in page and "facture.pdf" in page

    do_change_status(fresh(Ticket, ticket.id), "closed", actor=None, notify_customer=False)
    assert browser.post(f"/portal/tickets/{ticket.id}/reply", data={"body": "Encore"}).status_code == 409


def test_a_customer_rates_a_resolved_ticket_once(app, agent, customer):
    ticket = make_ticket(customer)
    browser = signed_in(app, customer)
    assert RATE_QUESTION not in browser.get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    do_change_status(ticket, "resolved", actor=agent, notify_customer=False)
    assert RATE_QUESTION in browser.get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert browser.post(f"/portal/tickets/{ticket.id}/rate", data={"score": "9"}).status_code == 422
    assert browser.post(f"/portal/tickets/{ticket.id}/rate", data={"score": "5", "comment": "Parfait"}).status_code == 303
    rating = db.session.scalar(select(Rating))
    assert (rating.score, rating.comment, rating.source, rating.ticket_id) == (5, "Parfait", "portal", ticket.id)
    assert browser.post(f"/portal/tickets/{ticket.id}/rate", data={"score": "1"}).status_code == 422
    page = browser.get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert "5/5" in page and RATE_QUESTION not in page


def test_the_signed_rating_link_from_an_email(app, client, agent, customer):
    ticket = make_ticket(customer)
    do_change_status(ticket, "resolved", actor=agent, notify_customer=False)
    path = f"/portal/rate/{rating_token(ticket)}"
    page = client.get(path + "?score=4")
    assert page.status_code == 200 and ticket.reference in page.get_data(as_text=True)
    assert client.post(path, data={"score": "4", "comment": "Bien"}).status_code == 200
    assert db.session.scalar(select(Rating.score)) == 4
    assert client.get(f"/portal/rate/{rating_token(ticket)}x").status_code == 404


def test_the_portal_speaks_french_and_english(app, customer):
    browser = signed_in(app, customer)
    assert '<html lang="fr">' in browser.get("/portal/tickets", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    switched = browser.get("/portal/lang/en?next=/portal/tickets")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/portal/tickets")
    assert '<html lang="en">' in browser.get("/portal/tickets").get_data(as_text=True)
    assert browser.get("/portal/lang/en?next=https://evil.example/").headers["Location"].endswith("/portal/tickets")


def test_agents_see_and_download_the_files_customers_upload(app, client, agent, customer, other_contact):
    from inbox.actions.workspace import do_create_user, do_create_workspace
    from inbox.models import Role

    browser = signed_in(app, customer)
    created = browser.post("/portal/tickets/new", content_type="multipart/form-data", data={
        "subject": "Écran bleu", "description": "Capture jointe", "category": "technical", "priority": "medium",
        "files": [(io.BytesIO(b"\x89PNG capture"), "ecran.png", "image/png")]})
    ticket_id = int(re.search(r"/portal/tickets/(\d+)", created.headers["Location"]).group(1))
    browser.post(f"/portal/tickets/{ticket_id}/reply", content_type="multipart/form-data",
                 data={"body": "Le journal", "files": [(io.BytesIO(b"%PDF-1.4 log"), "journal.pdf", "application/pdf")]})
    db.session.rollback()
    png, pdf = TicketAttachment.of_ticket(ticket_id, public_only=False)

    login(client, agent)
    page = client.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert "ecran.png" in page and "journal.pdf" in page
    assert f"/tickets/{ticket_id}/files/{png.id}" in page and f"/tickets/{ticket_id}/files/{pdf.id}" in page
    image = client.get(f"/tickets/{ticket_id}/files/{png.id}")
    assert image.status_code == 200 and image.data == b"\x89PNG capture" and image.mimetype == "image/png"
    download = client.get(f"/tickets/{ticket_id}/files/{pdf.id}")
    assert download.data == b"%PDF-1.4 log" and "attachment" in download.headers["Content-Disposition"]

    # Another ticket's id in the URL, or an agent of another workspace: 404.
    db.session.rollback()
    mine = make_ticket(customer, subject="Autre")
    assert client.get(f"/tickets/{mine.id}/files/{png.id}").status_code == 404
    elsewhere = do_create_workspace("Ailleurs", slug="ailleurs-files")
    outsider = do_create_user(elsewhere, email="out@ailleurs.test", name="Out", password="correct horse battery",
                              role=Role.ADMIN)
    stranger = new_client(app)
    login(stranger, outsider)
    assert stranger.get(f"/tickets/{ticket_id}/files/{png.id}").status_code == 404
    # The portal's copy stays the customer's own: another customer gets 404.
    assert signed_in(app, other_contact).get(f"/portal/tickets/{ticket_id}/files/{png.id}").status_code == 404
    assert browser.get(f"/portal/tickets/{ticket_id}/files/{png.id}").status_code == 200


def test_expired_sign_ins_are_deleted_by_a_periodic_job(app, customer, sms_channel):
    from inbox.actions.portal import LoginIdentifier, do_request_login
    from inbox.broker import get_queue
    from inbox.models import PortalLoginMethod
    from inbox.periodic import PERIODIC

    assert ("inbox.jobs.portal.cleanup_expired_logins", 3600) in PERIODIC
    now = utcnow()
    old_link = do_request_login(LoginIdentifier(PortalLoginMethod.EMAIL, EMAIL), now=now - timedelta(hours=2))[0]
    by_code = LoginIdentifier(PortalLoginMethod.SMS, CUSTOMER)
    just_expired = do_request_login(by_code, now=now - timedelta(minutes=30))[0]
    fresh_link = do_request_login(LoginIdentifier(PortalLoginMethod.EMAIL, EMAIL), now=now)[0]
    old_id, kept_ids = old_link.id, {just_expired.id, fresh_link.id}
    get_queue().empty()  # the sign-in sends are not what this test is about

    get_queue().enqueue("inbox.jobs.portal.cleanup_expired_logins", now.isoformat())
    run_jobs(app)
    db.session.rollback()
    remaining = set(db.session.scalars(select(PortalLogin.id)))
    assert old_id not in remaining and remaining == kept_ids  # expired 1 h 45 ago: gone; 20 min ago: kept a while

    get_queue().enqueue("inbox.jobs.portal.cleanup_expired_logins", (now + timedelta(hours=2)).isoformat())
    run_jobs(app)
    db.session.rollback()
    assert db.session.scalar(select(func.count(PortalLogin.id))) == 0


def test_agents_attach_files_to_notes_and_replies_and_only_the_replys_reach_the_portal(
        app, client, agent, customer, sms_channel):
    ticket = make_ticket(customer, subject="Contrat")
    login(client, agent)
    hx = {"HX-Request": "true"}
    note = client.post(f"/tickets/{ticket.id}/notes", headers=hx, content_type="multipart/form-data", data={
        "body": "Contrat signé en interne", "internal": "1", "idempotency_key": "n1",
        "files": [(io.BytesIO(b"%PDF interne"), "interne.pdf", "application/pdf")]})
    assert note.status_code == 200 and "interne.pdf" in note.get_data(as_text=True)
    reply = client.post(f"/tickets/{ticket.id}/notes", headers=hx, content_type="multipart/form-data", data={
        "body": "Voici votre contrat", "channel_id": str(sms_channel.id), "idempotency_key": "r1",
        "files": [(io.BytesIO(b"%PDF contrat"), "contrat.pdf", "application/pdf")]})
    assert reply.status_code == 200 and "contrat.pdf" in reply.get_data(as_text=True)
    refused = client.post(f"/tickets/{ticket.id}/notes", headers=hx, content_type="multipart/form-data", data={
        "body": "Et ceci", "internal": "1", "idempotency_key": "x1",
        "files": [(io.BytesIO(b"MZ"), "outil.exe", "application/octet-stream")]})
    assert refused.status_code == 422 and "outil.exe" in refused.get_data(as_text=True)
    db.session.rollback()
    files = TicketAttachment.of_ticket(ticket.id, public_only=False)
    assert [(f.filename, f.internal, f.uploaded_by_user_id) for f in files] == [
        ("interne.pdf", True, agent.id), ("contrat.pdf", False, agent.id)]
    assert db.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.body == "Et ceci")) == 0

    portal = signed_in(app, customer).get(f"/portal/tickets/{ticket.id}").get_data(as_text=True)
    assert "contrat.pdf" in portal and "interne.pdf" not in portal
    assert signed_in(app, customer).get(f"/portal/tickets/{ticket.id}/files/{files[0].id}").status_code == 404


def test_the_rating_page_speaks_the_rated_customers_language(app, client, agent, customer):
    customer.locale = "en"
    db.session.commit()
    ticket = make_ticket(customer)
    do_change_status(ticket, "resolved", actor=agent, notify_customer=False)
    page = client.get(f"/portal/rate/{rating_token(ticket)}").get_data(as_text=True)
    assert '<html lang="en">' in page and "Rate our help" in page
    done = client.post(f"/portal/rate/{rating_token(ticket)}", data={"score": "3"}).get_data(as_text=True)
    assert "Thank you! Your rating has been recorded." in done
