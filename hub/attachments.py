"""Content-addressed attachment storage: a file's name is its SHA-256, so a copy costs nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any


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
