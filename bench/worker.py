"""Worker throughput: outbound sends per second against the fake Twilio API (real `worker.py`
processes, 1 then 2), and the routing job's time per inbound message.

    .venv/bin/python bench/worker.py --sends 300 --routes 100

Sends: replies are stored through the real action (do_send_reply: message queued, delivery job
promised through the outbox), then `worker.py` processes drain the queue; each job calls the
twilio client against the fake API (a separate process on 127.0.0.1) and records the receipt.
Routing: inbound SMS go through the real webhook (test client), then the routing job's body
(inbox.jobs.route.route_message: Sara's decision and what follows) is timed per message.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from sqlalchemy import func, select

from common import (  # noqa: I001
    ROOT, SECRET_KEY, WORKSPACE_SLUG, database_url, emit, engine_name, exit_on_sigterm,
    fake_twilio, make_app, summary, valkey,
)

ROUTE_TEXTS = ["Bonjour, je voudrais annuler mon rendez-vous de demain", "OUI", "Ma facture est fausse, "
               "vous m'avez facturé deux fois", "je veux parler à quelqu'un", "Quels sont vos horaires ?",
               "5", "Le colis n'est toujours pas arrivé, c'est inadmissible"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=300, help="replies per worker configuration")
    parser.add_argument("--routes", type=int, default=100, help="inbound messages routed")
    parser.add_argument("--json")
    args = parser.parse_args()
    exit_on_sigterm()
    url, redis_url = database_url(), valkey()
    fake, fake_url = fake_twilio()
    try:
        app = make_app(url, REDIS_URL=redis_url, TWILIO_API_BASE_URL=fake_url, PUBLIC_BASE_URL="http://bench.test")
        print(f"worker: {engine_name(url)}, fake Twilio at {fake_url}")
        routing = _routing(app, args.routes)
        print(f"routing job per message: p50 {routing['p50_ms']:.1f} ms  p95 {routing['p95_ms']:.1f} ms "
              f"(n={routing['n']})")
        sends = {}
        for workers in (1, 2):
            sends[workers] = _sends(app, args.sends, workers, url, redis_url, fake_url)
            print(f"sends with {workers} worker process(es): {sends[workers]['per_s']:.1f}/s "
                  f"({sends[workers]['done']}/{args.sends} sent, reply action p50 "
                  f"{sends[workers]['action_p50_ms']:.1f} ms)")
    finally:
        fake.terminate()
    emit("worker", {"engine": engine_name(url), "routing": routing, "sends": sends}, json_path=args.json)
    return 0


def _context(app):
    from inbox.extensions import db
    from inbox.models import Channel, User, Workspace

    ws = db.session.scalar(select(Workspace).where(Workspace.slug == WORKSPACE_SLUG))
    if ws is None:
        raise SystemExit("no bench workspace: run bench/generate.py first (same DATABASE_URL)")
    channel = db.session.scalar(select(Channel).where(Channel.workspace_id == ws.id, Channel.kind == "sms"))
    agent = db.session.scalar(select(User).where(User.workspace_id == ws.id).order_by(User.id.desc()))
    return ws, channel, agent


def _routing(app, n: int) -> dict:
    from inbox.broker import get_queue
    from inbox.extensions import db
    from inbox.jobs.route import route_message
    from inbox.models import Contact, Message
    from inbox.orchestrator.delivery import webhook_url
    from inbox.sandbox import twilio as fake

    client = app.test_client()
    with app.app_context():
        ws, channel, _ = _context(app)
        url, creds = webhook_url(channel), channel.credentials
        phones = list(db.session.scalars(select(Contact.phone).where(Contact.workspace_id == ws.id)
                                         .order_by(Contact.id).limit(n)))
        before = db.session.scalar(select(func.max(Message.id)))
        for i in range(n):
            params = fake.inbound_sms_payload(account_sid=creds["account_sid"], sender=phones[i % len(phones)],
                                              to=channel.address, body=ROUTE_TEXTS[i % len(ROUTE_TEXTS)])
            client.post(url.removeprefix("http://bench.test"), data=params,
                        headers={"X-Twilio-Signature": fake.sign(creds["auth_token"], url, params)})
        db.session.rollback()
        ids = list(db.session.scalars(select(Message.id).where(Message.id > before, Message.direction == "inbound")))
        get_queue().empty()  # the same jobs, run here instead
        times = []
        for message_id in ids:
            started = time.perf_counter()
            route_message(message_id)
            times.append((time.perf_counter() - started) * 1000)
        get_queue().empty()  # bot replies' deliveries: not part of this figure
    return summary(times)


def _sends(app, n: int, workers: int, url: str, redis_url: str, fake_url: str) -> dict:
    from inbox.actions.conversations import do_send_reply
    from inbox.broker import get_queue
    from inbox.extensions import db
    from inbox.models import Conversation, Message

    with app.app_context():
        ws, channel, agent = _context(app)
        get_queue().empty()
        conversations = list(db.session.scalars(
            select(Conversation).where(Conversation.workspace_id == ws.id, Conversation.status == "open")
            .order_by(Conversation.id.desc()).limit(n)))
        action_ms, ids = [], []
        for i in range(n):
            conv = conversations[i % len(conversations)]
            started = time.perf_counter()
            message = do_send_reply(conv, f"Réponse de test {workers}-{i}", actor=agent, channel=channel)
            action_ms.append((time.perf_counter() - started) * 1000)
            ids.append(message.id)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY,
           "TWILIO_API_BASE_URL": fake_url, "LOG_LEVEL": "WARNING"}
    processes = [subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env) for _ in range(workers)]
    try:
        first_at, first_done, done, deadline = None, 0, 0, time.monotonic() + 300
        while time.monotonic() < deadline:
            with app.app_context():
                done = db.session.scalar(select(func.count()).select_from(Message).where(
                    Message.id.in_(ids), Message.delivery_status.notin_(["queued", "sending"])))
            now = time.perf_counter()
            if done and first_at is None:
                first_at, first_done = now, done
            if done >= n:
                break
            time.sleep(0.1)
        elapsed = (time.perf_counter() - first_at) if first_at else float("inf")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a warm shutdown waiting on its scheduler: not our figure
                process.kill()
                process.wait()
    rate = (done - first_done) / elapsed if elapsed and done > first_done else 0.0
    return {"workers": workers, "n": n, "done": done, "per_s": round(rate, 1),
            "action_p50_ms": summary(action_ms)["p50_ms"]}


if __name__ == "__main__":
    raise SystemExit(main())
