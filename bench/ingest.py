"""Ingestion: sustained signed Twilio SMS webhooks per second through gunicorn (2 workers, gthread
128 threads: the `make run` settings), p50 / p99 latency, and the ratio to a bare Flask "hello"
served by the same gunicorn in the same run.

    .venv/bin/python bench/ingest.py --duration 15 --connections 32
    DATABASE_URL=postgresql://… .venv/bin/python bench/ingest.py

Load generator: `wrk` (C, keep-alive; `apt-get install wrk`) with a Lua script cycling through
pre-signed webhooks, each a distinct message (new MessageSid) from one of the workspace's
contacts; without wrk, a Python thread pool (http.client, keep-alive), which tops out far lower.
Each webhook goes the production way: signature checked, payload read, the request kept as one
row, committed, its `ingest` job handed to Redis, answered. Then `--drain-workers` processes run
the `ingest` queue (contact, conversation, message stored; routing jobs queued, not run: see
bench/worker.py) for at most `--drain-seconds`, and the messages stored per second are printed;
kept webhooks left after that are deleted, so the bench database stays as generated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import func, select

from common import (  # noqa: I001
    ROOT, SECRET_KEY, WORKSPACE_SLUG, database_url, emit, engine_name, exit_on_sigterm,
    machine_cpu_seconds, make_app, summary, tree_cpu_seconds, valkey,
)

OUT = ROOT / "bench" / "out"
HELLO_PATH = "/__bench/hello"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=128, help="gthread threads per worker (make run: 128)")
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"),
                        help="gthread as `make run`; sync as the issue's reference hello figure")
    parser.add_argument("--requests", type=int, default=40_000, help="distinct signed webhooks prepared")
    parser.add_argument("--python-client", action="store_true", help="use the Python load generator")
    parser.add_argument("--drain-workers", type=int, default=2, help="worker processes storing kept webhooks")
    parser.add_argument("--drain-seconds", type=int, default=30)
    parser.add_argument("--drain-worker", action="store_true", help=argparse.SUPPRESS)  # one of them
    parser.add_argument("--json")
    args = parser.parse_args()
    exit_on_sigterm()
    if args.drain_worker:
        return _drain_worker()
    url, redis_url, port = database_url(), valkey(), _free_port()
    base = f"http://127.0.0.1:{port}"
    tool = "wrk" if shutil.which("wrk") and not args.python_client else "python"
    app = make_app(url, REDIS_URL=redis_url, PUBLIC_BASE_URL=base)
    with app.app_context():
        channel_path, requests_ = _signed_webhooks(app, base, args.requests)
    cost = _in_process_cost(app, channel_path, requests_[-1000:])
    print(f"in-process cost per webhook (test client, no HTTP): {cost['cpu_ms']:.2f} ms CPU, "
          f"{cost['statements']:.0f} SQL statements, {cost['redis_calls']:.0f} Redis round trips; "
          f"a bare hello {cost['hello_cpu_ms']:.3f} ms CPU: webhook = {1 / cost['hello_ratio']:.1f} × hello "
          f"({cost['hello_ratio']:.1%} of its rate)")
    requests_ = requests_[:-1000]
    with app.app_context():
        kept_before = _count("InboundDelivery")
    print(f"ingest: {engine_name(url)}, gunicorn {args.workers} {args.worker_class} workers" + (f" × {args.threads} threads" if args.worker_class == "gthread" else "") + ", "
          f"{args.connections} connections, {args.duration}s each, load generator: {tool}")
    server = _gunicorn(url, redis_url, base, port, args.workers, args.threads, args.worker_class)
    try:
        run = _with_cpu(_wrk if tool == "wrk" else _python_load, server.pid)
        hello = run(base + HELLO_PATH, None, args)
        print(f"hello     {hello['rps']:>9,.0f} req/s  p50 {hello['p50_ms']:.2f} ms  p99 {hello['p99_ms']:.2f} ms"
              f"  errors {hello['errors']}")
        webhook = run(base + channel_path, requests_, args)
        print(f"webhooks  {webhook['rps']:>9,.0f} req/s  p50 {webhook['p50_ms']:.2f} ms  p99 {webhook['p99_ms']:.2f} ms"
              f"  errors {webhook['errors']}")
        for name, result in (("hello", hello), ("webhook", webhook)):
            print(f"  CPU per {name}: gunicorn {result['server_cpu_ms']:.3f} ms, the rest of the machine "
                  f"{result['other_cpu_ms']:.3f} ms ({engine_name(url)}, Valkey, {tool}, kernel); "
                  f"machine {result['machine_busy']:.0%} busy")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    with app.app_context():
        kept = _count("InboundDelivery") - kept_before
    ratio = webhook["rps"] / hello["rps"] if hello["rps"] else 0
    print(f"kept {kept:,} webhooks for {webhook['requests']:,} requests "
          f"({'all' if kept >= webhook['requests'] else 'fewer: some requests failed'})")
    print(f"ratio webhooks/hello = {ratio:.1%}  (target: ≥ 1,000/s and ≥ 13% of hello)")
    drain = _drain(app, url, redis_url, base, args.drain_workers, args.drain_seconds)
    print(f"ingest jobs: {drain['workers']} worker processes stored {drain['stored']:,} messages in "
          f"{drain['seconds']:.1f} s = {drain['per_second']:.0f} messages/s; {drain['left']:,} kept webhooks "
          f"left un-ingested were deleted")
    emit("ingest", {"engine": engine_name(url), "tool": tool, "workers": args.workers, "threads": args.threads,
                    "connections": args.connections, "in_process": cost, "hello": hello, "webhooks": webhook,
                    "kept": kept, "ratio": round(ratio, 4), "drain": drain}, json_path=args.json)
    return 0


def _drain(app, url: str, redis_url: str, base: str, workers: int, seconds: int) -> dict:
    """Run the ingest queue in `workers` processes until it is empty or time is up."""
    from inbox.broker import INGEST_QUEUE, get_queue

    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY,
           "PUBLIC_BASE_URL": base, "LOG_LEVEL": "WARNING"}
    with app.app_context():
        before = _count("Message")
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, __file__, "--drain-worker"], cwd=ROOT, env=env)
                 for _ in range(workers)]
    with app.app_context():
        queue = get_queue(INGEST_QUEUE)
        while time.perf_counter() - started < seconds and any(p.poll() is None for p in processes):
            time.sleep(0.5)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)
    with app.app_context():
        stored = _count("Message") - before
        left = _delete_kept()
        queue.empty()
    return {"workers": workers, "stored": stored, "seconds": round(elapsed, 2),
            "per_second": round(stored / elapsed, 1) if elapsed else 0, "left": left}


def _drain_worker() -> int:
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from inbox.broker import INGEST_QUEUE, get_queue, redis_client

    app = make_app()
    with app.app_context():
        worker = SimpleWorker([get_queue(INGEST_QUEUE)], connection=redis_client(), serializer=JSONSerializer)
        worker.work(burst=True, logging_level="WARNING")
    return 0


def _delete_kept() -> int:
    from inbox.extensions import db
    from inbox.models import InboundDelivery

    db.session.rollback()
    deleted = db.session.execute(InboundDelivery.__table__.delete()).rowcount
    db.session.commit()
    return deleted


def _in_process_cost(app, path: str, requests_: list[tuple[str, str]]) -> dict:
    """CPU time, SQL statements and Redis round trips per webhook, measured in this process, each
    webhook interleaved with a bare Flask "hello": their CPU ratio is what a busy or throttled
    machine distorts least (wall-clock rates under load, or under a hypervisor's steal, do)."""
    from flask import Flask
    from redis.connection import Connection
    from sqlalchemy import event

    from inbox.extensions import db

    hello = Flask("hello")
    hello.get(HELLO_PATH)(lambda: "hello")
    client, hello_client, counts = app.test_client(), hello.test_client(), {"sql": 0, "redis": 0}
    with app.app_context():
        engine = db.engine
    listener = lambda *a: counts.__setitem__("sql", counts["sql"] + 1)  # noqa: E731
    original = Connection.send_packed_command  # one call per round trip, pipelines included

    def counting(self, *a, **kw):
        counts["redis"] += 1
        return original(self, *a, **kw)

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for body, sig in requests_[:20]:  # warm-up
        client.post(path, data=body, headers={**headers, "X-Twilio-Signature": sig})
        hello_client.get(HELLO_PATH)
    webhook_cpu = hello_cpu = 0.0
    for body, sig in requests_[20:]:
        started = time.thread_time()
        hello_client.get(HELLO_PATH)
        hello_cpu += time.thread_time() - started
        event.listen(engine, "before_cursor_execute", listener)
        Connection.send_packed_command = counting
        started = time.thread_time()
        try:
            response = client.post(path, data=body, headers={**headers, "X-Twilio-Signature": sig})
        finally:
            webhook_cpu += time.thread_time() - started
            event.remove(engine, "before_cursor_execute", listener)
            Connection.send_packed_command = original
        assert response.status_code == 200, response.status_code
    n = len(requests_) - 20
    return {"cpu_ms": webhook_cpu * 1000 / n, "hello_cpu_ms": hello_cpu * 1000 / n,
            "hello_ratio": hello_cpu / webhook_cpu if webhook_cpu else 0,
            "statements": counts["sql"] / n, "redis_calls": counts["redis"] / n}


def _with_cpu(run, server_pid: int):
    """`run`, with where the machine's CPU went per request while it ran: gunicorn's processes, and
    everything else (the database, Valkey, the load generator, the kernel's network stack)."""
    def measured(url: str, requests_, args) -> dict:
        server_before, (busy_before, total_before) = tree_cpu_seconds(server_pid), machine_cpu_seconds()
        result = run(url, requests_, args)
        busy, total = (after - before for after, before in zip(machine_cpu_seconds(), (busy_before, total_before)))
        server, n = tree_cpu_seconds(server_pid) - server_before, max(result["requests"], 1)
        return {**result, "server_cpu_ms": round(server * 1000 / n, 3), "other_cpu_ms": round((busy - server) * 1000 / n, 3),
                "machine_busy": round(busy / total, 3) if total else 0}
    return measured


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _count(model_name: str) -> int:
    from inbox import models
    from inbox.extensions import db

    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(getattr(models, model_name)))


def _signed_webhooks(app, base: str, n: int) -> tuple[str, list[tuple[str, str]]]:
    """(path, [(form body, signature)]): distinct messages from existing contacts' phones."""
    from inbox.extensions import db
    from inbox.models import Channel, Contact, Workspace
    from inbox.orchestrator.delivery import webhook_url
    from inbox.sandbox import twilio as fake

    ws = db.session.scalar(select(Workspace).where(Workspace.slug == WORKSPACE_SLUG))
    if ws is None:
        raise SystemExit("no bench workspace: run bench/generate.py first (same DATABASE_URL)")
    channel = db.session.scalar(select(Channel).where(Channel.workspace_id == ws.id, Channel.kind == "sms"))
    phones = list(db.session.scalars(select(Contact.phone).where(Contact.workspace_id == ws.id)
                                     .order_by(Contact.id.desc()).limit(5000)))
    url = webhook_url(channel)
    token = channel.credentials["auth_token"]
    out = []
    for i in range(n):
        params = fake.inbound_sms_payload(account_sid=channel.credentials["account_sid"],
                                          sender=phones[i % len(phones)], to=channel.address,
                                          body=f"Bonjour, message de charge {i}")
        out.append((urllib.parse.urlencode(params), fake.sign(token, url, params)))
    return url.removeprefix(base), out


def _gunicorn(url: str, redis_url: str, base: str, port: int, workers: int, threads: int,
              worker_class: str = "gthread"):
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY,
           "PUBLIC_BASE_URL": base, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", worker_class,
         "--workers", str(workers), "--threads", str(threads if worker_class == "gthread" else 1), "--timeout", "0", "--graceful-timeout", "2",
         "--log-level", "warning", "--pythonpath", str(ROOT / "bench"), "ingest_app:application"],
        cwd=ROOT, env=env)
    import urllib.request
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + HELLO_PATH, timeout=2).read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not start")


_LUA_DONE = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%f,'
    .. '"non2xx":%d,"socket_errors":%d}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
'''


def _lua_script(requests_: list[tuple[str, str]] | None) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("ingest-webhooks.lua" if requests_ else "ingest-hello.lua")
    if not requests_:
        path.write_text(_LUA_DONE)
        return path
    rows = ",\n".join("{%s,%s}" % (json.dumps(body), json.dumps(sig)) for body, sig in requests_)
    path.write_text(
        "local reqs = {\n" + rows + "\n}\n"
        "local n = 0\nlocal threads = 0\n"
        "setup = function(thread) thread:set('tid', threads); threads = threads + 1 end\n"
        "init = function(args) n = 0 end\n"
        "request = function()\n"
        "  local r = reqs[((n * 2 + tid) % #reqs) + 1]\n  n = n + 1\n"
        "  return wrk.format('POST', nil, {['Content-Type'] = 'application/x-www-form-urlencoded',"
        " ['X-Twilio-Signature'] = r[2]}, r[1])\nend\n" + _LUA_DONE)
    return path


def _wrk(url: str, requests_, args) -> dict:
    script = _lua_script(requests_)
    result = subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s",
                             "--timeout", "10s", "-s", str(script), url], capture_output=True, text=True)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {result.stdout}\n{result.stderr}")
    data = json.loads(line[5:])
    seconds = data["duration_us"] / 1e6
    return {"requests": data["requests"], "rps": round(data["requests"] / seconds, 1),
            "p50_ms": data["p50_us"] / 1000, "p99_ms": data["p99_us"] / 1000,
            "errors": data["non2xx"] + data["socket_errors"]}


def _python_load(url: str, requests_, args) -> dict:
    """Keep-alive connections in threads; slower than wrk (the GIL), kept for machines without it."""
    import http.client

    parsed = urllib.parse.urlsplit(url)
    stop = time.monotonic() + args.duration
    latencies: list[list[float]] = [[] for _ in range(args.connections)]
    errors = [0]

    def client(k: int):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        i = k
        while time.monotonic() < stop:
            started = time.perf_counter()
            if requests_:
                body, sig = requests_[i % len(requests_)]
                i += args.connections
                conn.request("POST", parsed.path, body=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
            else:
                conn.request("GET", parsed.path)
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                errors[0] += 1
            latencies[k].append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for per in latencies for x in per]
    stats = summary(flat)
    return {"requests": len(flat), "rps": round(len(flat) / elapsed, 1), "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"], "errors": errors[0]}


if __name__ == "__main__":
    raise SystemExit(main())
