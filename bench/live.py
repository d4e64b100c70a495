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
forwards the event, the page fetches that conversation's row and puts it in place. A
MutationObserver in the page notes when the message text first appears; both clocks are this
machine's.

The other clients only read their stream unless --readers-fetch makes each behave like an open
inbox: on each conversation-changed event it fetches the changed row (`row`) or, as pages did
before issue #7, the whole list fragment (`list`); then the server CPU per message (gunicorn's,
from /proc) and the load average are printed too.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import multiprocessing
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
    exit_on_sigterm, fake_twilio, make_app, stop_processes, summary, tree_cpu_seconds, valkey,
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
window.__heard = {};  // when the event bringing the message's row reached the page
document.body.addEventListener("htmx:sseMessage", e => {
  const data = (e.detail && e.detail.data) || "";
  for (const token of (window.__watch || [])) {
    if (!(token in window.__heard) && data.includes(token)) window.__heard[token] = Date.now();
  }
});
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 200])
    parser.add_argument("--threads", type=int, default=128, help="gthread threads per worker (make run: 128)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each message")
    parser.add_argument("--readers-fetch", nargs="?", const="row", choices=["row", "list"], default=None,
                        help="the extra SSE readers fetch what an open inbox would on each conversation-changed "
                             "event: the changed row (row, the default; what the page does) or the list "
                             "fragment (list: what the page did before issue #7). Without it they only read.")
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
        server = _gunicorn(url, redis_url, base, port, 2, args.threads)
        started.append(server)
        started.extend(_workers(url, redis_url, base, fake_url))
        print(f"live: {engine_name(url)}, gunicorn 2 workers × {args.threads} threads, 2 worker.py, "
              f"{args.messages} messages")
        _warm_up(app, base, path, sign)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            for clients in args.clients:
                results[clients] = _run(browser, base, path, sign, clients, args, server.pid)
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


def _run(browser, base: str, path: str, sign, clients: int, args, server_pid: int) -> dict:
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
    readers = _ReadersElsewhere(base, cookie, page.evaluate("navigator.userAgent"), clients - 1, args.readers_fetch)
    readers.start()
    cpu_before, load_before, started = tree_cpu_seconds(server_pid), os.getloadavg(), time.monotonic()
    page.evaluate(OBSERVER)
    latencies, heard_ms, missed, refused = [], [], 0, 0
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
            seen, heard = page.evaluate(f"[window.__seen['{token}'], window.__heard['{token}']]")
            latencies.append(seen - sent_ms)
            if heard is not None:
                heard_ms.append(heard - sent_ms)
        except Exception:  # noqa: BLE001  (a timeout: counted as missed)
            missed += 1
        time.sleep(0.2)  # messages apart, as in a busy inbox rather than a burst
    connected = readers.connected
    readers_figures = _readers_figures(readers, server_pid, cpu_before, load_before, started,
                                       len(latencies) + missed + refused)
    readers.stop()
    context.close()
    heard = summary(heard_ms) if heard_ms else {}
    if heard:
        print(f"  the event with the row reached the page: p50 {heard['p50_ms']:.0f} ms  p95 {heard['p95_ms']:.0f} ms "
              f"after the webhook ({len(heard_ms)} messages)")
    return {**summary(latencies), "event_p50_ms": heard.get("p50_ms"), "event_p95_ms": heard.get("p95_ms"),
            "missed": missed, "webhooks_unanswered": refused,
            "readers_connected": connected, "clients": clients, **readers_figures}


def _readers_figures(readers: _SseReaders, server_pid: int, cpu_before: float, load_before, started: float,
                     messages: int) -> dict:
    """What the readers did and cost the server: events read, fetches made, server CPU per message
    sent and per second (2.0 per second would be both cores busy all along)."""
    time.sleep(2)  # the last message's fetches land
    cpu, seconds = tree_cpu_seconds(server_pid) - cpu_before, time.monotonic() - started
    readers.stop()  # and tell what they did
    fetch = summary(readers.fetch_ms) if readers.fetch_ms else {}
    figures = {"readers_fetch": readers.fetch, "reader_events": readers.events, "reader_rows_pushed": readers.pushed,
               "reader_fetches": readers.fetches,
               "reader_fetch_errors": readers.fetch_errors, "reader_fetch_p50_ms": fetch.get("p50_ms"),
               "reader_fetch_p95_ms": fetch.get("p95_ms"), "server_cpu_s": cpu,
               "server_cpu_ms_per_message": round(cpu * 1000 / messages, 1) if messages else None,
               "server_cpu_per_second": round(cpu / seconds, 2),
               "seconds": round(seconds, 1), "messages_sent": messages,
               "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}
    print(f"  readers fetch {readers.fetch or 'nothing'}: {readers.events} events ({readers.pushed} with their row), "
          f"{readers.fetches} fetches "
          f"(p50 {figures['reader_fetch_p50_ms']} ms, p95 {figures['reader_fetch_p95_ms']} ms), "
          f"{readers.fetch_errors} failed; server CPU {figures['server_cpu_ms_per_message']} ms per message sent "
          f"({messages} in {figures['seconds']} s, {figures['server_cpu_per_second']} CPU s/s); "
          f"load {figures['load_before']} → {figures['load_after']}")
    return figures


# What a _SseReaders counts, sent back from its process by name (_ReadersElsewhere starts them at 0 too).
READER_FIGURES = ("events", "fetches", "fetch_errors", "fetch_ms", "pushed")


class _ReadersElsewhere:
    """The readers in a process of their own. In the process that times the messages, their threads
    parsing every event held its interpreter lock: the webhooks left late and the clock with them
    (bench/RESULTS.md §15)."""

    def __init__(self, base: str, cookie: str, user_agent: str, n: int, fetch: str | None):
        context = multiprocessing.get_context("spawn")  # not fork: Playwright's threads live here
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_readers_main, args=(base, cookie, user_agent, n, fetch, child),
                                        daemon=True)
        self.fetch, self.connected, self._stopped = fetch, 0, False
        self.events, self.fetches, self.fetch_errors, self.fetch_ms, self.pushed = 0, 0, 0, [], 0

    def start(self) -> None:
        self._process.start()
        self.connected = self._pipe.recv() if self._pipe.poll(120) else 0

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._pipe.send("stop")
        if self._pipe.poll(60):
            for name, value in self._pipe.recv().items():
                setattr(self, name, value)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def _readers_main(base: str, cookie: str, user_agent: str, n: int, fetch: str | None, pipe) -> None:
    readers = _SseReaders(base, cookie, user_agent, n, fetch)
    readers.start()
    pipe.send(readers.connected)
    pipe.recv()
    with readers._lock:
        figures = {name: copy.copy(getattr(readers, name)) for name in READER_FIGURES}
    readers.stop()
    pipe.send(figures)


class _SseReaders:
    """Plain HTTP clients holding /stream open and reading events, like idle agents' browsers.
    With `fetch` they also do what an open inbox does on each conversation-changed event:
    "row" applies the row the event brings, or, when it brings none, fetches the changed
    conversation's row (GET /inbox/rows/<id>, the list itself when the event names none) — a search
    list's page always fetches; "list" refetches the list fragment (what the page did before issue #7, one
    request at a time and one more for whatever came meanwhile, as hx-sync "queue last")."""

    def __init__(self, base: str, cookie: str, user_agent: str, n: int, fetch: str | None = None):
        self.url, self.cookie, self.user_agent, self.n = urllib.parse.urlsplit(base), cookie, user_agent, n
        self.fetch = fetch
        self.connected, self._stop, self._conns = 0, threading.Event(), []
        self._lock = threading.Lock()
        self.events, self.fetches, self.fetch_errors, self.fetch_ms, self.pushed = 0, 0, 0, [], 0

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
        fetcher = _Fetcher(self) if self.fetch else None
        try:
            conn.request("GET", "/stream?rows=1", headers={"Cookie": self.cookie, "Accept": "text/event-stream",
                                                         "User-Agent": self.user_agent})
            response = conn.getresponse()
            if response.status != 200:
                return
            with self._lock:
                self.connected += 1
            event, data = None, ""
            while not self._stop.is_set() and (line := response.readline()):
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif not line:  # the end of one event
                    if event == "conversation-changed":
                        with self._lock:
                            self.events += 1
                        change = json.loads(data or "{}")
                        if self.fetch == "row" and "row" in change:  # the page applies the row it brings
                            with self._lock:
                                self.pushed += 1
                        elif fetcher:
                            fetcher.changed(change.get("conversation_id"))
                    event, data = None, ""
        except (OSError, AttributeError):  # AttributeError: the socket closed under readline at stop()
            pass

    def request(self, conn: http.client.HTTPConnection, path: str, headers: dict) -> None:
        started = time.perf_counter()
        ok = False
        for _attempt in range(2):  # once more on a fresh connection: gunicorn closes idle keep-alives (2 s)
            try:
                conn.request("GET", path, headers={"Cookie": self.cookie, "User-Agent": self.user_agent,
                                                   "HX-Request": "true", **headers})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
            except OSError:
                conn.close()
                break
        with self._lock:
            if ok:
                self.fetches += 1
                self.fetch_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.fetch_errors += 1

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for conn in self._conns:
                conn.close()


ROWS_BEFORE_REFETCH = 10  # inbox/static/js/app.js


class _Fetcher:
    """One reader's requests after events, one at a time in a thread of its own (as a page's)."""

    def __init__(self, readers: _SseReaders):
        self.readers, self._pending, self._wake = readers, [], threading.Condition()
        self._conn = http.client.HTTPConnection(readers.url.hostname, readers.url.port, timeout=60)
        with readers._lock:
            readers._conns.append(self._conn)
        threading.Thread(target=self._run, daemon=True).start()

    def changed(self, conversation_id: int | None) -> None:
        key = conversation_id if self.readers.fetch == "row" else None
        with self._wake:
            if None in self._pending or key in self._pending:
                return  # the request already waiting will see this change too
            if key is not None and len(self._pending) >= ROWS_BEFORE_REFETCH:
                self._pending.clear()  # as the page (app.js): too many rows waiting, the list instead
                key = None
            self._pending.append(key)
            self._wake.notify()

    def _run(self) -> None:
        while not self.readers._stop.is_set():
            with self._wake:
                while not self._pending:
                    if self._wake.wait(timeout=1) is False and self.readers._stop.is_set():
                        return
                key = self._pending.pop(0)
            if key is None:
                self.readers.request(self._conn, "/inbox", {"HX-Target": "conv-list"})
            else:
                self.readers.request(self._conn, f"/inbox/rows/{key}", {})


if __name__ == "__main__":
    raise SystemExit(main())
