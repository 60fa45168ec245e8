"""Call recordings in the browser: ``GET /recordings/{id}`` with HTTP range requests, so an
``<audio>`` element can seek (RFC 9110 §14). Agents play their own calls; supervisors and
QA play any. Every download is audited.

Once a call is transcribed, ``/recordings/{id}`` serves the redacted copy. Where the inbox
keeps originals, ``/recordings/{id}/original`` serves the audio as recorded, only to the role
the admin named for it (``Inbox.original_audio_role``), and every play of it is audited as
``recording.original.play``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from litestar import Request, get
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Response
from sqlmodel import col, select

from hub import audit
from models import CallLeg, Inbox, Interaction, Recording, Role
from web.common import ClientError, services_of, user_of

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range ``header`` asks for, as (first, last) inclusive; None for the
    whole file (no header, or several ranges, which we may ignore: RFC 9110 §14.2);
    ``"unsatisfiable"`` for a range outside the file (answered 416)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


async def _may_play(request: Request, recording: Recording) -> bool:
    user = user_of(request)
    if user.has_role(Role.SUPERVISOR, Role.QA):
        return True
    if user.agent_id is None:
        return False
    async with services_of(request).sessionmaker() as db:
        interaction = await db.get(Interaction, recording.interaction_id)
        if interaction is not None and interaction.agent_id == user.agent_id:
            return True
        leg = (
            await db.exec(
                select(CallLeg.id).where(
                    CallLeg.interaction_id == recording.interaction_id,
                    CallLeg.agent_id == user.agent_id,
                    col(CallLeg.answered_at).is_not(None),
                )
            )
        ).first()
    return leg is not None


@get("/recordings/{recording_id:int}")
async def play_recording(request: Request, recording_id: FromPath[int]) -> Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        recording = await db.get(Recording, recording_id)
    if recording is None:
        raise NotFoundException(f"Recording {recording_id} does not exist.")
    if not await _may_play(request, recording):
        raise PermissionDeniedException("You may only play recordings of your own calls.")
    return await _serve(request, recording, recording.path, "recording.download")


@get("/recordings/{recording_id:int}/original")
async def play_original(request: Request, recording_id: FromPath[int]) -> Response:
    """The audio as recorded, before redaction: kept only by an inbox whose policy says so,
    and played only by the role that policy names."""
    services = services_of(request)
    async with services.sessionmaker() as db:
        recording = await db.get(Recording, recording_id)
        interaction = (
            await db.get(Interaction, recording.interaction_id) if recording is not None else None
        )
        inbox = await db.get(Inbox, interaction.inbox_id) if interaction is not None else None
    if recording is None or inbox is None:
        raise NotFoundException(f"Recording {recording_id} does not exist.")
    if not recording.original_path:
        raise NotFoundException(
            f"Recording {recording_id} has no original audio: its inbox keeps only the "
            "redacted copy."
        )
    role = inbox.original_audio_role
    if not role or not user_of(request).has_role(Role(role)):
        raise PermissionDeniedException(
            "Only the role the admin named for this inbox may play original recordings."
        )
    return await _serve(request, recording, recording.original_path, "recording.original.play")


async def _serve(request: Request, recording: Recording, relative: str, action: str) -> Response:
    """The file (or the byte range asked for), after auditing who fetched it."""
    services = services_of(request)
    recording_id = recording.id
    if recording.deleted_at is not None:
        raise ClientError(
            detail=f"Recording {recording_id} was deleted by the retention policy.",
            status_code=410,
        )
    var_dir = services.settings.var_dir.resolve()
    path = (var_dir / relative).resolve()
    if not path.is_relative_to(var_dir) or not path.is_file():
        raise NotFoundException(f"The file of recording {recording_id} is missing.")
    size = path.stat().st_size
    wanted = byte_range(request.headers.get("range"), size)
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="recording-{recording_id}.wav"',
    }
    if wanted == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{size}"
        return Response(content=b"", status_code=416, headers=headers, media_type="audio/wav")
    first, last = (0, size - 1) if wanted is None else wanted  # type: ignore[misc]
    content = await asyncio.to_thread(_read, path, first, last - first + 1)
    user = user_of(request)
    async with services.sessionmaker() as db:
        audit.record(
            db,
            user_id=user.id,
            action=action,
            entity="recording",
            entity_id=recording_id,
            after={"bytes": f"{first}-{last}/{size}", "interaction_id": recording.interaction_id},
        )
        await db.commit()
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Response(
        content=content,
        status_code=206 if wanted is not None else 200,
        headers=headers,
        media_type="audio/wav",
    )


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


route_handlers: list = [play_recording, play_original]
