"""Sara, the routing agent: what happens to an inbound message. Pure decisions, no database.

    from inbox.ai import DecisionContext, decide, make_engine
    engine = make_engine()                       # once per process: engines cache what they train
    decision = decide(text, DecisionContext(playbook=..., awaiting=...), engine=engine)

Heavy modules (scikit-learn, the OpenAI client) load only when an engine is made.
"""

from __future__ import annotations

from .agent import decide
from .engine import Engine, EngineError
from .types import (
    Article,
    Awaiting,
    Collected,
    Decision,
    DecisionContext,
    DecisionKind,
    Guardrail,
    Intent,
    IntentAction,
    Playbook,
    Priority,
    TicketCategory,
    TokenUsage,
)

__all__ = [
    "Article", "Awaiting", "Collected", "Decision", "DecisionContext", "DecisionKind", "Engine",
    "EngineError", "Guardrail", "Intent", "IntentAction", "Playbook", "Priority", "TicketCategory",
    "TokenUsage", "decide", "make_engine",
]


def make_engine(kind: str = "offline", **options) -> Engine:
    """"offline" (default; options: embedder="minilm+static" (default)|"minilm"|"static"|"e5"|None, min_probability) or "openai"
    (options: model, api_key, base_url, timeout, max_retries)."""
    if kind == "offline":
        from .offline import OfflineEngine

        return OfflineEngine(**options)
    if kind == "openai":
        from .openai_engine import OpenAIEngine

        return OpenAIEngine(**options)
    raise ValueError(f"unknown AI engine {kind!r} (expected 'offline' or 'openai')")
