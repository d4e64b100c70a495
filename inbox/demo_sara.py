"""Sara's demo knowledge base and intents, stored for the demo workspace through the actions."""

from __future__ import annotations

from .actions.sara import do_save_article, do_save_intent, do_update_settings
from .ai.demo_intents import ARTICLES, INTENTS, OUT_OF_SCOPE
from .models import Workspace


def seed_sara(workspace: Workspace) -> str:
    stored = {a.id: do_save_article(workspace.id, {"title": a.title, "body": a.body, "language": a.language,
                                                   "enabled": True}) for a in ARTICLES}
    for intent in INTENTS:
        article = stored.get(intent.article_id) if intent.article_id else None
        do_save_intent(workspace.id, {
            "name": intent.name, "examples": list(intent.examples), "action": str(intent.action),
            "category": str(intent.category), "priority": str(intent.priority),
            "article_id": article.id if article else None, "reply_template": intent.reply_template,
            "always_escalate": intent.always_escalate})
    do_update_settings(workspace.id, {"enabled": True, "out_of_scope_examples": list(OUT_OF_SCOPE)}, actor=None)
    return f"{len(INTENTS)} intents for Sara"
