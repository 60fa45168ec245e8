"""A hub process running only the SMS adapter, for the kill test: ``python -m
tests.channels.sms.hub_process`` with HUB_DATABASE_URL, HUB_VAR_DIR and HUB_SMS_* set.
Prints "ready" once started and runs until killed."""

from __future__ import annotations

import asyncio

from channels.sms.runtime import start_sms
from hub.events import make_backend, make_channels_plugin
from hub.services import Services
from hub.settings import Settings


async def main() -> None:
    plugin = make_channels_plugin(make_backend(""))
    await plugin._on_startup()
    services = Services.build(Settings(), plugin)
    await start_sms(services)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
