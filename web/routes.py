"""Every web route (login, console, supervisor, admin, the tab's SSE stream) in one list,
plus the Jinja filters the templates share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine

from web import (
    admin,
    audit_log,
    blocked,
    call_card,
    chat_widgets,
    console,
    dialing,
    dialog_prompts,
    dialogs_admin,
    inboxes_admin,
    live_calls,
    login,
    qa,
    qa_scorecards,
    recordings,
    reports,
    softphone,
    sse,
    staffing,
    supervisor,
    surveys,
    text_collab,
    text_supervision,
)
from web.common import SECURITY_HEADERS


def iso(moment: Any) -> str:
    """ISO 8601 with a zone, for ``data-since``/``data-expires`` (the browser ticks clocks).

    SQLite hands back naive datetimes; they are UTC by our own convention.
    """
    if not isinstance(moment, datetime):
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def configure_templates(engine: JinjaTemplateEngine) -> None:
    from channels.email.sanitize import sanitize_html

    engine.engine.filters["iso"] = iso
    # Customer email HTML, cleaned by nh3; templates still put it in a sandboxed iframe.
    engine.engine.filters["email_html"] = sanitize_html
    # Templates ship with the code: no stat() per render (every SSE tab renders partials).
    engine.engine.auto_reload = False


route_handlers: list = [
    Router(
        path="/",
        response_headers=SECURITY_HEADERS,
        route_handlers=[
            *login.route_handlers,
            *console.route_handlers,
            *call_card.route_handlers,
            *dialing.route_handlers,
            *supervisor.route_handlers,
            *live_calls.route_handlers,
            *text_supervision.route_handlers,
            *text_collab.route_handlers,
            *admin.route_handlers,
            *audit_log.route_handlers,
            *chat_widgets.route_handlers,
            *dialogs_admin.route_handlers,
            *dialog_prompts.route_handlers,
            *inboxes_admin.route_handlers,
            *blocked.route_handlers,
            *sse.route_handlers,
            *softphone.route_handlers,
            *recordings.route_handlers,
            *staffing.route_handlers,
            *reports.route_handlers,
            *qa.route_handlers,
            *qa_scorecards.route_handlers,
            *surveys.route_handlers,
        ],
    )
]
