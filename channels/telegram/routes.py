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
from telegram import Bot, Update

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


class BadUpdate(ValueError):
    """A body that no retry will make valid: the answer is 400, never a 500 (which would make
    Telegram deliver it again and again)."""


def parse_update(body: bytes, bot: Bot) -> Update:
    """The ``Update`` in a webhook body. Parsing is pure, so any failure here is the input's:
    bad JSON, nesting deep enough to exhaust the parser, fields of the wrong type."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadUpdate("JSON nested too deeply") from None
    except ValueError as exc:
        raise BadUpdate(f"invalid JSON ({exc})") from None
    if not isinstance(data, dict) or not _is_int(data.get("update_id")):
        raise BadUpdate("no integer update_id")
    if "message" in data:
        _check_message(data["message"])
    try:
        update = Update.de_json(data, bot)
    except RecursionError:
        raise BadUpdate("JSON nested too deeply") from None
    except Exception as exc:  # PTB raises TypeError, KeyError, AttributeError, ValueError…
        raise BadUpdate(f"a field has the wrong type or shape ({type(exc).__name__})") from None
    if update is None:
        raise BadUpdate("empty update")
    return update


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_message(message: object) -> None:
    """The scalar fields the hub keys on have the Bot API's types. PTB's ``de_json`` checks
    objects but not scalars: a string chat id would become a customer named "abc"."""
    if not isinstance(message, dict):
        raise BadUpdate("message is not an object")
    chat = message.get("chat")
    if not isinstance(chat, dict) or not _is_int(chat.get("id")):
        raise BadUpdate("message.chat.id is not an integer")
    for name in ("message_id", "date"):
        if not _is_int(message.get(name)):
            raise BadUpdate(f"message.{name} is not an integer")
    for name in ("text", "caption"):
        if name in message and not isinstance(message[name], str):
            raise BadUpdate(f"message.{name} is not a string")
    sender = message.get("from")
    if sender is not None and not (isinstance(sender, dict) and _is_int(sender.get("id"))):
        raise BadUpdate("message.from.id is not an integer")


def _error(status: int, reason: str) -> Response:
    return Response(content={"ok": False, "detail": reason}, status_code=status)


@post("/webhooks/telegram/{inbox_id:int}", exclude_from_auth=True, status_code=200)
async def telegram_webhook(request: Request, inbox_id: FromPath[int]) -> Response:
    extras = request.app.state.services.extras
    runtime = extras.get("telegram_runtime")
    channel = runtime.bots.get(inbox_id) if runtime is not None else extras.get("telegram")
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
        update = parse_update(await request.body(), channel.bot)
    except BadUpdate as exc:
        return _error(400, f"not a Telegram update: {exc}")
    try:
        await channel.handle_update(update)
    except Exception:
        log.exception("Telegram update %s not committed", update.update_id)
        return _error(500, "not stored; Telegram will deliver it again")
    return Response(content={"ok": True}, status_code=200)


route_handlers = [telegram_webhook]
