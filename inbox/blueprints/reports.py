"""Reports: a date range and filters, then every report as an SVG chart, its table and a CSV.

Who sees what: admins see the whole team and the cost report. Agents see the same reports
narrowed to their own work (their tickets, their conversations, their ratings): the agent
filter is forced to themselves, and costs (hourly rates, client budgets) stay with admins.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..actions.timetracking import local_today
from ..charts import BarChart, Series, bar_chart
from ..extensions import db
from ..kinds import ChannelKind
from ..models import Contact, Ticket, TicketCategory, User, utcnow
from ..models.reports import (
    DECISION_KINDS, ReportFilter, Window, conversion, costs, message_facts,
    satisfaction, sla_compliance, ticket_flow, workspace_timezone,
)

bp = Blueprint("reports", __name__)
CLIENT_CHOICES = 300  # clients offered in the filter: those with tickets in the range


class Report(StrEnum):
    FLOW = "tickets"
    SLA = "sla"
    SATISFACTION = "satisfaction"
    COMMENTS = "comments"
    CHANNELS = "channels"
    CONVERSION = "conversion"
    PREFERRED = "preferred-channels"
    COSTS = "costs"
    COST_PERIODS = "cost-periods"


ADMIN_ONLY = {Report.COSTS, Report.COST_PERIODS}


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything the page shows, computed once per request (a bounded number of queries)."""

    filters: ReportFilter
    window: Window
    flow: object
    sla: object
    satisfaction: object
    channels: object
    conversion: object
    preferred: dict
    costs: object | None  # admins only


def access_filters() -> ReportFilter:
    """The filters from the URL; an agent's are narrowed to their own work."""
    f = ReportFilter.from_args(request.args, today=local_today(current_user.workspace_id))
    if not current_user.is_admin:
        f = replace(f, agent_id=current_user.id)
    return f


def compute(f: ReportFilter, *, only: set[Report] | None = None) -> Figures:
    ws = current_user.workspace_id
    w = Window.of(f, workspace_timezone(ws))

    def wanted(*reports: Report) -> bool:
        return only is None or bool(only & set(reports))

    # The channel, conversion and preferred-channel reports read the range's messages in one pass.
    facts = message_facts(ws, f, w) if wanted(Report.CHANNELS, Report.CONVERSION, Report.PREFERRED) else None
    return Figures(
        filters=f, window=w,
        flow=ticket_flow(ws, f, w) if wanted(Report.FLOW) else None,
        sla=sla_compliance(ws, f, w, now=utcnow()) if wanted(Report.SLA) else None,
        satisfaction=satisfaction(ws, f, w) if wanted(Report.SATISFACTION, Report.COMMENTS) else None,
        channels=facts.channels if wanted(Report.CHANNELS) else None,
        conversion=conversion(ws, f, w, by_answer=facts.by_answer) if wanted(Report.CONVERSION) else None,
        preferred=facts.preferred if wanted(Report.PREFERRED) else {},
        costs=costs(ws, f, w) if current_user.is_admin and wanted(Report.COSTS, Report.COST_PERIODS) else None,
    )


@bp.get("/reports")
@login_required
def index():
    figures = compute(access_filters())
    context = {"fig": figures, "charts": charts_of(figures), "Report": Report}
    if request.htmx:
        return render_template("reports/_body.html", **context)
    return render_template("reports/index.html", **context, **choices(figures.filters))


@bp.get("/reports/<report>.csv")
@login_required
def export(report: str):
    try:
        which = Report(report)
    except ValueError:
        abort(404)
    if which in ADMIN_ONLY and not current_user.is_admin:
        abort(403)
    f = access_filters()
    header, rows = csv_rows(which, compute(f, only={which}))
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheets then read the file as UTF-8
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    name = f"coccinelle-{which}-{f.start.isoformat()}-{f.end.isoformat()}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def choices(f: ReportFilter) -> dict:
    """The filter form's options: agents (admins only) and the clients with tickets in the range."""
    ws = current_user.workspace_id
    agents = User.agents_of(ws) if current_user.is_admin else []
    w = Window.of(f, workspace_timezone(ws))
    with_tickets = (select(Ticket.contact_id).where(Ticket.workspace_id == ws, Ticket.created_at >= w.start,
                                                    Ticket.created_at < w.end))
    clients = list(db.session.execute(
        select(Contact.id, Contact.name).where(Contact.workspace_id == ws, (Contact.id.in_(with_tickets))
                                               | (Contact.id == (f.contact_id or 0)))
        .order_by(Contact.name).limit(CLIENT_CHOICES)))
    return {"agents": agents, "clients": clients, "channels": list(ChannelKind), "categories": list(TicketCategory)}


# -- labels and formats ----------------------------------------------------------------------------
def channel_name(kind: str) -> str:
    return {"sms": _("SMS"), "email": _("Email"), "whatsapp": _("WhatsApp"), "telegram": _("Telegram"),
            "voice": _("Voice"), "": _("Not set")}.get(kind, kind)


def category_name(category: str) -> str:
    return {"general": _("General"), "billing": _("Billing"), "technical": _("Technical"),
            "bug_report": _("Bug report"), "account": _("Account"), "suggestion": _("Suggestion")}.get(category, category)


def decision_name(kind: str) -> str:
    return {"auto_reply": _("Sara answered"), "collect": _("Sara recorded an answer"),
            "escalate": _("Sara escalated"), "hand_to_human": _("Sara handed over")}.get(kind, kind)


def appointment_name(status: str) -> str:
    return {"scheduled": _("Scheduled"), "confirmed": _("Confirmed"), "cancelled": _("Cancelled"),
            "done": _("Done"), "no_show": _("No-show")}.get(status, status)


def period_label(start: date, unit: str) -> str:
    return format_date(start, "d MMM") if unit == "week" else format_date(start, "MMM yyyy")


def hours(minutes: int | None) -> Decimal | None:
    return None if minutes is None else (Decimal(minutes) / 60).quantize(Decimal("0.1"))


def _hours_text(value) -> str:
    return _("%(n)s h", n=format_decimal(value, "0.#"))


def _count_text(value) -> str:
    return format_decimal(value, "#,##0.#")


def _percent_text(value) -> str:
    return format_percent(Decimal(str(value)) / 100)


def percent(rate: Decimal | None) -> Decimal | None:
    return None if rate is None else rate * 100


# -- charts ----------------------------------------------------------------------------------------
def charts_of(fig: Figures) -> dict[str, BarChart]:
    unit = fig.window.unit
    periods = [period_label(p.start, unit) for p in fig.flow.periods]
    per = _("per week") if unit == "week" else _("per month")
    result = {
        "flow": bar_chart(
            title=_("Tickets opened and closed %(per)s", per=per),
            desc=_("%(opened)d tickets opened and %(closed)d closed between %(start)s and %(end)s.",
                   opened=fig.flow.opened, closed=fig.flow.closed, start=format_date(fig.filters.start),
                   end=format_date(fig.filters.end)),
            labels=periods, integer=True, fmt=_count_text,
            series=[Series(_("Tickets opened"), [p.opened for p in fig.flow.periods]),
                    Series(_("Tickets closed"), [p.closed for p in fig.flow.periods])]),
        "times": bar_chart(
            title=_("Mean first response and resolution times %(per)s, in hours", per=per),
            desc=_("Mean first response: %(first)s; mean resolution: %(res)s, for the tickets opened in the range.",
                   first=_hours_text(hours(fig.flow.first_response_minutes) or 0),
                   res=_hours_text(hours(fig.flow.resolution_minutes) or 0)),
            labels=periods, fmt=_hours_text,
            series=[Series(_("First response"), [hours(p.first_response_minutes) for p in fig.flow.periods]),
                    Series(_("Resolution"), [hours(p.resolution_minutes) for p in fig.flow.periods])]),
        "sla": bar_chart(
            title=_("SLA compliance per category"),
            desc=_("Share of deadlines met, for first response and resolution, per ticket category."),
            labels=[category_name(r.category) for r in fig.sla.rows], fmt=_percent_text,
            series=[Series(_("First response met"), [percent(r.first_response_rate) for r in fig.sla.rows]),
                    Series(_("Resolution met"), [percent(r.resolution_rate) for r in fig.sla.rows])]),
        "satisfaction": bar_chart(
            title=_("Satisfaction per agent: ratings from 1 to 5"),
            desc=_("%(n)d ratings, mean %(mean)s out of 5.", n=fig.satisfaction.total.count,
                   mean=format_decimal(fig.satisfaction.total.mean or 0, "0.00")),
            labels=[a.name or _("No agent") for a in fig.satisfaction.agents], stacked=True, integer=True, fmt=_count_text,
            series=[Series(_("%(n)d out of 5", n=score), [a.distribution[score] for a in fig.satisfaction.agents])
                    for score in range(1, 6)]),
        "channels": bar_chart(
            title=_("Messages received and sent per channel"),
            desc=_("%(received)d messages received, %(sent)d sent; %(rate)s of received messages answered.",
                   received=fig.channels.total.received, sent=fig.channels.total.sent,
                   rate=_percent_text(percent(fig.channels.total.response_rate) or 0)),
            labels=[channel_name(r.kind) for r in fig.channels.rows], integer=True, fmt=_count_text,
            series=[Series(_("Received"), [r.received for r in fig.channels.rows]),
                    Series(_("Sent"), [r.sent for r in fig.channels.rows])]),
        "conversion": bar_chart(
            title=_("Who answered the conversations"),
            desc=_("%(n)d conversations: %(bot)d answered by Sara alone, %(people)d by the team, %(none)d unanswered.",
                   n=fig.conversion.conversations, bot=fig.conversion.by_bot, people=fig.conversion.by_people,
                   none=fig.conversion.unanswered),
            labels=[_("Sara alone"), _("The team"), _("Unanswered")], integer=True, fmt=_count_text,
            series=[Series(_("Conversations"), [fig.conversion.by_bot, fig.conversion.by_people,
                                                fig.conversion.unanswered])]),
        "preferred": bar_chart(
            title=_("Preferred channel of the customers who wrote"),
            desc=_("%(n)d customers wrote in the range.", n=sum(fig.preferred.values())),
            labels=[channel_name(k) for k in fig.preferred], integer=True, fmt=_count_text,
            series=[Series(_("Customers"), list(fig.preferred.values()))]),
    }
    if fig.costs is not None:
        c = fig.costs
        money = lambda v: format_decimal(v, "#,##0")  # noqa: E731  (axis: whole units)
        result["costs"] = bar_chart(
            title=_("Cost of support %(per)s against budget (%(currency)s)", per=per, currency=c.currency),
            desc=_("Time logged cost %(cost)s %(currency)s for a budget of %(budget)s %(currency)s over the range.",
                   cost=format_decimal(c.cost, "#,##0.00"), budget=format_decimal(c.budget, "#,##0.00"),
                   currency=c.currency),
            labels=[period_label(p.start, unit) for p in c.periods], fmt=money,
            series=[Series(_("Cost"), [p.cost for p in c.periods]), Series(_("Budget"), [p.budget for p in c.periods])])
    return result


# -- CSV ---------------------------------------------------------------------------------------------
def _n(value) -> str:
    """Machine-readable cells: plain numbers with a dot, empty when unknown."""
    return "" if value is None else str(value)


def csv_rows(which: Report, fig: Figures) -> tuple[list[str], list[list[str]]]:
    if which == Report.FLOW:
        return ([_("Period start"), _("Period end"), _("Tickets opened"), _("Tickets closed"), _("Mean first response (minutes)"),
                 _("Mean resolution (minutes)")],
                [[p.start.isoformat(), p.end.isoformat(), p.opened, p.closed, _n(p.first_response_minutes),
                  _n(p.resolution_minutes)] for p in fig.flow.periods])
    if which == Report.SLA:
        return ([_("Category"), _("First response met"), _("First response missed"), _("Resolution met"),
                 _("Resolution missed")],
                [[r.category or _("Total"), r.first_response_met, r.first_response_missed, r.resolution_met,
                  r.resolution_missed] for r in [*fig.sla.rows, fig.sla.total]])
    if which == Report.SATISFACTION:
        return ([_("Agent"), _("Ratings"), _("Mean"), *[_("%(n)d out of 5", n=s) for s in range(1, 6)]],
                [[a.name or _("No agent"), a.count, _n(a.mean), *[a.distribution[s] for s in range(1, 6)]]
                 for a in fig.satisfaction.agents]
                + [[_("All agents"), t.count, _n(t.mean), *[t.distribution[s] for s in range(1, 6)]]
                   for t in [fig.satisfaction.total]])
    if which == Report.COMMENTS:
        return ([_("Date"), _("Ticket"), _("Agent"), _("Score"), _("Comment")],
                [[c.at.isoformat(), f"TKT-{c.ticket_number:06d}", c.agent_name or _("No agent"), c.score, c.comment]
                 for c in fig.satisfaction.comments])
    if which == Report.CHANNELS:
        return ([_("Channel"), _("Received"), _("Sent"), _("Answered"), _("Response rate"),
                 _("Mean response time (minutes)")],
                [[r.kind or _("Total"), r.received, r.sent, r.answered, _n(r.response_rate), _n(r.response_minutes)]
                 for r in [*fig.channels.rows, fig.channels.total]])
    if which == Report.CONVERSION:
        c = fig.conversion
        rows = [["conversations", c.conversations], ["answered_by_sara_alone", c.by_bot],
                ["answered_by_the_team", c.by_people], ["unanswered", c.unanswered]]
        rows += [[f"sara_{k}", c.decisions[k]] for k in DECISION_KINDS]
        rows += [[f"appointments_{k}", n] for k, n in c.appointments.items()]
        return [_("Measure"), _("Value")], rows
    if which == Report.PREFERRED:
        return [_("Channel"), _("Customers")], [[k or "none", n] for k, n in fig.preferred.items()]
    if which == Report.COSTS:
        c = fig.costs
        return ([_("Client"), _("Minutes"), _("Cost"), _("Tickets"), _("Cost per ticket"), _("Budget"),
                 _("Budget used"), _("Currency")],
                [[r.name, r.minutes, r.cost, r.tickets, _n(r.cost_per_ticket), _n(r.budget), _n(r.budget_used),
                  c.currency] for r in c.clients]
                + [[_("Total"), c.minutes, c.cost, c.tickets, _n(c.cost_per_ticket), c.budget, _n(c.budget_used),
                    c.currency]])
    c = fig.costs  # Report.COST_PERIODS
    return ([_("Period start"), _("Period end"), _("Minutes"), _("Cost"), _("Budget"), _("Currency")],
            [[p.start.isoformat(), p.end.isoformat(), p.minutes, p.cost, p.budget, c.currency] for p in c.periods])


@bp.context_processor
def _names():
    return {"channel_name": channel_name, "category_name": category_name, "decision_name": decision_name,
            "appointment_name": appointment_name, "period_label": period_label}
