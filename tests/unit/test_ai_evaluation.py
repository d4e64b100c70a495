"""Evaluation metrics on a tiny dataset, and the click commands that print them."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner

from inbox.ai import Decision, DecisionKind, TokenUsage
from inbox.ai.cli import decide_command, eval_command
from inbox.ai.evaluation import LabelledMessage, evaluate, load_csv, playbook_from_rows

TRAIN = [
    LabelledMessage("horaires ?", "hours"), LabelledMessage("vous ouvrez quand", "hours"),
    LabelledMessage("prix ?", "price"), LabelledMessage("combien ça coûte", "price"),
    LabelledMessage("quel temps fait-il", "oos"),
]
TEST = [
    LabelledMessage("horaires", "hours"),  # right
    LabelledMessage("tarif", "price"),  # wrong: answered as hours
    LabelledMessage("blague", "oos"),  # right: escalated as out of scope
    LabelledMessage("météo", "oos"),  # wrong: answered as price
    LabelledMessage("c'est une arnaque", "price", DecisionKind.ESCALATE),  # guardrail
]
ANSWERS = {"horaires": "hours", "tarif": "hours", "blague": None, "météo": "price", "c'est une arnaque": "price"}


class ScriptedEngine:
    name, model = "scripted", "script-1"

    def decide(self, text, context):
        intent = ANSWERS[text]
        if intent is None:
            return Decision(DecisionKind.ESCALATE, engine=self.name, model=self.model,
                            usage=TokenUsage(100, 10))
        return Decision(DecisionKind.AUTO_REPLY, confidence=0.9, intent=intent, reply=f"[{intent}]",
                        engine=self.name, model=self.model, usage=TokenUsage(100, 10))


def test_training_rows_become_a_playbook():
    playbook = playbook_from_rows(TRAIN)
    assert [i.name for i in playbook.intents] == ["hours", "price"]
    assert playbook.out_of_scope_examples == ("quel temps fait-il",)
    assert all(i.reply_template for i in playbook.intents)


def test_metrics_on_a_tiny_dataset():
    report = evaluate(TRAIN, TEST, ScriptedEngine, price_per_million_tokens=(Decimal("0.15"), Decimal("0.60")))
    assert report["accuracy"] == 0.6  # horaires, blague, arnaque
    assert report["in_scope_accuracy"] == round(2 / 3, 4)
    assert report["oos_recall"] == 0.5
    assert report["oos_precision"] == 1.0
    assert report["must_escalate_rows"] == 3
    assert report["escalation_recall"] == round(2 / 3, 4)  # météo was answered
    assert report["must_escalate_auto_replied"] == 1
    assert report["prompt_tokens_per_1000"] == 100_000
    # 1000 messages × (100 × 0.15 + 10 × 0.60) / 1e6
    assert report["cost_per_1000_messages"] == Decimal("0.0210")
    assert report["p95_ms"] >= report["p50_ms"] >= 0
    assert 0 <= report["macro_f1"] <= 1


def test_csv_loader_reads_the_optional_expect_column(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text('text,category,expect\n"Bonjour, horaires ?",hours,\nje vais porter plainte,oos,escalate\n')
    rows = load_csv(path)
    assert rows[0] == LabelledMessage("Bonjour, horaires ?", "hours", None)
    assert rows[1].must_escalate and rows[1].expect is DecisionKind.ESCALATE


def test_eval_command_prints_json(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,category\n" + "".join(
        f"{t},{c}\n" for t, c in [("horaires", "hours"), ("vos horaires", "hours"), ("ouvert quand", "hours"),
                                  ("prix", "price"), ("vos tarifs", "price"), ("combien", "price")]))
    test.write_text("text,category\nquels horaires,hours\nquel prix,price\n")
    result = CliRunner().invoke(eval_command, ["--train", str(train), "--test", str(test), "--json",
                                               "--embedder", "none"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["engine"] == "offline" and report["test_rows"] == 2


def test_decide_command_uses_the_demo_playbook():
    result = CliRunner().invoke(decide_command, ["OUI", "--awaiting", "appointment_confirmation"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["collected"] == "confirm"


def test_eval_with_the_openai_engine_reports_tokens_and_cost_per_1000_messages(tmp_path):
    """The real `openai` client against the fake server: its `usage` field becomes the cost line."""
    from inbox.ai.fake_openai import FakeOpenAI

    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,category\nhoraires,hours\nvos horaires,hours\nprix,price\nvos tarifs,price\n")
    test.write_text("text,category\nquels horaires,hours\nquel prix,price\nune blague,oos\n")
    with FakeOpenAI() as fake:
        args = ["--train", str(train), "--test", str(test), "--engine", "openai", "--model", "gpt-fake",
                "--base-url", fake.base_url, "--api-key", "sk-test"]
        result = CliRunner().invoke(eval_command, [*args, "--json", "--price", "0.15", "0.60"])
        text = CliRunner().invoke(eval_command, args, env={"OPENAI_PRICE_PER_MILLION": "0.15 0.60"})
        calls = len(fake.requests)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["engine"] == "openai" and report["llm_calls"] == 3 and calls == 6
    assert report["prompt_tokens_per_1000"] > 0 and report["completion_tokens_per_1000"] > 0
    assert report["tokens_per_1000"] == report["prompt_tokens_per_1000"] + report["completion_tokens_per_1000"]
    expected = (Decimal(report["prompt_tokens_per_1000"]) * Decimal("0.15")
                + Decimal(report["completion_tokens_per_1000"]) * Decimal("0.60")) / 1_000_000
    assert abs(Decimal(report["cost_per_1000_messages"]) - expected) < Decimal("0.0002")
    assert text.exit_code == 0 and "cost_per_1000_messages" in text.output  # the plain-text report, price from env
