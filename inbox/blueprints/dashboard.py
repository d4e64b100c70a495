"""The home dashboard: ticket counts, my tickets and the KPIs against their targets, live.

The page listens to the workspace's `ticket-changed` events (published by every ticket action
through the outbox) and re-fetches its fragment with a normal GET, so the counts are always
computed by the view, within the reader's workspace. One URL: page, or fragment for HTMX.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from ..models import utcnow
from ..models.reports import FIRST_RESPONSE_TARGET_MINUTES, SATISFACTION_TARGET, dashboard

bp = Blueprint("dashboard", __name__)


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


@bp.get("/dashboard")
@login_required
def index():
    board = dashboard(current_user.workspace_id, user_id=current_user.id, now=utcnow())
    context = {"board": board, "now": utcnow(), "first_response_target": FIRST_RESPONSE_TARGET_MINUTES,
               "satisfaction_target": SATISFACTION_TARGET}
    if request.htmx:
        return render_template("dashboard/_live.html", **context)
    return render_template("dashboard/index.html", **context)
