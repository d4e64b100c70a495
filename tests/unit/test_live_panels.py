"""Every panel that refetches itself on a server event (SSE) and replaces itself with the answer also
replaces a refetch still on its way.

Without `hx-sync="this:replace"`, htmx queues an event arriving during a refetch on the element the
answer is about to replace, then drops it with that element: the panel keeps the state from before the
event until the next one. The browser test
`test_a_late_refresh_of_the_scheduled_list_does_not_bring_back_a_cancelled_message` shows it on one panel;
this check holds the rule for all of them. `hx-disinherit` keeps the panel's own buttons and forms out of
that rule: a refetch must not abort an agent's save.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "inbox" / "templates"
OPENING_TAG = re.compile(r"<[a-z][^<>]*>", re.S)


def _self_refreshing_panels():
    for path in sorted(TEMPLATES.rglob("*.html")):
        for tag in OPENING_TAG.findall(path.read_text()):
            if 'hx-trigger="sse:' in tag and 'hx-swap="outerHTML"' in tag:
                yield path.relative_to(TEMPLATES).as_posix(), tag


def test_the_panels_exist():
    found = {name for name, _ in _self_refreshing_panels()}
    assert {"outbound/_scheduled.html", "tickets/_timeline.html", "tickets/_list.html",
            "dashboard/_live.html"} <= found


def test_a_refetch_replaces_the_one_on_its_way_and_only_the_panel_does():
    unsafe = [name for name, tag in _self_refreshing_panels()
              if 'hx-sync="this:replace"' not in tag or 'hx-disinherit="hx-sync"' not in tag]
    assert unsafe == []
