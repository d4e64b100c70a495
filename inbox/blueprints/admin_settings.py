"""Workspace settings and the audit log, for admins."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, or_, select

from ..actions.tickets import FieldErrors
from ..actions.workspace_settings import (
    COMMON_CURRENCIES, check_workspace_form, do_update_workspace, time_zones, workspace_state,
)
from ..extensions import db
from ..models import AuditEntry, User
from .marketing import campaign_status_label
from .settings import admin_required

bp = Blueprint("admin_settings", __name__)
AUDIT_PAGE_SIZE_KEY = "AUDIT_PAGE_SIZE"

# What each action means, in the reader's language (unknown ones are shown as recorded).
ACTION_LABELS = {
    "channel.create": _l("Channel added"),
    "channel.update": _l("Channel changed"),
    "channel.enable": _l("Channel enabled"),
    "channel.disable": _l("Channel disabled"),
    "channel.sending_rules": _l("Sending rules changed"),
    "channel.behaviour": _l("Channel behaviour changed"),
    "template.create": _l("Template added"),
    "template.update": _l("Template changed"),
    "sara.settings": _l("Sara’s settings changed"),
    "sara.article_create": _l("Knowledge-base article added"),
    "sara.article_update": _l("Knowledge-base article changed"),
    "sara.intent_create": _l("Intent added"),
    "sara.intent_update": _l("Intent changed"),
    "api_token.create": _l("API token created"),
    "api_token.revoke": _l("API token revoked"),
    "tickets.settings": _l("Ticket automation changed"),
    "tickets.business_hours": _l("Business hours changed"),
    "tickets.holiday_add": _l("Holiday added"),
    "tickets.holiday_remove": _l("Holiday removed"),
    "tickets.sla_policy": _l("SLA target changed"),
    "team.invite": _l("Agent invited"),
    "team.invite_resend": _l("Invitation sent again"),
    "team.invite_revoke": _l("Invitation withdrawn"),
    "team.join": _l("Invitation accepted"),
    "team.role": _l("Role changed"),
    "team.hourly_cost": _l("Hourly cost changed"),
    "team.capacity": _l("Capacity changed"),
    "team.availability": _l("Availability changed"),
    "team.working_hours": _l("Working hours changed"),
    "team.deactivate": _l("Member deactivated"),
    "team.reactivate": _l("Member reactivated"),
    "team.language": _l("Language changed"),
    "workspace.update": _l("Workspace settings changed"),
    "budget.set": _l("Client budget set"),
    "budget.remove": _l("Client budget removed"),
    "contact.export": _l("Client data exported (GDPR)"),
    "contact.erase": _l("Client data erased (GDPR)"),
    "appointment.create": _l("Appointment added"),
    "appointment.update": _l("Appointment changed"),
    "appointment.cancel": _l("Appointment cancelled"),
    "followup.create": _l("Follow-up rule added"),
    "followup.update": _l("Follow-up rule changed"),
    "label.create": _l("Label added"),
    "label.update": _l("Label changed"),
    "label.delete": _l("Label deleted"),
    "segment.create": _l("Segment added"),
    "segment.update": _l("Segment changed"),
    "segment.delete": _l("Segment deleted"),
    "campaign.create": _l("Campaign added"),
    "campaign.update": _l("Campaign changed"),
    "campaign.schedule": _l("Campaign scheduled"),
    "campaign.launch": _l("Campaign launched"),
    "campaign.pause": _l("Campaign paused"),
    "campaign.resume": _l("Campaign resumed"),
    "campaign.cancel": _l("Campaign cancelled"),
}
ACTION_GROUPS = {
    "channel.": _l("Channels"), "tickets.": _l("Tickets, SLA and business hours"), "team.": _l("Team"),
    "workspace.": _l("Workspace"), "template.": _l("Message templates"), "sara.": "Sara",
    "api_token.": _l("API tokens"),
    "budget.": _l("Client budgets"), "contact.": _l("Clients (GDPR)"),
    "appointment.": _l("Appointments"),
    "followup.": _l("Follow-up rules"), "label.": _l("Labels"), "segment.": _l("Segments"),
    "campaign.": _l("Campaigns"),
}
FIELD_LABELS = {
    "name": _l("Name"), "address": _l("Address"), "enabled": _l("Enabled"), "settings": _l("Settings"),
    "credentials": _l("Credentials"), "kind": _l("Kind"), "provider": _l("Provider"),
    "timezone": _l("Time zone"), "default_locale": _l("Default language"), "currency": _l("Currency"),
    "role": _l("Role"), "email": _l("Email"), "hourly_cost": _l("Hourly cost"), "effective_from": _l("From"),
    "capacity": _l("Capacity"), "availability": _l("Availability"), "working_hours": _l("Working hours"),
    "active": _l("Active"), "business_hours": _l("Business hours"), "day": _l("Date"),
    "auto_close_days": _l("Auto-close after (days)"), "reopen_window_days": _l("Reopen window (days)"),
    "sla_reminder_hours": _l("Reminder (hours)"), "auto_assign": _l("Auto-assignment"),
    "request_ratings": _l("Ask for ratings"), "confirm_new_tickets": _l("Confirm new tickets"),
    "email_notifications": _l("Email notifications"), "on_call_user_id": _l("On call"),
    "scope": _l("For"), "key": _l("Which"), "first_response_minutes": _l("First response (min)"),
    "resolution_minutes": _l("Resolution (min)"), "unassigned": _l("Unassigned"),
    "starts_at": _l("Date and time"), "status": _l("Status"), "subject": _l("Subject"), "location": _l("Place"),
    "duration_minutes": _l("Duration (min)"),
    "contact": _l("Client"), "period": _l("Period"), "amount": _l("Amount"), "language": _l("Language"),
    "color": _l("Color"), "rules": _l("Rules"), "trigger": _l("Trigger"), "delay_days": _l("Delay (days)"),
    "max_per_conversation": _l("At most per conversation"), "template_id": _l("Template"),
    "label_id": _l("Label"), "segment_id": _l("Segment"), "variables": _l("Variables"),
    "channel_order": _l("Channel order"), "require_opt_in": _l("Opt-in required"),
    "scheduled_at": _l("Scheduled for"),
}


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def field_label(name: str) -> str:
    return str(FIELD_LABELS.get(name, name))


# Recorded values that are kinds or states, shown in the reader's words: (action group, field) →
# the same label function the feature's own pages use.
VALUE_LABELS = {("campaign.", "status"): campaign_status_label}


def audit_value(value, *, action: str = "", field: str = "") -> str:
    label = VALUE_LABELS.get((action.partition(".")[0] + ".", field))
    if label is not None and isinstance(value, str):
        return label(value)
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


# -- workspace ---------------------------------------------------------------------------------
@bp.route("/settings/workspace", methods=["GET", "POST"])
@admin_required
def workspace():
    ws = current_user.workspace
    if request.method == "POST":
        try:
            do_update_workspace(ws, check_workspace_form(request.form), actor=current_user)
        except FieldErrors as exc:
            return _workspace_page(request.form, exc.errors, status=422)
        return redirect(url_for("admin_settings.workspace", saved=1), 303)
    return _workspace_page(workspace_state(ws), {}, saved=request.args.get("saved"))


def _workspace_page(values, errors: dict, *, saved=None, status: int = 200):
    html = render_template("settings/workspace.html", values=values, errors=errors, saved=saved,
                           time_zones=time_zones(), currencies=COMMON_CURRENCIES)
    return make_response(html, status)


# -- audit log ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: int | None = None
    action: str = ""  # an action, or a group ("team.")
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args) -> AuditFilter:
        def day(name):
            try:
                return date.fromisoformat(args.get(name) or "")
            except ValueError:
                return None
        actor = args.get("actor", "")
        action = (args.get("action") or "").strip()
        known = action in ACTION_LABELS or action in ACTION_GROUPS
        return cls(actor_id=int(actor) if actor.isdigit() else None, action=action if known else "",
                    since=day("since"), until=day("until"))

    def to_args(self) -> dict[str, str]:
        args = {"actor": self.actor_id, "action": self.action or None,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None}
        return {k: str(v) for k, v in args.items() if v is not None}


def _cursor(raw: str | None) -> tuple[datetime, int] | None:
    """ "<ISO time>_<id>": exact to the microsecond, unlike a float timestamp."""
    try:
        stamp, ident = (raw or "").rsplit("_", 1)
        value = datetime.fromisoformat(stamp)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)), int(ident)
    except ValueError:
        return None


def audit_page(workspace_id: int, f: AuditFilter, *, tz: str, after: tuple[datetime, int] | None,
               limit: int) -> tuple[list[AuditEntry], str | None]:
    """Newest first, keyset-paginated on (created_at, id): indexed by workspace and date."""
    stmt = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if f.actor_id:
        stmt = stmt.where(AuditEntry.actor_id == f.actor_id)
    if f.action.endswith("."):
        stmt = stmt.where(AuditEntry.action.startswith(f.action, autoescape=True))
    elif f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    zone = ZoneInfo(tz)
    if f.since:
        stmt = stmt.where(AuditEntry.created_at >= datetime.combine(f.since, time.min, zone).astimezone(UTC))
    if f.until:
        end = datetime.combine(f.until + timedelta(days=1), time.min, zone)
        stmt = stmt.where(AuditEntry.created_at < end.astimezone(UTC))
    if after:
        stamp, ident = after
        stmt = stmt.where(or_(AuditEntry.created_at < stamp,
                              and_(AuditEntry.created_at == stamp, AuditEntry.id < ident)))
    stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    rows = list(db.session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (f"{rows[-1].created_at.isoformat()}_{rows[-1].id}" if more else None)


@bp.get("/settings/audit")
@admin_required
def audit():
    workspace = current_user.workspace
    filters = AuditFilter.from_args(request.args)
    entries, next_cursor = audit_page(workspace.id, filters, tz=workspace.timezone,
                                      after=_cursor(request.args.get("after")),
                                      limit=current_app.config.get(AUDIT_PAGE_SIZE_KEY, 50))
    members = list(db.session.scalars(select(User).where(User.workspace_id == workspace.id).order_by(User.name)))
    return render_template("settings/audit.html", entries=entries, next_cursor=next_cursor, filters=filters,
                           members=members, actions=ACTION_LABELS, groups=ACTION_GROUPS,
                           action_label=action_label, field_label=field_label, audit_value=audit_value,
                           first_page=not request.args.get("after"))
