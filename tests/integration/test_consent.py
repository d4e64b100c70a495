"""STOP / START through the real SMS webhook, the email unsubscribe link, and what consent changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from inbox.actions.campaigns import plan_audience
from inbox.actions.consent import do_set_consent, unsubscribe_url
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Consent, ConsentSource, ConsentStatus, Contact, Message
from inbox.orchestrator.consent import keyword_of
from inbox.orchestrator.routing import route_message

from ..conftest import PUBLIC_BASE_URL, run_jobs
from ..helpers import inbound, signed_post
from .outbound_fixtures import T0, admin, fresh, make_campaign, make_contact, outbound_messages  # noqa: F401


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop.", "ARRET", "ARRÊT", "arrêt", "Arrêter", "UNSUBSCRIBE",
                                  "STOP SMS", "Stop svp", "stop merci", "STOP PUB", "désabonner", "STOPALL"])
def test_opt_out_keywords(text):
    assert keyword_of(text) == ConsentStatus.OPTED_OUT


@pytest.mark.parametrize("text", ["START", "start", "Unstop"])
def test_opt_in_keywords(text):
    assert keyword_of(text) == ConsentStatus.OPTED_IN


@pytest.mark.parametrize("text", ["stop, my order is wrong", "Pouvez-vous arrêter la livraison de demain ?",
                                  "STOPPER", "non", "", "ok stop"])
def test_sentences_are_not_keywords(text):
    assert keyword_of(text) is None


def consent_of(sender: str) -> Consent | None:
    fresh()
    contact = db.session.scalar(select(Contact).where(Contact.phone == sender))
    return Consent.of_contact(contact.id).get(ChannelKind.SMS) if contact else None


def test_stop_by_sms_opts_out_at_once_and_confirms_through_twilio(app, client, sms_channel, fake_twilio):
    signed_post(client, sms_channel, inbound(sender="+33611110000", body="ARRÊT"))
    run_jobs(app)  # route (consent handled) then deliver the confirmation

    consent = consent_of("+33611110000")
    assert consent.status == ConsentStatus.OPTED_OUT and consent.source == ConsentSource.KEYWORD
    assert consent.detail == "ARRET" and consent.changed_at is not None
    assert len(fake_twilio.sent) == 1
    sent = fake_twilio.sent[0]
    assert sent["To"] == "+33611110000" and "START" in sent["Body"]
    confirmation = outbound_messages()[0]
    assert confirmation.sender_kind == "bot" and confirmation.meta["consent"] == "opted_out"

    # START opts back in, and is confirmed too.
    signed_post(client, sms_channel, inbound(sender="+33611110000", body="start"))
    run_jobs(app)
    assert consent_of("+33611110000").status == ConsentStatus.OPTED_IN
    assert len(fake_twilio.sent) == 2 and "STOP" in fake_twilio.sent[1]["Body"]


def test_a_rerun_routing_job_does_not_confirm_twice(app, client, sms_channel, fake_twilio):
    signed_post(client, sms_channel, inbound(sender="+33611110001", body="STOP"))
    run_jobs(app)
    stop = db.session.scalar(select(Message).where(Message.body == "STOP"))
    assert route_message(stop.id) is False  # the job ran again (a retry, a second worker): nothing to do
    run_jobs(app)
    assert len(fake_twilio.sent) == 1
    assert len(outbound_messages()) == 1


def test_an_ordinary_message_is_routed_as_usual(app, client, sms_channel):
    signed_post(client, sms_channel, inbound(sender="+33611110002", body="Stop, ma commande est fausse"))
    run_jobs(app)
    assert consent_of("+33611110002") is None
    fresh()
    assert db.session.scalar(select(Message.routed_at).where(Message.direction == "inbound")) is not None


def test_campaigns_skip_the_contact_who_texted_stop_and_replies_still_work(
        app, client, logged_in, workspace, agent, sms_channel, fake_twilio):
    stays = make_contact(workspace, "Reste", sms="+33611110003", preferred=ChannelKind.SMS)
    signed_post(client, sms_channel, inbound(sender="+33611110004", body="Stop"))
    run_jobs(app)
    fresh()
    leaving = db.session.scalar(select(Contact).where(Contact.phone == "+33611110004"))
    campaign = make_campaign(workspace, agent)

    plan = plan_audience(campaign, now=T0)
    assert [c.id for c, _ch in plan.recipients] == [stays.id]
    assert [(c.id, reason) for c, reason in plan.skipped] == [(leaving.id, "opted_out")]

    # A transactional answer to the customer's own message is still allowed.
    conversation = leaving_conversation = db.session.scalar(
        select(Message.conversation_id).where(Message.contact_id == leaving.id))
    response = logged_in.post(f"/inbox/c/{leaving_conversation}/reply",
                              data={"body": "Bien noté, bonne journée", "idempotency_key": "k-stop"},
                              headers={"HX-Request": "true"})
    assert response.status_code == 200 and conversation
    run_jobs(app)
    assert fake_twilio.sent[-1]["Body"] == "Bien noté, bonne journée"


def test_agent_sets_consent_on_the_contact_card(logged_in, workspace):
    contact = make_contact(workspace, "Zoé", sms="+33611110005")
    response = logged_in.post(f"/contacts/{contact.id}/consent", data={"kind": "sms", "status": "opted_out"},
                              headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'data-consent="opted_out"' in response.get_data(as_text=True)
    fresh()
    assert Consent.is_opted_out(contact.id, ChannelKind.SMS)


def test_email_unsubscribe_link_is_signed_and_one_click(app, client, workspace):
    contact = make_contact(workspace, "Léa", email="lea@example.test")
    url = unsubscribe_url(contact, ChannelKind.EMAIL, campaign_id=7)
    assert url.startswith(PUBLIC_BASE_URL + "/u/")
    path = url.removeprefix(PUBLIC_BASE_URL)

    page = client.get(path)  # a mail scanner following the link changes nothing
    assert page.status_code == 200 and b"<form" in page.data
    assert not Consent.is_opted_out(contact.id, ChannelKind.EMAIL)

    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, with no session and no CSRF token.
    app.config["WTF_CSRF_ENABLED"] = True
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    fresh()
    consent = Consent.of_contact(contact.id)[ChannelKind.EMAIL]
    assert consent.status == ConsentStatus.OPTED_OUT and consent.source == ConsentSource.UNSUBSCRIBE_LINK
    assert consent.detail == "campaign:7"

    assert client.post(path[:-3] + "xyz").status_code == 404  # altered: refused
    assert client.get("/u/not-a-token").status_code == 404


def test_consent_change_is_idempotent(workspace):
    contact = make_contact(workspace, "Jean", sms="+33611110006")
    assert do_set_consent(contact, ChannelKind.SMS, ConsentStatus.OPTED_OUT, source=ConsentSource.API) is True
    assert do_set_consent(contact, ChannelKind.SMS, ConsentStatus.OPTED_OUT, source=ConsentSource.API) is False
