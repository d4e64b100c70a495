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
