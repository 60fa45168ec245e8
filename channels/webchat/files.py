"""Attachment checks by content (magic bytes, and Pillow must open images), never by name.

A customer can name a text file ``cat.png``; what decides is what the bytes are.
"""

from __future__ import annotations

import io
import re
import unicodedata
from typing import Any

from litestar.exceptions import HTTPException
from litestar.response import Response

from hub.attachments import content_disposition
from hub.services import Services

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
ALLOWED_TYPES = IMAGE_TYPES | {"application/pdf"}
# Served inline so voice notes (Telegram) and call audio play in the console; never uploadable.
AUDIO_TYPES = {"audio/ogg", "audio/mpeg", "audio/wav"}
_PILLOW_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


class UnsupportedFile(HTTPException):
    status_code = 415


class FileTooLarge(HTTPException):
    status_code = 413


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are (of the kinds we accept), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return None


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def check_upload(filename: str, data: bytes, max_bytes: int) -> tuple[str, str]:
    """Return (safe filename, real content type) or raise 413/415 with a clear reason."""
    if len(data) > max_bytes:
        raise FileTooLarge(
            f"The file is too large: the largest file you can send is {_human(max_bytes)}."
        )
    if not data:
        raise UnsupportedFile("The file is empty.")
    kind = sniff(data)
    if kind not in ALLOWED_TYPES:
        raise UnsupportedFile(
            "This file type is not accepted: send a PNG, JPEG, GIF or WebP image, or a PDF."
        )
    if kind in IMAGE_TYPES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format
                image.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise UnsupportedFile("The image is damaged or not really an image.") from exc
        except Image.DecompressionBombError as exc:
            raise UnsupportedFile("The image is too large in pixels.") from exc
        if _PILLOW_FORMATS.get(fmt or "") != kind:
            raise UnsupportedFile("The image is damaged or not really an image.")
    elif b"%%EOF" not in data[-2048:]:
        raise UnsupportedFile("The PDF is damaged or incomplete.")
    return safe_filename(filename, kind), kind


_EXT = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}


def safe_filename(name: str, kind: str) -> str:
    """A display name without paths or control characters, ending in the real extension."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()[:100]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return (stem or "file") + _EXT[kind]


def attachment_response(services: Services, record: dict[str, Any]) -> Response:
    """Serve a stored attachment so a browser can never run it as a page."""
    data = services.attachments.get(str(record.get("sha256", "")))
    kind = str(record.get("content_type", ""))
    sniffed = sniff(data)
    inline = sniffed is not None and sniffed == kind and kind in IMAGE_TYPES | AUDIO_TYPES
    served = ALLOWED_TYPES | AUDIO_TYPES
    media_type = kind if sniffed == kind and kind in served else "application/octet-stream"
    disposition = "inline" if inline else "attachment"
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(
                disposition, str(record.get("filename", "file"))[:100]
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )
