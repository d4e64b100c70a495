"""A conversation's row pushed with its "conversation-changed" event.

With every agent's inbox open, each change made every browser ask for the changed row: 200 agents
and a few changes per customer message came to more requests than two cores serve (issue #7,
bench/RESULTS.md §15). Each web process now reads the row once per event, renders it once per
language of its readers, and sends it on each stream with the reader's sidebar counts; the page
applies its list's filters to the row's facts (app.js `rowMatches`) and puts it in place. A list
the page cannot filter itself (a search) still asks the server for the row.

Every agent may see every conversation of the workspace (access_conversation), and the events of a
workspace only reach its agents' streams: the row tells a reader nothing it could not fetch.
"""

from __future__ import annotations

from flask import Flask, g, render_template

from ..broker import StreamViewer, event_hub
from ..extensions import db
from ..models import User
from ..models.queries import EVERY_CONVERSATION, OpenCounts, inbox_row, row_facts
from .outbound import sidebar_label_counts


def init_app(app: Flask) -> None:
    app.extensions["event_hub"].add_details("conversation-changed", lambda *event: _row_details(app, *event))


def _row_details(app: Flask, workspace_id: int, data: dict, viewers: frozenset[StreamViewer]):
    conversation_id = data.get("conversation_id")
    readers = frozenset(viewer for viewer in viewers if viewer.lists)
    if not isinstance(conversation_id, int) or not readers:
        return None  # a change of many (a label renamed): the pages refetch; or no open page shows a list
    with app.app_context():
        try:
            row = inbox_row(workspace_id, EVERY_CONVERSATION, user_id=0, conversation_id=conversation_id)
            open_counts = event_hub().memo(workspace_id, "open-counts", lambda: OpenCounts.of(workspace_id))
            label_counts = sidebar_label_counts(workspace_id)
            pushed = None
            if row is not None:
                pushed = {"facts": row_facts(row), "html": _html_by_reading(app, row, readers)}
        finally:
            db.session.remove()

    def for_viewer(viewer: StreamViewer) -> dict | None:
        if not viewer.lists:
            return None
        row_part = None if pushed is None else {"facts": pushed["facts"], "html": pushed["html"][_reading(viewer)]}
        return {"row": row_part, "counts": {**open_counts.views_of(viewer.user_id), **label_counts}}
    return for_viewer


def _reading(viewer: StreamViewer) -> tuple[str, str]:
    return viewer.locale, viewer.script_root


def _html_by_reading(app: Flask, row, readers: frozenset[StreamViewer]) -> dict[tuple[str, str], str]:
    """The row as each language's readers see it, rendered as one of them (their language and their
    workspace's time zone come from the user, as in their own requests), its link under the path the
    app is mounted at for them. The list's filters only add to the row's link, which the page
    completes."""
    html = {}
    for reading in {_reading(viewer) for viewer in readers}:
        reader = next(viewer for viewer in readers if _reading(viewer) == reading)
        # A context of its own each: Flask-Babel keeps the locale it chose, and Flask-Login the user,
        # on `g`, which lives as long as the application context.
        with app.app_context(), app.test_request_context(base_url="http://localhost" + reader.script_root):
            g._login_user = db.session.get(User, reader.user_id)  # Flask-Login's current user for this render
            html[reading] = render_template("inbox/_pushed_row.html", row=row, filters=EVERY_CONVERSATION)
    return html
