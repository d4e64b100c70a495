"""Measure an engine on labelled messages, through the whole agent (rules + engine + guardrails).

Training rows become a playbook: one intent per category, answered by a template (so a
wrong intent shows as a wrong auto-reply, as it would in production), and rows labelled
`oos` become out-of-scope examples. Test rows labelled `oos` must be escalated; a row whose
optional `expect` column says `escalate` must be too (guardrail sets).
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sklearn.metrics import f1_score

from .agent import decide
from .cost import TokenCost
from .engine import Engine, Preparable
from .types import DecisionContext, DecisionKind, Intent, IntentAction, Playbook

OOS = "oos"


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    text: str
    category: str  # the expected intent, or "oos"
    expect: DecisionKind | None = None  # an expected decision kind, when the row checks one

    @property
    def must_escalate(self) -> bool:
        return self.category == OOS or self.expect is DecisionKind.ESCALATE


def load_csv(path: str | Path) -> list[LabelledMessage]:
    """Columns text,category and optionally expect (a decision kind)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"text", "category"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return [LabelledMessage(row["text"], row["category"].strip(),
                                DecisionKind(row["expect"].strip()) if (row.get("expect") or "").strip() else None)
                for row in reader]


def playbook_from_rows(rows: Iterable[LabelledMessage]) -> Playbook:
    examples: dict[str, list[str]] = {}
    out_of_scope: list[str] = []
    for row in rows:
        if row.category == OOS:
            out_of_scope.append(row.text)
        else:
            examples.setdefault(row.category, []).append(row.text)
    intents = tuple(
        Intent(name, tuple(texts), action=IntentAction.AUTO_REPLY, reply_template=f"[{name}]")
        for name, texts in sorted(examples.items())
    )
    return Playbook(intents=intents, out_of_scope_examples=tuple(out_of_scope))


def evaluate(
    train_rows: list[LabelledMessage],
    test_rows: list[LabelledMessage],
    engine_factory: Callable[[], Engine],
    *,
    context: DecisionContext | None = None,
    price_per_million_tokens: tuple[Decimal, Decimal] | None = None,  # (prompt, completion)
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    playbook = playbook_from_rows(train_rows)
    context = DecisionContext(playbook=playbook, confidence_threshold=context.confidence_threshold,
                              default_language=context.default_language) if context else DecisionContext(playbook=playbook)
    engine = engine_factory()
    started = time.perf_counter()
    if isinstance(engine, Preparable):
        engine.prepare(playbook)
    train_seconds = time.perf_counter() - started

    truth, predicted, kinds, timings, cpu_timings = [], [], [], [], []
    prompt_tokens = completion_tokens = llm_calls = 0
    for n, row in enumerate(test_rows, 1):
        started, cpu_started = time.perf_counter(), time.thread_time()
        decision = decide(row.text, context, engine=engine)
        timings.append((time.perf_counter() - started) * 1000)
        cpu_timings.append((time.thread_time() - cpu_started) * 1000)
        truth.append(row.category)
        predicted.append(decision.intent or OOS)
        kinds.append(decision.kind)
        if decision.usage:
            llm_calls += 1
            prompt_tokens += decision.usage.prompt_tokens
            completion_tokens += decision.usage.completion_tokens
        if progress:
            progress(n, len(test_rows))

    report: dict = {
        "engine": engine.name,
        "model": engine.model,
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "intents": len(playbook.intents),
        "train_seconds": round(train_seconds, 2),
        "accuracy": _ratio(sum(t == p for t, p in zip(truth, predicted)), len(truth)),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 4) if truth else None,
    }
    in_scope = [(t, p) for t, p in zip(truth, predicted) if t != OOS]
    report["in_scope_accuracy"] = _ratio(sum(t == p for t, p in in_scope), len(in_scope))
    if any(t == OOS for t in truth):
        report["oos_recall"] = _ratio(sum(p == OOS for t, p in zip(truth, predicted) if t == OOS),
                                      sum(t == OOS for t in truth))
        report["oos_precision"] = _ratio(sum(t == OOS for t, p in zip(truth, predicted) if p == OOS),
                                         sum(p == OOS for p in predicted))
    must = [k for row, k in zip(test_rows, kinds) if row.must_escalate]
    if must:
        report["must_escalate_rows"] = len(must)
        report["escalation_recall"] = _ratio(sum(k is DecisionKind.ESCALATE for k in must), len(must))
        report["must_escalate_auto_replied"] = sum(k is DecisionKind.AUTO_REPLY for k in must)
    expected = [(row.expect, k) for row, k in zip(test_rows, kinds) if row.expect is not None]
    if expected:
        report["expected_kind_accuracy"] = _ratio(sum(e is k for e, k in expected), len(expected))
    report["decisions"] = {kind.value: kinds.count(kind) for kind in DecisionKind}
    report["p50_ms"] = round(statistics.median(timings), 2) if timings else None
    report["p95_ms"] = round(_percentile(timings, 95), 2) if timings else None
    # CPU time of the deciding thread: what a decision costs, without the time spent waiting for
    # a core when the machine is shared (wall-clock p95 above includes that wait).
    report["p50_cpu_ms"] = round(statistics.median(cpu_timings), 2) if cpu_timings else None
    report["p95_cpu_ms"] = round(_percentile(cpu_timings, 95), 2) if cpu_timings else None
    if prompt_tokens or completion_tokens:
        usage = TokenCost(len(test_rows), prompt_tokens, completion_tokens, llm_calls)
        report["llm_calls"] = llm_calls
        report["prompt_tokens_per_1000"] = usage.prompt_per_1000
        report["completion_tokens_per_1000"] = usage.completion_per_1000
        report["tokens_per_1000"] = usage.tokens_per_1000
        if price_per_million_tokens:
            report["price_per_million_tokens"] = [str(p) for p in price_per_million_tokens]
            report["cost_per_1000_messages"] = usage.cost_per_1000(*price_per_million_tokens)
    return report


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]
