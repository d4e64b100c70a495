"""Settings for Sara (admins) and corrections of her decisions (agents)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..actions.sara import (
    access_article, access_decision, access_intent, check_article, check_intent, check_settings,
    do_correct_decision, do_save_article, do_save_intent, do_update_settings, token_usage,
)
from ..ai import types as ai
from ..errors import ValidationError
from ..extensions import db
from ..models import Channel, KnowledgeArticle, SaraIntent, SaraSettings, utcnow
from .settings import admin_required

bp = Blueprint("assistant", __name__)
USAGE_DAYS = 30  # the period of the token and cost figures on the Sara page


@bp.route("/settings/sara", methods=["GET", "POST"])
@admin_required
def settings():
    error = None
    if request.method == "POST":
        try:
            do_update_settings(current_user.workspace_id, check_settings(request.form), actor=current_user)
            return redirect(url_for("assistant.settings", saved=1))
        except ValidationError as exc:
            error = exc
    settings = SaraSettings.of(current_user.workspace_id)
    usage = token_usage(current_user.workspace_id, now=utcnow(), days=USAGE_DAYS)
    cost = usage.cost_per_1000(settings.prompt_price_per_million, settings.completion_price_per_million)
    return render_template("sara/settings.html", settings=settings, usage=usage, cost=cost, usage_days=USAGE_DAYS,
                           channels=Channel.of_workspace(current_user.workspace_id), error=error,
                           saved=request.args.get("saved")), 422 if error else 200


@bp.get("/settings/knowledge")
@admin_required
def knowledge():
    articles = db.session.scalars(select(KnowledgeArticle).where(
        KnowledgeArticle.workspace_id == current_user.workspace_id).order_by(KnowledgeArticle.title))
    intents = db.session.scalars(select(SaraIntent).where(
        SaraIntent.workspace_id == current_user.workspace_id).order_by(SaraIntent.name))
    return render_template("sara/knowledge.html", articles=list(articles), intents=list(intents))


@bp.route("/settings/knowledge/articles/new", methods=["GET", "POST"], defaults={"article_id": None})
@bp.route("/settings/knowledge/articles/<int:article_id>", methods=["GET", "POST"])
@admin_required
def article(article_id: int | None):
    item = access_article(article_id, current_user) if article_id else None
    if request.method == "POST":
        try:
            do_save_article(current_user.workspace_id, check_article(request.form), article=item, actor=current_user)
            return redirect(url_for("assistant.knowledge"))
        except ValidationError as exc:
            return render_template("sara/article_form.html", article=item, form=request.form, error=exc), 422
    return render_template("sara/article_form.html", article=item, form=None, error=None)


@bp.route("/settings/knowledge/intents/new", methods=["GET", "POST"], defaults={"intent_id": None})
@bp.route("/settings/knowledge/intents/<int:intent_id>", methods=["GET", "POST"])
@admin_required
def intent(intent_id: int | None):
    item = access_intent(intent_id, current_user) if intent_id else None
    if request.method == "POST":
        try:
            values = check_intent(request.form, workspace_id=current_user.workspace_id)
            do_save_intent(current_user.workspace_id, values, intent=item, actor=current_user)
            return redirect(url_for("assistant.knowledge"))
        except ValidationError as exc:
            return _intent_form(item, form=request.form, error=exc), 422
    return _intent_form(item, form=None, error=None)


def _intent_form(item, *, form, error):
    articles = db.session.scalars(select(KnowledgeArticle).where(
        KnowledgeArticle.workspace_id == current_user.workspace_id).order_by(KnowledgeArticle.title))
    return render_template("sara/intent_form.html", intent=item, form=form, error=error, articles=list(articles),
                           categories=list(ai.TicketCategory), priorities=list(ai.Priority))


@bp.post("/inbox/sara/<int:decision_id>/correct")
@login_required
def correct(decision_id: int):
    decision = access_decision(decision_id, current_user)
    do_correct_decision(decision, category=request.form.get("category") or None,
                        intent=request.form.get("intent") or None, actor=current_user)
    return render_template("sara/_corrected.html", decision=decision)
