"""The agent around any engine: rules first, guardrails after, failures end with a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from inbox.ai import (
    Article,
    Awaiting,
    Collected,
    Decision,
    DecisionContext,
    DecisionKind,
    EngineError,
    Guardrail,
    Intent,
    IntentAction,
    Playbook,
    Priority,
    TicketCategory,
    decide,
)
from inbox.ai.evaluation import load_csv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ai"

PLAYBOOK = Playbook(
    intents=(
        Intent("opening_hours", ("horaires ?",), action=IntentAction.AUTO_REPLY, article_id="horaires"),
        Intent("refund", ("remboursement",), category=TicketCategory.BILLING, priority=Priority.MEDIUM),
        Intent("legal_question", ("question juridique",), action=IntentAction.AUTO_REPLY, article_id="horaires",
               always_escalate=True),
    ),
    articles=(Article("horaires", "Horaires", "Du lundi au vendredi, 9h–19h."),),
)


@dataclass
class StubEngine:
    """Proposes a fixed decision (or raises), and counts calls."""

    proposal: Decision | None = None
    error: Exception | None = None
    name: str = "stub"
    model: str = "stub-1"
    calls: list[str] = field(default_factory=list)

    def decide(self, message_text, context):
        self.calls.append(message_text)
        if self.error:
            raise self.error
        return self.proposal


def answer(confidence=0.9, **changes) -> Decision:
    values = dict(kind=DecisionKind.AUTO_REPLY, confidence=confidence, engine="stub", model="stub-1",
                  intent="opening_hours", article_id="horaires", reply="Du lundi au vendredi, 9h–19h.",
                  priority=Priority.LOW)
    return Decision(**(values | changes))


def context(**changes) -> DecisionContext:
    return DecisionContext(playbook=PLAYBOOK, **changes)


def test_a_confident_answer_from_an_article_is_sent():
    decision = decide("Quels sont vos horaires ?", context(), engine=StubEngine(answer()))
    assert decision.kind is DecisionKind.AUTO_REPLY
    assert decision.article_id == "horaires"
    assert decision.language == "fr"


def test_confirmation_is_collected_before_any_model_runs():
    engine = StubEngine(answer())
    decision = decide("Je confirme mon rendez-vous de demain, OUI",
                      context(awaiting=Awaiting.APPOINTMENT_CONFIRMATION), engine=engine)
    assert (decision.kind, decision.collected, decision.engine) == (DecisionKind.COLLECT, Collected.CONFIRM, "rules")
    assert engine.calls == []


def test_rating_is_collected_with_its_value():
    decision = decide("4/5", context(awaiting=Awaiting.RATING), engine=StubEngine(answer()))
    assert (decision.kind, decision.collected, decision.rating) == (DecisionKind.COLLECT, Collected.RATING, 4)


def test_stop_opts_out_even_with_a_person_on_the_conversation():
    decision = decide("STOP", context(has_human_assignee=True), engine=StubEngine(answer()))
    assert (decision.kind, decision.collected) == (DecisionKind.COLLECT, Collected.OPT_OUT)


def test_sara_stays_quiet_when_a_person_is_on_the_conversation():
    engine = StubEngine(answer())
    decision = decide("Quels sont vos horaires ?", context(has_human_assignee=True), engine=engine)
    assert (decision.kind, decision.guardrail) == (DecisionKind.HAND_TO_HUMAN, Guardrail.HUMAN_ASSIGNED)
    assert engine.calls == []


def test_asking_for_a_person_hands_over():
    decision = decide("Je veux parler à quelqu'un", context(), engine=StubEngine(answer()))
    assert (decision.kind, decision.guardrail) == (DecisionKind.HAND_TO_HUMAN, Guardrail.HUMAN_REQUESTED)


def test_after_two_unresolved_bot_answers_a_person_takes_over():
    decision = decide("Quels sont vos horaires ?", context(bot_replies_since_human=2), engine=StubEngine(answer()))
    assert (decision.kind, decision.guardrail) == (DecisionKind.HAND_TO_HUMAN, Guardrail.BOT_LOOP)


def test_empty_message_goes_to_a_person():
    assert decide("  ", context(), engine=StubEngine(answer())).kind is DecisionKind.HAND_TO_HUMAN


def test_every_must_escalate_message_is_escalated_never_answered():
    engine = StubEngine(answer(confidence=0.99))  # an engine that would happily answer everything
    for row in load_csv(FIXTURES / "must_escalate.csv"):
        decision = decide(row.text, context(), engine=engine)
        assert decision.kind is DecisionKind.ESCALATE, row.text
        assert decision.guardrail == Guardrail(row.category), row.text
        assert decision.reply is None


def test_legal_threat_escalates_even_with_a_person_on_the_conversation():
    decision = decide("Je vais saisir mon avocat", context(has_human_assignee=True), engine=StubEngine(answer()))
    assert (decision.kind, decision.priority) == (DecisionKind.ESCALATE, Priority.HIGH)


def test_guardrail_keeps_the_engine_category_and_raises_priority():
    engine = StubEngine(answer(kind=DecisionKind.ESCALATE, intent="refund", category=TicketCategory.BILLING,
                               priority=Priority.MEDIUM, article_id=None, reply=None))
    decision = decide("Remboursez-moi, c'est inadmissible", context(), engine=engine)
    assert (decision.kind, decision.category, decision.priority) == (
        DecisionKind.ESCALATE, TicketCategory.BILLING, Priority.HIGH)
    assert decision.intent == "refund"
    assert "angry tone" in decision.reason


def test_emergency_is_critical():
    decision = decide("urgence vitale, mon fils a fait un malaise", context(), engine=StubEngine(answer()))
    assert (decision.priority, decision.guardrail) == (Priority.CRITICAL, Guardrail.EMERGENCY)


def test_low_confidence_never_answers():
    decision = decide("horaires ?", context(confidence_threshold=0.8), engine=StubEngine(answer(confidence=0.6)))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.LOW_CONFIDENCE)
    assert decision.reply is None and decision.intent == "opening_hours"


def test_always_escalate_intent_never_answers():
    decision = decide("question sur le contrat", context(), engine=StubEngine(answer(intent="legal_question")))
    assert decision.guardrail is Guardrail.ALWAYS_ESCALATE


def test_auto_replies_off_escalates():
    decision = decide("horaires ?", context(auto_reply_enabled=False), engine=StubEngine(answer()))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.AUTO_REPLY_OFF)


@pytest.mark.parametrize("error", [TimeoutError("timed out"), EngineError("provider said 500"), ValueError("boom")])
def test_any_engine_failure_escalates_with_the_reason(error):
    decision = decide("Quels sont vos horaires ?", context(), engine=StubEngine(error=error))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.ENGINE_ERROR)
    assert str(error) in decision.reason


@pytest.mark.parametrize("proposal", [
    None,
    answer(kind="refund_customer"),
    answer(category="vip"),
    answer(kind=DecisionKind.HAND_TO_HUMAN),
    answer(confidence=1.7),
    answer(intent="made_up_intent"),
    answer(article_id="not-in-the-base"),
    answer(article_id=None),  # an auto-reply must cite an article
    answer(reply=""),
])
def test_invalid_engine_output_escalates(proposal):
    decision = decide("Quels sont vos horaires ?", context(), engine=StubEngine(proposal))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.ENGINE_ERROR)


def test_engine_failure_with_a_guardrail_keeps_the_guardrail_ticket():
    decision = decide("Ma carte a été volée", context(), engine=StubEngine(error=TimeoutError("slow")))
    assert (decision.kind, decision.guardrail, decision.category) == (
        DecisionKind.ESCALATE, Guardrail.FRAUD, TicketCategory.BILLING)
