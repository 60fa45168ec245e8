"""Voice channel: a SIP endpoint (RFC 3261 over UDP/TCP) with an RTP media engine.

The hub and the IVR drive calls through :class:`Call`; :class:`SipEndpoint` owns the
signalling, the registrar for agent phones, the trunk, and the shared 20 ms media clock.

    endpoint = SipEndpoint(VoiceSettings.from_env(), on_call=handle)
    await endpoint.start()

    async def handle(call: Call) -> None:
        await call.ring()
        await call.answer()
        call.record()
        await call.play("welcome.wav")
        digits = await call.collect_dtmf(max_digits=4, timeout=5, terminator="#")
        agent = await endpoint.call_agent("1001")
        call.bridge(agent)
"""

from channels.voice.call import (
    Call,
    CallEnded,
    CallError,
    CallEvent,
    CallState,
    Collected,
    PlayOutcome,
)
from channels.voice.mixer import Conference, Role
from channels.voice.settings import VoiceSettings
from channels.voice.sip_endpoint import CallFailed, SipEndpoint

__all__ = [
    "Call",
    "CallEnded",
    "CallError",
    "CallEvent",
    "CallFailed",
    "CallState",
    "Collected",
    "Conference",
    "PlayOutcome",
    "Role",
    "SipEndpoint",
    "VoiceSettings",
]
