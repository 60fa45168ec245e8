"""SMS webhooks (Twilio-compatible provider)."""

from __future__ import annotations

route_handlers: list = []
