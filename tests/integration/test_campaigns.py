"""Campaigns: who receives what on which channel, throttled to each channel's limits, paused and
resumed, and never twice to anyone whatever crashes on the way. Time is explicit (`now`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from inbox.actions import campaigns as camp
from inbox.actions.consent import do_set_consent
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import (
    Campaign, CampaignRecipient, CampaignStatus, ConsentSource, ConsentStatus, Contact, ContactIdentity,
    Conversation, RecipientState,
)

from ..conftest import run_jobs
from ..helpers import inbound, signed_post
from .outbound_fixtures import (  # noqa: F401
    T0, admin, again, fresh, make_campaign, make_contact, make_segment, make_template, outbound_messages,
)

HX = {"HX-Request": "true"}


def tick(now: datetime, campaign_id: int | None = None) -> dict:
    fresh()  # as the job does: a new transaction
    return camp.run_campaigns(now, campaign_id=campaign_id)


def launch(campaign: Campaign, actor, now: datetime = T0, at: datetime | None = None) -> Campaign:
    fresh()
    campaign = db.session.get(Campaign, campaign.id)
    return camp.do_launch_campaign(campaign, actor=actor, at=at, now=now)


def progress(campaign_id: int) -> camp.Progress:
    fresh()
    return camp.progress(db.session.get(Campaign, campaign_id))


def recipients(campaign_id: int) -> list[CampaignRecipient]:
    fresh()
    return list(db.session.scalars(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
                                   .order_by(CampaignRecipient.id)))


def bulk_sms_contacts(workspace, count: int, *, prefix: str = "+3361") -> list[int]:
    """Many contacts quickly (one INSERT each for contacts and identities), all reachable by SMS."""
    numbers = [f"{prefix}{i:07d}" for i in range(count)]
    db.session.execute(insert(Contact), [
        {"workspace_id": workspace.id, "name": f"Client {i}", "phone": n, "preferred_channel": ChannelKind.SMS,
         "created_at": T0} for i, n in enumerate(numbers)])
    ids = dict(db.session.execute(select(Contact.phone, Contact.id).where(Contact.phone.in_(numbers))).all())
    db.session.execute(insert(ContactIdentity), [
        {"workspace_id": workspace.id, "contact_id": ids[n], "kind": ChannelKind.SMS, "address": n, "created_at": T0}
        for n in numbers])
    db.session.commit()
    return [ids[n] for n in numbers]


def test_preview_counts_per_channel_and_lists_the_others_apart(
        logged_in, client, workspace, admin, agent, sms_channel, email, whatsapp):
    sms_only = make_contact(workspace, "Anne SMS", sms="+33600000001", preferred=ChannelKind.SMS)
    mail = make_contact(workspace, "Bruno Mail", email="bruno@example.test", preferred=ChannelKind.EMAIL)
    wa_fallback = make_contact(workspace, "Chloé WA", whatsapp="+33600000003", sms="+33600000003",
                               preferred=ChannelKind.WHATSAPP)  # no approved template: falls back to SMS
    nowhere = make_contact(workspace, "Denis Nulle part")
    opted_out = make_contact(workspace, "Eve STOP", sms="+33600000005", preferred=ChannelKind.SMS)
    do_set_consent(opted_out, ChannelKind.SMS, ConsentStatus.OPTED_OUT, source=ConsentSource.KEYWORD)
    campaign = make_campaign(workspace, admin)

    plan = camp.plan_audience(campaign, now=T0)
    assert {c.id: ch.kind for c, ch in plan.recipients} == {
        sms_only.id: "sms", mail.id: "email", wa_fallback.id: "sms"}
    assert {c.id: r for c, r in plan.skipped} == {nowhere.id: "no_channel", opted_out.id: "opted_out"}

    from ..conftest import login
    client.post("/logout")
    login(client, admin)
    page = client.get(f"/outbound/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'data-kind="sms"><svg' in page.replace("\n", "") or 'data-kind="sms">' in page
    assert "<strong>2</strong>" in page and "<strong>1</strong>" in page  # 2 by SMS, 1 by email
    assert 'data-reason="opted_out"' in page and 'data-reason="no_channel"' in page
    assert "Bonjour Anne SMS, -20 %" in page  # the preview, rendered for a real recipient
    assert "se désinscrire" in page.lower()  # the email preview carries its unsubscribe link (in French)

    # Agents cannot reach the admin pages.
    client.post("/logout")
    login(client, agent)
    assert client.get(f"/outbound/campaigns/{campaign.id}").status_code == 403


def test_whatsapp_with_an_approved_template_and_the_email_newsletter(
        app, workspace, admin, whatsapp, email, fake_twilio, fake_smtp):
    make_contact(workspace, "Nadia", whatsapp="+33645112233", preferred=ChannelKind.WHATSAPP)
    make_contact(workspace, "Marc", email="marc@example.test", preferred=ChannelKind.EMAIL)
    template = make_template(workspace, "Newsletter", subject="Nouveautés pour {{company}}",
                             body="Bonjour {{first_name}}, voici nos nouveautés.",
                             html="<html><body><h1>Bonjour {{first_name}}</h1><p>Nouveautés</p></body></html>",
                             provider_template={"content_sid": "HX" + "0" * 31 + "1"},
                             variables=["first_name", "offer"])
    campaign = make_campaign(workspace, admin, template=template)
    launch(campaign, admin)
    tick(T0)
    run_jobs(app)

    assert len(fake_twilio.sent) == 1
    sent = fake_twilio.sent[0]
    assert sent["To"] == "whatsapp:+33645112233" and sent["ContentSid"] == "HX" + "0" * 31 + "1"
    mail = fake_smtp.wait_for(1)[0].message
    assert mail["To"] == "marc@example.test"
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://support.example.test/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Bonjour Marc, voici nos nouveautés." in text and unsubscribe.strip("<>") in text
    assert "<h1>Bonjour Marc</h1>" in html and "Se désinscrire" in html  # the footer in the workspace's French


def test_throttled_to_the_rate_per_minute(workspace, admin, sms_channel):
    sms_channel.settings = {"rate_per_minute": 10}
    db.session.commit()
    bulk_sms_contacts(workspace, 25)
    campaign = make_campaign(workspace, admin)
    launch(campaign, admin)

    assert tick(T0)["queued"] == 10
    assert tick(T0 + timedelta(seconds=30))["queued"] == 0  # the same rolling minute
    assert progress(campaign.id).pending == 15
    assert tick(T0 + timedelta(seconds=61))["queued"] == 10
    assert tick(T0 + timedelta(seconds=122))["queued"] == 5
    p = progress(campaign.id)
    assert (p.pending, p.queued, p.to_send) == (0, 25, 25)
    fresh()
    assert db.session.get(Campaign, campaign.id).status == CampaignStatus.DONE
    _assert_rate_respected(campaign.id, 10)


def _assert_rate_respected(campaign_id: int, per_minute: int) -> None:
    times = sorted(r.queued_at for r in recipients(campaign_id) if r.queued_at)
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + timedelta(minutes=1)]
        assert len(in_window) <= per_minute, (start, len(in_window))


def test_daily_limit_and_allowed_hours(workspace, admin, sms_channel):
    sms_channel.settings = {"daily_limit": 4, "send_hours": "09:00-18:00", "rate_per_minute": 100}
    db.session.commit()
    bulk_sms_contacts(workspace, 7)
    campaign = make_campaign(workspace, admin)
    launch(campaign, admin)

    night = datetime(2025, 3, 4, 5, 0, tzinfo=UTC)  # 06:00 in Paris: quiet hours
    assert tick(night)["queued"] == 0
    fresh()
    assert db.session.get(Campaign, campaign.id).waiting_reason == "quiet_hours"
    assert tick(T0)["queued"] == 4  # 10:00: up to the daily limit
    assert tick(T0 + timedelta(hours=2))["queued"] == 0
    fresh()
    assert db.session.get(Campaign, campaign.id).waiting_reason == "daily_limit"
    assert tick(T0 + timedelta(days=1))["queued"] == 3  # the next day
    assert progress(campaign.id).pending == 0


def test_pause_and_resume(logged_in, client, workspace, admin, sms_channel):
    sms_channel.settings = {"rate_per_minute": 3}
    db.session.commit()
    bulk_sms_contacts(workspace, 8)
    campaign = make_campaign(workspace, admin)
    from ..conftest import login
    client.post("/logout")
    login(client, admin)
    response = client.post(f"/outbound/campaigns/{campaign.id}/launch", data={"mode": "now"})
    assert response.status_code == 302
    tick(T0)
    assert progress(campaign.id).queued == 3

    paused = client.post(f"/outbound/campaigns/{campaign.id}/pause", headers=HX)
    assert paused.status_code == 200 and 'data-status="paused"' in paused.get_data(as_text=True)
    assert tick(T0 + timedelta(minutes=5))["queued"] == 0
    assert progress(campaign.id).queued == 3

    resumed = client.post(f"/outbound/campaigns/{campaign.id}/resume", headers=HX)
    assert resumed.status_code == 200 and 'data-status="sending"' in resumed.get_data(as_text=True)
    assert tick(T0 + timedelta(minutes=6))["queued"] == 3
    assert tick(T0 + timedelta(minutes=7))["queued"] == 2
    assert progress(campaign.id).queued == 8
    page = client.get(f"/outbound/campaigns/{campaign.id}/progress", headers=HX).get_data(as_text=True)
    assert 'data-count="to_send">8<' in page and 'data-status="done"' in page


def test_a_crash_mid_batch_never_sends_twice_and_never_skips(app, workspace, admin, sms_channel, fake_twilio,
                                                               monkeypatch):
    sms_channel.settings = {"rate_per_minute": 1000}
    db.session.commit()
    ids = bulk_sms_contacts(workspace, 12)
    campaign = make_campaign(workspace, admin)
    launch(campaign, admin)

    real = camp.queue_message
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise SystemExit("worker killed")  # mid-transaction: the claim of this one rolls back
        return real(*args, **kwargs)

    monkeypatch.setattr(camp, "queue_message", dying)
    with pytest.raises(SystemExit):
        tick(T0)
    fresh()
    assert progress(campaign.id).queued == 5 and progress(campaign.id).pending == 7
    monkeypatch.setattr(camp, "queue_message", real)

    tick(T0 + timedelta(seconds=10))  # the restarted worker's next tick
    tick(T0 + timedelta(seconds=20))  # and a duplicate run of it: nothing left to claim
    run_jobs(app)
    run_jobs(app)
    assert Counter(m["To"] for m in fake_twilio.sent) == Counter({f"+3361{i:07d}": 1 for i in range(12)})
    assert len(outbound_messages()) == 12
    assert sorted(m.contact_id for m in outbound_messages()) == sorted(ids)


def test_campaign_to_500_contacts_with_a_worker_killed_halfway(app, workspace, admin, sms_channel, fake_twilio,
                                                                monkeypatch):
    """The issue's scenario: every consenting recipient gets exactly one message, opted-out ones
    none, the rate limit is never exceeded, and the progress view ends at the right counts."""
    rate = 120
    sms_channel.settings = {"rate_per_minute": rate}
    db.session.commit()
    ids = bulk_sms_contacts(workspace, 500)
    fresh()
    stop = [db.session.get(Contact, i) for i in ids[::25]]  # 20 said STOP
    for contact in stop:
        do_set_consent(contact, ChannelKind.SMS, ConsentStatus.OPTED_OUT, source=ConsentSource.KEYWORD, commit=False)
    db.session.commit()
    stop_numbers = {c.phone for c in stop}
    campaign = make_campaign(workspace, admin)
    campaign_id = campaign.id
    launch(campaign, admin)

    now = T0
    real = camp.queue_message
    calls = {"n": 0}

    def killed_halfway(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 240:
            raise SystemExit("kill -9")
        return real(*args, **kwargs)

    monkeypatch.setattr(camp, "queue_message", killed_halfway)
    with pytest.raises(SystemExit):
        for _ in range(3):
            tick(now)
            run_jobs(app)
            now += timedelta(seconds=61)
    monkeypatch.setattr(camp, "queue_message", real)
    for _ in range(10):  # the restarted worker
        tick(now)
        run_jobs(app)
        now += timedelta(seconds=61)

    sent = Counter(m["To"] for m in fake_twilio.sent)
    assert set(sent.values()) == {1}
    assert len(sent) == 480 and not (set(sent) & stop_numbers)
    _assert_rate_respected(campaign_id, rate)
    p = progress(campaign_id)
    assert (p.audience, p.skipped, p.pending, p.queued, p.sent, p.failed) == (500, 20, 0, 480, 480, 0)
    fresh()
    assert db.session.get(Campaign, campaign_id).status == CampaignStatus.DONE


def test_scheduled_campaign_starts_at_its_time(workspace, admin, sms_channel):
    make_contact(workspace, "Anne", sms="+33600000001", preferred=ChannelKind.SMS)
    campaign = make_campaign(workspace, admin)
    launch(campaign, admin, now=T0, at=T0 + timedelta(hours=3))
    assert tick(T0 + timedelta(hours=2)) == {"started": 0, "queued": 0, "replies": 0}
    assert recipients(campaign.id) == []  # the audience is frozen when it starts, not before
    assert tick(T0 + timedelta(hours=3))["started"] == 1
    assert progress(campaign.id).queued == 1


def test_replies_land_in_the_inbox_linked_to_the_campaign(app, client, workspace, admin, sms_channel, fake_twilio):
    anne_id = make_contact(workspace, "Anne", sms="+33612345678", preferred=ChannelKind.SMS).id
    campaign = make_campaign(workspace, admin)
    campaign_id = campaign.id
    launch(campaign, admin, now=datetime.now(UTC) - timedelta(minutes=5))
    tick(datetime.now(UTC) - timedelta(minutes=5))
    run_jobs(app)
    fresh()
    campaign_conversation = db.session.scalar(select(Conversation).where(Conversation.contact_id == anne_id))
    assert campaign_conversation.status == "resolved"  # 500 sends do not flood the open inbox

    signed_post(client, again(sms_channel), inbound(sender="+33612345678", body="Oui ça m'intéresse"))
    tick(datetime.now(UTC))
    [recipient] = recipients(campaign_id)
    assert recipient.replied_at is not None
    reply = recipient.reply_message
    assert reply.body == "Oui ça m'intéresse"
    assert db.session.get(Conversation, reply.conversation_id).status == "open"  # a normal conversation
    assert progress(campaign_id).replied == 1


def test_cancel_marks_the_rest_cancelled(workspace, admin, sms_channel):
    sms_channel.settings = {"rate_per_minute": 2}
    db.session.commit()
    bulk_sms_contacts(workspace, 5)
    campaign = make_campaign(workspace, admin)
    launch(campaign, admin)
    tick(T0)
    fresh()
    camp.do_cancel_campaign(db.session.get(Campaign, campaign.id), actor=admin)
    assert tick(T0 + timedelta(minutes=5))["queued"] == 0
    p = progress(campaign.id)
    assert (p.queued, p.cancelled, p.pending) == (2, 3, 0)
    fresh()
    assert db.session.scalar(select(func.count()).select_from(CampaignRecipient)
                             .where(CampaignRecipient.state == RecipientState.CANCELLED)) == 3


def test_admin_composes_a_campaign_through_the_forms(app, client, workspace, admin, sms_channel, fake_twilio):
    from ..conftest import login

    make_contact(workspace, "Anne", sms="+33600000001", preferred=ChannelKind.SMS)
    login(client, admin)
    assert client.post("/outbound/templates/new", data={"name": "", "body": "x"}).status_code == 422
    assert client.post("/outbound/templates/new", data={
        "name": "Relance", "kind": "sms", "body": "Bonjour {{first_name}}, {{offer}}"}).status_code == 302
    assert client.post("/outbound/segments/new", data={"name": "SMS", "channel": "sms"}).status_code == 302
    fresh()
    from inbox.models import OutboundTemplate, Segment
    template = db.session.scalar(select(OutboundTemplate))
    segment = db.session.scalar(select(Segment))
    assert template.kind == "sms" and template.variable_names() == ["first_name", "offer"]
    created = client.post("/outbound/campaigns/new", data={
        "name": "Printemps", "template_id": template.id, "segment_id": segment.id, "variables": "offer=-10 %\nbad",
        "channel_order": ["sms", "email"]})
    assert created.status_code == 302
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "Bonjour Anne, -10 %" in page
    fresh()
    campaign = db.session.scalar(select(Campaign))
    assert campaign.variables == {"offer": "-10 %"} and campaign.channel_order == ["sms", "email"]
    assert client.post(f"/outbound/campaigns/{campaign.id}/launch", data={"mode": "now"}).status_code == 302
    run_jobs(app)  # the start job: sends right away, without waiting for the next tick
    assert [m["Body"] for m in fake_twilio.sent] == ["Bonjour Anne, -10 %"]
    assert client.post(f"/outbound/campaigns/{campaign.id}/launch", data={"mode": "now"}).status_code == 422
    page = client.get(f"/outbound/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'id="campaign-progress"' in page and 'data-count="sent">1<' in page


def test_a_failed_campaign_sms_never_falls_back_to_an_opted_out_channel(app, client, workspace, admin, sms_channel,
                                                                        email, fake_twilio, fake_smtp):
    from ..helpers import status

    contact = make_contact(workspace, "Anne", sms="+33600000001", email="anne@example.test",
                           preferred=ChannelKind.SMS)
    do_set_consent(contact, ChannelKind.EMAIL, ConsentStatus.OPTED_OUT, source=ConsentSource.UNSUBSCRIBE_LINK)
    campaign = make_campaign(workspace, admin)
    campaign_id = campaign.id
    launch(campaign, admin)
    tick(T0)
    run_jobs(app)
    [sent] = fake_twilio.sent
    signed_post(client, again(sms_channel), status(sent["sid"], "undelivered", to="+33600000001", error_code="30003"),
                suffix="/status")
    run_jobs(app)
    assert [m.channel_id for m in outbound_messages()] == [again(sms_channel).id]  # no second message by email
    assert progress(campaign_id).failed == 1
