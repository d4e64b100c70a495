"""Values Sara's engines take and return. No database, no I/O: the orchestrator builds a
DecisionContext from its models and acts on the Decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum

from ..kinds import ChannelKind


class DecisionKind(StrEnum):
    COLLECT = "collect"  # a structured answer we were waiting for (OUI/NON, 1–5, STOP)
    AUTO_REPLY = "auto_reply"  # Sara answers from a knowledge-base article or template
    ESCALATE = "escalate"  # a ticket for the team, with category and priority
    HAND_TO_HUMAN = "hand_to_human"  # Sara steps aside; a person takes the conversation


class TicketCategory(StrEnum):
    GENERAL = "general"
    BILLING = "billing"
    TECHNICAL = "technical"
    BUG_REPORT = "bug_report"
    ACCOUNT = "account"
    SUGGESTION = "suggestion"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]

    def at_least(self, other: Priority) -> Priority:
        return self if self.rank >= other.rank else other


_PRIORITY_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}


class Awaiting(StrEnum):
    """What the last automated message asked the customer for."""

    APPOINTMENT_CONFIRMATION = "appointment_confirmation"
    RATING = "rating"


class Collected(StrEnum):
    """The structured value a COLLECT decision carries."""

    CONFIRM = "confirm"  # OUI to an appointment reminder
    DECLINE = "decline"  # NON: will not come (the workspace decides whether that cancels)
    CANCEL = "cancel"  # ANNULER
    RATING = "rating"  # Decision.rating holds 1–5
    OPT_OUT = "opt_out"  # STOP: no more automated messages on this channel
    OPT_IN = "opt_in"  # START


class IntentAction(StrEnum):
    AUTO_REPLY = "auto_reply"
    ESCALATE = "escalate"


class Guardrail(StrEnum):
    """Why a decision was forced to escalate or hand over: machine-readable twin of `reason`."""

    OPT_OUT = "opt_out"
    HUMAN_ASSIGNED = "human_assigned"
    HUMAN_REQUESTED = "human_requested"
    BOT_LOOP = "bot_loop"  # the bot already answered twice without resolving
    ANGRY = "angry"
    LEGAL_THREAT = "legal_threat"
    FRAUD = "fraud"
    EMERGENCY = "emergency"
    DATA_DELETION = "data_deletion"
    ALWAYS_ESCALATE = "always_escalate"  # the intent is configured that way
    LOW_CONFIDENCE = "low_confidence"
    OUT_OF_SCOPE = "out_of_scope"
    NO_ARTICLE = "no_article"  # nothing in the knowledge base answers it
    AUTO_REPLY_OFF = "auto_reply_off"
    QUIET_HOURS = "quiet_hours"  # outside the channel's sending hours: the reply waits for the opening
    DAILY_LIMIT = "daily_limit"  # the channel's daily send limit is reached: people answer
    ENGINE_ERROR = "engine_error"  # error, timeout, or output outside the allowed values
    EMPTY_MESSAGE = "empty_message"


@dataclass(frozen=True, slots=True)
class Article:
    """A knowledge-base article: what auto-replies are allowed to say."""

    id: str
    title: str
    body: str
    language: str = "fr"


@dataclass(frozen=True, slots=True)
class Intent:
    """Something customers ask, taught by example phrases, and what Sara does about it."""

    name: str
    examples: tuple[str, ...]
    action: IntentAction = IntentAction.ESCALATE
    category: TicketCategory = TicketCategory.GENERAL
    priority: Priority = Priority.MEDIUM
    article_id: str | None = None  # the answer for auto_reply; None = best retrieved article
    reply_template: str | None = None  # a fixed answer instead of the article body
    always_escalate: bool = False  # never auto-reply, whatever the confidence


@dataclass(frozen=True, slots=True)
class Playbook:
    """Everything a workspace taught Sara. `key` fingerprints the content so engines can
    cache what they train from it (rebuilt only when an intent or article changes)."""

    intents: tuple[Intent, ...] = ()
    articles: tuple[Article, ...] = ()
    # Messages the workspace does not handle, taught as an explicit "out of scope" class.
    out_of_scope_examples: tuple[str, ...] = ()
    key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _fingerprint(self))

    def intent(self, name: str | None) -> Intent | None:
        return next((i for i in self.intents if i.name == name), None) if name else None

    def article(self, article_id: str | None) -> Article | None:
        return next((a for a in self.articles if a.id == article_id), None) if article_id else None


def _fingerprint(playbook: Playbook) -> str:
    content = {
        "intents": [[i.name, list(i.examples), i.action, i.category, i.priority, i.article_id,
                     i.reply_template, i.always_escalate] for i in playbook.intents],
        "articles": [[a.id, a.title, a.body, a.language] for a in playbook.articles],
        "oos": list(playbook.out_of_scope_examples),
    }
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What Sara knows about the conversation, built by the orchestrator."""

    playbook: Playbook = field(default_factory=Playbook)
    awaiting: Awaiting | None = None
    bot_replies_since_human: int = 0
    has_human_assignee: bool = False
    channel: ChannelKind | None = None
    auto_reply_enabled: bool = True
    # Under this confidence Sara never answers by herself (workspace setting).
    confidence_threshold: float = 0.5
    default_language: str = "fr"
    max_bot_replies: int = 2  # unresolved bot answers before a person takes over
    language: str | None = None  # the customer's, detected by agent.decide() before the engine runs


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    category: TicketCategory = TicketCategory.GENERAL
    priority: Priority = Priority.MEDIUM
    language: str = "fr"
    confidence: float = 0.0  # 0..1, how sure Sara is of this decision
    reason: str = ""  # one short sentence for the agent reading the ticket
    engine: str = ""
    model: str = ""
    intent: str | None = None  # the matched intent, if any (kept even when a guardrail fires)
    article_id: str | None = None  # the knowledge-base article the reply is based on
    reply: str | None = None  # the text to send, for AUTO_REPLY
    collected: Collected | None = None
    rating: int | None = None  # 1–5 when collected == RATING
    guardrail: Guardrail | None = None
    usage: TokenUsage | None = None  # LLM engines only

    @property
    def out_of_scope(self) -> bool:
        return self.guardrail is Guardrail.OUT_OF_SCOPE
