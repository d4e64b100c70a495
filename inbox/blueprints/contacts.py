"""The CRM: the client list (active search, filters, keyset pages) and the client page (details
and identities, conversations, tickets, budget, satisfaction, "Create ticket", appointments
editable in place), create / edit forms, and the GDPR export and erasure. The page's "new
message later" form posts to blueprints/outbound.py. Agents and admins see and edit clients; budgets,
exports and erasure are for admins. One URL = full page or HTMX fragment."""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..actions.appointments import (
    access_appointment, check_appointment_form, do_agent_create_appointment, do_cancel_appointment,
    do_update_appointment,
)
from ..actions.budgets import budgets_of_contact, do_set_budget
from ..actions.crm import (
    access_identity, check_contact_form, companies_of, do_add_identity, do_create_contact_from_form,
    do_remove_identity, do_update_contact, do_update_identity, identities_by_kind,
)
from ..actions.gdpr import do_erase_contact, do_record_export, export_contact_data
from ..actions.scheduled import contact_channels
from ..actions.contacts import access_contact
from ..actions.tickets import FieldErrors, check_admin
from ..actions.timetracking import local_today
from ..errors import NotAllowed, ValidationError
from ..errors_http import error_response, toast_headers
from ..extensions import db, writes
from ..kinds import ChannelKind
from ..models import Appointment, BudgetPeriod, ContactErasure, Ticket, TicketSettings, utcnow
from ..models.budget import period_bounds
from ..models.contact_queries import (
    ContactCursor, ContactFilter, contacts_page, conversations_of_contact, satisfaction_of_contact,
)
from ..models.timeentry import spend_of

bp = Blueprint("contacts", __name__)
PAGE_SIZE_KEY = "CONTACTS_PAGE_SIZE"


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


# -- list --------------------------------------------------------------------------------------
@bp.get("/contacts")
@login_required
def index():
    filters = ContactFilter.from_args(request.args)
    after = ContactCursor.decode(request.args.get("after"))
    if request.htmx and after:
        return render_template("contacts/_rows.html", **_list_context(filters, after))
    if request.htmx and request.htmx.target == "contact-list":
        return render_template("contacts/_list.html", **_list_context(filters))
    return render_template("contacts/index.html", channels=list(ChannelKind),
                           companies=companies_of(current_user.workspace_id), **_list_context(filters))


def _list_context(filters: ContactFilter, after: ContactCursor | None = None) -> dict:
    rows, next_cursor = contacts_page(current_user.workspace_id, filters, after=after,
                                      today=local_today(current_user.workspace_id),
                                      limit=current_app.config.get(PAGE_SIZE_KEY, 25))
    return {"filters": filters, "rows": rows, "next_cursor": next_cursor}


# -- create / edit -----------------------------------------------------------------------------
@bp.route("/contacts/new", methods=["GET", "POST"])
@login_required
def new():
    if request.method == "POST":
        try:
            contact = do_create_contact_from_form(current_user.workspace_id, check_contact_form(request.form),
                                                  actor=current_user)
        except FieldErrors as exc:
            return _form(None, request.form, exc.errors, status=422)
        return redirect(url_for("contacts.show", contact_id=contact.id), 303)
    return _form(None, {}, {})


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@login_required
def edit(contact_id: int):
    contact = access_contact(contact_id, current_user)
    if ContactErasure.of_contact(contact.id) is not None:
        raise NotAllowed(_("This client's personal data was erased: the record cannot be edited."))
    if request.method == "POST":
        try:
            do_update_contact(contact, check_contact_form(request.form), actor=current_user)
        except FieldErrors as exc:
            return _form(contact, request.form, exc.errors, status=422)
        return redirect(url_for("contacts.show", contact_id=contact.id, saved=1), 303)
    values = {name: getattr(contact, name) or "" for name in
              ("name", "company", "email", "phone", "whatsapp", "telegram_id", "preferred_channel", "locale")}
    return _form(contact, values, {})


def _form(contact, values, errors: dict, status: int = 200):
    html = render_template("contacts/form.html", contact=contact, values=values, errors=errors,
                           channels=list(ChannelKind))
    return make_response(html, status)


# -- one client --------------------------------------------------------------------------------
@bp.get("/contacts/<int:contact_id>")
@login_required
def show(contact_id: int):
    contact = access_contact(contact_id, current_user)
    workspace_id, now = current_user.workspace_id, utcnow()
    tickets = list(db.session.scalars(
        select(Ticket).where(Ticket.workspace_id == workspace_id, Ticket.contact_id == contact.id)
        .order_by(Ticket.id.desc()).limit(50)))
    return render_template(
        "contacts/show.html", contact=contact, tickets=tickets, now=now, saved=request.args.get("saved"),
        erasure=ContactErasure.of_contact(contact.id),
        conversations=conversations_of_contact(workspace_id, contact.id),
        satisfaction=satisfaction_of_contact(workspace_id, contact.id),
        appointments=Appointment.for_client_page(contact.id, now), later_channels=contact_channels(contact),
        **_identities_context(contact), **_budget_context(contact))


@bp.post("/contacts/<int:contact_id>/identities")
@login_required
def add_identity(contact_id: int):
    contact = access_contact(contact_id, current_user)
    try:
        do_add_identity(contact, request.form.get("kind", ""), request.form.get("address", ""), actor=current_user)
    except ValidationError as exc:
        return _identities(contact, error=exc.message, status=422)
    return _identities(contact, message=_("Address added."))


@bp.post("/contacts/<int:contact_id>/identities/<int:identity_id>")
@login_required
def update_identity(contact_id: int, identity_id: int):
    contact = access_contact(contact_id, current_user)
    identity = access_identity(identity_id, contact)
    try:
        do_update_identity(identity, request.form.get("address", ""), actor=current_user)
    except ValidationError as exc:
        return _identities(contact, error=exc.message, status=422)
    return _identities(contact, message=_("Address saved."))


@bp.post("/contacts/<int:contact_id>/identities/<int:identity_id>/delete")
@login_required
def remove_identity(contact_id: int, identity_id: int):
    contact = access_contact(contact_id, current_user)
    do_remove_identity(access_identity(identity_id, contact), actor=current_user)
    return _identities(contact, message=_("Address removed."))


def _identities(contact, *, message: str | None = None, error: str | None = None, status: int = 200):
    db.session.expire(contact, ["identities"])
    html = render_template("contacts/_identities.html", contact=contact, identity_error=error,
                           erasure=ContactErasure.of_contact(contact.id), **_identities_context(contact))
    if not request.htmx:
        if error:
            return error_response(status, error)
        return redirect(url_for("contacts.show", contact_id=contact.id) + "#identities", 303)
    headers = toast_headers(message, level="info") if message else {}
    return make_response(html, status, headers)


def _identities_context(contact) -> dict:
    return {"identities": identities_by_kind(contact), "channels": list(ChannelKind)}


@bp.post("/contacts/<int:contact_id>/budget")
@login_required
def set_budget(contact_id: int):
    contact = access_contact(contact_id, current_user)
    check_admin(current_user)
    do_set_budget(contact, period=request.form.get("period", ""), amount=request.form.get("amount", ""),
                  actor=current_user)
    html = render_template("contacts/_budget.html", contact=contact, **_budget_context(contact))
    return make_response(html, 200, toast_headers(_("Budget saved."), level="info"))


def _budget_context(contact) -> dict:
    now = utcnow()
    month_start, month_end = period_bounds(BudgetPeriod.MONTH, local_today(contact.workspace_id, now))
    return {
        "budgets": budgets_of_contact(contact, now=now), "periods": list(BudgetPeriod),
        "currency": TicketSettings.of(contact.workspace_id).currency,
        "month_spend": spend_of(contact.workspace_id, contact_id=contact.id, start=month_start, end=month_end),
        "total_spend": spend_of(contact.workspace_id, contact_id=contact.id),
    }


# -- appointments ------------------------------------------------------------------------------
@bp.get("/contacts/<int:contact_id>/appointments")
@login_required
def appointments(contact_id: int):
    return _appointments(access_contact(contact_id, current_user))


@bp.post("/contacts/<int:contact_id>/appointments")
@login_required
def create_appointment(contact_id: int):
    contact = _editable(access_contact(contact_id, current_user))
    try:
        change = check_appointment_form(request.form, timezone=current_user.workspace.timezone, now=utcnow())
    except ValidationError as exc:
        return _appointments(contact, editing="new", error=exc.message, status=422)
    do_agent_create_appointment(contact, change, actor=current_user)
    return _appointments(contact, message=_("Appointment added."))


@bp.get("/contacts/<int:contact_id>/appointments/<int:appointment_id>/edit")
@login_required
def edit_appointment(contact_id: int, appointment_id: int):
    contact = _editable(access_contact(contact_id, current_user))
    return _appointments(contact, editing=_appointment_of(contact, appointment_id).id)


@bp.post("/contacts/<int:contact_id>/appointments/<int:appointment_id>")
@login_required
def update_appointment(contact_id: int, appointment_id: int):
    contact = _editable(access_contact(contact_id, current_user))
    appointment = _appointment_of(contact, appointment_id)
    try:
        change = check_appointment_form(request.form, timezone=current_user.workspace.timezone, now=utcnow(),
                                        current=appointment)
    except ValidationError as exc:
        return _appointments(contact, editing=appointment.id, error=exc.message, status=422)
    told = do_update_appointment(appointment, change, actor=current_user)
    return _appointments(contact, message=_("Appointment saved.") if told else
                         _("Appointment saved, but no channel reaches the client: tell them yourself."))


@bp.post("/contacts/<int:contact_id>/appointments/<int:appointment_id>/cancel")
@login_required
def cancel_appointment(contact_id: int, appointment_id: int):
    contact = _editable(access_contact(contact_id, current_user))
    appointment = _appointment_of(contact, appointment_id)
    told = do_cancel_appointment(appointment, actor=current_user, notify=bool(request.form.get("notify")))
    return _appointments(contact, message=_("Appointment cancelled.") if told else
                         _("Appointment cancelled, but no channel reaches the client: tell them yourself."))


def _editable(contact):
    if ContactErasure.of_contact(contact.id) is not None:
        raise NotAllowed(_("This client's personal data was erased: the record cannot be edited."))
    return contact


def _appointment_of(contact, appointment_id: int):
    appointment = access_appointment(appointment_id, current_user)
    if appointment.contact_id != contact.id:
        abort(404)
    return appointment


def _appointments(contact, *, editing=None, error: str | None = None, message: str | None = None,
                  status: int = 200):
    html = render_template("contacts/_appointments.html", contact=contact, editing=editing, appointment_error=error,
                           values=request.form if error else None, erasure=ContactErasure.of_contact(contact.id),
                           appointments=Appointment.for_client_page(contact.id, utcnow()))
    if not request.htmx and request.method == "POST":
        if error:
            return error_response(status, error)
        return redirect(url_for("contacts.show", contact_id=contact.id) + "#appointments", 303)
    return make_response(html, status, toast_headers(message, level="info") if message else {})


# -- GDPR --------------------------------------------------------------------------------------
@bp.get("/contacts/<int:contact_id>/export")
@login_required
@writes
def export(contact_id: int):
    contact = access_contact(contact_id, current_user)
    check_admin(current_user)
    data = export_contact_data(contact)
    do_record_export(contact, actor=current_user)
    response = make_response(json.dumps(data, ensure_ascii=False, indent=2))
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="client-{contact.id}-personal-data.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
@login_required
def erase(contact_id: int):
    contact = access_contact(contact_id, current_user)
    check_admin(current_user)
    if ContactErasure.of_contact(contact.id) is not None:
        return redirect(url_for("contacts.show", contact_id=contact.id), 303)
    if request.method == "POST":
        try:
            do_erase_contact(contact, actor=current_user, confirmation=request.form.get("confirm"))
        except ValidationError as exc:
            return make_response(render_template("contacts/erase.html", contact=contact, error=exc.message), 422)
        return redirect(url_for("contacts.show", contact_id=contact.id), 303)
    return render_template("contacts/erase.html", contact=contact, error=None)
