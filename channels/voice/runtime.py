"""Start and stop the SIP endpoint with the hub, from ``HUB_VOICE_*``.

``contacthub run`` opens UDP and TCP on loopback (``HUB_VOICE_TRANSPORTS``,
``HUB_VOICE_BIND_HOST``, ``HUB_VOICE_BIND_PORT``; ``HUB_VOICE_ENABLED=0`` turns voice off).
Calls go to the hub's call service (``hub.calls``); an inbox's published dialog answers
them first (``hub.call_ivr``; ``HUB_IVR_ENABLED=0`` queues every call directly). Agent
phones register with the SIP extension and password stored on each agent (admin pages);
``HUB_VOICE_AGENT_CREDENTIALS`` adds more. Stopping first refuses new calls with 503 and
waits for active ones for up to ``HUB_VOICE_DRAIN_SECONDS``.

The endpoint starts its media engine's thread (the 20 ms clock and RTP, away from the loop
that serves HTTP and SSE: :mod:`channels.voice.media_engine`) and joins it when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from sqlmodel import col, select

from channels.voice.settings import VoiceSettings
from channels.voice.sip_endpoint import SipEndpoint
from hub.call_ivr import VoiceIvr
from hub.calls import CallService, queue_directly
from hub.outbound_calls import OutboundDialer
from hub.services import Services
from models import Agent

log = logging.getLogger(__name__)
Stopper = Callable[[], Awaitable[None]]
CREDENTIALS_EVENT = "sip-credentials"  # on the routing topic: an agent's SIP login changed


def voice_settings(services: Services, env: Mapping[str, str] | None = None) -> VoiceSettings:
    """``HUB_VOICE_*``, with the hub's defaults: UDP and TCP, recordings under the var dir."""
    e = os.environ if env is None else env
    settings = VoiceSettings.from_env(dict(e))
    if "HUB_VOICE_TRANSPORTS" not in e:
        settings = replace(settings, transports=("udp", "tcp"))
    if "HUB_VOICE_RECORDINGS_DIR" not in e:
        settings = replace(settings, recordings_dir=services.settings.var_dir / "recordings")
    return settings


async def agent_credentials(services: Services) -> dict[str, str]:
    """Extension → SIP password of every agent who has both."""
    async with services.sessionmaker() as db:
        rows = await db.exec(
            select(Agent.extension, Agent.sip_password).where(
                col(Agent.extension).is_not(None), col(Agent.sip_password).is_not(None)
            )
        )
        return {ext: password for ext, password in rows.all() if ext and password}


class VoiceRuntime:
    """The endpoint, the call service, and the agent credentials the registrar checks."""

    def __init__(self, services: Services, settings: VoiceSettings) -> None:
        self.services = services
        self.settings = settings
        self.endpoint = SipEndpoint(settings)
        self.calls = CallService(services, self.endpoint)
        self.endpoint.on_call = self.calls.on_call
        self.ivr = VoiceIvr(services)  # the inbox's published dialog answers first
        self.calls.self_service = self.ivr
        self.dialer = OutboundDialer(self.calls)  # click to dial, and dialling on a desk phone
        self.calls.from_phone = self.dialer.from_phone
        # When nobody can answer: voicemail, queued callbacks, on-duty forwards, retention.
        from hub.callbacks import CallbackRunner
        from hub.nobody_answers import NobodyAnswers
        from hub.voicemail import VoicemailTaker

        self.voicemail = VoicemailTaker(services, self.ivr.speech)
        self.calls.nobody = NobodyAnswers(self.calls, self.dialer, self.voicemail)
        self.callbacks = CallbackRunner(services, self.dialer)
        # the browser softphone (and external numbers): call_agent asks it first
        from hub.softphone.service import Softphone

        self.softphone = Softphone(self.calls)
        self.endpoint.agent_device = self.softphone.reach
        self._listener: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None

    async def reload_credentials(self) -> None:
        """Read agents' SIP logins again (the registrar's dict is replaced in place)."""
        fresh = {**self.settings.agent_credentials, **await agent_credentials(self.services)}
        passwords = self.endpoint.registrar.passwords
        passwords.clear()
        passwords.update(fresh)

    async def start(self) -> None:
        await self.reload_credentials()
        await self.endpoint.start()
        if self.services.settings.softphone_enabled:
            await self.softphone.start()
        if self.services.settings.ivr_enabled:
            self.ivr.start()  # speech loads and prompts render in the background
            self.calls.ready_to_answer = self.ivr.ready_to_answer  # calls ring until then
        else:
            self.calls.self_service = queue_directly
        from hub.nobody_answers import fixed_prompts

        greeting = self.services.settings.voicemail_greeting
        if self.services.settings.ivr_enabled:  # the engines load now anyway
            self._warming = asyncio.create_task(
                self.voicemail.prerender(fixed_prompts(greeting)), name="voicemail-prompts"
            )
        self.voicemail.register(self.services.jobs)
        self.callbacks.register(self.services.jobs)
        await self.callbacks.start()
        self._listener = asyncio.create_task(self._listen(), name="voice-credentials")
        self._recovery = asyncio.create_task(self._recover(), name="voice-recovery")
        log.info(
            "SIP endpoint on %s:%s (%s)",
            self.settings.bind_host,
            self.endpoint.port,
            ", ".join(self.settings.transports),
        )

    async def _recover(self) -> None:
        """Calls a dead process left open are ended once the app has started: ending them
        publishes events, which the bus accepts only after start-up."""
        while True:
            try:
                await self.services.bus.publish("voice", "started", node=self.calls.node)
                break
            except RuntimeError:  # Litestar's channels plugin is not initialized yet
                await asyncio.sleep(0.05)
        try:
            await self.calls.recover()
            await self.dialer.recover()  # outbound calls it was still setting up
        except Exception:
            log.exception("ending the calls of a dead process failed")

    async def _listen(self) -> None:
        from hub.events import ROUTING_TOPIC

        async with self.services.bus.subscribe([ROUTING_TOPIC]) as events:
            async for event in events:
                if event.name == "config":  # queues may have been renamed
                    self.ivr.invalidate()
                if event.name in (CREDENTIALS_EVENT, "config"):  # admin pages saved
                    with contextlib.suppress(Exception):
                        await self.reload_credentials()

    async def stop(self, drain_seconds: float) -> None:
        await self.callbacks.stop()
        await self.dialer.stop()  # calls still being set up are cancelled
        await self.calls.drain(drain_seconds)
        for live in list(self.calls.live.values()):  # still talking at the limit
            with contextlib.suppress(Exception):
                await live.customer.hangup()
        await self.calls.drain(2.0)  # their handlers close legs and recordings
        for task in (self._listener, self._recovery, self._warming):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.softphone.stop()
        await self.endpoint.stop()
        await self.ivr.stop()


async def start_voice(services: Services) -> list[Stopper]:
    """Start voice unless ``HUB_VOICE_ENABLED`` is off; the runtime goes in
    ``services.extras["voice"]`` (the admin pages reload credentials through it)."""
    if not services.settings.voice_enabled:
        return []
    runtime = VoiceRuntime(services, voice_settings(services))
    await runtime.start()
    services.extras["voice"] = runtime

    async def stop() -> None:
        services.extras.pop("voice", None)
        await runtime.stop(services.settings.voice_drain_seconds)

    return [stop]
