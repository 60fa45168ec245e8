"""Admin pages (filled in below)."""

from __future__ import annotations

route_handlers: list = []
