"""Twilio-compatible SMS webhooks: ``POST /webhooks/sms/twilio/{inbox_id}`` (inbound) and
``…/{inbox_id}/status`` (status callbacks).

Both check ``X-Twilio-Signature`` (403 with the reason when it is missing or wrong) and
answer 200 only after the commit. A signed request that can never be stored (a message id
that is not one, a NumMedia that is not a count, no sender number) is a 400 with the reason;
a 5xx means a fault of ours that a retry can cure (a failed commit), so the provider
retries.

``GET /sms/segments?text=…`` is the console's segment counter (signed-in users only):
JSON, or an HTML fragment when htmx asks.
"""

from __future__ import annotations

import asyncio
import logging
from html import escape
from urllib.parse import parse_qsl

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery

from channels.sms.segments import describe
from channels.sms.smpp_channel import DLR_MATCH_DELAYS
from channels.sms.twilio import (
    EMPTY_TWIML,
    BadWebhook,
    TwilioChannel,
    delivery_update,
    valid_signature,
)

log = logging.getLogger(__name__)


def _error(status: int, reason: str) -> Response:
    return Response(content=reason, status_code=status, media_type="text/plain")


async def _verified(
    request: Request, inbox_id: int
) -> tuple[TwilioChannel, dict[str, str]] | Response:
    extras = request.app.state.services.extras
    runtime = extras.get("sms")
    channel: TwilioChannel | None = (
        runtime.twilio.get(inbox_id) if runtime is not None else extras.get("sms_twilio")
    )
    if channel is None or channel.inbox_id != inbox_id:
        return _error(404, f"no Twilio-compatible SMS account serves inbox {inbox_id}")
    params = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    given = request.headers.get("X-Twilio-Signature")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = channel.signed_url(str(request.url), path)
    if not given:
        return _error(403, "X-Twilio-Signature header is missing")
    if not valid_signature(channel.auth_token, url, params, given):
        return _error(403, f"X-Twilio-Signature does not match {url} and the form")
    return channel, dict(params)


@post("/webhooks/sms/twilio/{inbox_id:int}", exclude_from_auth=True, status_code=200)
async def twilio_inbound(request: Request, inbox_id: FromPath[int]) -> Response:
    checked = await _verified(request, inbox_id)
    if isinstance(checked, Response):
        return checked
    channel, form = checked
    try:
        message = await channel.inbound_message(form)
    except BadWebhook as exc:
        return _error(400, str(exc))
    try:
        await channel.ingestor.ingest(message)
    except Exception:
        log.exception("SMS %s not committed", form.get("MessageSid"))
        return _error(500, "not stored; please retry")
    return Response(content=EMPTY_TWIML, status_code=200, media_type="application/xml")


@post("/webhooks/sms/twilio/{inbox_id:int}/status", exclude_from_auth=True, status_code=200)
async def twilio_status(request: Request, inbox_id: FromPath[int]) -> Response:
    checked = await _verified(request, inbox_id)
    if isinstance(checked, Response):
        return checked
    channel, form = checked
    try:
        update = delivery_update(inbox_id, form)
    except BadWebhook as exc:
        return _error(400, str(exc))
    if update is not None:
        try:
            matched = await channel.ingestor.update_delivery(update)
            # A fast callback can beat the outbox's commit of the SID it names.
            for delay in DLR_MATCH_DELAYS:
                if matched:
                    break
                await asyncio.sleep(delay)
                matched = await channel.ingestor.update_delivery(update)
        except Exception:
            log.exception("status callback for %s not committed", update.provider_id)
            return _error(500, "not stored; please retry")
        if not matched:
            log.info("status callback for unknown message %s", update.provider_id)
    return Response(content="", status_code=200, media_type="text/plain")


def segment_summary(text: str) -> dict[str, object]:
    """The console's SMS counter as data: encoding, parts, what is left in the last part."""
    info = describe(text)
    return {
        "encoding": info.encoding.value,
        "segments": info.segments,
        "units": info.units,
        "per_segment": info.per_segment,
        "remaining": info.remaining,
        "non_gsm_chars": list(info.non_gsm_chars),
    }


def segment_fragment(text: str) -> str:
    """The counter as an HTML fragment for an htmx swap (user characters escaped)."""
    info = describe(text)
    label = "GSM-7" if info.encoding.value == "gsm7" else "UCS-2"
    hint = ""
    if info.non_gsm_chars:
        shown = escape("".join(info.non_gsm_chars[:5]))
        hint = f' title="UCS-2 because of: {shown}"'
    return (
        f'<span class="sms-segments" data-segments="{info.segments}" '
        f'data-encoding="{info.encoding.value}"{hint}>{label} · {info.segments} SMS · '
        f"{info.remaining} left</span>"
    )


@get("/sms/segments", sync_to_thread=False)
def sms_segments(
    request: Request, text: FromQuery[str] = "", reply: FromQuery[str] = ""
) -> Response:
    """``GET /sms/segments?text=…`` (signed-in users): JSON, or HTML for htmx.

    The console's composer sends its own field, ``reply``, as it is typed.
    """
    text = text or reply
    if request.headers.get("hx-request"):
        return Response(content=segment_fragment(text), media_type="text/html")
    return Response(content=segment_summary(text))


route_handlers = [twilio_inbound, twilio_status, sms_segments]
