"""An agent schedules a reply for later: it waits in the thread, can be edited or cancelled, and
the worker sends it at its time, within the channel's rules. Time is explicit (`now`)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from inbox.actions.scheduled import check_send_at, do_schedule_message, quick_choices
from inbox.actions.scheduled import release_due as _release_due
from inbox.extensions import db
from inbox.jobs.outbound import release_scheduled
from inbox.kinds import ChannelKind
from inbox.models import Conversation, ScheduledMessage, ScheduledStatus, utcnow

from ..conftest import run_jobs
from ..helpers import inbound, signed_post
from .outbound_fixtures import fresh, make_template, outbound_messages

HX = {"HX-Request": "true"}


def open_conversation(client, channel, sender="+33612345678", body="Bonjour") -> Conversation:
    signed_post(client, channel, inbound(sender=sender, body=body))
    fresh()
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def release_due(now: datetime) -> int:
    fresh()  # as the job does: a new transaction, which sees what the requests committed
    return _release_due(now)


def scheduled() -> list[ScheduledMessage]:
    fresh()
    return list(db.session.scalars(select(ScheduledMessage).order_by(ScheduledMessage.id)))


def test_quick_choices_are_in_the_workspace_time_zone():
    now = datetime(2025, 3, 4, 22, 30, tzinfo=UTC)  # 23:30 in Paris, a Tuesday
    choices = {c.key: c.at for c in quick_choices("Europe/Paris", now)}
    assert choices["tomorrow_9"] == datetime(2025, 3, 5, 8, 0, tzinfo=UTC)  # 9:00 CET
    assert choices["monday_9"] == datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    assert choices["in_1h"] == datetime(2025, 3, 4, 23, 30, tzinfo=UTC)
    assert check_send_at("2025-07-01T09:00", None, timezone="Europe/Paris", now=now) == \
        datetime(2025, 7, 1, 7, 0, tzinfo=UTC)  # 9:00 CEST


def test_scheduled_reply_waits_then_is_sent_once_at_its_time(app, logged_in, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    response = logged_in.post(f"/inbox/c/{conversation.id}/schedule",
                              data={"body": "On vous rappelle demain", "when": "tomorrow_9",
                                    "channel_id": sms_channel.id}, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "On vous rappelle demain" in html and 'data-status="scheduled"' in html
    assert 'id="composer"' in html and 'hx-swap-oob="true"' in html  # a fresh composer
    [item] = scheduled()
    assert item.status == ScheduledStatus.SCHEDULED and item.send_at > utcnow()
    assert outbound_messages() == []  # no Message until it is due

    # The thread shows it as scheduled.
    page = logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert f'id="scheduled-item-{item.id}"' in page

    assert release_due(item.send_at - timedelta(seconds=1)) == 0
    assert release_due(item.send_at) == 1
    assert release_due(item.send_at + timedelta(minutes=1)) == 0  # never twice
    [message] = outbound_messages()
    assert message.delivery_status == "queued" and message.meta["scheduled_id"] == item.id
    run_jobs(app)
    assert [m["Body"] for m in fake_twilio.sent] == ["On vous rappelle demain"]
    assert scheduled()[0].status == ScheduledStatus.SENT


def test_the_periodic_job_releases_with_its_slot_time(app, workspace, agent, client, sms_channel, fake_twilio):
    conversation = open_conversation(client, sms_channel)
    at = utcnow() + timedelta(hours=2)
    do_schedule_message(conversation, "Rappel", contact=conversation.contact, actor=agent, channel=sms_channel,
                        send_at=at)
    assert release_scheduled((at - timedelta(minutes=1)).isoformat()) == 0
    assert release_scheduled(at.isoformat()) == 1
    run_jobs(app)
    assert [m["Body"] for m in fake_twilio.sent] == ["Rappel"]


def test_edit_then_cancel_until_it_leaves(logged_in, client, sms_channel, agent):
    conversation = open_conversation(client, sms_channel)
    at = utcnow() + timedelta(days=1)
    item = do_schedule_message(conversation, "Premier jet", contact=conversation.contact, actor=agent,
                               channel=sms_channel, send_at=at)
    edit_form = logged_in.get(f"/scheduled/{item.id}/edit", headers=HX).get_data(as_text=True)
    assert 'name="send_at"' in edit_form and "Premier jet" in edit_form

    later = (at + timedelta(days=1)).astimezone()
    local = datetime.fromisoformat(later.isoformat()).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    response = logged_in.post(f"/scheduled/{item.id}", headers=HX,
                              data={"body": "Version finale", "send_at": local.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 200 and "Version finale" in response.get_data(as_text=True)
    [edited] = scheduled()
    assert edited.body == "Version finale" and abs(edited.send_at - later) < timedelta(minutes=1)
    assert release_due(at + timedelta(minutes=1)) == 0  # its old time no longer counts

    assert logged_in.post(f"/scheduled/{item.id}/cancel", headers=HX).status_code == 200
    assert scheduled()[0].status == ScheduledStatus.CANCELLED
    assert release_due(later + timedelta(minutes=1)) == 0
    assert outbound_messages() == []
    # Gone: neither editable nor cancellable any more.
    assert logged_in.post(f"/scheduled/{item.id}", headers=HX,
                          data={"body": "x", "send_at": local.strftime("%Y-%m-%dT%H:%M")}).status_code == 422
    assert logged_in.post(f"/scheduled/{item.id}/cancel", headers=HX).status_code == 422


def test_a_sent_message_can_no_longer_be_changed(logged_in, client, sms_channel, agent):
    conversation = open_conversation(client, sms_channel)
    at = utcnow() + timedelta(hours=1)
    item = do_schedule_message(conversation, "Parti", contact=conversation.contact, actor=agent,
                               channel=sms_channel, send_at=at)
    release_due(at)
    assert logged_in.post(f"/scheduled/{item.id}/cancel", headers=HX).status_code == 422
    assert len(outbound_messages()) == 1


def test_quiet_hours_move_it_to_the_next_opening(client, sms_channel, agent):
    sms_channel.settings = {"send_hours": "09:00-18:00"}
    db.session.commit()
    conversation = open_conversation(client, sms_channel)
    evening = datetime(2030, 3, 5, 19, 30, tzinfo=UTC)  # 20:30 in Paris
    item = do_schedule_message(conversation, "Trop tard", contact=conversation.contact, actor=agent,
                               channel=sms_channel, send_at=evening)
    assert release_due(evening) == 0
    [moved] = scheduled()
    assert moved.status == ScheduledStatus.SCHEDULED
    assert moved.send_at == datetime(2030, 3, 6, 8, 0, tzinfo=UTC) and moved.postponed_from == evening
    assert release_due(datetime(2030, 3, 6, 8, 0, tzinfo=UTC)) == 1
    assert outbound_messages()[0].meta["scheduled_id"] == item.id


def test_whatsapp_free_text_after_the_window_needs_a_template(logged_in, client, whatsapp, workspace, agent):
    from inbox.sandbox import twilio_whatsapp as wa

    signed_post(client, whatsapp, wa.inbound_whatsapp_payload(sender="+33645112233", body="Bonjour"))
    fresh()
    conversation = db.session.scalar(select(Conversation))
    response = logged_in.post(f"/inbox/c/{conversation.id}/schedule", headers=HX,
                              data={"body": "Dans deux jours", "channel_id": whatsapp.id,
                                    "send_at": (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 422
    assert "La fenêtre WhatsApp de 24 heures se ferme" in response.get_data(as_text=True)  # the agent's French
    assert scheduled() == []

    # Inside the window it is accepted; if the window closed meanwhile it is blocked, and says why.
    item = do_schedule_message(conversation, "Dans une heure", contact=conversation.contact, actor=agent,
                               channel=whatsapp, send_at=utcnow() + timedelta(hours=1))
    assert release_due(utcnow() + timedelta(days=2)) == 0
    [blocked] = scheduled()
    assert blocked.status == ScheduledStatus.BLOCKED and blocked.error == "whatsapp_window"
    page = logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)
    assert f'id="scheduled-item-{item.id}"' in page and "la fenêtre WhatsApp de 24 heures est fermée" in page

    # With an approved template it may leave after the window.
    template = make_template(workspace, "Rappel RDV", body="Bonjour {{prospect_name}}",
                             provider_template={"content_sid": "HX" + "0" * 31 + "1"}, variables=["prospect_name"])
    do_schedule_message(conversation, "", contact=conversation.contact, actor=agent, channel=whatsapp,
                        send_at=utcnow() + timedelta(days=3), template=template)
    assert release_due(utcnow() + timedelta(days=3, minutes=1)) == 1
    message = outbound_messages()[-1]
    assert message.meta["send"]["content_sid"] == "HX" + "0" * 31 + "1"


def test_new_message_later_from_the_client_page(app, logged_in, client, workspace, agent, sms_channel, whatsapp,
                                                 fake_twilio):
    """From the client page: pick the channel (the preferred one preselected), write, pick "tomorrow
    9:00"; the message waits on the client page and in the thread, and leaves once at its time."""
    from inbox.actions.workspace import do_create_workspace

    from .outbound_fixtures import make_contact

    contact = make_contact(workspace, "Léa Martin", sms="+33612345678", whatsapp="+33612345678",
                           preferred=ChannelKind.SMS)
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Nouveau message plus tard" in page
    form = page[page.index('id="later-channel"'):page.index("</select>", page.index('id="later-channel"'))]
    assert re.search(rf'<option value="{sms_channel.id}" selected>', form)  # preferred first, preselected
    assert f'<option value="{whatsapp.id}"' in form
    assert 'data-when="tomorrow_9"' in page[page.index('id="new-later"'):]

    # Refused, and nothing stored: no text, a channel that does not reach the client.
    url = f"/contacts/{contact.id}/schedule"
    response = logged_in.post(url, data={"body": " ", "when": "tomorrow_9", "channel_id": sms_channel.id},
                              headers=HX)
    assert response.status_code == 422
    assert "Écrivez un message avant d'envoyer." in html_lib.unescape(response.get_data(as_text=True))
    assert response.headers["HX-Retarget"] == "#new-later"
    other = do_create_workspace("Ailleurs", slug="ailleurs-later")
    from inbox.actions.workspace import do_create_channel
    from inbox.kinds import Provider
    from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
    foreign = do_create_channel(other, kind=ChannelKind.SMS, provider=Provider.TWILIO, name="SMS B",
                                address="+33757000999",
                                credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN})
    response = logged_in.post(url, data={"body": "Coucou", "when": "tomorrow_9", "channel_id": foreign.id},
                              headers=HX)
    assert response.status_code == 422
    assert "Ce contact n'est pas joignable sur ce canal." in html_lib.unescape(response.get_data(as_text=True))
    assert scheduled() == []

    response = logged_in.post(url, headers=HX, data={"body": "Votre devis est prêt", "when": "tomorrow_9",
                                                      "channel_id": sms_channel.id})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Votre devis est prêt" in html and 'data-status="scheduled"' in html
    assert 'id="new-later"' in html and 'hx-swap-oob="true"' in html  # a fresh form
    [item] = scheduled()
    assert item.conversation_id is None and item.channel_id == sms_channel.id and item.contact_id == contact.id
    choices = {c.key: c.at for c in quick_choices("Europe/Paris", utcnow())}
    assert item.send_at == choices["tomorrow_9"]
    due, item_id = item.send_at, item.id

    # Shown as scheduled on the client page and in the client's conversation thread.
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert f'id="scheduled-item-{item.id}"' in page and "Programmé" in page
    conversation = open_conversation(client, sms_channel, sender="+33612345678", body="Une question")
    assert conversation.contact_id == contact.id
    assert f'id="scheduled-item-{item.id}"' in logged_in.get(f"/inbox/c/{conversation.id}").get_data(as_text=True)

    # Edited from the client page, then sent once at its time into the client's conversation.
    edit = logged_in.get(f"/scheduled/{item.id}/edit", headers=HX).get_data(as_text=True)
    assert "Votre devis est prêt" in edit
    logged_in.post(f"/scheduled/{item.id}", headers=HX, data={
        "body": "Votre devis est prêt (v2)", "send_at": edit.split('name="send_at" value="')[1].split('"')[0]})
    assert release_due(due) == 1 and release_due(due + timedelta(hours=1)) == 0
    [message] = outbound_messages()
    assert message.conversation_id == conversation.id and message.body == "Votre devis est prêt (v2)"
    run_jobs(app)
    assert [m["Body"] for m in fake_twilio.sent] == ["Votre devis est prêt (v2)"]
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert f'id="scheduled-item-{item_id}"' not in page  # gone from the list once it left


def test_new_message_later_for_someone_elses_client_is_404(logged_in, sms_channel):
    from inbox.actions.workspace import do_create_contact, do_create_workspace

    other = do_create_workspace("Ailleurs", slug="ailleurs-404")
    foreign = do_create_contact(other, name="Client B", identities={ChannelKind.SMS: "+33699999999"})
    response = logged_in.post(f"/contacts/{foreign.id}/schedule", headers=HX,
                              data={"body": "x", "when": "tomorrow_9"})
    assert response.status_code == 404 and scheduled() == []
