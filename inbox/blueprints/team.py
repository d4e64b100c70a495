"""Team settings (admins): members with role, availability, capacity and hourly cost; email
invitations; per-member changes; deactivation. And the invitee's page, /invite/<token>."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..actions.assignment import open_loads
from ..actions.team import (
    access_invitation, access_member, do_accept_invitation, do_change_availability, do_change_capacity,
    do_change_role, do_deactivate, do_invite, do_reactivate, do_resend_invitation, do_revoke_invitation,
    do_set_hourly_cost, do_set_user_locale, do_set_working_hours, invitation_from_token, team_of,
)
from ..actions.timetracking import local_today, rate_on
from ..business_time import format_day_openings, week_from_json
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..models import Availability, Invitation, Role, TicketSettings, UserRate, Workspace, utcnow
from .settings import admin_required

bp = Blueprint("team", __name__)
SECTIONS = ("role", "cost", "capacity", "availability", "hours", "deactivate", "reactivate")


# -- the team ----------------------------------------------------------------------------------
@bp.get("/settings/team")
@admin_required
def index():
    return _team_page()


@bp.post("/settings/team/invite")
@admin_required
def invite():
    try:
        invitation = do_invite(current_user.workspace, email=request.form.get("email", ""),
                               role=request.form.get("role", "agent"), actor=current_user)
    except ValidationError as exc:
        return _team_page(error=exc.message, form=request.form, status=422)
    return redirect(url_for("team.index", invited=invitation.email), 303)


@bp.post("/settings/team/invitations/<int:invitation_id>/<action>")
@admin_required
def invitation(invitation_id: int, action: str):
    item = access_invitation(invitation_id, current_user)
    try:
        if action == "resend":
            do_resend_invitation(item, actor=current_user)
        elif action == "revoke":
            do_revoke_invitation(item, actor=current_user)
        else:
            return _team_page(error=_("Unknown action."), status=404)
    except NotAllowed as exc:
        return _team_page(error=str(exc), status=409)
    return redirect(url_for("team.index", **({"invited": item.email} if action == "resend" else {})), 303)


def _team_page(*, error: str | None = None, form=None, status: int = 200):
    workspace_id = current_user.workspace_id
    html = render_template(
        "settings/team.html", members=team_of(workspace_id), loads=open_loads(workspace_id),
        invitations=Invitation.pending_of(workspace_id), roles=list(Role), error=error, form=form or {},
        invited=request.args.get("invited"), currency=TicketSettings.of(workspace_id).currency)
    return make_response(html, status)


# -- one member --------------------------------------------------------------------------------
@bp.get("/settings/team/<int:user_id>")
@admin_required
def member(user_id: int):
    return _member_page(access_member(user_id, current_user), saved=request.args.get("saved"))


@bp.post("/settings/team/<int:user_id>/<section>")
@admin_required
def update_member(user_id: int, section: str):
    user = access_member(user_id, current_user)
    form = request.form
    if section not in SECTIONS:
        return _member_page(user, error=_("Unknown setting."), status=404)
    try:
        if section == "role":
            do_change_role(user, form.get("role", ""), actor=current_user)
        elif section == "cost":
            do_set_hourly_cost(user, form.get("hourly_cost", ""), actor=current_user,
                               effective_from=_effective_date(form.get("effective_from"), user.workspace_id))
        elif section == "capacity":
            do_change_capacity(user, form.get("capacity", ""), actor=current_user)
        elif section == "availability":
            do_change_availability(user, form.get("availability", ""), actor=current_user)
        elif section == "hours":
            days = None if form.get("use_workspace_hours") == "1" else [form.get(f"day{i}", "") for i in range(7)]
            do_set_working_hours(user, days, actor=current_user)
        elif section == "deactivate":
            if form.get("confirm") != "1":
                raise ValidationError(_("Tick the box to confirm the deactivation."), field="confirm")
            do_deactivate(user, actor=current_user)
        elif section == "reactivate":
            do_reactivate(user, actor=current_user)
    except ValidationError as exc:
        return _member_page(user, error=exc.message, section=section, status=422)
    except NotAllowed as exc:
        return _member_page(user, error=str(exc), section=section, status=409)
    return redirect(url_for("team.member", user_id=user.id, saved=section) + f"#{section}", 303)


def _effective_date(value: str | None, workspace_id: int) -> date:
    if not value:
        return local_today(workspace_id)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(_("Enter a date as YYYY-MM-DD."), field="effective_from") from None


def _member_page(user, *, saved: str | None = None, error: str | None = None, section: str | None = None,
                 status: int = 200):
    today = local_today(user.workspace_id)
    week = week_from_json(user.working_hours) if user.working_hours else None
    html = render_template(
        "settings/member.html", member=user, roles=list(Role), availabilities=list(Availability),
        rate_today=rate_on(user, today), rates=UserRate.history_of(user.id), today=today,
        week=[format_day_openings(day) for day in week] if week else [""] * 7,
        workspace_week=[format_day_openings(day) for day in _workspace_week(user.workspace_id)],
        load=open_loads(user.workspace_id).get(user.id, 0), saved=saved, error=error, error_section=section,
        currency=TicketSettings.of(user.workspace_id).currency)
    return make_response(html, status)


def _workspace_week(workspace_id: int):
    return week_from_json(TicketSettings.of(workspace_id).business_hours)


# -- everyone's own preferences ---------------------------------------------------------------
@bp.route("/me", methods=["GET", "POST"])
@login_required
def preferences():
    """Each member picks the language they work in (or follows the workspace's)."""
    if request.method == "POST":
        try:
            do_set_user_locale(current_user, request.form.get("locale"))
        except ValidationError as exc:
            html = render_template("settings/preferences.html", error=exc.message, choice=request.form.get("locale"))
            return make_response(html, 422)
        return redirect(url_for("team.preferences", saved=1), 303)
    return render_template("settings/preferences.html", error=None, choice=current_user.locale or "",
                           saved=request.args.get("saved"))


# -- the invitee -------------------------------------------------------------------------------
@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str):
    invitation, problem = invitation_from_token(token)
    workspace = db.session.get(Workspace, invitation.workspace_id) if invitation is not None else None
    # The invitee is not logged in yet: the page speaks the workspace's language.
    with force_locale(workspace.default_locale if workspace else current_app.config["BABEL_DEFAULT_LOCALE"]):
        return _accept(invitation, problem, workspace)


def _accept(invitation: Invitation | None, problem: str | None, workspace: Workspace | None):
    if problem is not None:
        messages = {
            "invalid": (404, _("This invitation link is not valid. Check that you copied all of it.")),
            "used": (410, _("This invitation was already used. Log in with the email address it was sent to.")),
            "expired": (410, _("This invitation has expired. Ask an admin of the workspace to send a new one.")),
            "revoked": (410, _("This invitation was withdrawn. Ask an admin of the workspace if you need access.")),
        }
        status, message = messages[problem]
        return make_response(render_template("errors/error.html", status=status, message=message), status)
    error, name = None, ""
    if request.method == "POST":
        name = request.form.get("name", "")
        password = request.form.get("password", "")
        try:
            if password != request.form.get("password_confirm", ""):
                raise ValidationError(_("The two passwords differ."), field="password_confirm")
            user = do_accept_invitation(invitation, name=name, password=password)
        except (ValidationError, NotAllowed) as exc:
            error = exc.message if isinstance(exc, ValidationError) else str(exc)
        else:
            if current_user.is_authenticated:
                logout_user()
            login_user(user)
            user.last_login_at = utcnow()
            db.session.commit()
            return redirect(url_for("inbox.index"), 303)
    html = render_template("auth/invite.html", invitation=invitation, error=error, name=name, workspace=workspace)
    return make_response(html, 422 if error else 200)
