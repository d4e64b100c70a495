"""Agent pages on the generated workspace: p50 / p95 server time and query count per page,
through the real WSGI app (Flask test client, logged in as an agent; reports also as admin).

    .venv/bin/python bench/generate.py --scale 0.01 && .venv/bin/python bench/pages.py
    DATABASE_URL=postgresql://… .venv/bin/python bench/pages.py --runs 50

Server time = the WSGI call in this process (no network, no browser); "cpu" is this thread's CPU
time for it (less sensitive to other processes on the machine; the database's own time on
PostgreSQL is not in it). Queries are counted with
an SQLAlchemy before_cursor_execute listener; for a page over its target the slowest statement is
printed, which is where to look (N+1, missing index).
"""

from __future__ import annotations

import argparse
import re
import time

from sqlalchemy import event, func, select

from common import (  # noqa: I001
    ADMIN_EMAIL, AGENT_EMAIL, BIG_THREAD_CONTACT, PASSWORD, WORKSPACE_SLUG, database_url, emit, engine_name,
    make_app, percentile, summary, valkey,
)

TARGETS = {"inbox": 50, "conversation": 50, "search": 150, "reports": 500}


class Counter:
    """Statements and their time during one request."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, *args):
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, *args):
        self.statements.append(((time.perf_counter() - conn.info.pop("bench_started")) * 1000, statement))

    def reset(self):
        self.statements = []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed requests per page (after 3 warm-ups)")
    parser.add_argument("--only", help="measure only the pages whose name contains this text")
    parser.add_argument("--json")
    args = parser.parse_args()
    url = database_url()
    redis_url = valkey()
    app = make_app(url, REDIS_URL=redis_url)
    with app.app_context():
        from inbox.extensions import db
        refs = _references(db)
        counter = Counter(db.engine)
    agent, admin = _login(app, AGENT_EMAIL), _login(app, ADMIN_EMAIL)
    cases = _cases(agent, refs)
    cases += [_optional(app, admin, "dashboard (admin)", "/dashboard", "reports"),
              _optional(app, agent, "dashboard (agent)", "/dashboard", "reports"),
              _optional(app, admin, "reports (admin, default period)", "/reports", "reports"),
              _optional(app, agent, "reports (agent)", "/reports", "reports")]
    print(f"pages: {engine_name(url)}, {refs['messages']:,} messages, {refs['conversations']:,} conversations, "
          f"{args.runs} runs per page")
    print(f"{'page':<44} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'queries':>8} {'status':>6}  target (p95)")
    results = []
    for case in cases:
        if case is None:
            continue
        name, client, path, group = case
        if args.only and args.only not in name:
            continue
        result = _measure(client, path, counter, args.runs)
        target = TARGETS.get(group)
        missed = target is not None and result["p95_ms"] > target
        print(f"{name:<44} {result['p50_ms']:>8.1f} {result['p95_ms']:>8.1f} {result['cpu_p50_ms']:>8.1f} "
              f"{result['queries']:>8} "
              f"{result['status']:>6}  {'' if target is None else ('MISSED ' if missed else 'ok ') + f'<{target}'}")
        if missed:
            ms, statement = result["slowest"]
            print(f"    slowest statement {ms:.1f} ms: {' '.join(statement.split())[:300]}")
        results.append({"page": name, "path": path, "group": group, "target_ms": target, **result})
    emit("pages", {"engine": engine_name(url), "refs": refs, "pages": results}, json_path=args.json)
    return 0


def _references(db) -> dict:
    from inbox.models import Contact, Conversation, Message, Ticket, User, Workspace

    ws = db.session.scalar(select(Workspace).where(Workspace.slug == WORKSPACE_SLUG))
    if ws is None:
        raise SystemExit("no bench workspace: run bench/generate.py first (same DATABASE_URL)")
    big_contact = db.session.scalar(select(Contact).where(Contact.workspace_id == ws.id,
                                                          Contact.name == BIG_THREAD_CONTACT))
    big = db.session.scalar(select(Conversation).where(Conversation.contact_id == big_contact.id)
                            .order_by(Conversation.id))
    ticket = db.session.scalar(select(Ticket).where(Ticket.workspace_id == ws.id).order_by(Ticket.id.desc()))
    agent = db.session.scalar(select(User).where(User.email == AGENT_EMAIL))
    other = db.session.scalar(select(Contact).where(Contact.workspace_id == ws.id, Contact.id != big_contact.id)
                              .order_by(Contact.id.desc()))
    return {"workspace": ws.id, "big_conversation": big.id, "big_contact": big_contact.id,
            "contact": other.id, "contact_name": other.name, "ticket": ticket.id if ticket else None,
            "agent": agent.id,
            "messages": db.session.scalar(select(func.count()).select_from(Message)),
            "conversations": db.session.scalar(select(func.count()).select_from(Conversation))}


def _login(app, email: str):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"login failed for {email}: {response.status_code}")
    return client


def _cases(agent, refs: dict) -> list:
    hx_list = {"HX-Request": "true", "HX-Target": "conv-list"}
    first = agent.get("/inbox?status=any", headers=hx_list).get_data(as_text=True)
    cursor = re.search(r"after=([0-9._]+)", first)
    cases = [
        ("inbox: default (open, all)", "/inbox", "inbox"),
        ("inbox: list fragment (HTMX)", ("/inbox", hx_list), "inbox"),
        ("inbox: view=mine", "/inbox?view=mine", "inbox"),
        ("inbox: view=unassigned", "/inbox?view=unassigned", "inbox"),
        ("inbox: status=pending", "/inbox?status=pending", "inbox"),
        ("inbox: status=resolved", "/inbox?status=resolved", "inbox"),
        ("inbox: status=any", "/inbox?status=any", "inbox"),
        ("inbox: channel=sms", "/inbox?channel=sms", "inbox"),
        ("inbox: channel=email, status=any", "/inbox?channel=email&status=any", "inbox"),
        ("inbox: priority=critical", "/inbox?priority=critical", "inbox"),
        ("inbox: priority=high, status=any", "/inbox?priority=high&status=any", "inbox"),
        ("inbox: sort=priority", "/inbox?sort=priority", "inbox"),
        ("inbox: assignee=agent, status=any", f"/inbox?assignee={refs['agent']}&status=any", "inbox"),
        ("conversation: 500 messages (page)", f"/inbox/c/{refs['big_conversation']}", "conversation"),
        ("conversation: 500 messages (HTMX thread)",
         (f"/inbox/c/{refs['big_conversation']}", {"HX-Request": "true", "HX-Target": "thread"}), "conversation"),
        ("search: common word (status=any)", "/inbox?q=r%C3%A9servation&status=any", "search"),
        ("search: two words, accent-free (any)", "/inbox?q=remboursement+resiliation&status=any", "search"),
        ("search: prefix (any)", "/inbox?q=rembours&status=any", "search"),
        ("search: no match (any)", "/inbox?q=xylophone&status=any", "search"),
        ("search: contact name (any)", f"/inbox?q={refs['contact_name'].split()[-1]}&status=any", "search"),
        ("tickets: list (active)", "/tickets", "inbox"),
        ("tickets: list (any status)", "/tickets?status=any", "inbox"),
        ("tickets: search", "/tickets?status=any&q=livraison", "search"),
        # Nothing matches: every candidate is examined (django-helpdesk's bench has the same case).
        ("tickets: search, no match", "/tickets?status=any&q=xylophone", "search"),
        ("tickets: search, short query", "/tickets?status=any&q=xy", "search"),
        # One or two characters that match: the start of a subject word ("livraison"), a ticket number.
        ("tickets: search, short query, word start", "/tickets?status=any&q=li", "search"),
        ("tickets: search, short query, number", "/tickets?status=any&q=12", "search"),
        ("client page (2 conversations, tickets)", f"/contacts/{refs['contact']}", "conversation"),
        ("client page (500-message contact)", f"/contacts/{refs['big_contact']}", "conversation"),
        ("clients: list", "/contacts", "inbox"),
    ]
    if cursor:
        cases.insert(7, ("inbox: page 2 (keyset cursor)", (f"/inbox?status=any&after={cursor.group(1)}",
                                                           hx_list), "inbox"))
    if refs["ticket"]:
        cases.append(("ticket page", f"/tickets/{refs['ticket']}", "conversation"))
    return [(name, agent, path, group) for name, path, group in cases]


def _optional(app, client, name: str, path: str, group: str):
    """Dashboard and reports are measured when their routes exist."""
    if not any(rule.rule == path for rule in app.url_map.iter_rules()):
        print(f"note: {path} does not exist in this build; '{name}' skipped")
        return None
    return (name, client, path, group)


def _measure(client, path, counter: Counter, runs: int) -> dict:
    path, headers = path if isinstance(path, tuple) else (path, {})
    for _ in range(3):
        response = client.get(path, headers=headers)
    times, cpu, queries, slowest = [], [], 0, (0.0, "")
    for _ in range(runs):
        counter.reset()
        started, started_cpu = time.perf_counter(), time.thread_time()
        response = client.get(path, headers=headers)
        response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        queries = len(counter.statements)
        top = max(counter.statements, default=(0.0, ""))
        slowest = max(slowest, top)
    return {**summary(times), "cpu_p50_ms": round(percentile(cpu, 50), 2), "queries": queries,
            "status": response.status_code,
            "bytes": len(response.get_data()), "slowest": slowest}


if __name__ == "__main__":
    raise SystemExit(main())
