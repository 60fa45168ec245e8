"""The demo's customer system: ``GET /demo/accounts/{number}`` answers JSON for a few
made-up accounts, so the demo phone menu's lookup (``ivr_dialogs/library/demo_phone_menu``)
works offline, against the hub itself.

It exists only with the demo seed (``HUB_SEED_DEMO``), needs no login, and answers only
clients on loopback (the hub asking itself) unless ``HUB_DEMO_API_PUBLIC`` is on: the data
is fake, but an open endpoint on a production hub is not something to leave lying around.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

# Made-up customers of the demo company; 404 for every other number.
DEMO_ACCOUNTS: dict[str, dict[str, Any]] = {
    "123456": {"name": "Ada Lovelace", "plan": "Fibre 500", "balance": 42.5},
    "654321": {"name": "Alan Turing", "plan": "Mobile 5G", "balance": 0},
    "24681357": {"name": "Grace Hopper", "plan": "Fibre 1000 and TV", "balance": 118.2},
}


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@get("/demo/accounts/{number:str}", exclude_from_auth=True, sync_to_thread=False)
def demo_account(request: Request, number: FromPath[str]) -> Response[dict[str, Any]]:
    """One demo account as JSON (404 when unknown, or when the demo is off)."""
    settings = request.app.state.services.settings
    if not settings.seed_demo:
        return Response({"detail": "the demo is off"}, status_code=404)
    client = request.client.host if request.client else None
    if not settings.demo_api_public and not _loopback(client):
        return Response({"detail": "the demo account API answers loopback only"}, status_code=403)
    found = DEMO_ACCOUNTS.get(number)
    if found is None:
        return Response({"detail": "no such account"}, status_code=404)
    return Response({"account": number, **found})


route_handlers: list[Any] = [demo_account]
