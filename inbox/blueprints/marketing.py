"""Outbound, admin side: campaigns, segments (with a live count), templates, follow-up rules,
labels and each channel's sending rules (issue 8). Admins only; agents get the 403 page."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..actions import campaigns as camp
from ..actions.followups import access_rule, check_rule_form, do_save_rule, recent_followups
from ..actions.labels import access_label, do_create_label, do_delete_label, do_update_label
from ..actions.scheduled import check_send_at
from ..actions.segments import access_segment, check_segment_form, do_delete_segment, do_save_segment
from ..errors import ValidationError
from ..errors_http import toast_headers
from ..kinds import ChannelKind
from ..models import Channel, FollowUpRule, FollowUpTrigger, Label, OutboundTemplate, Segment, utcnow
from ..models.label import PALETTE
from ..models.segment import segment_count, segment_sample
from ..orchestrator.sending_rules import PROVIDER_RATE_PER_MINUTE, SendRules, format_hours
from .settings import admin_required

bp = Blueprint("marketing", __name__, url_prefix="/outbound")


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")
    return response


# -- words for states (translated here, shown by the templates) -----------------------------------
@bp.app_template_global()
def campaign_status_label(status: str) -> str:
    return {"draft": _("Draft"), "scheduled": _("Scheduled"), "sending": _("Sending"), "paused": _("Paused"),
            "done": _("Done"), "cancelled": _("Cancelled")}.get(status, status)


@bp.app_template_global()
def recipient_state_label(state: str) -> str:
    return {"pending": _("Waiting"), "queued": _("Sent"), "skipped": _("Not sent"),
            "cancelled": _("Cancelled")}.get(state, state)


@bp.app_template_global()
def skip_reason_label(reason: str | None) -> str:
    return {"no_channel": _("No usable channel"), "opted_out": _("Opted out"),
            "no_opt_in": _("No opt-in recorded"), "whatsapp_window": _("WhatsApp window closed, no approved template"),
            "error": _("Error")}.get(reason or "", reason or "")


@bp.app_template_global()
def waiting_reason_label(reason: str | None) -> str:
    return {"quiet_hours": _("Waiting for the channel’s allowed hours."),
            "daily_limit": _("Daily limit reached: continues tomorrow."),
            "rate_limit": _("Throttled to the provider’s rate."),
            "channel_disabled": _("A channel is disabled: its recipients wait.")}.get(reason or "", "")


@bp.app_template_global()
def trigger_label(trigger: str, days: int | None) -> str:
    if trigger == "no_reply":
        return (_("No reply from the customer %(n)d days after our last message", n=days) if days
                else _("No reply from the customer after our last message"))
    if trigger == "after_appointment":
        return _("%(n)d days after an appointment", n=days) if days else _("After an appointment")
    return trigger


@bp.get("/")
@admin_required
def index():
    return redirect(url_for("marketing.campaigns"))


# -- campaigns ------------------------------------------------------------------------------------
@bp.get("/campaigns")
@admin_required
def campaigns():
    return render_template("outbound/campaigns.html", campaigns=camp.campaigns_of(current_user.workspace_id))


@bp.route("/campaigns/new", methods=["GET", "POST"])
@admin_required
def new_campaign():
    if request.method == "POST":
        try:
            values = camp.check_campaign_form(request.form, user=current_user)
        except ValidationError as exc:
            return _campaign_form(None, error=exc), 422
        campaign = camp.do_create_campaign(current_user.workspace_id, values, actor=current_user)
        return redirect(url_for("marketing.campaign", campaign_id=campaign.id))
    return _campaign_form(None)


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_campaign(campaign_id: int):
    campaign = camp.access_campaign(campaign_id, current_user)
    if request.method == "POST":
        try:
            camp.do_update_campaign(campaign, camp.check_campaign_form(request.form, user=current_user),
                                    actor=current_user)
        except ValidationError as exc:
            return _campaign_form(campaign, error=exc), 422
        return redirect(url_for("marketing.campaign", campaign_id=campaign.id))
    return _campaign_form(campaign)


@bp.get("/campaigns/<int:campaign_id>")
@admin_required
def campaign(campaign_id: int):
    campaign = camp.access_campaign(campaign_id, current_user)
    context = {"campaign": campaign, "progress": camp.progress(campaign)}
    if campaign.is_editable:
        plan = camp.plan_audience(campaign, now=utcnow())
        context.update(plan=plan, previews=camp.preview(campaign, plan))
    else:
        context["recipients"] = camp.recipients_page(campaign, state=request.args.get("show"))
    return render_template("outbound/campaign.html", **context)


@bp.get("/campaigns/<int:campaign_id>/progress")
@admin_required
def campaign_progress(campaign_id: int):
    campaign = camp.access_campaign(campaign_id, current_user)
    return render_template("outbound/_progress.html", campaign=campaign, progress=camp.progress(campaign))


@bp.post("/campaigns/<int:campaign_id>/launch")
@admin_required
def launch_campaign(campaign_id: int):
    campaign = camp.access_campaign(campaign_id, current_user)
    at = None
    if request.form.get("mode") == "later":
        at = check_send_at(request.form.get("send_at"), None, timezone=current_user.workspace.timezone, now=utcnow())
    camp.do_launch_campaign(campaign, actor=current_user, at=at)
    return _back_to(campaign, _("Campaign scheduled.") if at else _("Campaign started."))


@bp.post("/campaigns/<int:campaign_id>/<any(pause, resume, cancel):action>")
@admin_required
def control_campaign(campaign_id: int, action: str):
    campaign = camp.access_campaign(campaign_id, current_user)
    {"pause": camp.do_pause_campaign, "resume": camp.do_resume_campaign,
     "cancel": camp.do_cancel_campaign}[action](campaign, actor=current_user)
    message = {"pause": _("Campaign paused."), "resume": _("Campaign resumed."),
               "cancel": _("Campaign cancelled.")}[action]
    if request.htmx:
        html = render_template("outbound/_progress.html", campaign=campaign, progress=camp.progress(campaign))
        return make_response(html, 200, toast_headers(message, level="info"))
    return _back_to(campaign, message)


def _back_to(campaign, message: str):
    if request.htmx:
        return make_response("", 204, {"HX-Redirect": url_for("marketing.campaign", campaign_id=campaign.id),
                                       **toast_headers(message, level="info")})
    return redirect(url_for("marketing.campaign", campaign_id=campaign.id))


def _campaign_form(campaign, *, error: ValidationError | None = None):
    return render_template(
        "outbound/campaign_form.html", campaign=campaign, error=error, form=request.form if error else None,
        templates=OutboundTemplate.of_workspace(current_user.workspace_id),
        segments=Segment.of_workspace(current_user.workspace_id), kinds=[k for k in ChannelKind if k != "voice"])


# -- segments -------------------------------------------------------------------------------------
@bp.get("/segments")
@admin_required
def segments():
    now = utcnow()
    items = [(s, segment_count(current_user.workspace_id, s.rules, now=now))
             for s in Segment.of_workspace(current_user.workspace_id)]
    return render_template("outbound/segments.html", segments=items)


@bp.route("/segments/new", methods=["GET", "POST"])
@bp.route("/segments/<int:segment_id>", methods=["GET", "POST"])
@admin_required
def segment(segment_id: int | None = None):
    item = access_segment(segment_id, current_user) if segment_id else None
    if request.method == "POST":
        try:
            name, rules = check_segment_form(request.form, user=current_user)
        except ValidationError as exc:
            return _segment_form(item, error=exc), 422
        do_save_segment(current_user.workspace_id, name=name, rules=rules, existing=item, actor=current_user)
        return redirect(url_for("marketing.segments"))
    return _segment_form(item)


@bp.post("/segments/count")
@admin_required
def segment_live_count():
    """The live count under the segment form (HTMX, on every change)."""
    _name, rules = check_segment_form(request.form, user=current_user, require_name=False)
    now = utcnow()
    return render_template("outbound/_segment_count.html",
                           count=segment_count(current_user.workspace_id, rules, now=now),
                           sample=segment_sample(current_user.workspace_id, rules, now=now))


@bp.post("/segments/<int:segment_id>/delete")
@admin_required
def delete_segment(segment_id: int):
    do_delete_segment(access_segment(segment_id, current_user), actor=current_user)
    return redirect(url_for("marketing.segments"))


def _segment_form(item, *, error: ValidationError | None = None):
    rules = item.rules if item else None
    now = utcnow()
    count = segment_count(current_user.workspace_id, rules, now=now) if rules else None
    return render_template("outbound/segment_form.html", segment=item, rules=rules, error=error,
                           form=request.form if error else None, labels=Label.of_workspace(current_user.workspace_id),
                           kinds=[k for k in ChannelKind], count=count,
                           sample=segment_sample(current_user.workspace_id, rules, now=now) if rules else [])


# -- templates ------------------------------------------------------------------------------------
@bp.get("/templates")
@admin_required
def templates():
    return render_template("outbound/templates.html", templates=OutboundTemplate.of_workspace(current_user.workspace_id))


@bp.route("/templates/new", methods=["GET", "POST"])
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@admin_required
def template(template_id: int | None = None):
    item = camp.access_outbound_template(template_id, current_user) if template_id else None
    if request.method == "POST":
        try:
            values = camp.check_template_form(request.form, workspace_id=current_user.workspace_id, existing=item)
        except ValidationError as exc:
            return render_template("outbound/template_form.html", template=item, error=exc, form=request.form,
                                   kinds=list(ChannelKind)), 422
        camp.do_save_template(current_user.workspace_id, values, existing=item, actor=current_user)
        return redirect(url_for("marketing.templates"))
    return render_template("outbound/template_form.html", template=item, error=None, form=None, kinds=list(ChannelKind))


# -- follow-ups -----------------------------------------------------------------------------------
@bp.route("/followups", methods=["GET", "POST"])
@bp.route("/followups/<int:rule_id>", methods=["GET", "POST"])
@admin_required
def followups(rule_id: int | None = None):
    rule = access_rule(rule_id, current_user) if rule_id else None
    error = None
    if request.method == "POST":
        try:
            do_save_rule(current_user.workspace_id, check_rule_form(request.form, user=current_user), existing=rule,
                         actor=current_user)
            return redirect(url_for("marketing.followups"))
        except ValidationError as exc:
            error = exc
    html = render_template("outbound/followups.html", rule=rule, error=error, form=request.form if error else None,
                           rules=FollowUpRule.of_workspace(current_user.workspace_id), triggers=list(FollowUpTrigger),
                           templates=OutboundTemplate.of_workspace(current_user.workspace_id),
                           recent=recent_followups(current_user.workspace_id))
    return html, (422 if error else 200)


# -- labels ---------------------------------------------------------------------------------------
@bp.route("/labels", methods=["GET", "POST"])
@admin_required
def labels():
    error = None
    if request.method == "POST":
        try:
            do_create_label(current_user.workspace_id, name=request.form.get("name", ""),
                            color=request.form.get("color", ""), actor=current_user)
            return redirect(url_for("marketing.labels"))
        except ValidationError as exc:
            error = exc
    html = render_template("outbound/labels.html", labels=Label.of_workspace(current_user.workspace_id),
                           palette=PALETTE, error=error, form=request.form if error else None)
    return html, (422 if error else 200)


@bp.post("/labels/<int:label_id>")
@admin_required
def update_label(label_id: int):
    label = access_label(label_id, current_user)
    do_update_label(label, name=request.form.get("name", ""), color=request.form.get("color", ""), actor=current_user)
    return redirect(url_for("marketing.labels"))


@bp.post("/labels/<int:label_id>/delete")
@admin_required
def delete_label(label_id: int):
    do_delete_label(access_label(label_id, current_user), actor=current_user)
    return redirect(url_for("marketing.labels"))


# -- sending rules per channel --------------------------------------------------------------------
@bp.route("/rules", methods=["GET", "POST"])
@admin_required
def rules():
    channels = [c for c in Channel.of_workspace(current_user.workspace_id) if c.kind != ChannelKind.VOICE]
    if request.method == "POST":
        channel = next((c for c in channels if c.id == request.form.get("channel_id", type=int)), None)
        if channel is None:
            raise ValidationError(_("This channel does not exist."), field="channel_id")
        camp.do_set_sending_rules(channel, send_hours=request.form.get("send_hours", ""),
                             daily_limit=request.form.get("daily_limit", ""),
                             rate_per_minute=request.form.get("rate_per_minute", ""), actor=current_user)
        return redirect(url_for("marketing.rules", saved=channel.id))
    rows = [(c, SendRules.of(c)) for c in channels]
    return render_template("outbound/rules.html", rows=rows, format_hours=format_hours,
                           defaults=PROVIDER_RATE_PER_MINUTE, saved=request.args.get("saved", type=int),
                           zone=ZoneInfo(current_user.workspace.timezone))
