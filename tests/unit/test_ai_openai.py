"""The OpenAI-compatible engine, with the real `openai` client against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest

from inbox.ai import DecisionContext, DecisionKind, Guardrail, TicketCategory, decide
from inbox.ai.demo_intents import PLAYBOOK
from inbox.ai.fake_openai import FakeOpenAI
from inbox.ai.openai_engine import OpenAIEngine

CONTEXT = DecisionContext(playbook=PLAYBOOK)


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def engine_for(fake, **options) -> OpenAIEngine:
    options = {"timeout": 2.0, "max_retries": 0} | options
    return OpenAIEngine(model="gpt-fake", api_key="sk-test", base_url=fake.base_url, **options)


def test_answer_cites_a_retrieved_article_and_records_tokens(fake):
    decision = decide("Quels sont vos horaires ?", CONTEXT, engine=engine_for(fake))
    assert (decision.kind, decision.article_id) == (DecisionKind.AUTO_REPLY, "horaires")
    assert (decision.engine, decision.model) == ("openai", "gpt-fake")
    assert decision.usage.prompt_tokens > 0 and decision.usage.completion_tokens > 0


def test_request_constrains_the_output_and_carries_the_passages(fake):
    decide("Quels sont vos horaires ?", CONTEXT, engine=engine_for(fake))
    request = fake.requests[-1]
    schema = request["response_format"]["json_schema"]["schema"]
    assert request["response_format"]["json_schema"]["strict"] is True
    assert schema["properties"]["decision"]["enum"] == ["escalate", "auto_reply"]
    assert set(schema["properties"]["category"]["enum"]) == {c.value for c in TicketCategory}
    assert "horaires" in schema["properties"]["article_id"]["anyOf"][0]["enum"]
    assert "[horaires] Horaires d'ouverture" in request["messages"][1]["content"]
    assert request["temperature"] == 0


def test_model_escalation_is_kept_with_its_category(fake):
    fake.answer = {"decision": "escalate", "intent": "billing_dispute", "article_id": None, "category": "billing",
                   "priority": "high", "confidence": 0.8, "reply": None, "reason": "double charge"}
    decision = decide("J'ai été débité deux fois", CONTEXT, engine=engine_for(fake))
    assert (decision.kind, decision.category, decision.intent) == (
        DecisionKind.ESCALATE, TicketCategory.BILLING, "billing_dispute")


def test_auto_reply_without_citation_escalates(fake):
    fake.answer = {"decision": "auto_reply", "intent": None, "article_id": None, "category": "general",
                   "priority": "low", "confidence": 0.95, "reply": "Nous ouvrons à 9h.", "reason": "guess"}
    decision = decide("Quels sont vos horaires ?", CONTEXT, engine=engine_for(fake))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.ENGINE_ERROR)
    assert decision.usage is not None  # the refused call was still billed


@pytest.mark.parametrize("mode,words", [
    ("error_500", "500"),
    ("invalid_json", "not valid JSON"),
    ("bad_value", "allowed values"),
])
def test_provider_failures_escalate(fake, mode, words):
    fake.mode = mode
    decision = decide("Quels sont vos horaires ?", CONTEXT, engine=engine_for(fake))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.ENGINE_ERROR)
    assert words in decision.reason


def test_timeout_escalates_quickly(fake):
    fake.mode, fake.delay = "timeout", 2.0
    started = time.perf_counter()
    decision = decide("Quels sont vos horaires ?", CONTEXT, engine=engine_for(fake, timeout=0.3))
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.ENGINE_ERROR)
    assert "timed out" in decision.reason.lower()
    assert time.perf_counter() - started < 1.5


def test_rules_and_guardrails_run_without_the_model(fake):
    engine = engine_for(fake)
    decide("STOP", CONTEXT, engine=engine)
    decide("Je veux parler à quelqu'un", CONTEXT, engine=engine)
    assert fake.requests == []


def test_fake_server_speaks_the_chat_completion_shape(fake):
    import urllib.request

    body = json.dumps({"model": "gpt-fake", "messages": [{"role": "user", "content": "bonjour"}]}).encode()
    request = urllib.request.Request(fake.base_url + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=2) as response:
        payload = json.loads(response.read())
    assert payload["object"] == "chat.completion"
    assert payload["choices"][0]["message"]["role"] == "assistant"
    assert payload["usage"]["total_tokens"] == payload["usage"]["prompt_tokens"] + payload["usage"]["completion_tokens"]
