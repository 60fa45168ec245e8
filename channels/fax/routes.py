"""HTTP API for fax servers and gateways that push documents (``/webhooks`` is outside
session auth and CSRF; a shared secret guards it).

``POST /webhooks/fax/{inbox}`` — multipart form: ``file`` (TIFF or PDF), ``from`` (the
caller's number), optional ``id`` (the provider's id, for idempotent retries). Header
``X-Fax-Secret``. Answers 201 (stored; a file whose rendering was stopped at a time limit is
stored too, with the note in ``problems``), 200 (a duplicate of an earlier upload: the same
``id`` or the same file, found before anything is decoded), 401 (bad secret), 404 (no such
fax inbox), 413 (too big, too many pages or pixels), 415 (not a TIFF or PDF), 422
(undecodable, a missing or malformed field), 503 (uploads are not configured, or no worker
process could start: retry).

Input that will never be valid gets a 4xx with the reason; a 5xx only ever means a fault of
ours that a retry can cure.

``POST /webhooks/fax/{inbox}/status`` — JSON ``{"provider_id", "status", "detail"}`` from
the transmitting side: marks a sent fax ``delivered`` or ``failed``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from sqlmodel import select

from channels.base import Address, AddressKind, ChannelKind, DeliveryUpdate, InboundAttachment
from channels.fax.document import FaxDocument, RenderStopped, sniff
from channels.fax.intake import content_source_id
from channels.fax.spool import parse_status
from channels.fax.tiff import DocumentRefused
from channels.fax.worker import WorkerUnavailable
from hub.contacts import AddressError, normalize_phone
from models import Inbox

SECRET_HEADER = "x-fax-secret"  # noqa: S105 - a header name, not a secret


def _storable(value: str, limit: int) -> bool:
    """Text a column can hold: PostgreSQL refuses NUL (and we refuse control characters in
    ids), and a value past the column's width fails the commit every time."""
    return 0 < len(value) <= limit and value.isprintable()


def _error(status: int, detail: str) -> Response[dict[str, Any]]:
    return Response({"detail": detail}, status_code=status)


async def _checked(request: Request, inbox: str) -> tuple[Any, int] | Response[dict[str, Any]]:
    services = request.app.state.services
    runtime = services.extras.get("fax")
    if runtime is None or not runtime.settings.upload_secret:
        return _error(503, "fax uploads are not enabled (set HUB_FAX_UPLOAD_SECRET)")
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), runtime.settings.upload_secret.encode()):
        return _error(401, f"missing or wrong {SECRET_HEADER} header")
    async with services.sessionmaker() as db:
        query = select(Inbox).where(Inbox.kind == ChannelKind.FAX.value, Inbox.active == True)  # noqa: E712
        if inbox.isascii() and inbox.isdigit() and len(inbox) <= 18:  # fits a BIGINT
            query = query.where(Inbox.id == int(inbox))
        else:
            query = query.where(Inbox.name == inbox)
        found = (await db.exec(query)).first() if _storable(inbox, 64) else None
    if found is None:
        return _error(404, f"no active fax inbox {inbox!r}")
    return runtime, found.id  # type: ignore[return-value]


@post("/webhooks/fax/{inbox:str}", exclude_from_auth=True, status_code=201)
async def upload_fax(request: Request, inbox: FromPath[str]) -> Response[dict[str, Any]]:
    checked = await _checked(request, inbox)
    if isinstance(checked, Response):
        return checked
    runtime, inbox_id = checked
    limits = runtime.settings.limits
    declared = int(request.headers.get("content-length") or 0)
    if declared > limits.max_bytes + 64 * 1024:
        return _error(413, f"the upload is {declared} bytes; the limit is {limits.max_bytes}")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return _error(422, "the form has no 'file' part")
    data = await upload.read()
    if len(data) > limits.max_bytes:
        return _error(413, f"the file is {len(data)} bytes; the limit is {limits.max_bytes}")
    kind = sniff(data)
    if kind is None:
        return _error(415, f"a fax must be a TIFF or a PDF, not {upload.content_type or 'this'}")
    raw_number = str(form.get("from") or "").strip()
    sender = None
    if raw_number:
        try:
            number = normalize_phone(raw_number, runtime.settings.default_region)
        except AddressError as exc:
            return _error(422, str(exc))
        sender = Address(AddressKind.PHONE, number)
    provider_id = str(form.get("id") or "").strip()
    if provider_id and not _storable(provider_id, 200):
        return _error(422, "the 'id' field must be 1-200 printable characters")
    source_id = f"upload:{provider_id}" if provider_id else content_source_id(data)
    async with runtime.intake.one_at_a_time(inbox_id, [data]):  # a retry waits for us
        stored = await runtime.intake.find_stored(inbox_id, source_id, [data])
        if stored is not None:  # a resent file: answered before anything is decoded
            return Response(
                {
                    "message_id": stored.message_id,
                    "interaction_id": stored.interaction_id,
                    "duplicate": True,
                },
                status_code=200,
            )
        outcome: FaxDocument | DocumentRefused
        try:
            outcome = await runtime.intake.process(data)
        except RenderStopped as stopped:
            outcome = stopped  # kept, with the note, like a fax from any other source
        except DocumentRefused as refused:
            return _error(413 if refused.too_large else 422, f"fax refused: {refused.reason}")
        except WorkerUnavailable as exc:
            return _error(503, f"not stored, please retry: {exc.reason}")
        result = await runtime.intake.receive_documents(
            inbox_id=inbox_id,
            sender=sender,
            documents=[
                InboundAttachment(
                    upload.filename or f"fax.{kind}",
                    f"image/{kind}" if kind == "tiff" else "application/pdf",
                    data,
                )
            ],
            source_id=source_id,
            origin="HTTP upload",
            strict=True,
            processed={0: outcome},
        )
    document = outcome if isinstance(outcome, FaxDocument) else None
    body = {
        "message_id": result.message_id,
        "interaction_id": result.interaction_id,
        "duplicate": result.duplicate,
        "pages": len(document.pages) if document else 0,
        "problems": list(document.problems) if document else [str(outcome.reason)],
    }
    return Response(body, status_code=200 if result.duplicate else 201)


@post("/webhooks/fax/{inbox:str}/status", exclude_from_auth=True, status_code=200)
async def fax_status(request: Request, inbox: FromPath[str]) -> Response[dict[str, Any]]:
    checked = await _checked(request, inbox)
    if isinstance(checked, Response):
        return checked
    runtime, inbox_id = checked
    try:
        payload = await request.json()
    except Exception:
        return _error(422, "the body must be JSON")
    if not isinstance(payload, dict) or not payload.get("provider_id"):
        return _error(422, "the body needs a provider_id")
    if not isinstance(payload["provider_id"], str) or not _storable(payload["provider_id"], 300):
        return _error(422, "provider_id must be a string of 1-300 printable characters")
    if not isinstance(payload.get("status"), str):
        return _error(422, "status must be 'delivered' or 'failed'")
    status, detail = parse_status(json.dumps(payload))
    if status is None:
        return _error(422, "status must be 'delivered' or 'failed'")
    found = await runtime.intake.ingest.update_delivery(
        DeliveryUpdate(inbox_id, str(payload["provider_id"]), status, detail)
    )
    if not found:
        return _error(404, f"no sent fax with provider id {payload['provider_id']!r}")
    return Response({"status": status.value}, status_code=200)


route_handlers: list[Any] = [upload_fax, fax_status]
