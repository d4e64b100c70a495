"""Admins run the team from the browser: invite by email, change roles, costs with an effective
date, capacity and hours, deactivate without losing anybody's history."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from inbox.actions.tickets import do_add_ticket_note
from inbox.actions.timetracking import do_log_time
from inbox.actions.workspace import do_create_user, do_create_workspace
from inbox.extensions import db
from inbox.mailer import get_mailer
from inbox.models import AuditEntry, Invitation, Role, Ticket, TicketEvent, TimeEntry, User, UserRate, utcnow
from inbox.models.timeentry import spend_of

from ..conftest import PASSWORD, login, run_jobs
from .ticket_fixtures import admin, contact, fresh, make_ticket  # noqa: F401

NEW_PASSWORD = "une phrase de passe solide"


@pytest.fixture(autouse=True)
def english(workspace):
    workspace.default_locale = "en"
    db.session.commit()


def invitation_link(to: str) -> str:
    [mail] = [m for m in get_mailer().sent if m.to == to]
    return re.search(r"https://support\.example\.test(/invite/\S+)", mail.body).group(1)


def test_an_invited_agent_joins_with_the_emailed_link_once(app, client, admin, workspace):
    login(client, admin)
    response = client.post("/settings/team/invite", data={"email": "Sophie@Example.test", "role": "agent"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invitation sent to sophie@example.test" in page and "Pending invitations" in page
    run_jobs(app)
    link = invitation_link("sophie@example.test")
    [mail] = [m for m in get_mailer().sent if m.to == "sophie@example.test"]
    assert "Camille Admin" in mail.subject and workspace.name in mail.body

    client.post("/logout")
    form = client.get(link)
    assert form.status_code == 200 and "sophie@example.test" in form.get_data(as_text=True)
    short = client.post(link, data={"name": "Sophie Martin", "password": "court", "password_confirm": "court"})
    assert short.status_code == 422 and "at least 10 characters" in short.get_data(as_text=True)
    joined = client.post(link, data={"name": "Sophie Martin", "password": NEW_PASSWORD,
                                     "password_confirm": NEW_PASSWORD})
    assert joined.status_code == 303 and joined.headers["Location"].endswith("/inbox")
    assert client.get("/inbox").status_code == 200  # logged in as Sophie

    sophie = db.session.scalar(select(User).where(User.email == "sophie@example.test"))
    assert sophie.name == "Sophie Martin" and sophie.role == Role.AGENT and sophie.workspace_id == workspace.id
    assert sophie.check_password(NEW_PASSWORD)
    client.post("/logout")
    again = client.get(link)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    assert client.post(link, data={"name": "Mallory", "password": NEW_PASSWORD,
                                   "password_confirm": NEW_PASSWORD}).status_code == 410
    assert db.session.scalar(select(func.count(User.id)).where(User.name == "Mallory")) == 0
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["team.invite", "team.join"]


def test_invitation_links_expire_are_tamper_proof_and_die_when_sent_again(app, client, admin, workspace):
    login(client, admin)
    client.post("/settings/team/invite", data={"email": "karim@example.test", "role": "admin"})
    run_jobs(app)
    first = invitation_link("karim@example.test")
    invitation_id = db.session.scalar(select(Invitation.id))
    client.post(f"/settings/team/invitations/{invitation_id}/resend")
    get_mailer().sent.clear()  # keep only the second email
    db.session.rollback()
    run_jobs(app)
    second = invitation_link("karim@example.test")
    assert first != second
    client.post("/logout")
    assert client.get(first).status_code == 404  # the old nonce no longer matches
    assert client.get(second[:-3] + "xyz").status_code == 404
    assert client.get(second).status_code == 200

    invitation = fresh(Invitation, invitation_id)
    assert timedelta(days=6, hours=23) < invitation.expires_at - utcnow() <= timedelta(days=7)
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    expired = client.get(second)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)


def test_invites_refuse_existing_members_and_bad_addresses(client, admin, agent):
    login(client, admin)
    for email in ("agent@example.test", "AGENT@example.test", "not-an-email"):
        assert client.post("/settings/team/invite", data={"email": email, "role": "agent"}).status_code == 422
    assert db.session.scalar(select(func.count(Invitation.id))) == 0


def test_role_changes_and_the_last_admin_stays(client, admin, agent):
    login(client, admin)
    assert client.post(f"/settings/team/{agent.id}/role", data={"role": "admin"}).status_code == 303
    assert fresh(User, agent.id).role == Role.ADMIN
    assert client.post(f"/settings/team/{agent.id}/role", data={"role": "agent"}).status_code == 303
    refused = client.post(f"/settings/team/{admin.id}/role", data={"role": "agent"})
    assert refused.status_code == 409 and "at least one active admin" in refused.get_data(as_text=True)
    assert fresh(User, admin.id).role == Role.ADMIN
    db.session.rollback()
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "team.role")).all()
    assert [(e.before, e.after) for e in entries] == [({"role": "agent"}, {"role": "admin"}),
                                                        ({"role": "admin"}, {"role": "agent"})]


def test_hourly_cost_change_is_effective_dated(client, admin, agent, contact, workspace):
    ticket = make_ticket(contact)
    last_month = date.today().replace(day=1) - timedelta(days=3)
    do_log_time(ticket, user=agent, minutes=60, work_date=last_month)  # at 40 €/h
    login(client, admin)
    response = client.post(f"/settings/team/{agent.id}/cost",
                           data={"hourly_cost": "60,50", "effective_from": date.today().replace(day=1).isoformat()})
    assert response.status_code == 303
    do_log_time(fresh(Ticket, ticket.id), user=fresh(User, agent.id), minutes=60)  # at 60.50 €/h
    assert spend_of(workspace.id, contact_id=contact.id).cost == Decimal("100.50")
    assert [r.hourly_cost for r in UserRate.history_of(agent.id)] == [Decimal("60.50"), Decimal("40.00")]
    db.session.rollback()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "team.hourly_cost"))
    assert entry.before["hourly_cost"] == "40.00" and entry.after["hourly_cost"] == "60.50"
    assert client.post(f"/settings/team/{agent.id}/cost", data={"hourly_cost": "cher"}).status_code == 422


def test_capacity_availability_and_working_hours(client, admin, agent):
    login(client, admin)
    assert client.post(f"/settings/team/{agent.id}/capacity", data={"capacity": "4"}).status_code == 303
    assert client.post(f"/settings/team/{agent.id}/availability", data={"availability": "online"}).status_code == 303
    days = {f"day{i}": "08:00-12:00" for i in range(5)} | {"day5": "", "day6": ""}
    assert client.post(f"/settings/team/{agent.id}/hours", data=days).status_code == 303
    agent = fresh(User, agent.id)
    assert agent.capacity == 4 and agent.availability == "online"
    assert agent.working_hours[0] == [["08:00", "12:00"]] and agent.working_hours[6] == []
    assert client.post(f"/settings/team/{agent.id}/hours", data={"use_workspace_hours": "1"}).status_code == 303
    assert fresh(User, agent.id).working_hours is None
    assert client.post(f"/settings/team/{agent.id}/hours", data={"day0": "9h"}).status_code == 422
    assert client.post(f"/settings/team/{agent.id}/capacity", data={"capacity": "-1"}).status_code == 422
    page = client.get("/settings/team").get_data(as_text=True)
    assert "Alice Agent" in page and "0 / 4" in page and "€40.00" in page and "Online" in page
    db.session.rollback()
    assert {a for a in db.session.scalars(select(AuditEntry.action))} >= {
        "team.capacity", "team.availability", "team.working_hours"}


def test_deactivated_members_cannot_log_in_and_keep_their_history(app, client, admin, agent, contact):
    ticket = make_ticket(contact, assignee=agent)
    do_add_ticket_note(ticket, "J'ai appelé la cliente", actor=agent, internal=True)
    do_log_time(ticket, user=agent, minutes=30)
    agent_client = app.test_client()
    login(agent_client, agent)
    assert agent_client.get("/inbox").status_code == 200

    login(client, admin)
    unconfirmed = client.post(f"/settings/team/{agent.id}/deactivate", data={})
    assert unconfirmed.status_code == 422 and fresh(User, agent.id).is_active_member
    assert client.post(f"/settings/team/{agent.id}/deactivate", data={"confirm": "1"}).status_code == 303
    assert fresh(User, agent.id).is_active_member is False

    assert agent_client.get("/inbox").status_code == 302  # the open session is over
    refused = agent_client.post("/login", data={"email": agent.email, "password": PASSWORD})
    assert refused.status_code == 422
    # Their work stays theirs; their active ticket goes back to the queue.
    assert db.session.scalar(select(TimeEntry.user_id)) == agent.id
    ticket = fresh(Ticket, ticket.id)
    assert ticket.assignee_id is None
    note = db.session.scalar(select(TicketEvent).where(TicketEvent.kind == "internal_note"))
    assert note.actor.name == "Alice Agent" and note.body == "J'ai appelé la cliente"
    team = client.get("/settings/team").get_data(as_text=True)
    assert "Deactivated" in team and "Alice Agent" in team

    assert client.post(f"/settings/team/{admin.id}/deactivate", data={"confirm": "1"}).status_code == 409
    assert client.post(f"/settings/team/{agent.id}/reactivate").status_code == 303
    assert fresh(User, agent.id).is_active_member is True
    assert agent_client.post("/login", data={"email": agent.email, "password": PASSWORD}).status_code == 302


def test_members_of_another_workspace_cannot_be_managed(client, admin):
    elsewhere = do_create_workspace("Ailleurs", slug="ailleurs-team")
    stranger = do_create_user(elsewhere, email="x@example.test", name="X", password=PASSWORD, role=Role.ADMIN)
    login(client, admin)
    assert client.get(f"/settings/team/{stranger.id}").status_code == 404
    assert client.post(f"/settings/team/{stranger.id}/role", data={"role": "agent"}).status_code == 404
    assert client.post(f"/settings/team/{stranger.id}/deactivate", data={"confirm": "1"}).status_code == 404
    assert "x@example.test" not in client.get("/settings/team").get_data(as_text=True)
    assert fresh(User, stranger.id).is_active_member
