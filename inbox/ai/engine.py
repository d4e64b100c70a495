"""The contract every decision engine fulfils (offline, OpenAI-compatible, fakes in tests).

An engine reads one message with its context and proposes a Decision. It does not apply
the rules and guardrails: agent.decide() runs those around every engine, so a new engine
cannot forget one. An engine may raise; agent.decide() turns any failure into an escalation.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..errors import InboxError
from .types import Decision, DecisionContext, Playbook


class EngineError(InboxError):
    """The engine could not decide: timeout, provider error, or output outside the allowed values."""

    usage = None  # TokenUsage, when the provider billed a call whose answer we refused


@runtime_checkable
class Engine(Protocol):
    name: str  # "offline", "openai"
    model: str  # what exactly decided, recorded on every decision

    def decide(self, message_text: str, context: DecisionContext) -> Decision: ...


@runtime_checkable
class Preparable(Protocol):
    def prepare(self, playbook: Playbook) -> None:
        """Train or index what the engine needs for this playbook, ahead of the first message."""
