"""Live latency: from a signed Twilio webhook's arrival to the message in the DOM of an agent's
open inbox (Playwright, /usr/bin/chromium), p50 / p95 over N messages, with 1 connected SSE
client and with 200 (the browser plus plain HTTP SSE readers on the same session).

    .venv/bin/python bench/live.py --messages 100 --clients 1 200

The app runs under gunicorn as `make run` starts it (2 workers, gthread, --threads 128 unless
--threads says otherwise), with its two `worker.py` processes (as `make run`: `ingest default` and
`ingest background`, so the periodic sweeps never hold up a message), warmed up by one message first
(Sara's model loads on the first routing job). Each message comes from a new number, so a new
conversation row appears at the top of the open inbox: the webhook keeps the request and
enqueues its ingest job, the worker stores the message and publishes on Redis, every stream
forwards the event, htmx refetches the list fragment and swaps it in. A MutationObserver in
the page notes when the message text first appears; both clocks are this machine's.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

from sqlalchemy import select

from common import (  # noqa: I001
    AGENT_EMAIL, PASSWORD, ROOT, SECRET_KEY, WORKSPACE_SLUG, database_url, emit, engine_name,
    exit_on_sigterm, fake_twilio, make_app, stop_processes, summary, valkey,
)
from ingest import _free_port, _gunicorn

OBSERVER = """
window.__seen = {};
new MutationObserver(() => {
  const text = document.body.innerText;
  for (const token of (window.__watch || [])) {
    if (!(token in window.__seen) && text.includes(token)) window.__seen[token] = Date.now();
  }
}).observe(document.body, {childList: true, subtree: true, characterData: true});
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 200])
    parser.add_argument("--threads", type=int, default=128, help="gthread threads per worker (make run: 128)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each message")
    parser.add_argument("--json")
    args = parser.parse_args()
    exit_on_sigterm()
    url, redis_url, port = database_url(), valkey(), _free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app(url, REDIS_URL=redis_url, PUBLIC_BASE_URL=base)
    with app.app_context():
        path, sign = _signer(app)
    fake, fake_url = fake_twilio()  # where Sara's replies go
    started = [fake]
    results = {}
    try:
        started.append(_gunicorn(url, redis_url, base, port, 2, args.threads))
        started.extend(_workers(url, redis_url, base, fake_url))
        print(f"live: {engine_name(url)}, gunicorn 2 workers × {args.threads} threads, 2 worker.py, "
              f"{args.messages} messages")
        _warm_up(app, base, path, sign)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            for clients in args.clients:
                results[clients] = _run(browser, base, path, sign, clients, args)
                r = results[clients]
                print(f"{clients:>4} SSE clients: p50 {r['p50_ms']:.0f} ms  p95 {r['p95_ms']:.0f} ms  "
                      f"seen {r['n']}/{args.messages}  readers connected {r['readers_connected']}/{clients - 1}"
                      f"  webhooks unanswered {r['webhooks_unanswered']}")
            browser.close()
    finally:
        stop_processes(started)
    emit("live", {"engine": engine_name(url), "threads": args.threads, "results": results}, json_path=args.json)
    return 0


def _workers(url: str, redis_url: str, base: str, fake_url: str) -> list[subprocess.Popen]:
    from inbox.broker import ONE_MACHINE_WORKERS

    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY,
           "PUBLIC_BASE_URL": base, "TWILIO_API_BASE_URL": fake_url, "LOG_LEVEL": "WARNING"}
    return [subprocess.Popen([sys.executable, "worker.py", *queues], cwd=ROOT, env=env)
            for queues in ONE_MACHINE_WORKERS]


def _warm_up(app, base: str, path: str, sign, timeout: float = 120) -> None:
    """One message through the worker, routing included, before anything is timed."""
    from inbox.broker import WORKER_QUEUES, get_queue

    body, signature = sign("+33690000000", f"Warm-up {uuid.uuid4().hex[:6]}")
    urllib.request.urlopen(urllib.request.Request(base + path, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}), timeout=30).read()
    deadline = time.monotonic() + timeout
    with app.app_context():
        queues = [get_queue(name) for name in WORKER_QUEUES]
        while any(q.count for q in queues) or any(q.started_job_registry.count for q in queues):
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not finish the warm-up message in time")
            time.sleep(0.5)


def _signer(app):
    from inbox.extensions import db
    from inbox.models import Channel, Workspace
    from inbox.orchestrator.delivery import webhook_url
    from inbox.sandbox import twilio as fake

    ws = db.session.scalar(select(Workspace).where(Workspace.slug == WORKSPACE_SLUG))
    if ws is None:
        raise SystemExit("no bench workspace: run bench/generate.py first (same DATABASE_URL)")
    channel = db.session.scalar(select(Channel).where(Channel.workspace_id == ws.id, Channel.kind == "sms"))
    url, creds, address = webhook_url(channel), channel.credentials, channel.address

    def sign(sender: str, body: str) -> tuple[bytes, str]:
        params = fake.inbound_sms_payload(account_sid=creds["account_sid"], sender=sender, to=address, body=body)
        return urllib.parse.urlencode(params).encode(), fake.sign(creds["auth_token"], url, params)

    return urllib.parse.urlsplit(url).path, sign


def _run(browser, base: str, path: str, sign, clients: int, args) -> dict:
    context = browser.new_context()
    page = context.new_page()
    page.goto(base + "/login")
    page.locator("input[name=email]").fill(AGENT_EMAIL)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/inbox"))
    page.locator("#live-dot.connected").wait_for(timeout=30_000)
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
    # Flask-Login's "strong" session protection ties the session to the browser's User-Agent.
    readers = _SseReaders(base, cookie, page.evaluate("navigator.userAgent"), clients - 1)
    readers.start()
    page.evaluate(OBSERVER)
    latencies, missed, refused = [], 0, 0
    run = uuid.uuid4().hex[:6]
    for i in range(args.messages):
        token = f"live{run}n{i}z"
        body, signature = sign(f"+3369{clients:03d}{i:05d}", f"Message {token}")
        page.evaluate(f"window.__watch = ['{token}']")
        sent_ms = time.time() * 1000
        request = urllib.request.Request(base + path, data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except OSError:  # the server has no thread left for the webhook (every one holds a stream)
            refused += 1
            if refused >= 3:
                print(f"  {clients} clients: 3 webhooks not answered within 30 s: the server is saturated, stopping")
                break
            continue
        try:
            page.wait_for_function(f"window.__seen['{token}'] !== undefined", timeout=args.timeout * 1000)
            latencies.append(page.evaluate(f"window.__seen['{token}']") - sent_ms)
        except Exception:  # noqa: BLE001  (a timeout: counted as missed)
            missed += 1
        time.sleep(0.2)  # messages apart, as in a busy inbox rather than a burst
    connected = readers.connected
    readers.stop()
    context.close()
    return {**summary(latencies), "missed": missed, "webhooks_unanswered": refused,
            "readers_connected": connected, "clients": clients}


class _SseReaders:
    """Plain HTTP clients holding /stream open and reading events, like idle agents' browsers."""

    def __init__(self, base: str, cookie: str, user_agent: str, n: int):
        self.url, self.cookie, self.user_agent, self.n = urllib.parse.urlsplit(base), cookie, user_agent, n
        self.connected, self._stop, self._conns = 0, threading.Event(), []
        self._lock = threading.Lock()

    def start(self) -> None:
        for _ in range(self.n):
            threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while self.connected < self.n and time.monotonic() < deadline:
            time.sleep(0.2)

    def _read(self) -> None:
        conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
        with self._lock:
            self._conns.append(conn)
        try:
            conn.request("GET", "/stream", headers={"Cookie": self.cookie, "Accept": "text/event-stream",
                                                  "User-Agent": self.user_agent})
            response = conn.getresponse()
            if response.status != 200:
                return
            with self._lock:
                self.connected += 1
            while not self._stop.is_set() and response.readline():
                pass
        except (OSError, AttributeError):  # AttributeError: the socket closed under readline at stop()
            pass

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for conn in self._conns:
                conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
