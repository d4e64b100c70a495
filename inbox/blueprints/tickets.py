"""Tickets: the list with its KPI strip, a ticket's page, the new-ticket form, the bell,
notifications and the public rating page. One URL = full page or HTMX fragment."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for,
)
from flask_babel import format_currency
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..actions.assignment import do_set_availability
from ..actions.contacts import access_contact
from ..actions.conversations import access_agent, access_conversation, reply_channels
from ..actions.notifications import do_mark_read, notification_details, notification_path, notification_text
from ..actions.portal import check_files, do_attach_files
from ..actions.tickets import (
    FieldErrors, access_ticket, access_ticket_attachment, access_ticket_page, check_admin, check_category,
    check_ticket_input, check_ticket_priority, check_ticket_status, do_add_ticket_note, do_assign_ticket,
    do_change_status, do_create_ticket, do_set_tags, do_set_ticket_category, do_set_ticket_priority,
    files_by_event,
)
from ..actions.timetracking import (
    check_minutes, check_note, check_work_date, do_delete_time_entry, do_log_time, do_start_timer,
    do_stop_timer, local_today,
)
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..extensions import db, writes
from ..i18n import translated_once
from ..models import (
    Availability, Conversation, Notification, Priority, Ticket, TicketAttachment, TicketCategory, TicketSettings,
    TicketSource, TicketStatus, TimeEntry, User, utcnow,
)
from ..models.ticket import allowed_transitions
from ..models.ticket_queries import (
    TicketCursor, TicketFilter, first_inbound_messages, ticket_kpis, ticket_time, ticket_timeline, tickets_page,
)
from .portal import send_ticket_attachment

bp = Blueprint("tickets", __name__)
TIMELINE_MAX = 300  # entries a ticket's page shows at most, even when asked for all
PAGE_SIZE_KEY = "TICKETS_PAGE_SIZE"


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


# ValidationError (422) and NotAllowed (409) raised by the actions reach the app-wide handlers
# (errors_http.error_response): a toast without swap for HTMX, the error page for browsers.


# -- template helpers --------------------------------------------------------------------------
@bp.app_template_filter("minutes")
def _minutes(value: int | None) -> str:
    if value is None:
        return "–"
    hours, minutes = divmod(int(value), 60)
    if not hours:
        return _("%(m)d min", m=minutes)
    return _("%(h)d h %(m)02d", h=hours, m=minutes)


@bp.app_template_filter("money")
def _money(value, currency: str | None = None) -> str:
    return format_currency(value or 0, currency or "EUR")


@bp.app_template_global()
def ticket_labels() -> dict[str, dict[str, str]]:
    """The ticket labels in the reader's language, translated once per request: the ticket list
    looks up five labels on each of its rows, and the label macros of tickets/_macros.html read
    them from here too (one list of texts)."""
    return translated_once("tickets", _ticket_labels)


def _ticket_labels() -> dict[str, dict[str, str]]:
    return {
        "status": {"open": _("Open"), "in_progress": _("In progress"), "waiting_on_customer": _("Waiting on customer"),
                   "resolved": _("Resolved"), "closed": _("Closed"), "active": _("Active"), "any": _("Any status")},
        "priority": {"low": _("Low"), "medium": _("Normal"), "high": _("High"), "critical": _("Critical")},
        "category": {"general": _("General"), "billing": _("Billing"), "technical": _("Technical"),
                     "bug_report": _("Bug report"), "account": _("Account"), "suggestion": _("Suggestion")},
        "source": {"agent": _("an agent"), "conversation": _("a conversation"), "api": _("the API"),
                   "portal": _("the customer portal"), "telegram": _("Telegram"), "ai": _("the AI agent")},
        "target": {"first_response": _("First response"), "resolution": _("Resolution")},
    }


@bp.app_template_global()
def open_tickets_of(contact_id: int) -> list[Ticket]:
    """For the inbox's contact card: the contact's active tickets (current workspace only)."""
    return Ticket.active_of_contact(current_user.workspace_id, contact_id, limit=5)


@bp.app_template_global()
def notification_label(n: Notification) -> str:
    return notification_text(n)


@bp.app_template_global()
def notification_lines(n: Notification) -> list[str]:
    return notification_details(n)


# -- list --------------------------------------------------------------------------------------
@bp.get("/tickets")
@login_required
def index():
    filters = TicketFilter.from_args(request.args)
    after = TicketCursor.decode(request.args.get("after"))
    if request.htmx and after:
        return render_template("tickets/_rows.html", **_list_context(filters, after))
    if request.htmx and request.htmx.target == "ticket-list":
        return render_template("tickets/_list.html", kpis=ticket_kpis(current_user.workspace_id, now=utcnow()),
                               oob_kpis=True, **_list_context(filters))
    return render_template(
        "tickets/index.html", kpis=ticket_kpis(current_user.workspace_id, now=utcnow()),
        agents=User.agent_choices(current_user.workspace_id), statuses=list(TicketStatus),
        priorities=list(Priority), categories=list(TicketCategory), availabilities=list(Availability),
        **_list_context(filters))


def _list_context(filters: TicketFilter, after: TicketCursor | None = None) -> dict:
    now = utcnow()
    rows, next_cursor = tickets_page(current_user.workspace_id, filters, user_id=current_user.id, now=now,
                                     after=after, limit=current_app.config.get(PAGE_SIZE_KEY, 25))
    return {"filters": filters, "rows": rows, "next_cursor": next_cursor, "now": now}


# -- create ------------------------------------------------------------------------------------
@bp.get("/tickets/new")
@login_required
def new():
    contact, conversation = _origin()
    form = {"subject": "", "description": "", "category": "general", "priority": "medium",
            "tags": "", "assignee_id": ""}
    if conversation is not None:
        said = first_inbound_messages(conversation.id)
        form["subject"] = " ".join((said[-1].body if said else conversation.last_message_preview).split())[:120]
        form["description"] = "\n\n".join(m.body for m in said)
        form["priority"] = str(conversation.priority)
    return _render_form(contact, conversation, form, {})


@bp.post("/tickets")
@login_required
def create():
    contact, conversation = _origin()
    form = request.form
    try:
        data = check_ticket_input(subject=form.get("subject"), description=form.get("description"),
                                  category=form.get("category"), priority=form.get("priority"),
                                  tags=form.get("tags", ""))
        raw = form.get("assignee_id", "")
        assignee = access_agent(current_user.id if raw == "me" else int(raw) if raw.isdigit() else None, current_user)
    except FieldErrors as exc:
        return _render_form(contact, conversation, form, exc.errors, status=422)
    except ValidationError as exc:
        return _render_form(contact, conversation, form, {exc.field or "form": exc.message}, status=422)
    ticket = do_create_ticket(
        contact, subject=data.subject, description=data.description, category=data.category,
        priority=data.priority, tags=data.tags, actor=current_user, assignee=assignee, conversation=conversation,
        source=TicketSource.CONVERSATION if conversation else TicketSource.AGENT,
        notify_customer="1" in form.getlist("notify"))
    target = url_for("tickets.show", ticket_id=ticket.id)
    if request.htmx:
        return make_response("", 204, {"HX-Redirect": target})
    return redirect(target, 303)


def _origin():
    conversation_id = request.values.get("conversation_id", type=int)
    contact_id = request.values.get("contact_id", type=int)
    if conversation_id:
        conversation = access_conversation(conversation_id, current_user)
        return conversation.contact, conversation
    if contact_id:
        return access_contact(contact_id, current_user), None
    abort(404)


def _render_form(contact, conversation, form, errors: dict, status: int = 200):
    notify = "1" in form.getlist("notify") if hasattr(form, "getlist") else True
    html = render_template(
        "tickets/new.html", contact=contact, conversation=conversation, form=form, errors=errors, notify=notify,
        agents=User.agent_choices(current_user.workspace_id), priorities=list(Priority),
        categories=list(TicketCategory), settings=TicketSettings.of(current_user.workspace_id))
    return make_response(html, status)


# -- one ticket --------------------------------------------------------------------------------
@bp.get("/tickets/<int:ticket_id>")
@login_required
def show(ticket_id: int):
    ticket = access_ticket_page(ticket_id, current_user)
    return render_template("tickets/show.html", **{**_ticket_context(ticket), **_side_context(ticket),
                                                   **_composer_context(ticket)})


@bp.get("/tickets/<int:ticket_id>/timeline")
@login_required
def timeline(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    return render_template("tickets/_timeline.html", **_ticket_context(ticket))


@bp.get("/tickets/<int:ticket_id>/side")
@login_required
def side(ticket_id: int):
    ticket = access_ticket_page(ticket_id, current_user)
    template = "tickets/_side_live.html" if request.args.get("part") == "live" else "tickets/_side.html"
    return render_template(template, **_side_context(ticket))


@bp.get("/tickets/<int:ticket_id>/files/<int:attachment_id>")
@login_required
def attachment(ticket_id: int, attachment_id: int):
    """A file on the ticket (most often one the customer uploaded in the portal): agents of the
    workspace only; the portal serves the customer's own copy through its own route."""
    return send_ticket_attachment(access_ticket_attachment(access_ticket(ticket_id, current_user), attachment_id))


@bp.post("/tickets/<int:ticket_id>/status")
@login_required
def set_status(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    notify = "1" in request.form.getlist("notify") if "notify" in request.form else True
    do_change_status(ticket, check_ticket_status(request.form.get("status", "")), actor=current_user,
                     resolution=request.form.get("resolution"), notify_customer=notify)
    return _side_response(ticket, _("Status updated."))


@bp.post("/tickets/<int:ticket_id>/assign")
@login_required
def assign(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    raw = request.form.get("assignee_id", "")
    agent_id = current_user.id if raw == "me" else (int(raw) if raw.isdigit() else None)
    do_assign_ticket(ticket, access_agent(agent_id, current_user), actor=current_user)
    return _side_response(ticket, _("Assignment updated."))


@bp.post("/tickets/<int:ticket_id>/priority")
@login_required
def set_priority(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    do_set_ticket_priority(ticket, check_ticket_priority(request.form.get("priority", "")), actor=current_user)
    return _side_response(ticket, _("Priority updated."))


@bp.post("/tickets/<int:ticket_id>/category")
@login_required
def set_category(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    do_set_ticket_category(ticket, check_category(request.form.get("category", "")), actor=current_user)
    return _side_response(ticket, _("Category updated."))


@bp.post("/tickets/<int:ticket_id>/tags")
@login_required
def set_tags(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    do_set_tags(ticket, request.form.get("tags", ""), actor=current_user)
    return _side_response(ticket, _("Tags updated."))


@bp.post("/tickets/<int:ticket_id>/notes")
@login_required
def add_note(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    internal = request.form.get("internal") == "1"
    try:
        _add_note_with_files(ticket, internal=internal)
    except ValidationError as exc:
        html = render_template("tickets/_composer.html", **{**_composer_context(ticket), "error": exc.message,
                                                            "body": request.form.get("body", ""), "internal": internal})
        return make_response(html, 422, {"HX-Retarget": "#ticket-composer", "HX-Reswap": "outerHTML"})
    return render_template("tickets/_note_added.html", **{**_ticket_context(ticket), **_composer_context(ticket)})


def _add_note_with_files(ticket: Ticket, *, internal: bool) -> None:
    """A note or a reply, with the files chosen in the composer (checked before anything is saved).
    Files of an internal note stay with the agents; a reply's are the customer's to see in the portal."""
    uploads = check_files(request.files.getlist("files"))
    body = request.form.get("body", "").strip() or ("📎 " + ", ".join(u.filename for u in uploads) if uploads else "")
    event = do_add_ticket_note(ticket, body, actor=current_user, internal=internal,
                               channel_id=request.form.get("channel_id", type=int),
                               idempotency_key=request.form.get("idempotency_key") or None)
    if uploads and not TicketAttachment.of_event(event.id):  # a double submit attaches once
        do_attach_files(ticket, uploads, event=event, user=current_user, internal=internal)


@bp.post("/tickets/<int:ticket_id>/timer")
@login_required
def timer(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    if request.form.get("action") == "stop":
        entry = do_stop_timer(current_user)
        message = _("Timer stopped: %(t)s logged.", t=_minutes(entry.minutes)) if entry else _("No timer was running.")
    else:
        do_start_timer(ticket, user=current_user)
        message = _("Timer started.")
    return _side_response(ticket, message)


@bp.post("/tickets/<int:ticket_id>/time")
@login_required
def log_time(ticket_id: int):
    ticket = access_ticket(ticket_id, current_user)
    form = request.form
    minutes = check_minutes(form.get("minutes"))
    day = check_work_date(form.get("work_date"), workspace_id=ticket.workspace_id)
    entry = do_log_time(ticket, user=current_user, minutes=minutes, work_date=day, note=check_note(form.get("note")))
    return _side_response(ticket, _("%(t)s logged.", t=_minutes(entry.minutes)))


@bp.post("/tickets/<int:ticket_id>/time/<int:entry_id>/delete")
@login_required
def delete_time(ticket_id: int, entry_id: int):
    ticket = access_ticket(ticket_id, current_user)
    entry = db.session.get(TimeEntry, entry_id)
    if entry is None or entry.ticket_id != ticket.id:
        abort(404)
    do_delete_time_entry(entry, actor=current_user)
    return _side_response(ticket, _("Time entry deleted."))


def _side_response(ticket: Ticket, message: str):
    html = render_template("tickets/_side.html", **_side_context(ticket))
    return make_response(html, 200, toast_headers(message, level="info"))


def _ticket_context(ticket: Ticket) -> dict:
    """The ticket's latest TICKET_TIMELINE_SIZE entries (all of them, up to the timeline's bound, once
    the agent asked: the timeline's live refreshes keep asking so), and whether earlier ones exist."""
    whole = request.args.get("all") == "1"
    shown = TIMELINE_MAX if whole else current_app.config["TICKET_TIMELINE_SIZE"]
    items = ticket_timeline(ticket, limit=shown + 1)
    return {"ticket": ticket, "items": items[-shown:], "earlier": len(items) > shown and not whole, "whole": whole,
            "files": files_by_event(ticket), "now": utcnow()}


def _side_context(ticket: Ticket) -> dict:
    from ..actions.budgets import budgets_of_contact

    now = utcnow()
    settings = TicketSettings.of(ticket.workspace_id)
    # The ticket's workspace (access_ticket checked it), held while the panel is built: the
    # session's identity map keeps rows weakly, and the day's date (twice) and the page's time
    # zone each loaded it again once nothing held it.
    workspace = current_user.workspace
    return {
        "ticket": ticket, "now": now, "settings": settings,
        "transitions": sorted(allowed_transitions(ticket.status), key=list(TicketStatus).index),
        "agents": User.agent_choices(ticket.workspace_id), "priorities": list(Priority),
        "categories": list(TicketCategory), **_time_context(ticket),
        "budgets": budgets_of_contact(ticket.contact, now=now), "today": local_today(workspace.id, now),
        "rating": ticket.rating, "reminder_hours": settings.sla_reminder_hours,
    }


def _time_context(ticket: Ticket) -> dict:
    time = ticket_time(ticket, user_id=current_user.id)
    return {"entries": time.entries, "spend": time.spend, "running": time.running}


def _composer_context(ticket: Ticket) -> dict:
    # The channels a reply can take depend on the contact alone (the conversation it joins is
    # found when it is sent): no need to look that conversation up to draw the composer.
    unsent = Conversation(workspace_id=ticket.workspace_id, contact_id=ticket.contact_id)
    return {"ticket": ticket, "channels": reply_channels(unsent),
            "key": uuid.uuid4().hex}


# -- availability, notifications ---------------------------------------------------------------
@bp.post("/me/availability")
@login_required
def availability():
    try:
        value = Availability(request.form.get("availability", ""))
    except ValueError:
        raise ValidationError(_("Unknown availability."), field="availability") from None
    moved = do_set_availability(current_user, value)
    message = _("You are now %(state)s.", state={"online": _("online"), "busy": _("busy"),
                                                 "offline": _("offline")}[value])
    if moved:
        message += " " + _("%(n)d tickets were handed over.", n=moved)
    return make_response("", 204, toast_headers(message, level="info"))


@bp.get("/notifications/bell")
@login_required
def bell():
    return render_template("tickets/_bell.html", unread=Notification.unread_count(current_user.id))


@bp.get("/notifications")
@login_required
def notifications():
    return render_template("tickets/notifications.html", notifications=Notification.recent_of(current_user.id),
                           unread=Notification.unread_count(current_user.id))


@bp.get("/notifications/<int:notification_id>")
@login_required
@writes
def open_notification(notification_id: int):
    n = db.session.get(Notification, notification_id)
    if n is None or n.user_id != current_user.id:
        abort(404)
    do_mark_read(current_user, notification_ids=[n.id])
    return redirect(request.script_root + notification_path(n))


@bp.post("/notifications/read")
@login_required
def mark_read():
    do_mark_read(current_user)
    if request.htmx:
        return make_response("", 204, {"HX-Refresh": "true"})
    return redirect(url_for("tickets.notifications"), 303)


# -- the customer's rating page moved to the portal -------------------------------------------
@bp.route("/rate/<token>", methods=["GET", "POST"])
def rate(token: str):
    """Rating links sent before the portal page existed keep working (308 keeps a POST a POST)."""
    return redirect(url_for("portal.rate_link", token=token, **request.args), 308)


# -- admin settings ----------------------------------------------------------------------------
@bp.get("/tickets/settings")
@login_required
def settings_page():
    check_admin(current_user)
    return _render_settings(saved=request.args.get("saved"))


@bp.post("/tickets/settings/<section>")
@login_required
def save_settings(section: str):
    from ..actions import ticket_settings as ts

    check_admin(current_user)
    workspace_id, form = current_user.workspace_id, request.form
    try:
        if section == "general":
            ts.do_update_ticket_settings(workspace_id, form, actor=current_user)
        elif section == "hours":
            ts.do_set_business_hours(workspace_id, [form.get(f"day{i}", "") for i in range(7)], actor=current_user)
        elif section == "holiday":
            ts.do_add_holiday(workspace_id, form.get("day", ""), form.get("name", ""), actor=current_user)
        elif section == "holiday-delete":
            ts.do_remove_holiday(workspace_id, form.get("holiday_id", type=int) or 0, actor=current_user)
        elif section == "sla":
            ts.do_set_sla_policy(workspace_id, form.get("scope", ""), form.get("key", ""),
                                 first_response_hours=form.get("first_response_hours", ""),
                                 resolution_hours=form.get("resolution_hours", ""), actor=current_user)
        elif section == "team":
            user = access_agent(form.get("user_id", type=int), current_user)
            if user is None:
                abort(404)
            cost = form.get("hourly_cost", "").strip()
            ts.do_set_capacity_and_cost(user, capacity=form.get("capacity", user.capacity), hourly_cost=cost,
                                        effective_from=_effective_date(form.get("effective_from"), workspace_id)
                                        if cost else None, actor=current_user)
        else:
            abort(404)
    except ValidationError as exc:
        return _render_settings(error=exc.message, status=422)
    return redirect(url_for("tickets.settings_page", saved=section) + f"#{section}", 303)


def _effective_date(value: str | None, workspace_id: int):
    from datetime import date

    if not value:
        return local_today(workspace_id)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(_("Enter a date as YYYY-MM-DD."), field="effective_from") from None


def _render_settings(*, saved: str | None = None, error: str | None = None, status: int = 200):
    from ..business_time import format_day_openings, week_from_json
    from ..models import Holiday, SlaPolicy, SlaScope, UserRate
    from ..models.sla import DEFAULT_TARGETS

    workspace_id = current_user.workspace_id
    settings = TicketSettings.of(workspace_id)
    policies = SlaPolicy.of_workspace(workspace_id)
    rows = [(SlaScope.CATEGORY, c, policies[(SlaScope.CATEGORY, c.value)],
             policies[(SlaScope.CATEGORY, c.value)] != DEFAULT_TARGETS[(SlaScope.CATEGORY, c.value)])
            for c in TicketCategory]
    rows += [(SlaScope.PRIORITY, p, policies[(SlaScope.PRIORITY, p.value)],
              policies[(SlaScope.PRIORITY, p.value)] != DEFAULT_TARGETS[(SlaScope.PRIORITY, p.value)])
             for p in Priority]
    agents = User.agents_of(workspace_id)
    html = render_template(
        "tickets/settings.html", settings=settings, saved=saved, error=error, sla_rows=rows, agents=agents,
        week=[format_day_openings(day) for day in week_from_json(settings.business_hours)],
        holidays=list(db.session.scalars(select(Holiday).where(Holiday.workspace_id == workspace_id)
                                         .order_by(Holiday.day))),
        rates={a.id: UserRate.history_of(a.id)[:3] for a in agents}, today=local_today(workspace_id))
    return make_response(html, status)
