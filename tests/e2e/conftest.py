"""Browser tests: Debian's chromium driven by Playwright against the app on a real HTTP port,
with a real RQ worker process sending the replies to the fake Twilio.

    .venv/bin/pytest -m e2e

Needs /usr/bin/chromium (`apt-get install chromium`); Playwright's own browser download is
not used. Without it the tests error at setup with that message (exit status 1): they
never skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inbox.extensions import db
from inbox.orchestrator.delivery import webhook_url
from inbox.sandbox.twilio import DEMO_AUTH_TOKEN, post_signed

from ..conftest import ARTIFACTS, PUBLIC_BASE_URL, ROOT, run_ingest

CHROMIUM = Path("/usr/bin/chromium")
LIVE_TIMEOUT_MS = 10_000  # how long the page may take to show something pushed by the server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium. Install it with "
                    "`apt-get update && apt-get install -y chromium`.", pytrace=False)
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1366, "height": 800}, "locale": "en-GB"}


@pytest.fixture
def page(page):
    page.set_default_timeout(LIVE_TIMEOUT_MS)
    return page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _sqlite_path(database_url: str) -> str | None:
    return database_url.removeprefix("sqlite:///") if database_url.startswith("sqlite:///") else None


class WorkerProcess:
    """`python worker.py` in a subprocess, configured like the app under test."""

    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        self._sqlite_path = _sqlite_path(env["DATABASE_URL"])
        self._log = open(log_path, "wb")
        # Its own process group: RQ's scheduler runs in a child process we must not leak.
        self.proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"the worker exited with {self.proc.returncode}:\n{self.log()}", pytrace=False)

    @contextlib.contextmanager
    def paused(self):
        """Freeze the worker (SIGSTOP) so a queued reply stays queued long enough to be seen.

        Never while it holds SQLite's write lock (a job, or a relay round, in progress): the
        web requests would then wait for a process that cannot move.
        """
        self.assert_alive()
        deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
        while True:
            self.proc.send_signal(signal.SIGSTOP)
            if self._database_writable():
                break
            self.proc.send_signal(signal.SIGCONT)
            if time.monotonic() > deadline:
                pytest.fail("the worker kept the database locked", pytrace=False)
            time.sleep(0.02)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def _database_writable(self) -> bool:
        if self._sqlite_path is None:
            return True
        connection = sqlite3.connect(self._sqlite_path, timeout=0.2, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test failed while it was paused
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)  # a warm shutdown also stops its scheduler
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its group: the worker and its scheduler
                self.proc.wait()
        self._log.close()


@pytest.fixture
def worker(app, database_url, redis_url, fake_twilio, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        # Channel credentials are encrypted with a key derived from SECRET_KEY: same as the app's.
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DELIVERY_RETRY_INTERVALS": ",".join(str(s) for s in app.config["DELIVERY_RETRY_INTERVALS"]),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    process = WorkerProcess(env, tmp_path / "worker.log")
    yield process
    process.stop()
    print(f"--- worker log ---\n{process.log()}")  # shown by pytest when the test failed


class Twilio:
    """Posts webhooks to the live server, signed for the public URL as Twilio signs them."""

    def __init__(self, server_url: str, channel):
        self.server_url = server_url
        self.channel = channel

    def post(self, params: dict, *, suffix: str = ""):
        public = webhook_url(self.channel, suffix)
        response = post_signed(self.server_url + public.removeprefix(PUBLIC_BASE_URL), params,
                               auth_token=DEMO_AUTH_TOKEN, signed_url=public)
        assert response.status_code == 200, response.text[:500]
        run_ingest()  # stored now, as a worker does (the test's own worker may race for it: no matter)
        return response


@pytest.fixture
def twilio(live_server, sms_channel):
    db.session.rollback()  # the test thread keeps no transaction open while the server writes
    return Twilio(live_server.url, sms_channel)


def wait_for(predicate, *, timeout: float = LIVE_TIMEOUT_MS / 1000, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}", pytrace=False)
        time.sleep(0.05)
