"""Agents reading while others write: N agents open ticket pages, M API clients create tickets, at
the same time, through gunicorn (make run's settings) on the bench workspace; pages and creations
per second with p50 / p95.

    .venv/bin/python bench/readwrite.py --duration 15 --readers 4 --writers 1

On SQLite this is what the database's single write lock decides: a page that took the lock at
BEGIN waited in line behind the writers and the other pages (§16 of RESULTS.md). Each client is a
thread with its own keep-alive session (agents logged in through the login form, API clients with
a bearer token); errors are counted, not retried.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time

from common import database_url, emit, engine_name, exit_on_sigterm, stop_processes, summary, valkey
from helpdesk import _CoccinelleClient, _free_port, _references, _serve_coccinelle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds of load")
    parser.add_argument("--readers", type=int, default=4, help="agents opening ticket pages")
    parser.add_argument("--writers", type=int, default=1, help="API clients creating tickets")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--json")
    args = parser.parse_args()
    exit_on_sigterm()
    url, redis_url = database_url(), valkey()
    refs = _references(url)
    port = _free_port()
    server = _serve_coccinelle(url, redis_url, port, args)
    try:
        clients = [_CoccinelleClient(f"http://127.0.0.1:{port}", url, redis_url)
                   for _ in range(args.readers + args.writers)]
        for client in clients:
            client.server = server
            client.login()
        load_before = os.getloadavg()
        pages, creations, errors, elapsed = _run(clients, refs, args)
    finally:
        stop_processes([server])
    results = {"engine": engine_name(url), "readers": args.readers, "writers": args.writers,
               "duration_s": round(elapsed, 1), "errors": errors, "load_before": load_before,
               "load_after": os.getloadavg(),
               "pages": {**summary(pages), "per_second": round(len(pages) / elapsed, 1)},
               "creations": {**summary(creations), "per_second": round(len(creations) / elapsed, 1)}}
    print(f"{engine_name(url)}, gunicorn {args.workers} workers × {args.threads} threads, {elapsed:.0f} s, "
          f"load {results['load_before'][0]:.2f} → {results['load_after'][0]:.2f}")
    for name, count in (("pages", args.readers), ("creations", args.writers)):
        figures = results[name]
        if count:
            print(f"{name:<10} {count} clients: {figures['per_second']:6.1f}/s  p50 {figures['p50_ms']:7.1f}  "
                  f"p95 {figures['p95_ms']:7.1f} ms")
    print(f"errors     {errors}")
    emit("readwrite", results, json_path=args.json)
    return 0


def _run(clients: list[_CoccinelleClient], refs: dict, args) -> tuple[list[float], list[float], int, float]:
    pages: list[float] = []
    creations: list[float] = []
    errors = [0]
    stop = time.monotonic() + args.duration
    created = iter(range(10**9))

    def timed(call, into: list[float]) -> None:
        started = time.perf_counter()
        try:
            call()
        except SystemExit:  # _check's answer to an unexpected status
            errors[0] += 1
            return
        into.append((time.perf_counter() - started) * 1000)

    def reader(client, seed: int) -> None:
        chooser = random.Random(seed)
        while time.monotonic() < stop:
            timed(lambda: client.ticket_page(chooser.choice(refs["ticket_ids"])), pages)

    def writer(client) -> None:
        while time.monotonic() < stop:
            timed(lambda: client.create(next(created), refs), creations)

    threads = [threading.Thread(target=reader, args=(c, i)) for i, c in enumerate(clients[:args.readers])]
    threads += [threading.Thread(target=writer, args=(c,)) for c in clients[args.readers:]]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return pages, creations, errors[0], time.monotonic() - started


if __name__ == "__main__":
    raise SystemExit(main())
