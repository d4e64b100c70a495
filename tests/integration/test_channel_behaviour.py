"""A channel's behaviour, set on its settings page and applied by the route job: availability
hours with the out-of-hours reply (once per conversation and closed period), forwarding rules
(a copy by email, new conversations assigned), translated field labels, the audit log, 422s;
and customers answered in their language (Telegram's language_code, Sara's detection)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from inbox.actions.sara import do_update_settings
from inbox.actions.workspace import do_create_user
from inbox.blueprints.settings import field_texts
from inbox.channels.registry import ADAPTERS
from inbox.extensions import db
from inbox.mailer import get_mailer
from inbox.models import AuditEntry, Channel, Contact, Conversation, Message, Role, SaraSettings, SenderKind, utcnow
from inbox.orchestrator.channel_behaviour import send_forwarded_copy
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox import telegram as fake_tg

from ..conftest import PASSWORD, PUBLIC_BASE_URL, login, run_jobs
from ..helpers import inbound, signed_post

SENDER = "+33612345678"


@pytest.fixture
def admin(workspace):
    return do_create_user(workspace, email="admin@example.test", name="Ada Admin", password=PASSWORD,
                          role=Role.ADMIN, hourly_cost=Decimal("50"))


def fresh():
    db.session.rollback()
    db.session.expire_all()


def closed_all_day_today(workspace) -> list[str]:
    """Seven day texts, open one hour on a day three days away only: closed now, whatever the time."""
    today = utcnow().astimezone(ZoneInfo(workspace.timezone)).weekday()
    days = [""] * 7
    days[(today + 3) % 7] = "09:00-10:00"
    return days


def behaviour_form(days=None, **extra) -> dict:
    form = {f"day{i}": text for i, text in enumerate(days or [""] * 7)}
    if days is None:
        form["always_available"] = "1"
    form.setdefault("sara_auto_reply", "1")
    return {**form, **extra}


def closed_replies(conversation_id: int) -> list[Message]:
    return list(db.session.scalars(select(Message).where(
        Message.conversation_id == conversation_id, Message.sender_kind == SenderKind.BOT)
        .order_by(Message.id)))


def sms(app, client, channel, body: str, sender: str = SENDER) -> Message:
    assert signed_post(client, channel, inbound(sender=sender, body=body)).status_code == 200
    run_jobs(app)
    fresh()
    return db.session.scalars(select(Message).where(Message.body == body).order_by(Message.id.desc())).first()


def telegram_says(app, client, bot, chat: int, text: str, *, language_code: str) -> None:
    """A private message to the bot, as Telegram posts it (its user's app language included)."""
    update = fake_tg.text_update(chat, text, sender=fake_tg.user(chat, language_code=language_code))
    response = client.post(webhook_url(bot).removeprefix(PUBLIC_BASE_URL), data=json.dumps(update),
                           content_type="application/json", headers={fake_tg.SECRET_HEADER: fake_tg.DEMO_WEBHOOK_SECRET})
    assert response.status_code == 200
    run_jobs(app)
    fresh()


# -- labels -------------------------------------------------------------------------------------------
def test_every_config_field_of_every_channel_kind_has_a_label_and_a_help(app):
    for (kind, provider), adapter in ADAPTERS.items():
        for field in adapter.config_fields:
            label, help_text = field_texts(provider, field.name)
            assert label != field.name and help_text, (kind, provider, field.name)


def test_the_email_form_shows_translated_labels_not_raw_names(client, admin, email):
    login(client, admin)
    page = client.get(f"/settings/channels/{email.id}").get_data(as_text=True)
    assert ">Serveur SMTP</label>" in page and ">Signature des e-mails (facultatif)</label>" in page
    assert ">smtp_host</label>" not in page and ">inbound</label>" not in page
    assert "Ajoutée sous chaque réponse" in page  # the signature's help


def test_a_bad_smtp_security_is_refused_with_422(client, admin, email):
    login(client, admin)
    response = client.post(f"/settings/channels/{email.id}", data={
        "name": "Support", "address": email.address, "smtp_host": "localhost", "inbound": "mailgun",
        "smtp_security": "ssl3"})
    assert response.status_code == 422 and "starttls, tls, none" in response.get_data(as_text=True)
    fresh()
    assert "smtp_security" not in db.session.get(Channel, email.id).settings


# -- the behaviour section ------------------------------------------------------------------------------
def test_behaviour_is_saved_audited_and_shown(client, admin, agent, sms_channel):
    login(client, admin)
    page = client.get(f"/settings/channels/{sms_channel.id}").get_data(as_text=True)
    assert 'id="behaviour"' in page and "/outbound/rules" in page  # the sending rules: shown, edited there
    days = ["09:00-12:30, 13:30-18:00"] * 5 + ["", ""]
    response = client.post(f"/settings/channels/{sms_channel.id}/behaviour", data=behaviour_form(
        days, closed_reply="1", closed_reply_text="Fermé, réponse dès {opening}.", forward_to="chef@example.test",
        assign_to=str(agent.id)))
    assert response.status_code == 302
    fresh()
    settings = db.session.get(Channel, sms_channel.id).settings
    assert settings["availability"][0] == [["09:00", "12:30"], ["13:30", "18:00"]] and settings["availability"][5] == []
    assert settings["closed_reply"] is True and settings["forward_to"] == "chef@example.test"
    assert settings["assign_to"] == agent.id
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "channel.behaviour")).one()
    assert entry.actor_id == admin.id and entry.before["forward_to"] is None
    assert entry.after["forward_to"] == "chef@example.test" and entry.after["closed_reply"] is True
    page = client.get(f"/settings/channels/{sms_channel.id}").get_data(as_text=True)
    assert 'value="09:00-12:30, 13:30-18:00"' in page and "chef@example.test" in page

    # Switching Sara off on this channel is the same setting as on the Sara page, audited here too.
    client.post(f"/settings/channels/{sms_channel.id}/behaviour", data=behaviour_form(days, sara_auto_reply=""))
    fresh()
    assert sms_channel.id in SaraSettings.of(sms_channel.workspace_id).auto_reply_off_channels
    last = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "channel.behaviour")
                              .order_by(AuditEntry.id.desc())).first()
    assert last.before["sara_auto_reply"] is True and last.after["sara_auto_reply"] is False
    assert "forward_to" in last.before and last.after.get("forward_to") is None


@pytest.mark.parametrize("data, message", [
    (behaviour_form(["9h-18h"] + [""] * 6), "09:00-12:30, 13:30-18:00"),
    (behaviour_form([""] * 7), "Always available"),
    (behaviour_form(None, closed_reply="1"), "needs availability hours"),
    (behaviour_form(None, forward_to="not-an-address"), "is not an email address"),
    (behaviour_form(None, assign_to="999999"), "active member"),
])
def test_bad_behaviour_is_refused_with_422_and_nothing_changes(client, admin, sms_channel, data, message):
    login(client, admin)
    admin.locale = "en"
    db.session.commit()
    response = client.post(f"/settings/channels/{sms_channel.id}/behaviour", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    fresh()
    assert db.session.get(Channel, sms_channel.id).settings in ({}, None)
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "channel.behaviour")) is None


def test_an_agent_of_another_workspace_cannot_be_the_assignee(client, admin, sms_channel):
    from inbox.actions.workspace import do_create_workspace

    other = do_create_workspace("Ailleurs", slug="ailleurs-x")
    stranger = do_create_user(other, email="x@ailleurs.test", name="X", password=PASSWORD, role=Role.AGENT,
                              hourly_cost=Decimal("1"))
    login(client, admin)
    response = client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                           data=behaviour_form(None, assign_to=str(stranger.id)))
    assert response.status_code == 422


# -- availability: the out-of-hours reply --------------------------------------------------------------
def test_out_of_hours_reply_is_sent_once_per_conversation_and_closed_period(app, client, admin, workspace,
                                                                            sms_channel, fake_twilio):
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                data=behaviour_form(closed_all_day_today(workspace), closed_reply="1"))
    first = sms(app, client, sms_channel, "Bonjour, ma commande ?")
    sms(app, client, sms_channel, "Vous êtes là ?")
    [reply] = closed_replies(first.conversation_id)
    assert reply.meta == {"auto": "closed_hours"} and reply.direction == "outbound"
    assert reply.body.startswith("Merci pour votre message. Nous sommes fermés pour le moment")
    # Sent to the customer through the provider, once.
    assert [m["Body"] for m in fake_twilio.sent if m["To"] == SENDER] == [reply.body]

    # The next closed period is another one: the customer hears it again then.
    from inbox.orchestrator.channel_behaviour import reply_when_closed

    later = db.session.get(Message, first.id)
    assert reply_when_closed(later) is False  # same period: never twice
    assert reply_when_closed(later, now=utcnow() + timedelta(days=7)) is True
    fresh()
    assert len(closed_replies(first.conversation_id)) == 2


def test_no_reply_within_the_hours_or_when_switched_off(app, client, admin, workspace, sms_channel):
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                data=behaviour_form(["00:00-24:00"] * 7, closed_reply="1"))
    message = sms(app, client, sms_channel, "Ouvert ?")
    assert closed_replies(message.conversation_id) == []
    client.post(f"/settings/channels/{sms_channel.id}/behaviour", data=behaviour_form(closed_all_day_today(workspace)))
    message = sms(app, client, sms_channel, "Toujours ouvert ?")
    assert closed_replies(message.conversation_id) == []


def test_the_admin_text_names_the_next_opening(app, client, admin, workspace, sms_channel):
    login(client, admin)
    days = closed_all_day_today(workspace)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour", data=behaviour_form(
        days, closed_reply="1", closed_reply_text="Atelier fermé. Retour {opening}."))
    message = sms(app, client, sms_channel, "Allô ?")
    [reply] = closed_replies(message.conversation_id)
    assert reply.body.startswith("Atelier fermé. Retour ") and reply.body.endswith(", 09:00.")


# -- forwarding rules -------------------------------------------------------------------------------------
def test_inbound_messages_are_forwarded_by_email_once(app, client, admin, sms_channel):
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                data=behaviour_form(None, forward_to="chef@example.test"))
    get_mailer().sent.clear()
    message = sms(app, client, sms_channel, "Ma facture est fausse")
    [mail] = [m for m in get_mailer().sent if m.to == "chef@example.test"]
    assert "[SMS]" in mail.subject and "Ma facture est fausse" in mail.body
    assert f"{PUBLIC_BASE_URL}/inbox/c/{message.conversation_id}" in mail.body
    assert send_forwarded_copy(message.id) is False  # a re-run job sends nothing more
    assert len([m for m in get_mailer().sent if m.to == "chef@example.test"]) == 1


def test_new_conversations_are_assigned_to_the_chosen_agent(app, client, admin, agent, sms_channel):
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                data=behaviour_form(None, assign_to=str(agent.id)))
    message = sms(app, client, sms_channel, "Bonjour")
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.assignee_id == agent.id
    # An ongoing conversation someone else took keeps its owner.
    conversation.assignee_id = admin.id
    db.session.commit()
    sms(app, client, sms_channel, "Encore moi")
    assert db.session.get(Conversation, message.conversation_id).assignee_id == admin.id


# -- customers answered in their language ----------------------------------------------------------------
def test_telegram_language_code_is_kept_and_the_bot_answers_in_it(app, client, admin, workspace, telegram,
                                                                  fake_telegram):
    login(client, admin)
    client.post(f"/settings/channels/{telegram.id}/behaviour",
                data=behaviour_form(closed_all_day_today(workspace), closed_reply="1"))
    telegram_says(app, client, telegram, 4242, "Hi there", language_code="en-GB")
    contact = db.session.scalars(select(Contact).where(Contact.telegram_id == "4242")).one()
    assert contact.locale == "en"
    sent = [m["text"] for m in fake_telegram.sent if str(m.get("chat", {}).get("id")) == "4242"]
    assert any(t.startswith("Thank you for your message. We are closed at the moment") for t in sent)


def test_the_language_sara_detects_is_kept_and_used_by_the_next_bot_reply(app, client, admin, workspace,
                                                                          sms_channel):
    do_update_settings(workspace.id, {"enabled": True}, actor=None)
    first = sms(app, client, sms_channel, "Hello, what are your opening hours please?")
    contact = db.session.get(Contact, first.contact_id)
    assert contact.locale == "en"
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                data=behaviour_form(closed_all_day_today(workspace), closed_reply="1"))
    sms(app, client, sms_channel, "Anyone there?")
    replies = [m for m in closed_replies(first.conversation_id) if (m.meta or {}).get("auto") == "closed_hours"]
    assert len(replies) == 1 and replies[0].body.startswith("Thank you for your message. We are closed")


def test_a_known_language_is_not_overwritten(app, client, sms_channel, workspace):
    from inbox.actions.workspace import do_create_contact
    from inbox.kinds import ChannelKind

    contact = do_create_contact(workspace, name="Léa", identities={ChannelKind.SMS: SENDER})
    contact.locale = "fr"
    db.session.commit()
    do_update_settings(workspace.id, {"enabled": True}, actor=None)
    sms(app, client, sms_channel, "Hello, what are your opening hours please?")
    assert db.session.get(Contact, contact.id).locale == "fr"


def test_a_first_start_command_is_answered_in_the_telegram_users_language(app, client, telegram, fake_telegram):
    telegram_says(app, client, telegram, 5151, "/start", language_code="en")
    [answer] = [m["text"] for m in fake_telegram.sent if str(m.get("chat", {}).get("id")) == "5151"]
    assert answer.startswith("Hello! You are talking to Atelier Test.")


def test_no_closed_reply_outside_the_allowed_sending_hours(app, client, admin, workspace, sms_channel):
    """Sending rules bind everything automated: in the channel's quiet hours, no closed reply."""
    hour = utcnow().astimezone(ZoneInfo(workspace.timezone)).hour
    channel = db.session.get(Channel, sms_channel.id)
    channel.settings = {**(channel.settings or {}), "send_hours": f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"}
    db.session.commit()
    login(client, admin)
    client.post(f"/settings/channels/{sms_channel.id}/behaviour",
                data=behaviour_form(closed_all_day_today(workspace), closed_reply="1"))
    message = sms(app, client, sms_channel, "Il y a quelqu’un ?")
    assert closed_replies(message.conversation_id) == []


def test_a_whatsapp_channel_shows_its_approved_templates_and_links_to_them(client, admin, workspace, whatsapp):
    from inbox.models import OutboundTemplate

    db.session.add_all([
        OutboundTemplate(workspace_id=workspace.id, name="Relance devis", kind="whatsapp", body="Bonjour {{name}}",
                         provider_template={"content_sid": "HX0123456789abcdef0123456789abcdef"}),
        OutboundTemplate(workspace_id=workspace.id, name="Sans modèle", kind="whatsapp", body="Libre"),
        OutboundTemplate(workspace_id=workspace.id, name="Newsletter", kind="email", body="…",
                         provider_template={"content_sid": "HXnot-whatsapp"}),
    ])
    db.session.commit()
    login(client, admin)
    page = client.get(f"/settings/channels/{whatsapp.id}").get_data(as_text=True)
    listed = page[page.index('id="whatsapp-templates"'):]
    listed = listed[:listed.index("</ul>")]
    assert "Relance devis" in listed and "HX0123456789abcdef0123456789abcdef" in listed
    assert "Sans modèle" not in listed and "Newsletter" not in listed
    assert "/outbound/templates" in page
