"""Admins teach Sara (knowledge base, intents, threshold, engine); agents correct her."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, select

from . import get_in_workspace
from .. import outbox
from ..ai import types as ai
from ..ai.cost import TokenCost
from ..errors import ValidationError
from ..extensions import db
from ..models import KnowledgeArticle, Message, SaraDecision, SaraIntent, SaraSettings, TrainingExample, User, utcnow


def access_article(article_id: int, user: User) -> KnowledgeArticle:
    return get_in_workspace(KnowledgeArticle, article_id, user.workspace_id)


def access_intent(intent_id: int, user: User) -> SaraIntent:
    return get_in_workspace(SaraIntent, intent_id, user.workspace_id)


def access_decision(decision_id: int, user: User) -> SaraDecision:
    return get_in_workspace(SaraDecision, decision_id, user.workspace_id)


def check_settings(form) -> dict:
    try:
        threshold = float((form.get("confidence_threshold") or "").replace(",", "."))
    except ValueError:
        raise ValidationError(_("The threshold is a number between 0 and 1."), field="confidence_threshold") from None
    if not 0 <= threshold <= 1:
        raise ValidationError(_("The threshold is a number between 0 and 1."), field="confidence_threshold")
    engine = form.get("engine") or "offline"
    if engine not in ("offline", "openai"):
        raise ValidationError(_("Unknown engine."), field="engine")
    return {"enabled": form.get("enabled") == "1", "engine": engine,
            "model": (form.get("model") or "gpt-4o-mini").strip()[:80], "confidence_threshold": threshold,
            "auto_reply_off_channels": sorted({int(v) for v in form.getlist("auto_reply_off") if v.isdigit()}),
            "prompt_price_per_million": _price(form, "prompt_price_per_million"),
            "completion_price_per_million": _price(form, "completion_price_per_million")}


def _price(form, field: str) -> Decimal | None:
    raw = (form.get(field) or "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        price = Decimal(raw)
    except InvalidOperation:
        price = Decimal(-1)
    if not price.is_finite() or not 0 <= price < 1_000_000:
        raise ValidationError(_("A price per million tokens is a positive number, e.g. 0.15."), field=field)
    return price.quantize(Decimal("0.0001"))


def token_usage(workspace_id: int, *, now: datetime, days: int = 30) -> TokenCost:
    """Sara's decisions of the last `days` days and the tokens they used (one aggregate query)."""
    row = db.session.execute(select(
        func.count(SaraDecision.id), func.coalesce(func.sum(SaraDecision.prompt_tokens), 0),
        func.coalesce(func.sum(SaraDecision.completion_tokens), 0),
        func.count(SaraDecision.id).filter(SaraDecision.prompt_tokens + SaraDecision.completion_tokens > 0),
    ).where(SaraDecision.workspace_id == workspace_id,
            SaraDecision.created_at >= now - timedelta(days=days))).one()
    return TokenCost(messages=int(row[0]), prompt_tokens=int(row[1]), completion_tokens=int(row[2]),
                     llm_calls=int(row[3]))


def do_update_settings(workspace_id: int, values: dict, *, actor: User | None) -> SaraSettings:
    """No actor: the demo seed switches her on, unaudited."""
    from .settings import do_save_settings

    return do_save_settings(SaraSettings, workspace_id, values, action="sara.settings", actor=actor)


def check_article(form) -> dict:
    title, body = (form.get("title") or "").strip(), (form.get("body") or "").strip()
    if not title:
        raise ValidationError(_("Give the article a title."), field="title")
    if not body:
        raise ValidationError(_("Write the answer Sara may give."), field="body")
    return {"title": title[:200], "body": body, "language": form.get("language") if form.get("language") in ("fr", "en") else "fr",
            "enabled": form.get("enabled", "1") == "1"}


def do_save_article(workspace_id: int, values: dict, *, article: KnowledgeArticle | None = None,
                    actor: User | None = None) -> KnowledgeArticle:
    from .audit import record, state

    before = state(article, values) if article is not None else None
    action = "sara.article_update" if article is not None else "sara.article_create"
    article = article or KnowledgeArticle(workspace_id=workspace_id)
    for key, value in values.items():
        setattr(article, key, value)
    db.session.add(article)
    if actor is not None:  # the demo seed writes its knowledge base unaudited
        record(actor, action, article, before, state(article, values), workspace_id=workspace_id, keep=("title",))
    outbox.commit()
    return article


def check_intent(form, *, workspace_id: int) -> dict:
    name = (form.get("name") or "").strip().lower().replace(" ", "_")
    if not name:
        raise ValidationError(_("Give the intent a name."), field="name")
    examples = [line.strip() for line in (form.get("examples") or "").splitlines() if line.strip()]
    if len(examples) < 3:
        raise ValidationError(_("Give at least 3 example phrases, one per line."), field="examples")
    try:
        action = ai.IntentAction(form.get("action") or "escalate")
        category = ai.TicketCategory(form.get("category") or "general")
        priority = ai.Priority(form.get("priority") or "medium")
    except ValueError:
        raise ValidationError(_("Unknown action, category or priority.")) from None
    article_id = int(form["article_id"]) if (form.get("article_id") or "").isdigit() else None
    if article_id is not None:
        article = db.session.get(KnowledgeArticle, article_id)
        if article is None or article.workspace_id != workspace_id:
            raise ValidationError(_("Unknown article."), field="article_id")
    if action == ai.IntentAction.AUTO_REPLY and article_id is None and not (form.get("reply_template") or "").strip():
        raise ValidationError(_("An automatic answer needs an article or a reply text."), field="article_id")
    return {"name": name[:80], "examples": examples, "action": str(action), "category": str(category),
            "priority": str(priority), "article_id": article_id,
            "reply_template": (form.get("reply_template") or "").strip() or None,
            "always_escalate": form.get("always_escalate") == "1"}


def do_save_intent(workspace_id: int, values: dict, *, intent: SaraIntent | None = None,
                   actor: User | None = None) -> SaraIntent:
    from .audit import record, state

    before = state(intent, values) if intent is not None else None
    action = "sara.intent_update" if intent is not None else "sara.intent_create"
    intent = intent or SaraIntent(workspace_id=workspace_id)
    for key, value in values.items():
        setattr(intent, key, value)
    db.session.add(intent)
    if actor is not None:
        record(actor, action, intent, before, state(intent, values), workspace_id=workspace_id, keep=("name",))
    outbox.commit()
    return intent


def do_correct_decision(decision: SaraDecision, *, category: str | None, intent: str | None, actor: User) -> None:
    """An agent re-labels Sara's decision: kept, and taught back as a training example."""
    if category is not None:
        try:
            category = str(ai.TicketCategory(category))
        except ValueError:
            raise ValidationError(_("Unknown category."), field="category") from None
    decision.corrected_by_id = actor.id
    decision.corrected_at = utcnow()
    decision.corrected_category = category
    decision.corrected_intent = intent or None
    message = db.session.get(Message, decision.message_id)
    db.session.add(TrainingExample(workspace_id=decision.workspace_id, text=message.body, intent=intent or None,
                                   category=category, source="correction"))
    outbox.publish_event(decision.workspace_id, f"contact-{message.contact_id}-message", message_id=message.id)
    outbox.commit()
