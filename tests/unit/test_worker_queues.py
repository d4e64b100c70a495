"""`python worker.py [QUEUE …]`: a worker can be kept for some queues; a typo must not start a
worker that silently listens to nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_queue_name_stops_the_worker_with_the_names_it_knows():
    done = subprocess.run([sys.executable, "worker.py", "ingest", "defualt"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "unknown queue defualt: choose among ingest, default, background" in done.stderr


def test_one_machine_runs_a_worker_for_replies_beside_the_one_that_runs_background_work():
    # A sweep slice holds its worker for seconds: customers' messages and replies must still have one.
    from inbox.broker import BACKGROUND_QUEUE, DEFAULT_QUEUE, INGEST_QUEUE, ONE_MACHINE_WORKERS, WORKER_QUEUES

    assert {queue for queues in ONE_MACHINE_WORKERS for queue in queues} == set(WORKER_QUEUES)
    assert all(queues[0] == INGEST_QUEUE for queues in ONE_MACHINE_WORKERS)
    assert not any(DEFAULT_QUEUE in queues and BACKGROUND_QUEUE in queues for queues in ONE_MACHINE_WORKERS)


def test_the_procfile_starts_the_same_workers_as_make_run():
    from inbox.broker import ONE_MACHINE_WORKERS

    commands = [line.split(":", 1)[1].split() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.split(":", 1)[1].strip().startswith("python worker.py")]
    assert [tuple(command[2:]) for command in commands] == list(ONE_MACHINE_WORKERS)
