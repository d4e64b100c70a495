"""Worker throughput: outbound sends per second against the fake Twilio API (real `worker.py`
processes, 1 then 2), the routing job's time per inbound message, and the `ingest` job's
messages stored per second.

    .venv/bin/python bench/worker.py --sends 300 --routes 100 --ingest 300
    .venv/bin/python bench/worker.py --only ingest --ingest 500

Sends: replies are stored through the real action (do_send_reply: message queued, delivery job
promised through the outbox), then `worker.py` processes drain the queue; each job calls the
twilio client against the fake API (a separate process on 127.0.0.1) and records the receipt.
Routing: inbound SMS go through the real webhook (test client), then the routing job's body
(inbox.jobs.route.route_message: Sara's decision and what follows) is timed per message.
Ingest: signed Twilio SMS from existing contacts are kept by the real webhook (test client), then
their `ingest` jobs run through a real RQ SimpleWorker: first in this process, where CPU time, SQL
statements and Redis round trips per job are counted (RQ's own work included), then in 1 and 2
worker processes (SimpleWorker on the `ingest` queue only, as `worker.py` takes it first), timed
from the first stored message to the last. Routing jobs they queue are dropped, not run.
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
    parser.add_argument("--ingest", type=int, default=300, help="inbound webhooks ingested per configuration")
    parser.add_argument("--only", choices=("routing", "sends", "ingest"), help="run one measurement")
    parser.add_argument("--ingest-worker", action="store_true", help=argparse.SUPPRESS)  # one of them
    parser.add_argument("--json")
    args = parser.parse_args()
    exit_on_sigterm()
    if args.ingest_worker:
        return _ingest_worker()
    url, redis_url = database_url(), valkey()
    fake, fake_url = fake_twilio()
    try:
        app = make_app(url, REDIS_URL=redis_url, TWILIO_API_BASE_URL=fake_url, PUBLIC_BASE_URL="http://bench.test")
        print(f"worker: {engine_name(url)}, fake Twilio at {fake_url}")
        routing, sends, ingest = None, {}, {}
        if args.only in (None, "routing"):
            routing = _routing(app, args.routes)
            print(f"routing job per message: p50 {routing['p50_ms']:.1f} ms  p95 {routing['p95_ms']:.1f} ms "
                  f"(n={routing['n']})")
        for workers in (1, 2) if args.only in (None, "sends") else ():
            sends[workers] = _sends(app, args.sends, workers, url, redis_url, fake_url)
            print(f"sends with {workers} worker process(es): {sends[workers]['per_s']:.1f}/s "
                  f"({sends[workers]['done']}/{args.sends} sent, reply action p50 "
                  f"{sends[workers]['action_p50_ms']:.1f} ms)")
        if args.only in (None, "ingest"):
            ingest = _ingest(app, args.ingest, url, redis_url)
    finally:
        fake.terminate()
    emit("worker", {"engine": engine_name(url), "routing": routing, "sends": sends, "ingest": ingest},
         json_path=args.json)
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


def _ingest(app, n: int, url: str, redis_url: str) -> dict:
    """The `ingest` job: its cost in this process, then its rate in 1 and 2 worker processes."""
    results = {"in_process": _ingest_in_process(app, n)}
    cost = results["in_process"]
    print(f"ingest job in process: {cost['per_s']:.1f} messages/s, {cost['cpu_ms']:.2f} ms CPU, "
          f"{cost['statements']:.1f} SQL statements, {cost['redis_calls']:.1f} Redis round trips per job "
          f"({cost['stored']}/{n} stored)")
    for workers in (1, 2):
        run = results[workers] = _ingest_processes(app, n, workers, url, redis_url)
        print(f"ingest with {workers} worker process(es): {run['per_s']:.1f} messages/s "
              f"({run['stored']}/{n} stored; load average {run['load']})")
    return results


def _keep_webhooks(app, n: int) -> int:
    """N signed SMS from existing contacts, each a new message, kept by the real webhook;
    returns the highest message id before them."""
    from inbox.broker import INGEST_QUEUE, get_queue
    from inbox.extensions import db
    from inbox.models import Contact, Message
    from inbox.orchestrator.delivery import webhook_url
    from inbox.sandbox import twilio as fake

    client = app.test_client()
    with app.app_context():
        ws, channel, _ = _context(app)
        get_queue(INGEST_QUEUE).empty()
        url, creds, address = webhook_url(channel), channel.credentials, channel.address
        phones = list(db.session.scalars(select(Contact.phone).where(Contact.workspace_id == ws.id)
                                         .order_by(Contact.id.desc()).limit(n)))
        before = db.session.scalar(select(func.max(Message.id))) or 0
        db.session.rollback()
    for i in range(n):
        params = fake.inbound_sms_payload(account_sid=creds["account_sid"], sender=phones[i % len(phones)],
                                          to=address, body=f"Bonjour, message du bench {i}")
        response = client.post(url.removeprefix("http://bench.test"), data=params,
                                headers={"X-Twilio-Signature": fake.sign(creds["auth_token"], url, params)})
        assert response.status_code == 200, response.status_code
    return before


def _stored_since(app, before: int) -> int:
    from inbox.extensions import db
    from inbox.models import Message

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Message).where(
            Message.id > before, Message.direction == "inbound"))


def _ingest_in_process(app, n: int) -> dict:
    """One SimpleWorker in this process drains the kept webhooks; every SQL statement and Redis
    round trip (pipelines count once) it makes is counted, and its CPU time measured."""
    from redis.connection import Connection
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer
    from sqlalchemy import event

    from inbox.broker import INGEST_QUEUE, get_queue, redis_client
    from inbox.extensions import db

    before = _keep_webhooks(app, n)
    counts = {"sql": 0, "redis": 0}
    original = Connection.send_packed_command

    def counting(self, *a, **kw):
        counts["redis"] += 1
        return original(self, *a, **kw)

    def listener(*_a):
        counts["sql"] += 1

    with app.app_context():
        worker = SimpleWorker([get_queue(INGEST_QUEUE)], connection=redis_client(), serializer=JSONSerializer)
        engine = db.engine
        event.listen(engine, "before_cursor_execute", listener)
        Connection.send_packed_command = counting
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            event.remove(engine, "before_cursor_execute", listener)
            Connection.send_packed_command = original
        failed = len(get_queue(INGEST_QUEUE).failed_job_registry)
        get_queue().empty()  # the routing jobs: not part of this figure
    stored, jobs = _stored_since(app, before), n  # one job per kept webhook
    return {"n": n, "failed": failed, "stored": stored,
            "per_s": round(stored / wall, 1) if wall else 0, "cpu_ms": round(cpu * 1000 / jobs, 2),
            "statements": round(counts["sql"] / jobs, 2), "redis_calls": round(counts["redis"] / jobs, 2)}


def _ingest_processes(app, n: int, workers: int, url: str, redis_url: str) -> dict:
    from inbox.broker import get_queue

    before = _keep_webhooks(app, n)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY,
           "LOG_LEVEL": "WARNING"}
    processes = [subprocess.Popen([sys.executable, __file__, "--ingest-worker"], cwd=ROOT, env=env)
                 for _ in range(workers)]
    try:
        first_at, first_done, done, deadline = None, 0, 0, time.monotonic() + 300
        while time.monotonic() < deadline:
            done = _stored_since(app, before)
            now = time.perf_counter()
            if done and first_at is None:
                first_at, first_done = now, done
            if done >= n or all(p.poll() is not None for p in processes):
                break
            time.sleep(0.05)
        elapsed = (time.perf_counter() - first_at) if first_at else float("inf")
        load = os.getloadavg()[0]
    finally:
        for process in processes:  # burst workers leave once the queue is empty
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(timeout=30)
    with app.app_context():
        get_queue().empty()  # the routing jobs: not part of this figure
    rate = (done - first_done) / elapsed if elapsed and done > first_done else 0.0
    return {"workers": workers, "n": n, "stored": done, "per_s": round(rate, 1), "load": round(load, 2)}


def _ingest_worker() -> int:
    """One worker process on the `ingest` queue, until it is empty."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from inbox.broker import INGEST_QUEUE, get_queue, redis_client

    app = make_app()
    with app.app_context():
        worker = SimpleWorker([get_queue(INGEST_QUEUE)], connection=redis_client(), serializer=JSONSerializer)
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
