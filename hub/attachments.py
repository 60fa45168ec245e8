"""Content-addressed attachment storage: a file's name is its SHA-256, so a copy costs nothing."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote


class AttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` durably (write, fsync, rename) and return its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def describe(self, filename: str, content_type: str, data: bytes) -> dict[str, Any]:
        """Store and return the JSON record kept in ``Message.attachments``."""
        return {
            "filename": filename,
            "content_type": content_type,
            "size": len(data),
            "sha256": self.put(data),
        }


def content_disposition(disposition: str, filename: str) -> str:
    """A ``Content-Disposition`` value for any file name, in any script (RFC 6266 §4.3).

    HTTP header values are Latin-1, so a Cyrillic or Chinese name cannot go in ``filename``
    as it is. The name goes in ``filename*`` as UTF-8, percent-encoded (RFC 8187, which
    replaced RFC 5987), with an ASCII ``filename`` beside it for old clients. Control and
    format characters (bidirectional overrides among them, which can make ``exe.pdf`` read
    as ``fdp.exe``) are dropped from both.
    """
    name = "".join(ch for ch in filename if unicodedata.category(ch)[0] != "C").strip()
    name = name.replace("/", "_").replace("\\", "_") or "file"
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    ascii_stem = _ascii(stem).strip(" ._-") or "file"
    ascii_name = ascii_stem + (f".{_ascii(ext)}" if dot and _ascii(ext) else "")
    value = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _ascii(text: str) -> str:
    """Accents dropped (é → e), other non-ASCII and quoting characters as ``_``."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch if ch.isalnum() or ch in " ._-()" else "_" for ch in text)
