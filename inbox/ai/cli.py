"""`flask ai eval` and `flask ai decide`, as plain click commands to register on a group:

    ai = AppGroup("ai"); ai.add_command(eval_command); ai.add_command(decide_command)

Neither needs the database: eval reads CSV files, decide uses the demo playbook unless
given a JSON playbook.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal

import click

from .types import Article, Awaiting, DecisionContext, Intent, IntentAction, Playbook, Priority, TicketCategory


def _engine_factory(engine: str, model: str | None, base_url: str | None, api_key: str | None, embedder: str):
    def factory():
        from . import make_engine

        if engine == "openai":
            if not model:
                raise click.UsageError("--model is required with --engine openai")
            return make_engine("openai", model=model, base_url=base_url, api_key=api_key or "unused")
        return make_engine("offline", embedder=None if embedder == "none" else embedder)

    return factory


_engine_options = [
    click.option("--engine", type=click.Choice(["offline", "openai"]), default="offline", show_default=True),
    click.option("--embedder", type=click.Choice(["minilm+static", "minilm", "static", "e5", "none"]),
                 default="minilm+static", show_default=True,
                 help="Offline engine: dense vectors added to the TF-IDF features."),
    click.option("--model", help="OpenAI engine: model name."),
    click.option("--base-url", envvar="OPENAI_BASE_URL", help="OpenAI engine: an OpenAI-compatible endpoint."),
    click.option("--api-key", envvar="OPENAI_API_KEY", help="OpenAI engine: API key (or OPENAI_API_KEY)."),
]


def _with_engine_options(command):
    for option in reversed(_engine_options):
        command = option(command)
    return command


@click.command("eval")
@click.option("--train", "train_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with columns text,category (category 'oos' = out of scope).")
@click.option("--test", "test_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with columns text,category and optionally expect (a decision kind).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--price", nargs=2, type=Decimal, default=None, envvar="OPENAI_PRICE_PER_MILLION",
              help="Prompt and completion prices per million tokens, for the cost per 1000 messages "
                   "(or OPENAI_PRICE_PER_MILLION=\"0.15 0.60\").")
@_with_engine_options
def eval_command(train_path, test_path, as_json, price, engine, embedder, model, base_url, api_key):
    """Measure an engine: accuracy, out-of-scope recall, escalation recall, latency, cost."""
    from .evaluation import evaluate, load_csv

    report = evaluate(load_csv(train_path), load_csv(test_path),
                      _engine_factory(engine, model, base_url, api_key, embedder),
                      price_per_million_tokens=tuple(price) if price else None)
    if as_json:
        click.echo(json.dumps(report, default=str, indent=2))
        return
    width = max(len(k) for k in report)
    for key, value in report.items():
        click.echo(f"{key.ljust(width)}  {value}")


@click.command("decide")
@click.argument("text")
@click.option("--awaiting", type=click.Choice([a.value for a in Awaiting]), default=None)
@click.option("--playbook", "playbook_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON playbook {intents: [...], articles: [...]}; the French demo playbook by default.")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Workspace confidence threshold.")
@_with_engine_options
def decide_command(text, awaiting, playbook_path, threshold, engine, embedder, model, base_url, api_key):
    """Show what Sara decides for one message (JSON)."""
    from .agent import decide

    playbook = load_playbook(playbook_path) if playbook_path else _demo_playbook()
    context = DecisionContext(playbook=playbook, awaiting=Awaiting(awaiting) if awaiting else None,
                              confidence_threshold=threshold)
    decision = decide(text, context, engine=_engine_factory(engine, model, base_url, api_key, embedder)())
    click.echo(json.dumps(asdict(decision), default=str, ensure_ascii=False, indent=2))


def _demo_playbook() -> Playbook:
    from .demo_intents import PLAYBOOK

    return PLAYBOOK


def load_playbook(path: str) -> Playbook:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    intents = tuple(
        Intent(
            item["name"], tuple(item["examples"]), action=IntentAction(item.get("action", "escalate")),
            category=TicketCategory(item.get("category", "general")), priority=Priority(item.get("priority", "medium")),
            article_id=item.get("article_id"), reply_template=item.get("reply_template"),
            always_escalate=bool(item.get("always_escalate", False)),
        )
        for item in data.get("intents", ())
    )
    articles = tuple(Article(a["id"], a["title"], a["body"], a.get("language", "fr")) for a in data.get("articles", ()))
    return Playbook(intents=intents, articles=articles, out_of_scope_examples=tuple(data.get("out_of_scope", ())))
