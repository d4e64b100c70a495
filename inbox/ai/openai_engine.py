"""An engine backed by any OpenAI-compatible chat-completions API (OpenAI, a local server).

Knowledge-base passages are retrieved first and given as the only allowed sources; the
answer is constrained by a JSON schema whose enums are the allowed values (decision,
intent, category, priority, and the ids of the passages we sent). Providers that ignore
the schema exist, so the output is validated again here: anything outside → EngineError,
which agent.decide() turns into an escalation. Token usage is recorded on every decision.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from .engine import EngineError
from .knowledge import KnowledgeBase, Passage
from .types import (
    Decision,
    DecisionContext,
    DecisionKind,
    Playbook,
    Priority,
    TicketCategory,
    TokenUsage,
)

_SYSTEM = """You are Sara, the triage assistant of a customer-support team.
Decide what happens to the customer's message:
- "auto_reply" only when one of the knowledge-base passages below fully answers it. Cite that
  passage's id in article_id and write the reply in the customer's language, using only
  facts from that passage.
- "escalate" otherwise (the team gets a ticket): set category and priority; priority is
  "high" for an angry customer or a money problem, "critical" for safety.
Set intent to the matching intent name, or null. confidence is your probability (0 to 1)
that this decision is right. reason is one short sentence for the agent."""


class OpenAIEngine:
    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 15.0,
        max_retries: int = 1,
        max_passages: int = 3,
        min_passage_score: float = 0.05,
        client=None,
    ):
        if client is None:
            from openai import OpenAI

            # Both bounded: a slow provider must not hold a worker, and retries multiply the wait.
            client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self._client = client
        self.model = model
        self.max_passages = max_passages
        self.min_passage_score = min_passage_score
        self._knowledge: OrderedDict[str, KnowledgeBase] = OrderedDict()
        self._lock = threading.Lock()

    def prepare(self, playbook: Playbook) -> None:
        self._knowledge_for(playbook)

    def _knowledge_for(self, playbook: Playbook) -> KnowledgeBase:
        with self._lock:
            if playbook.key not in self._knowledge:
                self._knowledge[playbook.key] = KnowledgeBase(playbook.articles)
                while len(self._knowledge) > 16:
                    self._knowledge.popitem(last=False)
            return self._knowledge[playbook.key]

    def decide(self, message_text: str, context: DecisionContext) -> Decision:
        playbook = context.playbook
        passages = [p for p in self._knowledge_for(playbook).search(message_text, limit=self.max_passages)
                    if p.score >= self.min_passage_score]
        completion = self._client.chat.completions.create(
            model=self.model,
            temperature=0,
            messages=[
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": _prompt(message_text, playbook, passages)},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "sara_decision", "strict": True, "schema": decision_schema(playbook, passages)},
            },
        )
        usage = _usage(completion)
        try:
            return self._parse(completion, playbook, passages, usage)
        except EngineError as exc:
            exc.usage = usage
            raise

    def _parse(self, completion, playbook: Playbook, passages: list[Passage], usage: TokenUsage) -> Decision:
        try:
            content = completion.choices[0].message.content
            data = json.loads(content or "")
        except (AttributeError, IndexError, TypeError, ValueError):
            raise EngineError("the model's answer is not valid JSON") from None
        if not isinstance(data, dict):
            raise EngineError("the model's answer is not a JSON object")
        allowed_articles = {p.article.id for p in passages}
        intents = {i.name for i in playbook.intents}
        try:
            kind = DecisionKind(data.get("decision"))
            category = TicketCategory(data.get("category"))
            priority = Priority(data.get("priority"))
            confidence = float(data.get("confidence"))
        except (TypeError, ValueError):
            raise EngineError("the model answered outside the allowed values") from None
        if kind not in (DecisionKind.AUTO_REPLY, DecisionKind.ESCALATE):
            raise EngineError(f"the model chose {kind.value}, which engines may not decide")
        if not 0.0 <= confidence <= 1.0:
            raise EngineError(f"confidence {confidence} outside 0..1")
        intent = data.get("intent")
        if intent is not None and intent not in intents:
            raise EngineError(f"the model named an unknown intent {intent!r}")
        article_id = data.get("article_id")
        reply = (data.get("reply") or "").strip() or None
        if kind is DecisionKind.AUTO_REPLY and (article_id not in allowed_articles or not reply):
            raise EngineError("auto-reply without a cited knowledge-base passage")
        return Decision(
            kind, category=category, priority=priority, confidence=round(confidence, 4),
            reason=str(data.get("reason") or "")[:300], engine=self.name, model=self.model, intent=intent,
            article_id=article_id if kind is DecisionKind.AUTO_REPLY else None,
            reply=reply if kind is DecisionKind.AUTO_REPLY else None, usage=usage,
        )


def decision_schema(playbook: Playbook, passages: list[Passage]) -> dict:
    """Strict JSON schema: every field required, every choice an enum of allowed values."""
    article_ids = [p.article.id for p in passages]
    decisions = [DecisionKind.ESCALATE.value] + ([DecisionKind.AUTO_REPLY.value] if article_ids else [])
    return {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": decisions},
            "intent": _nullable_enum([i.name for i in playbook.intents]),
            "article_id": _nullable_enum(article_ids),
            "category": {"type": "string", "enum": [c.value for c in TicketCategory]},
            "priority": {"type": "string", "enum": [p.value for p in Priority]},
            "confidence": {"type": "number"},
            "reply": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "reason": {"type": "string"},
        },
        "required": ["decision", "intent", "article_id", "category", "priority", "confidence", "reply", "reason"],
        "additionalProperties": False,
    }


def _nullable_enum(values: list[str]) -> dict:
    if not values:
        return {"type": "null"}
    return {"anyOf": [{"type": "string", "enum": values}, {"type": "null"}]}


def _prompt(message_text: str, playbook: Playbook, passages: list[Passage]) -> str:
    sources = "\n\n".join(f"[{p.article.id}] {p.article.title}\n{p.article.body}" for p in passages) or "(none)"
    intents = "\n".join(
        f"- {i.name}: {i.action.value}, {i.category.value}/{i.priority.value}; e.g. "
        + " | ".join(i.examples[:3]) for i in playbook.intents) or "(none)"
    return (f"Knowledge-base passages:\n{sources}\n\nIntents:\n{intents}\n\n"
            f"Customer message:\n<<<\n{message_text}\n>>>")


def _usage(completion) -> TokenUsage:
    usage = getattr(completion, "usage", None)
    return TokenUsage(prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                      completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))
