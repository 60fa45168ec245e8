"""Start and stop the channel adapters that the settings enable.

Each adapter gets the ``Services`` (for ``ingest`` and ``outbox``) and registers its
sender with the outbox. Adapters started here are stopped in reverse order.
"""

from __future__ import annotations

from hub.services import Services


async def start_channels(services: Services) -> None:
    services.extras.setdefault("stoppers", [])


async def stop_channels(services: Services) -> None:
    for stop in reversed(services.extras.get("stoppers", [])):
        await stop()
