"""Sara's decision for one inbound message: rules first, then an engine, then guardrails.

    1. empty message (a photo, a voice note)       → hand to human
    2. structured answers: STOP/START always; OUI/NON/ANNULER or 1–5 when we asked → collect
    3. emergency, legal threat, fraud, data deletion → escalate (always, even with a person on it)
    4. a person is on the conversation              → hand to human (Sara stays quiet)
    5. the customer asks for a person; the bot already answered `max_bot_replies` times → hand to human
    6. the engine proposes (intent, category, priority, article)
    7. angry tone → escalate with priority ≥ high; an auto-reply under the confidence threshold,
       for an "always escalate" intent, or with auto-replies off → escalate
    Any engine error, timeout or invalid proposal → escalate with the reason.

The engine still runs in step 3 (it names the category); if it fails there the guardrail's
own category stands. Nothing here touches the database.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from . import rules
from .engine import Engine
from .language import detect_language
from .types import (
    Collected,
    Decision,
    DecisionContext,
    DecisionKind,
    Guardrail,
    Priority,
    TicketCategory,
)

log = logging.getLogger(__name__)

RULES = "rules"

# What a guardrail implies when the engine has nothing better to say.
_GUARDRAIL_TICKET = {
    Guardrail.EMERGENCY: (TicketCategory.GENERAL, Priority.CRITICAL, "emergency"),
    Guardrail.LEGAL_THREAT: (TicketCategory.GENERAL, Priority.HIGH, "threat of legal action"),
    Guardrail.FRAUD: (TicketCategory.BILLING, Priority.HIGH, "fraud report"),
    Guardrail.DATA_DELETION: (TicketCategory.ACCOUNT, Priority.HIGH, "personal-data request (GDPR)"),
    Guardrail.ANGRY: (TicketCategory.GENERAL, Priority.HIGH, "angry tone"),
}
_COLLECT_REASON = {
    Collected.CONFIRM: "confirmed the appointment",
    Collected.DECLINE: "declined the appointment",
    Collected.CANCEL: "asked to cancel the appointment",
    Collected.RATING: "gave a rating",
    Collected.OPT_OUT: "opted out of automated messages",
    Collected.OPT_IN: "opted back in",
}


def decide(message_text: str, context: DecisionContext, *, engine: Engine) -> Decision:
    text = message_text or ""
    language = detect_language(text, default=context.default_language)
    ruled = _before_engine(text, context, language)
    if ruled is not None:
        return ruled

    sensitive = rules.sensitive_signal(text)
    anger = rules.anger_signal(text) if sensitive is None else None
    signal = sensitive or anger
    try:
        proposal = _checked(engine.decide(text, replace(context, language=language)), context)
    except Exception as exc:  # any failure of any engine must end with a person, never silence
        log.warning("ai engine failed engine=%s error=%s", getattr(engine, "name", "?"), type(exc).__name__)
        category, priority, what = _GUARDRAIL_TICKET.get(
            signal.guardrail if signal else None, (TicketCategory.GENERAL, Priority.MEDIUM, ""))
        reason = f"{what}; " if what else ""
        return Decision(
            DecisionKind.ESCALATE, category=category, priority=priority, language=language,
            reason=f"{reason}engine failed: {_describe(exc)}", engine=getattr(engine, "name", "unknown"),
            model=getattr(engine, "model", ""), guardrail=signal.guardrail if signal else Guardrail.ENGINE_ERROR,
            usage=getattr(exc, "usage", None),
        )
    proposal = replace(proposal, language=language)
    if signal is not None:
        return _guarded(proposal, signal)
    return _policy(proposal, context)


def _before_engine(text: str, context: DecisionContext, language: str) -> Decision | None:
    if not text.strip():
        return _rule(DecisionKind.HAND_TO_HUMAN, language, "message without text", Guardrail.EMPTY_MESSAGE)
    collected = rules.collect(text, context.awaiting)
    if collected is not None:
        return Decision(
            DecisionKind.COLLECT, language=language, confidence=1.0, priority=Priority.LOW,
            reason=_COLLECT_REASON[collected.value], engine=RULES, model=RULES,
            collected=collected.value, rating=collected.rating,
            guardrail=Guardrail.OPT_OUT if collected.value is Collected.OPT_OUT else None,
        )
    if rules.sensitive_signal(text) is not None:
        return None  # a ticket, with the engine's category: handled by decide()
    if context.has_human_assignee:
        return _rule(DecisionKind.HAND_TO_HUMAN, language, "a team member is on this conversation",
                     Guardrail.HUMAN_ASSIGNED)
    if rules.wants_human(text):
        return _rule(DecisionKind.HAND_TO_HUMAN, language, "customer asked for a person",
                     Guardrail.HUMAN_REQUESTED)
    if context.bot_replies_since_human >= context.max_bot_replies:
        return _rule(DecisionKind.HAND_TO_HUMAN, language,
                     f"bot already answered {context.bot_replies_since_human} times without resolving",
                     Guardrail.BOT_LOOP)
    return None


def _rule(kind: DecisionKind, language: str, reason: str, guardrail: Guardrail) -> Decision:
    return Decision(kind, language=language, confidence=1.0, reason=reason, engine=RULES, model=RULES,
                    guardrail=guardrail)


def _guarded(proposal: Decision, signal: rules.Signal) -> Decision:
    """Escalate, keeping what the engine understood (intent, category) when it understood it."""
    category, priority, what = _GUARDRAIL_TICKET[signal.guardrail]
    understood = proposal.intent is not None and proposal.category is not TicketCategory.GENERAL
    if understood and signal.guardrail is not Guardrail.EMERGENCY:
        category = proposal.category
    topic = f"{proposal.category.value.replace('_', ' ')}: {_humanize(proposal.intent)}, " if understood else ""
    return replace(
        proposal, kind=DecisionKind.ESCALATE, category=category,
        priority=proposal.priority.at_least(priority), reply=None, article_id=None,
        reason=f'{topic}{what} ("{signal.evidence}")', guardrail=signal.guardrail,
    )


def _policy(proposal: Decision, context: DecisionContext) -> Decision:
    if proposal.kind is not DecisionKind.AUTO_REPLY:
        return proposal
    intent = context.playbook.intent(proposal.intent)
    if intent is not None and intent.always_escalate:
        return _escalated(proposal, "intent is set to always escalate", Guardrail.ALWAYS_ESCALATE)
    if proposal.confidence < context.confidence_threshold:
        return _escalated(
            proposal, f"confidence {proposal.confidence:.2f} under the workspace threshold "
            f"{context.confidence_threshold:.2f}", Guardrail.LOW_CONFIDENCE)
    if not context.auto_reply_enabled:
        return _escalated(proposal, "auto-replies are off in this workspace", Guardrail.AUTO_REPLY_OFF)
    return proposal


def _escalated(proposal: Decision, why: str, guardrail: Guardrail) -> Decision:
    topic = _humanize(proposal.intent) if proposal.intent else "unclear request"
    return replace(proposal, kind=DecisionKind.ESCALATE, reply=None, article_id=None,
                   reason=f"{topic}: {why}", guardrail=guardrail)


def _checked(proposal: object, context: DecisionContext) -> Decision:
    """An engine's output is untrusted: anything outside the allowed values is a failure."""
    from .engine import EngineError

    if not isinstance(proposal, Decision):
        raise EngineError(f"engine returned {type(proposal).__name__}, not a Decision")
    try:
        kind, category, priority = (DecisionKind(proposal.kind), TicketCategory(proposal.category),
                                    Priority(proposal.priority))
    except ValueError as exc:
        raise EngineError(f"value outside the allowed set: {exc}") from None
    if kind in (DecisionKind.COLLECT, DecisionKind.HAND_TO_HUMAN):
        raise EngineError(f"engines may not decide {kind.value}; rules do")
    if not 0.0 <= float(proposal.confidence) <= 1.0:
        raise EngineError(f"confidence {proposal.confidence!r} outside 0..1")
    if proposal.intent is not None and context.playbook.intents and context.playbook.intent(proposal.intent) is None:
        raise EngineError(f"unknown intent {proposal.intent!r}")
    if kind is DecisionKind.AUTO_REPLY:
        if not (proposal.reply or "").strip():
            raise EngineError("auto-reply without text")
        if proposal.article_id is not None and context.playbook.article(proposal.article_id) is None:
            raise EngineError(f"auto-reply cites unknown article {proposal.article_id!r}")
        intent = context.playbook.intent(proposal.intent)
        if proposal.article_id is None and not (intent and intent.reply_template):
            raise EngineError("auto-reply cites no knowledge-base article")
    return replace(proposal, kind=kind, category=category, priority=priority)


def _humanize(name: str | None) -> str:
    return (name or "").replace("_", " ")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
