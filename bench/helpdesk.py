"""Side by side with django-helpdesk: the same tickets in both, the same gunicorn settings, the same
HTTP client, one run; p50 / p95 per operation on each side and the ratio.

    .venv/bin/python bench/helpdesk.py --runs 200
    .venv/bin/python bench/helpdesk.py --reload          # rebuild django-helpdesk's database first

django-helpdesk is installed from PyPI (pinned: bench/helpdesk/requirements.txt) into its own
virtualenv, bench/helpdesk/.venv (gitignored), on first use; the Django project that serves it is
bench/helpdesk/project/. Its SQLite database (bench/data/bench-helpdesk.db) is migrated, then filled by
bench/helpdesk/project/load.py from Coccinelle's bench workspace (run bench/generate.py first):
the same tickets with the same ids, their events as follow-ups, one queue, the same staff.

Both apps run under gunicorn with the same settings (2 workers, gthread, 32 threads; keep-alive 120 s) and are
measured in turn, request by request, by one keep-alive HTTP client (requests.Session) logged in
to each as the same agent through its login form (CSRF token included):

  ticket list   django-helpdesk's data call (datatables_ticket_list, newest first, 25 rows) vs
                Coccinelle's /tickets page (25 rows, HTML, the KPI strip included)
  list, JSON    the same data call vs Coccinelle's GET /api/tickets?status=active (25, bearer token):
                JSON against JSON, no page around it
  ticket page   /tickets/<id>/ vs /tickets/<id>, the same ids on both sides
  search        the list's keyword search on every status: the data call with the search string
                vs /tickets?status=any&q=…
  create        POST /api/tickets/ with the session cookie and X-CSRFToken vs POST /api/tickets
                with Coccinelle's documented API auth, a bearer token (its API takes no session)

SQLite only for now: django-helpdesk's venv has no PostgreSQL driver.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import (  # noqa: I001
    AGENT_EMAIL, PASSWORD, ROOT, SECRET_KEY, WORKSPACE_SLUG, database_url, emit, engine_name,
    exit_on_sigterm, stop_processes, summary, tree_cpu_seconds, valkey,
)

HELPDESK = ROOT / "bench" / "helpdesk"
VENV = HELPDESK / ".venv"
PROJECT = HELPDESK / "project"
REQUIREMENTS = HELPDESK / "requirements.txt"
KEYWORD = "livraison"
# make run's settings, plus a keep-alive longer than the slowest request: the client's idle connection to
# one side must not be closed while the other side answers (gunicorn's default is 2 s).
GUNICORN = ["--worker-class", "gthread", "--timeout", "0", "--graceful-timeout", "2", "--keep-alive", "120",
            "--log-level", "warning"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed requests per operation and side")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per operation and side first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32, help="gthread threads per worker (the earlier runs: 32)")
    parser.add_argument("--reload", action="store_true", help="rebuild django-helpdesk's database")
    parser.add_argument("--json")
    args = parser.parse_args()
    exit_on_sigterm()
    url = database_url()
    if engine_name(url) != "sqlite":
        print("helpdesk: skipped, the comparison runs on SQLite only (unset DATABASE_URL)")
        return 0  # `make bench` on PostgreSQL goes on
    source = Path(url.removeprefix("sqlite:///"))
    if not source.exists():
        raise SystemExit(f"no bench workspace at {source}: run bench/generate.py first")
    versions = _helpdesk_venv()
    refs = _references(url)
    target = source.with_name(f"{source.stem}-helpdesk.db")  # bench/data/bench-helpdesk.db by default
    _helpdesk_database(source, target, tickets=refs["tickets"], reload=args.reload)
    print(f"side by side: SQLite, {refs['tickets']:,} tickets in Coccinelle, {_helpdesk_count(target):,} in "
          f"django-helpdesk {versions['django-helpdesk']} (Django {versions['django']}); gunicorn "
          f"{args.workers} workers × {args.threads} threads (gthread) each; {args.runs} timed requests "
          f"per operation and side, alternating")
    load_before = os.getloadavg()
    redis_url = valkey()
    ports = _free_port(), _free_port()
    servers = []
    try:
        servers.append(_serve_coccinelle(url, redis_url, ports[0], args))
        servers.append(_serve_helpdesk(ports[1], target, args))
        sides = {"django-helpdesk": _HelpdeskClient(f"http://127.0.0.1:{ports[1]}", target),
                 "Coccinelle": _CoccinelleClient(f"http://127.0.0.1:{ports[0]}", url, redis_url)}
        sides["Coccinelle"].server, sides["django-helpdesk"].server = servers
        for client in sides.values():
            client.login()
        results = _measure(sides, refs, args)
    finally:
        stop_processes(servers)
    load_after = os.getloadavg()
    print(f"load average before {_load(load_before)}, after {_load(load_after)} "
          f"({os.cpu_count()} CPUs)")
    emit("helpdesk", {"engine": "sqlite", "versions": versions, "workers": args.workers,
                      "threads": args.threads, "runs": args.runs, "tickets": refs["tickets"],
                      "load_before": load_before, "load_after": load_after, "operations": results},
         json_path=args.json)
    return 0


# -- django-helpdesk's environment and data --------------------------------------------------------
def _helpdesk_venv() -> dict:
    """bench/helpdesk/.venv with the pinned requirements (reinstalled when the pins change)."""
    python, stamp = VENV / "bin" / "python", VENV / ".installed"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not python.exists():
        print("creating bench/helpdesk/.venv")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not stamp.exists() or stamp.read_text() != wanted:
        print("installing django-helpdesk and gunicorn from PyPI into bench/helpdesk/.venv")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    out = subprocess.run([str(python), "-c", "import django, importlib.metadata as m; "
                          "print(django.get_version(), m.version('django-helpdesk'))"],
                         check=True, capture_output=True, text=True).stdout.split()
    return {"django": out[0], "django-helpdesk": out[1]}


def _helpdesk_env(database: Path) -> dict:
    return {**os.environ, "HELPDESK_BENCH_DB": str(database), "DJANGO_SETTINGS_MODULE": "benchdesk.settings",
            "PYTHONPATH": str(PROJECT)}


def _helpdesk_database(source: Path, database: Path, *, tickets: int, reload: bool) -> None:
    """Migrated and loaded once, again with --reload or when the ticket counts differ (a new
    workspace: this bench adds as many tickets to each side)."""
    if database.exists() and not reload:
        if _helpdesk_count(database) == tickets:
            return
        print(f"django-helpdesk holds {_helpdesk_count(database):,} tickets, Coccinelle {tickets:,}: reloading")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    python = str(VENV / "bin" / "python")
    started = time.perf_counter()
    subprocess.run([python, "manage.py", "migrate", "--verbosity", "0"], cwd=PROJECT, env=_helpdesk_env(database),
                   check=True)
    print(f"django-helpdesk migrated in {time.perf_counter() - started:.1f} s")
    subprocess.run([python, "load.py", "--source", str(source), "--workspace", WORKSPACE_SLUG,
                    "--password", PASSWORD], cwd=PROJECT, env=_helpdesk_env(database), check=True)


def _helpdesk_count(database: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM helpdesk_ticket").fetchone()[0]
    except sqlite3.Error:  # not migrated, or an interrupted load
        return -1


def _references(url: str) -> dict:
    """Ticket ids (the same in both), the agent's id and a contact for Coccinelle's API."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        ws = conn.execute(text("SELECT id FROM workspace WHERE slug = :s"), {"s": WORKSPACE_SLUG}).scalar()
        if ws is None:
            raise SystemExit("no bench workspace: run bench/generate.py first")
        ids = list(conn.execute(text("SELECT id FROM ticket WHERE workspace_id = :w ORDER BY id"), {"w": ws})
                   .scalars())
        contact, email = conn.execute(text("SELECT id, email FROM contact WHERE workspace_id = :w AND email "
                                           "IS NOT NULL ORDER BY id DESC LIMIT 1"), {"w": ws}).one()
    engine.dispose()
    sample = random.Random(7).sample(ids, min(len(ids), 500))
    return {"workspace": ws, "tickets": len(ids), "ticket_ids": sample, "contact": contact, "email": email}


# -- servers ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_coccinelle(url: str, redis_url: str, port: int, args) -> subprocess.Popen:
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET_KEY,
           "PUBLIC_BASE_URL": base, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--threads", str(args.threads), *GUNICORN, "wsgi:app"], cwd=ROOT, env=env)
    return _wait_for(process, base + "/login", "Coccinelle")


def _serve_helpdesk(port: int, database: Path, args) -> subprocess.Popen:
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(VENV / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--threads", str(args.threads), *GUNICORN, "benchdesk.wsgi:application"], cwd=PROJECT,
        env=_helpdesk_env(database))
    return _wait_for(process, base + "/login/", "django-helpdesk")


def _wait_for(process: subprocess.Popen, url: str, name: str) -> subprocess.Popen:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}'s gunicorn exited ({process.returncode})")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{name}'s gunicorn did not start")


# -- the two clients ----------------------------------------------------------------------------------
class _Client:
    server: subprocess.Popen

    def __init__(self, base: str):
        import requests

        self.base, self.http = base, requests.Session()

    def cpu_seconds(self) -> float:
        """User + system CPU of the gunicorn master and its workers: a figure that other processes
        on the machine slow down far less than wall-clock time."""
        return tree_cpu_seconds(self.server.pid)

    def _get(self, path: str, **kw):
        return self.http.get(self.base + path, timeout=60, **kw)

    @staticmethod
    def _check(response, expected: int, what: str):
        if response.status_code != expected:
            raise SystemExit(f"{what}: HTTP {response.status_code} (expected {expected}): {response.text[:300]}")
        return response


class _HelpdeskClient(_Client):
    def __init__(self, base: str, database: Path):
        import sqlite3

        super().__init__(base)
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            self.queue = conn.execute("SELECT id FROM helpdesk_queue ORDER BY id").fetchone()[0]

    def login(self) -> None:
        self._get("/login/")
        response = self.http.post(self.base + "/login/", timeout=60, allow_redirects=False, data={
            "username": AGENT_EMAIL, "password": PASSWORD, "next": "/tickets/",
            "csrfmiddlewaretoken": self.http.cookies["csrftoken"]})
        self._check(response, 302, "django-helpdesk login")
        self.csrf = self.http.cookies["csrftoken"]  # rotated at login

    @staticmethod
    def _datatables(search: str = "") -> str:
        if search:  # what the list page asks for with ?q=: no status filter, the search string
            query = {"filtering": {}, "filtering_null": {}, "sorting": "created", "sortreverse": None,
                     "search_string": search}
        else:  # the list's default query: open and reopened tickets
            query = {"filtering": {"status__in": [1, 2]}, "sorting": "created", "search_string": "",
                     "sortreverse": False}
        b64 = base64.b64encode(json.dumps(query).encode()).decode()
        return (f"/datatables_ticket_list/{b64}?draw=1&start=0&length=25&search%5Bvalue%5D="
                f"&order%5B0%5D%5Bcolumn%5D=5&order%5B0%5D%5Bdir%5D=desc")

    def ticket_list(self):
        data = self._check(self._get(self._datatables()), 200, "django-helpdesk list").json()
        return len(data["data"]), data["recordsFiltered"]

    ticket_list_json = ticket_list  # the data call is already JSON

    def ticket_page(self, ticket_id: int):
        self._check(self._get(f"/tickets/{ticket_id}/"), 200, "django-helpdesk ticket page")

    def search(self, keyword: str):
        data = self._check(self._get(self._datatables(keyword)), 200, "django-helpdesk search").json()
        return len(data["data"]), data["recordsFiltered"]

    def create(self, i: int, refs: dict):
        response = self.http.post(self.base + "/api/tickets/", timeout=60, headers={"X-CSRFToken": self.csrf},
                                  json={"queue": self.queue, "title": f"Colis abîmé {i}",
                                        "description": f"Le colis {i} est arrivé abîmé, merci de le remplacer.",
                                        "submitter_email": refs["email"], "priority": 3})
        return self._check(response, 201, "django-helpdesk API create").json()["id"]


class _CoccinelleClient(_Client):
    def __init__(self, base: str, url: str, redis_url: str):
        super().__init__(base)
        self.url, self.redis_url = url, redis_url

    def login(self) -> None:
        page = self._get("/login").text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        response = self.http.post(self.base + "/login", timeout=60, allow_redirects=False,
                                  data={"email": AGENT_EMAIL, "password": PASSWORD, "csrf_token": csrf})
        self._check(response, 302, "Coccinelle login")
        self.bearer = _api_token(self.url, self.redis_url)

    def ticket_list(self):
        html = self._check(self._get("/tickets"), 200, "Coccinelle list").text
        return html.count('data-ticket-id="'), None

    def ticket_list_json(self):
        data = self._check(self._get("/api/tickets?status=active&limit=25",
                                     headers={"Authorization": f"Bearer {self.bearer}"}), 200, "Coccinelle API list")
        return len(data.json()["tickets"]), None

    def ticket_page(self, ticket_id: int):
        self._check(self._get(f"/tickets/{ticket_id}"), 200, "Coccinelle ticket page")

    def search(self, keyword: str):
        html = self._check(self._get(f"/tickets?status=any&q={keyword}"), 200, "Coccinelle search").text
        return html.count('data-ticket-id="'), None

    def create(self, i: int, refs: dict):
        response = self.http.post(self.base + "/api/tickets", timeout=60,
                                  headers={"Authorization": f"Bearer {self.bearer}"},
                                  json={"contact_id": refs["contact"], "subject": f"Colis abîmé {i}",
                                        "description": f"Le colis {i} est arrivé abîmé, merci de le remplacer.",
                                        "priority": "medium"})
        return self._check(response, 201, "Coccinelle API create").json()["ticket_id"]


def _api_token(url: str, redis_url: str) -> str:
    """A token for the bench agent, made the way settings and `flask api-token create` make it."""
    from sqlalchemy import select

    from common import make_app

    app = make_app(url, REDIS_URL=redis_url)
    with app.app_context():
        from inbox.actions.api_tokens import do_create_api_token
        from inbox.extensions import db
        from inbox.models import User

        agent = db.session.scalar(select(User).where(User.email == AGENT_EMAIL))
        _token, secret = do_create_api_token(agent.workspace_id, name="bench side by side", user=agent)
        return secret


# -- measurement ----------------------------------------------------------------------------------------
def _measure(sides: dict, refs: dict, args) -> list[dict]:
    ids, created = refs["ticket_ids"], [0]

    def create(client, i):
        created[0] += 1
        return client.create(created[0], refs)

    operations = [
        ("ticket list", "datatables data call (25, newest first)", "/tickets (25 rows, KPIs)",
         lambda c, i: c.ticket_list()),
        ("ticket list, JSON", "datatables data call (25, newest first)", "GET /api/tickets?status=active (25)",
         lambda c, i: c.ticket_list_json()),
        ("ticket page", "/tickets/<id>/", "/tickets/<id>", lambda c, i: c.ticket_page(ids[i % len(ids)])),
        (f"search '{KEYWORD}'", "data call, search string", "/tickets?status=any&q=",
         lambda c, i: c.search(KEYWORD)),
        ("search, no match", "data call, search string", "/tickets?status=any&q=",
         lambda c, i: c.search("xylophone")),
        ("create (API)", "POST /api/tickets/ (session + CSRF)", "POST /api/tickets (bearer token)", create),
    ]
    names = list(sides)
    results = []
    for name, helpdesk_call, coccinelle_call, call in operations:
        samples = {side: [] for side in names}
        seen, cpu = {}, {}
        for i in range(args.warmup + args.runs):
            if i == args.warmup:
                cpu = {side: sides[side].cpu_seconds() for side in names}
            order = names if i % 2 == 0 else names[::-1]  # neither side always goes first
            for side in order:
                started = time.perf_counter()
                outcome = call(sides[side], i)
                elapsed = (time.perf_counter() - started) * 1000
                if i >= args.warmup:
                    samples[side].append(elapsed)
                seen.setdefault(side, outcome)
        stats = {side: {**summary(values),
                        "server_cpu_ms": round((sides[side].cpu_seconds() - cpu[side]) * 1000 / args.runs, 2)}
                 for side, values in samples.items()}
        h, c = stats["django-helpdesk"], stats["Coccinelle"]
        ratio = h["p95_ms"] / c["p95_ms"] if c["p95_ms"] else float("nan")
        cpu_ratio = h["server_cpu_ms"] / c["server_cpu_ms"] if c["server_cpu_ms"] else float("nan")
        print(f"{name:<18} django-helpdesk p50 {h['p50_ms']:7.1f} p95 {h['p95_ms']:7.1f} ms | Coccinelle p50 "
              f"{c['p50_ms']:6.1f} p95 {c['p95_ms']:6.1f} ms | ratio (p95) {ratio:5.1f}×"
              f"{'' if ratio >= 5 else '  (target ≥ 5×)'}")
        print(f"{'':<18}   server CPU per request: django-helpdesk {h['server_cpu_ms']:.1f} ms, Coccinelle "
              f"{c['server_cpu_ms']:.1f} ms, ratio {cpu_ratio:.1f}×")
        if name.startswith(("ticket list", "search")):
            hd_rows, hd_total = seen["django-helpdesk"]
            print(f"{'':<18}   rows shown: django-helpdesk {hd_rows} of {hd_total:,} matching, "
                  f"Coccinelle {seen['Coccinelle'][0]}")
        results.append({"operation": name, "django-helpdesk": {"call": helpdesk_call, **h},
                        "Coccinelle": {"call": coccinelle_call, **c}, "ratio_p95": round(ratio, 2),
                        "ratio_server_cpu": round(cpu_ratio, 2)})
    return results


def _load(values) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
