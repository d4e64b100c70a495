"""The composer and templates: outside WhatsApp's 24-hour window only approved templates are
offered (and why), with their variables; a window error on a sent message offers a template;
the template picker fills the text for this contact; the template editor previews live."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from inbox.actions.workspace import do_create_contact, do_create_user
from inbox.channels.base import InboundMessage
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Conversation, Message, OutboundTemplate, Role, utcnow
from inbox.orchestrator.ingest import do_ingest
from inbox.sandbox.twilio import new_sid

from ..conftest import PASSWORD, login, run_jobs

PHONE = "+33645112233"
CONTENT_SID = "HX" + "0" * 31 + "1"  # known to the fake Twilio (its demo template)
TWILIO_TEMPLATES = [{"name": "Confirmation RDV", "content_sid": CONTENT_SID,
                     "body": "Bonjour {{1}}, votre rendez-vous du {{2}} est confirmé.", "variables": ["Prénom", "Date"]}]


def fresh():
    db.session.rollback()
    db.session.expire_all()


def customer_wrote(channel, *, ago: timedelta, sender=PHONE) -> Conversation:
    do_ingest(channel, InboundMessage(provider_message_id=new_sid("SM"), sender=sender, recipient=channel.address,
                                      body="Bonjour", sent_at=utcnow() - ago))
    return db.session.scalar(select(Conversation))


@pytest.fixture
def english(agent):
    agent.locale = "en"
    db.session.commit()
    return agent


@pytest.fixture
def wa(whatsapp):
    whatsapp.settings = {**(whatsapp.settings or {}), "templates": TWILIO_TEMPLATES}
    db.session.commit()
    return whatsapp


def test_outside_the_window_the_composer_offers_only_approved_templates(app, client, english, wa, fake_twilio):
    conversation = customer_wrote(wa, ago=timedelta(hours=30))
    login(client, english)
    page = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert "WhatsApp: approved templates only" in page and "the 24-hour window closed" in page
    assert "Confirmation RDV" in page and 'name="var_1"' in page and 'name="var_2"' in page
    assert "Send the template" in page and 'type="hidden" name="internal" value="1"' in page

    response = client.post(f"/inbox/c/{conversation.id}/whatsapp-template", headers={"HX-Request": "true"}, data={
        "channel_id": wa.id, "template": "s0", "var_1": "Camille", "var_2": "12/03 à 9h30", "idempotency_key": "tpl1"})
    assert response.status_code == 200
    run_jobs(app)
    sent = fake_twilio.sent[-1]
    assert sent["ContentSid"] == CONTENT_SID and json.loads(sent["ContentVariables"]) == {"1": "Camille", "2": "12/03 à 9h30"}
    fresh()
    message = db.session.scalar(select(Message).where(Message.direction == "outbound", Message.internal.is_(False)))
    assert message.body == "Bonjour Camille, votre rendez-vous du 12/03 à 9h30 est confirmé."
    assert message.delivery_status == "accepted"


def test_a_template_needs_every_variable(app, client, english, wa):
    conversation = customer_wrote(wa, ago=timedelta(days=3))
    login(client, english)
    response = client.post(f"/inbox/c/{conversation.id}/whatsapp-template", headers={"HX-Request": "true"},
                           data={"channel_id": wa.id, "template": "s0", "var_1": "Camille", "var_2": ""})
    assert response.status_code == 422 and "Fill in every variable" in response.get_data(as_text=True)


def test_inside_the_window_the_composer_is_free_text(app, client, english, wa):
    conversation = customer_wrote(wa, ago=timedelta(hours=2))
    login(client, english)
    page = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert "approved templates only" not in page and "Reply… (Ctrl+Enter sends)" in page


def test_meta_approved_template_goes_out_as_a_template_message(app, client, english, meta_channel, fake_meta):
    meta_channel.settings = {**meta_channel.settings, "templates": [
        {"name": "Relance", "template": "relance_devis", "language": "fr",
         "body": "Bonjour {{1}}, votre devis vous attend.", "variables": ["Prénom"]}]}
    db.session.commit()
    conversation = customer_wrote(meta_channel, ago=timedelta(days=2))
    login(client, english)
    client.post(f"/inbox/c/{conversation.id}/whatsapp-template", headers={"HX-Request": "true"},
                data={"channel_id": meta_channel.id, "template": "s0", "var_1": "Hugo", "idempotency_key": "m1"})
    run_jobs(app)
    sent = fake_meta.sent[-1]
    assert sent["type"] == "template" and sent["template"]["name"] == "relance_devis"
    assert sent["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Hugo"}]


def test_a_window_error_on_a_message_offers_a_template(app, client, english, wa, fake_twilio):
    conversation = customer_wrote(wa, ago=timedelta(days=2))
    login(client, english)
    # Sent as free text anyway (an API client, a composer opened before the window closed).
    client.post(f"/inbox/c/{conversation.id}/reply", headers={"HX-Request": "true"},
                data={"body": "Bonjour", "channel_id": wa.id, "idempotency_key": "r1"})
    run_jobs(app)
    fresh()
    failed = db.session.scalar(select(Message).where(Message.direction == "outbound", Message.internal.is_(False)))
    assert failed.error_code == "63016" and fake_twilio.sent == []
    status = client.get(f"/inbox/m/{failed.id}/status").get_data(as_text=True)
    assert "Outside the 24-hour WhatsApp window" in status and "Send an approved template instead" in status
    composer = client.get(f"/inbox/c/{conversation.id}/composer?channel_id={wa.id}").get_data(as_text=True)
    assert "Confirmation RDV" in composer


def test_the_channel_picker_switches_the_composer(app, client, english, wa, sms_channel, workspace):
    do_create_contact(workspace, name="Hugo", identities={ChannelKind.SMS: PHONE, ChannelKind.WHATSAPP: PHONE})
    conversation = customer_wrote(wa, ago=timedelta(days=2))
    login(client, english)
    sms = client.get(f"/inbox/c/{conversation.id}/composer?channel_id={sms_channel.id}").get_data(as_text=True)
    assert "approved templates only" not in sms and f'value="{sms_channel.id}" selected' in sms


# -- the picker and the editor ---------------------------------------------------------------------
@pytest.fixture
def welcome(workspace):
    template = OutboundTemplate(workspace_id=workspace.id, name="Bienvenue", kind=ChannelKind.SMS,
                                body="Bonjour {{prospect_name}} ({{company}}), ici {{agent_name}}.")
    db.session.add(template)
    db.session.add(OutboundTemplate(workspace_id=workspace.id, name="Newsletter", kind=ChannelKind.EMAIL,
                                    body="Nouvelles"))
    db.session.commit()
    return template


def test_the_picker_inserts_the_template_filled_for_the_contact(app, client, english, sms_channel, workspace, welcome):
    do_create_contact(workspace, name="Hugo Lambert", company="ACME", identities={ChannelKind.SMS: PHONE})
    conversation = customer_wrote(sms_channel, ago=timedelta(minutes=5))
    login(client, english)
    page = client.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    picker = re.search(r'<select id="reply-template".*?</select>', page, re.DOTALL).group(0)
    assert "Insert a template…" in picker and ">Bienvenue<" in picker and ">Newsletter<" not in picker  # SMS ones
    body = client.get(f"/inbox/c/{conversation.id}/template?template_id={welcome.id}").get_data(as_text=True)
    assert 'id="reply-body"' in body and "Bonjour Hugo Lambert (ACME), ici Alice Agent." in body


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Ada Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("50"))


def test_live_preview_counts_sms_and_sandboxes_email_html(client, admin):
    login(client, admin)
    sms = client.post("/settings/templates/preview", data={"kind": "sms", "body": "Bonjour {{first_name}} " + "a" * 150})
    text = sms.get_data(as_text=True)
    assert "Bonjour Camille" in text and 'data-segments="2"' in text and "GSM-7" in text
    accented = client.post("/settings/templates/preview", data={"kind": "sms", "body": "Ça coûte 12 €"})
    assert 'data-segments="1"' in accented.get_data(as_text=True) and "UCS-2" in accented.get_data(as_text=True)
    email = client.post("/settings/templates/preview", data={
        "kind": "email", "subject": "Offre {{company}}", "body": "x",
        "html": '<p>Bonjour {{prospect_name}}</p><script>alert(1)</script><img src="https://tracker.example/p.gif">'})
    html = email.get_data(as_text=True)
    assert 'sandbox=""' in html and "srcdoc=" in html and "Boulangerie Martin" in html
    assert "<script" not in html and "alert(1)" not in html and "tracker.example" not in html


def test_templates_are_in_the_settings_menu(client, admin):
    login(client, admin)
    assert client.get("/settings/templates").status_code == 302
    assert "/settings/templates" in client.get("/settings/channels").get_data(as_text=True)


def test_agents_do_not_edit_templates(client, agent):
    login(client, agent)
    assert client.post("/settings/templates/preview", data={"body": "x"}).status_code == 403


def test_the_template_editor_has_the_live_preview(client, admin):
    login(client, admin)
    page = client.get("/outbound/templates/new").get_data(as_text=True)
    assert 'id="template-preview"' in page and "/settings/templates/preview" in page
