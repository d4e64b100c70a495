"""Every panel that refetches itself on a server event (SSE) and replaces itself with the answer also
replaces a refetch still on its way.

Without `hx-sync="this:replace"`, htmx queues an event arriving during a refetch on the element the
answer is about to replace, then drops it with that element: the panel keeps the state from before the
event until the next one. The browser test
`test_a_late_refresh_of_the_scheduled_list_does_not_bring_back_a_cancelled_message` shows it on one panel.
The rule is written once, in the `refetching_panel` macro; these checks hold every panel to it.
"""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

TEMPLATES = Path(__file__).resolve().parents[2] / "inbox" / "templates"
OPENING_TAG = re.compile(r"<[a-z][^<>]*>", re.S)


def _templates():
    for path in sorted(TEMPLATES.rglob("*.html")):
        yield path.relative_to(TEMPLATES).as_posix(), path.read_text()


def test_the_panels_are_written_with_the_macro():
    users = {name for name, text in _templates() if "refetching_panel(" in text and name != "_macros.html"}
    assert {"outbound/_scheduled.html", "outbound/_progress.html", "tickets/_timeline.html",
            "tickets/_list.html", "tickets/_side_live.html", "dashboard/_live.html"} <= users


def test_no_panel_writes_its_live_refetch_by_hand():
    by_hand = [(name, tag) for name, text in _templates() for tag in OPENING_TAG.findall(text)
               if 'hx-trigger="sse:' in tag and 'hx-swap="outerHTML"' in tag]
    assert by_hand == []


def test_a_refetch_replaces_the_one_on_its_way_and_only_the_panel_does():
    macros = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True).get_template("_macros.html").module
    attributes = str(macros.refetching_panel("/tickets?status=open&page=2", "sse:ticket-changed throttle:1s"))
    assert 'hx-get="/tickets?status=open&amp;page=2"' in attributes
    assert 'hx-trigger="sse:ticket-changed throttle:1s"' in attributes
    assert 'hx-swap="outerHTML"' in attributes and 'hx-target="this"' in attributes
    assert 'hx-sync="this:replace"' in attributes and 'hx-disinherit="hx-sync"' in attributes
