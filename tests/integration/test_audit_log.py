"""Every settings change leaves an audit entry (who, what, when, before → after) that admins
browse; secrets never reach it. Outbound settings too: follow-up rules, label definitions,
segments and campaigns (create, edit, schedule, launch, pause, resume, cancel). Workspace
settings; agents get a 403 on every settings page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from inbox.actions import campaigns as camp
from inbox.actions.audit import record, scrub
from inbox.extensions import db
from inbox.models import AuditEntry, Campaign, TicketSettings, Workspace, utcnow
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

from ..conftest import login
from .outbound_fixtures import again, make_campaign, make_segment, make_template
from .ticket_fixtures import admin, contact, fresh  # noqa: F401

NEW_TOKEN = "brand-new-auth-token-9876"


@pytest.fixture(autouse=True)
def english(workspace):
    workspace.default_locale = "en"
    db.session.commit()


def entries(action: str | None = None) -> list[AuditEntry]:
    db.session.rollback()
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.session.scalars(stmt))


def all_audit_text() -> str:
    return json.dumps([[e.before, e.after] for e in entries()], ensure_ascii=False)


def test_channel_changes_are_recorded_with_masked_credentials(client, admin, workspace):
    login(client, admin)
    client.post("/settings/channels/new?kind=sms&provider=twilio", data={
        "name": "SMS Lyon", "address": "+33478000000", "account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN})
    [created] = entries("channel.create")
    assert created.actor_id == admin.id and created.workspace_id == workspace.id and created.object_type == "channel"
    assert created.before is None and created.after["name"] == "SMS Lyon"
    assert created.after["credentials"]["auth_token"].startswith("••••") and created.after["credentials"]["auth_token"] != DEMO_AUTH_TOKEN

    channel_id = created.object_id
    client.post(f"/settings/channels/{channel_id}", data={
        "name": "SMS Lyon 2", "address": "+33478000000", "account_sid": DEMO_ACCOUNT_SID, "auth_token": NEW_TOKEN})
    [updated] = entries("channel.update")
    assert updated.before["name"] == "SMS Lyon" and updated.after["name"] == "SMS Lyon 2"
    assert updated.after["credentials"]["auth_token"] == "••••••9876"  # changed, shown as the settings page does
    assert "address" not in updated.after  # only what changed

    client.post(f"/settings/channels/{channel_id}", data={
        "name": "SMS Lyon 2", "address": "+33478000000", "account_sid": DEMO_ACCOUNT_SID, "auth_token": ""})
    assert len(entries("channel.update")) == 1  # nothing changed: nothing recorded

    client.post(f"/settings/channels/{channel_id}/enabled", data={"enabled": "0"})
    [disabled] = entries("channel.disable")
    assert disabled.before == {"enabled": True} and disabled.after == {"enabled": False}

    text = all_audit_text()
    assert DEMO_AUTH_TOKEN not in text and NEW_TOKEN not in text
    page = client.get("/settings/audit").get_data(as_text=True)
    assert "Channel added" in page and "Channel disabled" in page and "SMS Lyon 2" in page
    assert DEMO_AUTH_TOKEN not in page and NEW_TOKEN not in page


def test_ticket_settings_changes_are_recorded(client, admin, agent):
    login(client, admin)
    client.post("/tickets/settings/general", data={"auto_close_days": "9", "reopen_window_days": "7",
                                                   "sla_reminder_hours": "6", "currency": "EUR",
                                                   "request_ratings": "1", "confirm_new_tickets": "1",
                                                   "email_notifications": "1"})
    client.post("/tickets/settings/hours", data={f"day{i}": "08:00-17:00" if i < 5 else "" for i in range(7)})
    client.post("/tickets/settings/holiday", data={"day": "2026-05-01", "name": "Fête du travail"})
    client.post("/tickets/settings/sla", data={"scope": "priority", "key": "high", "first_response_hours": "2",
                                               "resolution_hours": "8"})
    client.post("/tickets/settings/team", data={"user_id": agent.id, "capacity": "3"})

    [general] = entries("tickets.settings")
    assert general.before == {"auto_close_days": 5} and general.after == {"auto_close_days": 9}
    [hours] = entries("tickets.business_hours")
    assert hours.before == {"business_hours": None} and hours.after["business_hours"][0] == [["08:00", "17:00"]]
    [holiday] = entries("tickets.holiday_add")
    assert holiday.after == {"day": "2026-05-01", "name": "Fête du travail"}
    [sla] = entries("tickets.sla_policy")
    assert sla.after == {"scope": "priority", "key": "high", "first_response_minutes": 120, "resolution_minutes": 480}
    [capacity] = entries("team.capacity")
    assert capacity.object_id == agent.id and capacity.before == {"capacity": 10} and capacity.after == {"capacity": 3}


def test_budget_changes_are_recorded_with_the_amount_before_and_after(client, admin, contact):  # noqa: F811
    login(client, admin)
    assert client.post(f"/contacts/{contact.id}/budget", data={"period": "month", "amount": "1500"}).status_code == 200
    client.post(f"/contacts/{contact.id}/budget", data={"period": "month", "amount": "1 800,50"})
    client.post(f"/contacts/{contact.id}/budget", data={"period": "month", "amount": "1800.50"})  # same: not recorded
    client.post(f"/contacts/{contact.id}/budget", data={"period": "month", "amount": "0"})
    assert client.post(f"/contacts/{contact.id}/budget", data={"period": "week", "amount": "5"}).status_code == 422

    created, raised = entries("budget.set")
    assert created.actor_id == admin.id and created.object_type == "budget" and created.before is None
    assert created.after == {"contact": "Élodie Fournier", "period": "month", "amount": "1500.00"}
    assert raised.before == {"contact": "Élodie Fournier", "period": "month", "amount": "1500.00"}
    assert raised.after == {"contact": "Élodie Fournier", "period": "month", "amount": "1800.50"}
    [removed] = entries("budget.remove")
    assert removed.before["amount"] == "1800.50" and removed.after is None
    assert len(entries()) == 3  # the refused period changed nothing

    page = client.get("/settings/audit", query_string={"action": "budget."}).get_data(as_text=True)
    table = page.split('class="table audit-table"', 1)[1]
    assert table.count("Client budget set") == 2 and table.count("Client budget removed") == 1
    assert "1500.00" in page and "1800.50" in page and "Élodie Fournier" in page


def test_hourly_cost_change_in_ticket_settings_is_recorded(client, admin, agent):
    login(client, admin)
    response = client.post("/tickets/settings/team", data={"user_id": agent.id, "capacity": "10",
                                                           "hourly_cost": "47,50", "effective_from": "2026-03-01"})
    assert response.status_code == 303
    [cost] = entries("team.hourly_cost")
    assert cost.actor_id == admin.id and cost.object_id == agent.id
    assert cost.before == {"hourly_cost": "40.00", "effective_from": "2026-03-01"}
    assert cost.after == {"hourly_cost": "47.50", "effective_from": "2026-03-01"}
    assert entries("team.capacity") == []  # capacity unchanged: nothing recorded

    bad = client.post("/tickets/settings/team", data={"user_id": agent.id, "capacity": "4", "hourly_cost": "cher",
                                                      "effective_from": "2026-04-01"})
    assert bad.status_code == 422 and "Enter an hourly cost" in bad.get_data(as_text=True)
    assert fresh(type(agent), agent.id).capacity == 10  # nothing changed, nothing recorded
    assert len(entries()) == 1
    page = client.get("/settings/audit").get_data(as_text=True)
    assert "Hourly cost changed" in page and "47.50" in page


def test_sara_knowledge_base_template_and_sending_rule_changes_are_recorded(client, admin, sms_channel):
    login(client, admin)
    client.post("/settings/sara", data={"enabled": "1", "engine": "offline", "confidence_threshold": "0.7"})
    client.post("/settings/sara", data={"enabled": "1", "engine": "offline", "confidence_threshold": "0,55"})
    sara = entries("sara.settings")
    assert len(sara) == 2 and sara[1].before == {"confidence_threshold": 0.7}
    assert sara[1].after == {"confidence_threshold": 0.55}

    client.post("/outbound/templates/new", data={"name": "Colis prêt", "kind": "sms", "body": "Votre colis est prêt."})
    [created] = entries("template.create")
    assert created.before is None and created.after["body"] == "Votre colis est prêt."
    client.post(f"/outbound/templates/{created.object_id}", data={"name": "Colis prêt", "kind": "sms",
                                                                  "body": "Votre colis vous attend."})
    [updated] = entries("template.update")
    assert updated.before == {"name": "Colis prêt", "body": "Votre colis est prêt."}
    assert updated.after == {"name": "Colis prêt", "body": "Votre colis vous attend."}

    client.post("/outbound/rules", data={"channel_id": sms_channel.id, "send_hours": "09:00-19:00",
                                         "daily_limit": "500", "rate_per_minute": ""})
    [rules] = entries("channel.sending_rules")
    assert rules.object_id == sms_channel.id
    assert rules.after["settings"]["send_hours"] == "09:00-19:00" and rules.after["settings"]["daily_limit"] == 500
    client.post("/settings/knowledge/articles/new", data={"title": "Horaires", "body": "Du lundi au vendredi, 9 h-18 h.",
                                                           "language": "fr"})
    [article] = entries("sara.article_create")
    assert article.after["title"] == "Horaires" and article.after["body"].startswith("Du lundi")
    client.post(f"/settings/knowledge/articles/{article.object_id}",
                data={"title": "Horaires", "body": "Du lundi au samedi, 9 h-18 h.", "language": "fr"})
    [changed] = entries("sara.article_update")
    assert changed.before == {"title": "Horaires", "body": "Du lundi au vendredi, 9 h-18 h."}
    assert changed.after == {"title": "Horaires", "body": "Du lundi au samedi, 9 h-18 h."}

    page = client.get("/settings/audit").get_data(as_text=True)
    for label in ("Sara’s settings changed", "Template added", "Template changed", "Sending rules changed",
                  "Knowledge-base article added", "Knowledge-base article changed"):
        assert label in page.split('class="table audit-table"', 1)[1], label


def test_workspace_settings(client, admin, workspace):
    login(client, admin)
    page = client.get("/settings/workspace").get_data(as_text=True)
    assert 'value="Europe/Paris" selected' in page and "Atelier Test" in page
    bad = client.post("/settings/workspace", data={"name": "", "timezone": "Mars/Olympus", "default_locale": "de",
                                                   "currency": "EURO"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Give the workspace a name." in html and "Choose a time zone" in html and "three-letter" in html
    ok = client.post("/settings/workspace", data={"name": "Atelier Lyon", "timezone": "America/Montreal",
                                                  "default_locale": "en", "currency": "cad"})
    assert ok.status_code == 303
    ws = fresh(Workspace, workspace.id)
    assert (ws.name, ws.timezone, ws.default_locale) == ("Atelier Lyon", "America/Montreal", "en")
    assert TicketSettings.of(workspace.id).currency == "CAD"
    [entry] = entries("workspace.update")
    assert entry.before == {"name": "Atelier Test", "timezone": "Europe/Paris", "currency": "EUR"}
    assert entry.after == {"name": "Atelier Lyon", "timezone": "America/Montreal", "currency": "CAD"}


def test_audit_page_filters_by_actor_action_and_date_and_pages(app, client, admin, agent, workspace):
    now = utcnow()
    for i in range(7):
        record(admin, "team.capacity", agent, {"capacity": i}, {"capacity": i + 1}).created_at = now - timedelta(days=i)
    record(agent, "workspace.update", workspace, {"name": "A"}, {"name": "B"}).created_at = now - timedelta(days=30)
    db.session.commit()
    app.config["AUDIT_PAGE_SIZE"] = 3
    login(client, admin)

    def ids(**args) -> list[int]:
        html = client.get("/settings/audit", query_string=args).get_data(as_text=True)
        return [int(i) for i in re.findall(r'id="audit-(\d+)"', html)]

    first = ids()
    assert len(first) == 3
    html = client.get("/settings/audit").get_data(as_text=True)
    older = re.search(r'href="(/settings/audit\?after=[^"]+)"', html).group(1).replace("&amp;", "&")
    second = [int(i) for i in re.findall(r'id="audit-(\d+)"', client.get(older).get_data(as_text=True))]
    assert first == [1, 2, 3] and second == [4, 5, 6]  # newest first: entries were recorded newest first
    app.config["AUDIT_PAGE_SIZE"] = 50
    assert len(ids(actor=agent.id)) == 1
    assert len(ids(action="team.")) == 7 and len(ids(action="workspace.update")) == 1
    since = (now - timedelta(days=2)).date().isoformat()
    assert len(ids(since=since)) in (2, 3)  # today and the two days before, in Paris time
    assert len(ids(until=(now - timedelta(days=20)).date().isoformat())) == 1
    assert len(ids(action="unknown.action")) == 8  # an unknown filter is ignored


def test_scrub_masks_secrets_by_key_at_any_depth():
    value = {"name": "Bot", "settings": {"smtp_password": "hunter2hunter2", "signature": "Cordialement"},
             "credentials": {"bot_token": "123456:ABCDEF-secret", "nested": ["a-long-secret-value"]},
             "webhook_secret": "x", "api_key": "sk-live-123456789"}
    masked = scrub(value)
    text = json.dumps(masked)
    for secret in ("hunter2hunter2", "ABCDEF-secret", "a-long-secret-value", "sk-live-123456789"):
        assert secret not in text
    assert masked["settings"]["signature"] == "Cordialement" and masked["name"] == "Bot"


SETTINGS_PAGES = ["/settings/", "/settings/channels", "/settings/team", "/settings/workspace", "/settings/audit",
                  "/tickets/settings"]


def test_agents_get_a_403_page_on_every_settings_page(client, agent, admin):
    login(client, agent)
    for url in SETTINGS_PAGES + [f"/settings/team/{admin.id}"]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "not allowed" in response.get_data(as_text=True), url
    for url, data in [("/settings/team/invite", {"email": "x@example.test", "role": "admin"}),
                      (f"/settings/team/{agent.id}/role", {"role": "admin"}),
                      (f"/settings/team/{admin.id}/deactivate", {"confirm": "1"}),
                      ("/settings/workspace", {"name": "Pirate", "timezone": "UTC", "default_locale": "en",
                                               "currency": "EUR"})]:
        assert client.post(url, data=data).status_code == 403, url
    assert db.session.scalar(select(func.count(AuditEntry.id))) == 0
    nav = client.get("/inbox").get_data(as_text=True)
    assert "/settings/" not in nav


def test_admins_see_every_settings_section_in_the_navigation(client, admin):
    login(client, admin)
    for url in SETTINGS_PAGES[1:-1]:
        html = client.get(url).get_data(as_text=True)
        for link in ("/settings/channels", "/settings/team", "/settings/workspace", "/settings/audit",
                     "/tickets/settings"):
            assert f'href="{link}"' in html, (url, link)
        assert "SLA & business hours" in html


# -- outbound settings: follow-up rules, labels, segments, campaigns (audit page read in French) --
def in_french(workspace) -> None:
    db.session.get(Workspace, workspace.id).default_locale = "fr"
    db.session.commit()


def audit_rows(client, group: str) -> list[str]:
    """The audit table's rows (newest first) for one group of actions, as the admin sees them."""
    page = client.get("/settings/audit", query_string={"action": group}).get_data(as_text=True)
    table = page.split('class="table audit-table"', 1)[1].split("</table>", 1)[0]
    return [" ".join(r.split()) for r in table.split('<tr id="audit-')[1:]]


def shows(row: str, field: str, before: str, after: str) -> bool:
    return f"<dt>{field}</dt> <dd><del>{before}</del> → <ins>{after}</ins>" in row


def test_follow_up_rule_changes_are_recorded(client, admin, workspace):
    template = make_template(workspace)
    in_french(workspace)
    login(client, admin)
    form = {"name": "Relance devis", "trigger": "no_reply", "delay_days": "3", "max_per_conversation": "1",
            "template_id": str(template.id), "enabled": "1"}
    assert client.post("/outbound/followups", data=form).status_code == 302
    [created] = entries("followup.create")
    assert created.actor_id == admin.id and created.before is None and created.after["delay_days"] == 3
    client.post(f"/outbound/followups/{created.object_id}", data={**form, "delay_days": "5"})
    client.post(f"/outbound/followups/{created.object_id}", data={**form, "delay_days": "5"})  # same: not recorded
    assert client.post("/outbound/followups", data={**form, "delay_days": "0"}).status_code == 422
    [updated] = entries("followup.update")
    assert updated.before == {"name": "Relance devis", "delay_days": 3}
    assert updated.after == {"name": "Relance devis", "delay_days": 5}
    assert len(entries()) == 2  # the rule, one change; the refused form recorded nothing

    changed, added = audit_rows(client, "followup.")
    assert "Camille Admin" in changed and "Règle de relance modifiée" in changed
    assert shows(changed, "Délai (jours)", "3", "5")
    assert "Règle de relance ajoutée" in added and "Relance devis" in added


def test_label_definitions_changes_are_recorded(client, admin, workspace):
    in_french(workspace)
    login(client, admin)
    client.post("/outbound/labels", data={"name": "VIP", "color": "#c81d32"})
    [created] = entries("label.create")
    assert created.before is None and created.after == {"name": "VIP", "color": "#c81d32"}
    client.post(f"/outbound/labels/{created.object_id}", data={"name": "Grands comptes", "color": "#2563EB"})
    client.post(f"/outbound/labels/{created.object_id}/delete")
    [updated] = entries("label.update")
    assert updated.before == {"name": "VIP", "color": "#c81d32"}
    assert updated.after == {"name": "Grands comptes", "color": "#2563eb"}
    [deleted] = entries("label.delete")
    assert deleted.before == {"name": "Grands comptes", "color": "#2563eb"} and deleted.after is None

    removed, renamed, added = audit_rows(client, "label.")
    assert all("Camille Admin" in r for r in (removed, renamed, added))
    assert "Étiquette supprimée" in removed and "<del>Grands comptes</del>" in removed
    assert "Étiquette modifiée" in renamed and shows(renamed, "Nom", "VIP", "Grands comptes")
    assert shows(renamed, "Couleur", "#c81d32", "#2563eb")
    assert "Étiquette ajoutée" in added and "<ins>VIP</ins>" in added


def test_segment_changes_are_recorded(client, admin, workspace):
    in_french(workspace)
    login(client, admin)
    client.post("/outbound/segments/new", data={"name": "Boulangeries", "company": "boul"})
    [created] = entries("segment.create")
    assert created.before is None and created.after["name"] == "Boulangeries"
    assert created.after["rules"]["company"] == "boul"
    assert client.post(f"/outbound/segments/{created.object_id}",
                       data={"name": "Boulangeries de Lyon", "company": "boul"}).status_code == 302
    client.post(f"/outbound/segments/{created.object_id}/delete")
    [updated] = entries("segment.update")
    assert updated.before == {"name": "Boulangeries"} and updated.after == {"name": "Boulangeries de Lyon"}
    [deleted] = entries("segment.delete")
    assert deleted.before["name"] == "Boulangeries de Lyon" and deleted.after is None

    removed, renamed, added = audit_rows(client, "segment.")
    assert all("Camille Admin" in r for r in (removed, renamed, added))
    assert "Segment supprimé" in removed and "Segment ajouté" in added and "Règles" in added
    assert "Segment modifié" in renamed and shows(renamed, "Nom", "Boulangeries", "Boulangeries de Lyon")


def test_campaign_changes_are_recorded(client, admin, workspace):
    template, segment = make_template(workspace), make_segment(workspace)
    in_french(workspace)
    login(client, admin)
    form = {"name": "Printemps", "template_id": str(template.id), "segment_id": str(segment.id),
            "variables": "offer=-20 %", "channel_order": ["sms"]}
    client.post("/outbound/campaigns/new", data=form)
    [created] = entries("campaign.create")
    assert created.actor_id == admin.id and created.before is None and created.after["name"] == "Printemps"
    cid = created.object_id
    client.post(f"/outbound/campaigns/{cid}/edit", data={**form, "variables": "offer=-30 %"})
    [edited] = entries("campaign.update")
    assert edited.before == {"name": "Printemps", "variables": {"offer": "-20 %"}}
    assert edited.after == {"name": "Printemps", "variables": {"offer": "-30 %"}}
    later = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/outbound/campaigns/{cid}/launch", data={"mode": "later", "send_at": later})
    [scheduled] = entries("campaign.schedule")
    assert scheduled.before["status"] == "draft" and scheduled.after["status"] == "scheduled"
    assert scheduled.before["scheduled_at"] is None and scheduled.after["scheduled_at"]
    client.post(f"/outbound/campaigns/{cid}/pause")  # scheduled, not sending: refused, nothing recorded
    assert entries("campaign.pause") == []
    client.post(f"/outbound/campaigns/{cid}/cancel")
    [cancelled] = entries("campaign.cancel")
    assert cancelled.before == {"name": "Printemps", "status": "scheduled"}
    assert cancelled.after == {"name": "Printemps", "status": "cancelled"}

    rows = audit_rows(client, "campaign.")
    assert len(rows) == 4 and all("Camille Admin" in r for r in rows)
    cancel_row, schedule_row, edit_row, create_row = rows
    assert "Campagne annulée" in cancel_row and shows(cancel_row, "Statut", "Programmé", "Annulé")
    assert "Campagne programmée" in schedule_row and shows(schedule_row, "Statut", "Brouillon", "Programmé")
    assert "Campagne modifiée" in edit_row
    assert shows(edit_row, "Variables", '{"offer": "-20 %"}'.replace('"', "&#34;"),
                 '{"offer": "-30 %"}'.replace('"', "&#34;"))
    assert "Campagne ajoutée" in create_row and "Printemps" in create_row


def test_campaign_statuses_read_in_the_admins_language(client, admin, workspace):
    template, segment = make_template(workspace), make_segment(workspace)
    login(client, admin)
    form = {"name": "Printemps", "template_id": str(template.id), "segment_id": str(segment.id),
            "variables": "offer=-20 %", "channel_order": ["sms"]}
    client.post("/outbound/campaigns/new", data=form)
    [created] = entries("campaign.create")
    later = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/outbound/campaigns/{created.object_id}/launch", data={"mode": "later", "send_at": later})
    client.post(f"/outbound/campaigns/{created.object_id}/cancel")

    cancel_row, schedule_row = audit_rows(client, "campaign.")[:2]
    assert shows(cancel_row, "Status", "Scheduled", "Cancelled")
    assert shows(schedule_row, "Status", "Draft", "Scheduled")
    assert "scheduled" not in cancel_row.replace("campaign.", "")  # never the recorded value

    db.session.rollback()  # the test's read snapshot would hold SQLite's lock
    in_french(workspace)
    cancel_row, schedule_row = audit_rows(client, "campaign.")[:2]
    assert shows(cancel_row, "Statut", "Programmé", "Annulé")
    assert shows(schedule_row, "Statut", "Brouillon", "Programmé")


def test_campaign_pause_and_resume_are_recorded(client, admin, workspace):
    campaign = make_campaign(workspace, admin)
    camp.do_launch_campaign(again(campaign), actor=again(admin))
    in_french(workspace)
    login(client, admin)
    client.post(f"/outbound/campaigns/{campaign.id}/pause")
    client.post(f"/outbound/campaigns/{campaign.id}/resume")
    [launched], [paused], [resumed] = entries("campaign.launch"), entries("campaign.pause"), entries("campaign.resume")
    assert launched.before["status"] == "draft" and launched.after["status"] == "sending"
    assert paused.before == {"name": "Spring", "status": "sending"} and paused.after["status"] == "paused"
    assert resumed.before["status"] == "paused" and resumed.after["status"] == "sending"
    assert db.session.get(Campaign, campaign.id).status in ("sending", "done")

    resume_row, pause_row, launch_row = audit_rows(client, "campaign.")[:3]
    assert "Camille Admin" in resume_row and "Campagne reprise" in resume_row
    assert shows(resume_row, "Statut", "En pause", "Envoi…")
    assert "Campagne mise en pause" in pause_row and shows(pause_row, "Statut", "Envoi…", "En pause")
    assert "Campagne lancée" in launch_row
