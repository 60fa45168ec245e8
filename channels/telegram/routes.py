"""``POST /webhooks/telegram/{inbox_id}``: Telegram's webhook, answered 200 after commit.

The secret token header (``setWebhook``'s ``secret_token``) is compared in constant time;
a missing or wrong one gets 403 with the reason. Any failure to commit is a 500, and
Telegram delivers the update again.
"""

from __future__ import annotations

import hmac
import json
import logging

from litestar import Request, Response, post
from litestar.params import FromPath

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


def _error(status: int, reason: str) -> Response:
    return Response(content={"ok": False, "detail": reason}, status_code=status)


@post("/webhooks/telegram/{inbox_id:int}", exclude_from_auth=True, status_code=200)
async def telegram_webhook(request: Request, inbox_id: FromPath[int]) -> Response:
    channel = request.app.state.services.extras.get("telegram")
    if channel is None or channel.inbox_id != inbox_id:
        return _error(404, f"no Telegram bot serves inbox {inbox_id}")
    if channel.settings.mode != "webhook" or not channel.secret_token:
        # A polling bot has no secret to check: nobody may post updates in its name.
        return _error(404, f"the Telegram bot of inbox {inbox_id} uses long polling")
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), channel.secret_token.encode()):
        reason = "missing" if not given else "wrong"
        return _error(403, f"{SECRET_HEADER} header is {reason}")
    try:
        data = json.loads(await request.body())
        if not isinstance(data, dict) or "update_id" not in data:
            raise ValueError("no update_id")
    except ValueError as exc:
        return _error(400, f"not a Telegram update: {exc}")
    try:
        await channel.handle_json(data)
    except Exception:
        log.exception("Telegram update %s not committed", data.get("update_id"))
        return _error(500, "not stored; Telegram will deliver it again")
    return Response(content={"ok": True}, status_code=200)


route_handlers = [telegram_webhook]
