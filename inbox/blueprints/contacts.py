"""A minimal client page: who they are, their tickets, their budget, "Create ticket".
(The fuller CRM page comes later; this one is what tickets need.)"""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..actions.budgets import budgets_of_contact, do_set_budget
from ..actions.tickets import access_contact, check_admin
from ..actions.timetracking import local_today
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..extensions import db
from ..models import BudgetPeriod, Ticket, TicketSettings, utcnow
from ..models.budget import period_bounds
from ..models.timeentry import spend_of

bp = Blueprint("contacts", __name__)


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError):
    if request.htmx:
        return make_response("", 422, {**toast_headers(exc.message), "HX-Reswap": "none"})
    return make_response(render_template("errors/error.html", status=422, message=exc.message), 422)


@bp.get("/contacts/<int:contact_id>")
@login_required
def show(contact_id: int):
    contact = access_contact(contact_id, current_user)
    tickets = list(db.session.scalars(
        select(Ticket).where(Ticket.workspace_id == current_user.workspace_id, Ticket.contact_id == contact.id)
        .order_by(Ticket.id.desc()).limit(50)))
    return render_template("contacts/show.html", contact=contact, tickets=tickets, now=utcnow(),
                           **_budget_context(contact))


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
