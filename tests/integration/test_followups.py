"""Follow-up rules with frozen time: sent once per occasion, at most N per conversation, never to
someone who opted out, and not once the customer answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from inbox.actions.consent import do_set_consent
from inbox.actions.conversations import do_send_reply
from inbox.actions.followups import apply_followups, do_save_rule
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import (
    ConsentSource, ConsentStatus, Conversation, FollowUpOutcome, FollowUpSent, FollowUpTrigger, Message,
)

from ..conftest import run_jobs
from ..helpers import inbound, signed_post
from .outbound_fixtures import admin, fresh, make_template, outbound_messages  # noqa: F401


def sweep(now: datetime) -> dict:
    fresh()
    return apply_followups(now)


def conversation_with_our_reply(client, sms_channel, agent, sender="+33612345678") -> tuple[Conversation, datetime]:
    signed_post(client, sms_channel, inbound(sender=sender, body="Vous avez un devis ?"))
    fresh()
    conversation = db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))
    reply = do_send_reply(conversation, "Oui, le voici : 120 €. Cela vous convient ?", actor=agent,
                          channel=sms_channel)
    return conversation, reply.created_at


def rule(workspace, *, days=2, most=2, trigger=FollowUpTrigger.NO_REPLY, template=None):
    template = template or make_template(workspace, "Relance", body="Bonjour {{first_name}}, avez-vous pu regarder ?")
    return do_save_rule(workspace.id, {"name": "Relance devis", "trigger": trigger, "delay_days": days,
                                       "template_id": template.id, "max_per_conversation": most, "enabled": True})


def followups_sent() -> list[Message]:
    return [m for m in outbound_messages() if (m.meta or {}).get("followup_rule_id")]


def test_no_reply_rule_is_idempotent_and_stops_at_its_maximum(app, client, workspace, agent, sms_channel,
                                                              fake_twilio):
    rule(workspace, days=2, most=2)
    conversation, t0 = conversation_with_our_reply(client, sms_channel, agent)

    assert sweep(t0 + timedelta(days=1))["sent"] == 0  # too early
    first_sweep = t0 + timedelta(days=2, minutes=1)
    assert sweep(first_sweep)["sent"] == 1
    assert sweep(first_sweep + timedelta(minutes=1))["sent"] == 0  # rerun: the same occasion
    first = followups_sent()
    assert len(first) == 1 and first[0].conversation_id == conversation.id
    assert first[0].channel_id == sms_channel.id and first[0].body.startswith("Bonjour ")

    # The follow-up is now our last message: two days later, the second (and last) one.
    assert sweep(first_sweep + timedelta(days=1))["sent"] == 0
    assert sweep(first_sweep + timedelta(days=2, minutes=1))["sent"] == 1
    assert sweep(first_sweep + timedelta(days=30))["sent"] == 0  # the maximum is reached
    assert len(followups_sent()) == 2
    run_jobs(app)
    assert len(fake_twilio.sent) == 3  # the agent's reply and two follow-ups


def test_no_follow_up_once_the_customer_answered(client, workspace, agent, sms_channel):
    rule(workspace)
    _conversation, t0 = conversation_with_our_reply(client, sms_channel, agent)
    signed_post(client, sms_channel, inbound(body="Merci, je regarde ce soir"))
    assert sweep(t0 + timedelta(days=5))["sent"] == 0
    assert followups_sent() == []


def test_opted_out_contacts_are_skipped_and_recorded_once(client, workspace, agent, sms_channel):
    rule(workspace)
    conversation, t0 = conversation_with_our_reply(client, sms_channel, agent)
    fresh()
    do_set_consent(db.session.get(Conversation, conversation.id).contact, ChannelKind.SMS, ConsentStatus.OPTED_OUT,
                   source=ConsentSource.AGENT)
    assert sweep(t0 + timedelta(days=3)) == {"sent": 0, "skipped": 1, "waiting": 0}
    assert sweep(t0 + timedelta(days=4)) == {"sent": 0, "skipped": 0, "waiting": 0}
    fresh()
    [row] = db.session.scalars(select(FollowUpSent)).all()
    assert row.outcome == FollowUpOutcome.SKIPPED and row.reason == "opted_out"


def test_resolved_conversations_and_other_workspaces_are_left_alone(client, workspace, agent, sms_channel):
    rule(workspace)
    conversation, t0 = conversation_with_our_reply(client, sms_channel, agent)
    fresh()
    db.session.get(Conversation, conversation.id).status = "resolved"
    db.session.commit()
    assert sweep(t0 + timedelta(days=3))["sent"] == 0


def test_follow_ups_wait_for_the_allowed_hours(client, workspace, agent, sms_channel):
    sms_channel.settings = {"send_hours": "09:00-18:00"}
    db.session.commit()
    rule(workspace)
    _conversation, t0 = conversation_with_our_reply(client, sms_channel, agent)
    day = (t0 + timedelta(days=3)).date()
    night = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    assert sweep(night)["waiting"] == 1
    assert sweep(night + timedelta(hours=8))["sent"] == 1  # 11:00 in Paris


def test_satisfaction_survey_after_an_appointment(client, workspace, agent, sms_channel):
    from inbox.models.appointment import Appointment, AppointmentStatus
    from inbox.actions.workspace import do_create_contact

    contact = do_create_contact(workspace, name="Nina", identities={ChannelKind.SMS: "+33600000042"},
                                preferred_channel=ChannelKind.SMS, phone="+33600000042")
    when = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    db.session.add(Appointment(workspace_id=workspace.id, contact_id=contact.id, starts_at=when,
                               status=AppointmentStatus.DONE))
    db.session.commit()
    survey = make_template(workspace, "Satisfaction", body="Comment s'est passé votre rendez-vous ? (1 à 5)")
    rule(workspace, days=3, most=1, trigger=FollowUpTrigger.AFTER_APPOINTMENT, template=survey)

    assert sweep(when + timedelta(days=2))["sent"] == 0
    assert sweep(when + timedelta(days=3, hours=1))["sent"] == 1
    assert sweep(when + timedelta(days=3, hours=2))["sent"] == 0
    [message] = followups_sent()
    assert message.contact_id == contact.id and message.body.startswith("Comment s'est passé")


def test_a_rule_labels_the_conversation_it_follows_up(client, admin, workspace, agent, sms_channel):  # noqa: F811
    """An automation sets a label: the admin picks "then label the conversation"; the sweep puts
    the label on with the message (same transaction), and the label is a view of the inbox."""
    from inbox.actions.labels import do_create_label, do_delete_label
    from inbox.models import FollowUpRule, Label

    from ..conftest import login

    relance = do_create_label(workspace.id, name="Relancé", color="#9a6700")
    foreign = do_create_label(do_create_workspace_for_test().id, name="Ailleurs", color="#000000")
    template = make_template(workspace, "Relance", body="Bonjour, avez-vous pu regarder ?")
    login(client, admin)
    form = {"name": "Relance devis", "trigger": "no_reply", "delay_days": "2", "template_id": template.id,
            "max_per_conversation": "1", "enabled": "1"}
    assert client.post("/outbound/followups", data={**form, "label_id": foreign.id}).status_code == 422
    assert client.post("/outbound/followups", data={**form, "label_id": relance.id}).status_code == 302
    fresh()
    saved = db.session.scalar(select(FollowUpRule))
    assert saved.label_id == relance.id
    assert "Relancé" in client.get("/outbound/followups").get_data(as_text=True)

    conversation, t0 = conversation_with_our_reply(client, sms_channel, agent)
    assert sweep(t0 + timedelta(days=2, minutes=1))["sent"] == 1
    fresh()
    assert [l.name for l in db.session.get(Conversation, conversation.id).labels] == ["Relancé"]
    assert f'id="row-{conversation.id}"' in client.get(f"/inbox?label={relance.id}").get_data(as_text=True)

    do_delete_label(db.session.get(Label, relance.id))  # the rule stays, without its label
    fresh()
    assert db.session.get(FollowUpRule, saved.id).label_id is None


def do_create_workspace_for_test():
    from inbox.actions.workspace import do_create_workspace

    return do_create_workspace("Ailleurs", slug="ailleurs-followups")
