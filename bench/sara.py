"""Sara's offline engine on the demo workspace's playbook: what loading, training and one
decision cost. Prints plain lines (and JSON with --json FILE).

    .venv/bin/python bench/sara.py [--embedder minilm+static] [--runs 3]

The accuracy figures on public datasets come from `flask ai eval` (README, "Sara").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inbox.ai import DecisionContext, decide  # noqa: E402
from inbox.ai.demo_intents import PLAYBOOK  # noqa: E402
from inbox.ai.evaluation import load_csv  # noqa: E402
from inbox.ai.offline import OfflineEngine  # noqa: E402

MUST_ESCALATE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ai" / "must_escalate.csv"


_SUFFIXES = ("svp", "merci", "!", "?", "stp")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def timed_decisions(engine: OfflineEngine, texts: list[str], runs: int) -> dict:
    context = DecisionContext(playbook=PLAYBOOK)
    wall, cpu = [], []
    for run in range(runs):
        for text in texts:
            text = f"{text} {_SUFFIXES[run % len(_SUFFIXES)]}"  # unseen: a seen text is a cache hit
            started, cpu_started = time.perf_counter(), time.thread_time()
            decide(text, context, engine=engine)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
    return {"decisions": len(wall), "p50_ms": round(statistics.median(wall), 2),
            "p95_ms": round(percentile(wall, 95), 2), "p50_cpu_ms": round(statistics.median(cpu), 2),
            "p95_cpu_ms": round(percentile(cpu, 95), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default=None, help="default: the engine's own (minilm+static)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    started = time.perf_counter()
    engine = OfflineEngine(embedder=args.embedder) if args.embedder else OfflineEngine()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    engine.prepare(PLAYBOOK)
    train_s = time.perf_counter() - started
    phrases = [example for intent in PLAYBOOK.intents for example in intent.examples]
    must = [row.text for row in load_csv(MUST_ESCALATE)]
    results = {
        "model": engine.model, "load_s": round(load_s, 2), "train_s": round(train_s, 2),
        "intents": len(PLAYBOOK.intents), "phrases": len(phrases),
        "demo_phrases": timed_decisions(engine, phrases, args.runs),
        "must_escalate": timed_decisions(engine, must, args.runs),
    }
    print(f"model {results['model']}: load {results['load_s']} s, training on {len(phrases)} phrases "
          f"({results['intents']} intents) {results['train_s']} s")
    for name in ("demo_phrases", "must_escalate"):
        r = results[name]
        print(f"{name:13s} {r['decisions']:4d} decisions  p50 {r['p50_ms']:6.2f} ms  p95 {r['p95_ms']:6.2f} ms"
              f"  (CPU p50 {r['p50_cpu_ms']:.2f} ms, p95 {r['p95_cpu_ms']:.2f} ms)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
