"""The :class:`Call` API: one call leg as the hub and the IVR drive it.

A call is created by the :class:`~channels.voice.sip_endpoint.SipEndpoint` (an inbound
INVITE, or an outbound dial). Every operation is async and every change is reported as a
:class:`CallEvent` to the listeners and kept in :attr:`Call.timeline` for the call record.

Media runs on the endpoint's shared clock, on the media engine's own thread
(:mod:`channels.voice.media_engine`); a call only hands it frames through ``_media_in`` /
``_media_out``, which run there. The public methods here are called on the hub's loop:
whatever they change that the clock reads (playback, recorder, hold music, conference
membership, the engine's set of calls) is changed under the engine's lock, and what the
clock raises (digits, a finished prompt, barge-in, frames for :meth:`Call.audio_stream`)
comes back to the hub loop through :meth:`MediaEngine.to_hub`. Callers see the same API
as when media shared their loop.
"""

# ruff: noqa: ASYNC109  (timeouts are part of the Call API the IVR drives)
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from channels.voice.mixer import Conference, Role
from channels.voice.playback import FrameSource, PcmSource, StreamSource, load_wav_8k
from channels.voice.recorder import StereoRecorder
from speech.audio import Audio
from speech.dtmf import DtmfDetector

if TYPE_CHECKING:
    from channels.voice.offer_answer import MediaParams
    from channels.voice.rtp_session import RtpSession
    from channels.voice.sip_endpoint import SipEndpoint

Pcm = npt.NDArray[np.int16]
BARGE_IN_RMS = 900.0
BARGE_IN_FRAMES = 3
MAX_BUFFERED_DIGITS = 64  # digits nobody collects (e.g. during a bridge) are capped
STREAM_QUEUE_FRAMES = 250  # 5 s of audio for a slow recognizer, then the oldest is dropped


class CallState(StrEnum):
    RINGING = "ringing"  # inbound, not answered yet (or outbound, dialling)
    EARLY = "early"  # early media flowing (183)
    ANSWERED = "answered"
    ENDED = "ended"


class PlayOutcome(StrEnum):
    COMPLETED = "completed"
    DTMF = "dtmf"
    BARGE_IN = "barge_in"
    STOPPED = "stopped"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class CallEvent:
    kind: str  # ringing, early_media, answered, dtmf, hold, unhold, remote_hold, ...
    at: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Collected:
    """The result of :meth:`Call.collect_dtmf`; ``ended_by`` is max, terminator,
    timeout or hangup."""

    digits: str
    ended_by: str


def _user_part(uri: str) -> str:
    """``sip:+15551230001@host;x=y`` → ``+15551230001``."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


class CallError(RuntimeError):
    """An operation that the call's state does not allow."""


class CallEnded(CallError):
    """The operation needs a live call."""


class _Playback:
    """A prompt being played. ``finish`` may come from the media thread (completed,
    barge-in) or the hub loop (stopped, a digit, hang-up): the first outcome wins at
    once, under the engine's lock, so the clock takes no frame after it; the waiting
    future is resolved on the hub loop."""

    def __init__(
        self,
        source: FrameSource,
        interrupt_on_dtmf: bool,
        barge_in: bool,
        to_hub: Callable[..., None],
    ) -> None:
        self.source = source
        self.interrupt_on_dtmf = interrupt_on_dtmf
        self.barge_in = barge_in
        self.outcome: PlayOutcome | None = None
        self._to_hub = to_hub
        self.done: asyncio.Future[PlayOutcome] = asyncio.get_running_loop().create_future()

    def finish(self, outcome: PlayOutcome) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        self._to_hub(self._settle)

    def _settle(self) -> None:
        if not self.done.done() and self.outcome is not None:
            self.done.set_result(self.outcome)
        self.source.close()


class Call:
    """One SIP call leg with its media."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        call_id: str,
        direction: str,
        remote_uri: str,
        local_uri: str,
        rtp: RtpSession,
    ) -> None:
        self.endpoint = endpoint
        self._engine = endpoint.engine
        self.call_id = call_id
        self.direction = direction  # "inbound" | "outbound"
        self.remote_uri = remote_uri
        self.local_uri = local_uri
        self.rtp: RtpSession | None = rtp
        self.media: MediaParams | None = None
        self.state = CallState.RINGING
        self.held = False  # we put the party on hold (it hears music)
        self.remote_held = False  # the party put us on hold (re-INVITE sendonly)
        self.phone_extension: str | None = None  # inbound: an agent's own phone placed it
        self.muted = False  # the party's audio reaches no conference member
        self.recording_paused = False  # frames are not written while paused
        self.recorded_frames = 0  # 20 ms frames written: the recording's timeline
        self.conference: Conference[Call] | None = None
        self.timeline: list[tuple[float, str]] = []
        self.end_reason: str | None = None
        self.started_at = time.time()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.inband_dtmf = False
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self._listeners: list[Callable[[Call, CallEvent], Any]] = []
        self._digits: list[str] = []
        self._digit_event = asyncio.Event()
        self._playback: _Playback | None = None
        self._moh: FrameSource | None = None
        self._recorder: StereoRecorder | None = None
        self._rec_left: Pcm | None = None
        self._streams: list[asyncio.Queue[Pcm | None]] = []
        self._detector: DtmfDetector | None = None
        self._loud_frames = 0
        rtp.on_dtmf = lambda d: self._engine.to_hub(self._on_digit, d, "rfc4733")

    def __repr__(self) -> str:
        return f"<Call {self.direction} {self.call_id} {self.state}>"

    # --- events and record --------------------------------------------------------

    @property
    def caller_number(self) -> str:
        """The calling party's user part (the From of an inbound call), e.g. ``+1555…``."""
        uri = self.remote_uri if self.direction == "inbound" else self.local_uri
        return _user_part(uri)

    @property
    def called_number(self) -> str:
        """The called party's user part (the DID of an inbound call)."""
        uri = self.local_uri if self.direction == "inbound" else self.remote_uri
        return _user_part(uri)

    @property
    def sip_headers(self) -> dict[str, str]:
        """The first value of each header of the INVITE that created the call."""
        return self.endpoint._invite_headers(self)

    def events(self) -> AsyncIterator[CallEvent]:
        """Every :class:`CallEvent` from this call on (subscribed at once, not at the
        first ``async for`` step), ending after ``ended``."""
        queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.add_listener(lambda _call, event: queue.put_nowait(event))
        already_ended = self.state is CallState.ENDED

        async def stream() -> AsyncIterator[CallEvent]:
            if already_ended:
                return
            while True:
                event = await queue.get()
                yield event
                if event.kind == "ended":
                    return

        return stream()

    def add_listener(self, listener: Callable[[Call, CallEvent], Any]) -> None:
        """``listener(call, event)`` is called for every :class:`CallEvent`."""
        self._listeners.append(listener)

    def _emit(self, kind: str, **detail: Any) -> None:
        event = CallEvent(kind, time.time(), detail)
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):
                listener(self, event)

    def _note(self, what: str) -> None:
        """A line of the SIP timeline (kept for the call record)."""
        self.timeline.append((time.time(), what))

    @property
    def duration(self) -> float:
        """Seconds since the answer (0 if never answered)."""
        if self.answered_at is None:
            return 0.0
        return round((self.ended_at or time.time()) - self.answered_at, 3)

    def stats(self) -> dict[str, Any]:
        """Per-call RTP counters (RFC 3550) and the SIP timeline."""
        with self._engine.lock:
            rtp = self.rtp.stats_dict() if self.rtp is not None else self._final_stats
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "state": str(self.state),
            "end_reason": self.end_reason,
            "duration_s": self.duration,
            "rtp": rtp,
            "timeline": list(self.timeline),
        }

    _final_stats: dict[str, Any] = {}  # noqa: RUF012 (replaced per instance at the end)

    # --- signalling operations ----------------------------------------------------

    def _require_live(self) -> None:
        if self.state is CallState.ENDED:
            raise CallEnded(f"call {self.call_id} has ended")

    async def ring(self) -> None:
        """180 Ringing (RFC 3261 §13.3.1.1)."""
        self._require_live()
        self.endpoint._send_ringing(self)

    async def early_media(self) -> None:
        """183 Session Progress with our SDP: media flows before the answer (RFC 3960)."""
        self._require_live()
        self.endpoint._send_early_media(self)
        self.state = CallState.EARLY
        self._start_media()
        self._emit("early_media")

    async def answer(self) -> None:
        """200 OK with our SDP answer; media starts at once."""
        self._require_live()
        if self.state is CallState.ANSWERED:
            return
        self.endpoint._send_answer(self)
        self._mark_answered()

    def _mark_answered(self) -> None:
        self.answered_at = time.time()
        self.state = CallState.ANSWERED
        self._start_media()
        self.answered.set()
        self._emit("answered")

    async def reject(self, status: int = 486, reason: str = "") -> None:
        """Refuse an unanswered inbound call (486 Busy Here by default)."""
        if self.state in (CallState.RINGING, CallState.EARLY):
            self.endpoint._send_reject(self, status, reason)
            self._finish(f"rejected {status}")

    async def hangup(self) -> None:
        """BYE when answered; CANCEL (outbound) or 480 (inbound) before that."""
        if self.state is CallState.ENDED:
            return
        self.endpoint._send_hangup(self)
        self._finish("local hangup")

    async def transfer(self, target_uri: str, timeout: float = 10.0) -> int:
        """Blind transfer out with REFER (RFC 3515): the party calls ``target_uri``.

        Returns the final sipfrag status the party reported in its NOTIFYs (RFC 3515
        §2.4.5); on 2xx the call is hung up here.
        """
        self._require_live()
        return await self.endpoint._refer(self, target_uri, timeout)

    def answer_refer(self, status: int, reason: str = "") -> bool:
        """Report how a REFER the party sent us ended (the ``refer_requested`` event).

        The 202 and the first NOTIFY (100 Trying) went out on arrival; this sends the final
        NOTIFY, a ``message/sipfrag`` status line (e.g. ``SIP/2.0 603 Declined``) with
        ``Subscription-State: terminated``, which ends the implicit subscription
        (RFC 3515 §2.4.5). Returns False when no REFER is waiting for its answer.
        """
        return self.endpoint._answer_refer(self, status, reason)

    async def hold(self) -> None:
        """Put the party on hold: re-INVITE ``a=sendonly`` (RFC 3264 §8.4) and music."""
        self._require_live()
        if self.held:
            return
        moh = self.endpoint._moh_source()
        with self._engine.lock:
            self.held = True
            self._moh = moh
        await self._signal_direction("sendonly")
        self._emit("hold")

    async def unhold(self) -> None:
        """Take the party off hold: re-INVITE ``a=sendrecv``; music stops."""
        self._require_live()
        if not self.held:
            return
        with self._engine.lock:
            self.held = False
            if self._moh is not None:
                self._moh.close()
                self._moh = None
        await self._signal_direction("sendrecv")
        self._emit("unhold")

    async def _signal_direction(self, direction: str) -> None:
        """Tell the party the stream's new direction: a re-INVITE (RFC 3264 §8.4)."""
        await self.endpoint._reinvite(self, direction)

    # --- media operations ---------------------------------------------------------

    def _start_media(self) -> None:
        with self._engine.lock:
            if self.rtp is not None:
                self._engine.calls.add(self)

    async def play(
        self,
        source: str | Path | Audio | Pcm | AsyncIterable[Pcm | Audio],
        *,
        sample_rate: int = 8000,
        interrupt_on_dtmf: bool = True,
        barge_in: bool = False,
        loop: bool = False,
    ) -> PlayOutcome:
        """Play a WAV file, an :class:`Audio`, int16 samples or an async stream of
        frames (TTS) and wait until it ends.

        With ``interrupt_on_dtmf`` a digit stops the prompt (the digit stays buffered for
        :meth:`collect_dtmf`); with ``barge_in`` the caller's voice stops it.
        """
        self._require_live()
        if self.state is CallState.RINGING:
            raise CallError("answer the call (or start early media) before playing")
        frames: FrameSource
        if isinstance(source, str | Path):
            frames = PcmSource(await asyncio.to_thread(load_wav_8k, source), loop=loop)
        elif isinstance(source, Audio):
            audio = source.mono().resampled(8000)  # noqa: ASYNC240 (not a path)
            frames = PcmSource(audio.samples, loop=loop)
        elif isinstance(source, np.ndarray):
            frames = PcmSource(source.astype(np.int16, copy=False), loop=loop)  # noqa: ASYNC240 (not a path)
        else:
            frames = StreamSource(source, sample_rate)
        playback = _Playback(frames, interrupt_on_dtmf, barge_in, self._engine.to_hub)
        with self._engine.lock:
            self.stop_playback()
            if interrupt_on_dtmf and self._digits:
                playback.finish(PlayOutcome.DTMF)
                return PlayOutcome.DTMF
            self._playback = playback
            self._loud_frames = 0
        try:
            return await playback.done
        finally:
            with self._engine.lock:
                if self._playback is playback:
                    self._playback = None

    def stop_playback(self) -> None:
        with self._engine.lock:
            if self._playback is not None:
                self._playback.finish(PlayOutcome.STOPPED)
                self._playback = None

    async def collect_dtmf(
        self,
        max_digits: int = 1,
        timeout: float = 5.0,
        terminator: str | None = "#",
        inter_digit_timeout: float | None = None,
    ) -> Collected:
        """Collect up to ``max_digits`` digits (RFC 4733, SIP INFO or in-band).

        Waits ``timeout`` for the first digit, then ``inter_digit_timeout`` (default:
        ``timeout``) for each next one. The terminator ends collection and is not
        returned. Digits that arrived earlier (during a prompt) count.
        """
        digits = ""
        wait = timeout
        while len(digits) < max_digits:
            if not self._digits:
                if self.state is CallState.ENDED:
                    return Collected(digits, "hangup")
                self._digit_event.clear()
                ended = asyncio.ensure_future(self.ended.wait())
                got = asyncio.ensure_future(self._digit_event.wait())
                try:
                    await asyncio.wait({ended, got}, timeout=wait, return_when="FIRST_COMPLETED")
                finally:
                    ended.cancel()
                    got.cancel()
                if not self._digits:
                    return Collected(digits, "hangup" if self.ended.is_set() else "timeout")
            digit = self._digits.pop(0)
            if terminator and digit == terminator:
                return Collected(digits, "terminator")
            digits += digit
            wait = inter_digit_timeout if inter_digit_timeout is not None else timeout
        return Collected(digits, "max")

    def flush_dtmf(self) -> str:
        """Drop and return buffered digits."""
        out = "".join(self._digits)
        self._digits.clear()
        return out

    async def send_dtmf(self, digits: str) -> None:
        """Send digits to the party as RFC 4733 events, 100 ms each, 100 ms apart."""
        for digit in digits:
            with self._engine.lock:
                if self.rtp is not None:
                    self.rtp.send_dtmf(digit)
            await asyncio.sleep(0.2)

    async def audio_stream(self) -> AsyncIterator[Pcm]:
        """Decoded 8 kHz int16 frames (20 ms) from the party, until the call ends."""
        queue: asyncio.Queue[Pcm | None] = asyncio.Queue(STREAM_QUEUE_FRAMES)
        self._streams.append(queue)
        try:
            while True:
                if self.state is CallState.ENDED and queue.empty():
                    return
                frame = await queue.get()
                if frame is None:
                    return
                yield frame
        finally:
            with contextlib.suppress(ValueError):
                self._streams.remove(queue)

    def record(self, path: str | Path | None = None) -> Path:
        """Start a stereo recording: the party on the left, what it hears on the right
        (the agent in a bridge, the prompts in the IVR). Returns the WAV path."""
        self._require_live()
        if self._recorder is not None:
            return self._recorder.path
        if path is None:
            safe = "".join(ch if ch.isalnum() else "_" for ch in self.call_id)[:64]
            path = self.endpoint.settings.recordings_dir / f"{int(self.started_at)}-{safe}.wav"
        recorder = StereoRecorder(path)
        with self._engine.lock:
            self._recorder = recorder
        self._emit("recording_started", path=str(path))
        return recorder.path

    @property
    def recording_offset(self) -> float:
        """Seconds of audio written to the recording so far (its timeline)."""
        return round(self.recorded_frames * 0.02, 2)

    def pause_recording(self) -> float:
        """Stop writing frames (a card number is being given; the call is on hold).
        Returns the recording's offset at the pause: no frame is written after it."""
        with self._engine.lock:  # no tick is between its check and its write
            if self.recording_paused:
                return self.recording_offset
            self.recording_paused = True
            offset = self.recording_offset
        self._emit("recording_paused", offset=offset)
        return offset

    def resume_recording(self) -> float:
        """Write frames again; returns the offset the recording resumes at."""
        with self._engine.lock:
            if not self.recording_paused:
                return self.recording_offset
            self.recording_paused = False
            offset = self.recording_offset
        self._emit("recording_resumed", offset=offset)
        return offset

    def set_muted(self, muted: bool) -> None:
        """Mute: the party's audio is replaced by silence in every conference."""
        if self.muted != muted:
            self.muted = muted
            self._emit("muted" if muted else "unmuted")

    def stop_recording(self) -> Path | None:
        with self._engine.lock:  # no tick is writing once we hold it
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        path = recorder.close()
        self._emit("recording_stopped", path=str(path))
        return path

    # --- conferencing -------------------------------------------------------------

    def bridge(self, other: Call) -> Conference[Call]:
        """Connect this call and ``other`` so they hear each other (a two-party
        conference; add more members with :meth:`join`)."""
        self._require_live()
        other._require_live()
        with self._engine.lock:
            conf = self.conference or other.conference or self.endpoint._new_conference()
            joined = []
            for call in (self, other):
                if call.conference is not conf:
                    call.leave_conference()
                    conf.add(call, Role.FULL)
                    call.conference = conf
                    joined.append(call)
        for call in joined:
            call._emit("bridged", conference=id(conf))
        return conf

    def join(
        self, conference: Conference[Call], role: Role = Role.FULL, target: Call | None = None
    ) -> None:
        self._require_live()
        with self._engine.lock:
            self.leave_conference()
            conference.add(self, role, target)
            self.conference = conference
        self._emit("joined", role=str(role))

    def leave_conference(self) -> None:
        with self._engine.lock:
            conf, self.conference = self.conference, None
            if conf is None:
                return
            conf.remove(self)
            if len(conf) < 2 or all(m.role is not Role.FULL for m in conf.members.values()):
                for key in list(conf.members):
                    key.conference = None
                    conf.remove(key)
                self.endpoint._drop_conference(conf)
        self._emit("unbridged")

    def unbridge(self) -> None:
        self.leave_conference()

    def _conference_of(self, agent: Call) -> Conference[Call]:
        if agent.conference is None:
            raise ValueError("the agent's call is not bridged")
        return agent.conference

    def listen(self, agent: Call) -> None:
        """Supervisor mode: hear the agent and the customer, heard by nobody."""
        self.join(self._conference_of(agent), Role.LISTEN)

    def whisper(self, agent: Call) -> None:
        """Supervisor mode: hear both, heard by the agent only."""
        self.join(self._conference_of(agent), Role.WHISPER, agent)

    def barge(self, agent: Call) -> None:
        """Supervisor mode: a full three-way conference."""
        self.join(self._conference_of(agent), Role.FULL)

    # --- media clock hooks (called by the MediaEngine every 20 ms, on its thread, ----
    # --- under its lock; anything for the hub goes through to_hub) -----------------

    def _media_in(self, pcm: Pcm) -> None:
        if self._recorder is not None:
            self._rec_left = pcm
        if self._streams:
            self._engine.to_hub(self._stream_frame, pcm)
        if self.inband_dtmf:
            if self._detector is None:
                self._detector = DtmfDetector(sample_rate=8000)
            for digit in self._detector.feed(pcm):
                self._engine.to_hub(self._on_digit, digit, "inband")
        playback = self._playback
        if playback is not None and playback.barge_in and playback.outcome is None:
            rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2)))
            self._loud_frames = self._loud_frames + 1 if rms > BARGE_IN_RMS else 0
            if self._loud_frames >= BARGE_IN_FRAMES:
                playback.finish(PlayOutcome.BARGE_IN)
                self._engine.to_hub(self._emit, "barge_in")

    def _stream_frame(self, pcm: Pcm) -> None:
        """One decoded frame to every :meth:`audio_stream` (on the hub loop)."""
        for queue in self._streams:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(pcm)

    def _media_out(self, mixed: Pcm | None) -> Pcm | None:
        out: Pcm | None
        if self.held and self._moh is not None:
            out = self._moh.next_frame()
        else:
            out = mixed
            playback = self._playback
            if playback is not None and playback.outcome is None:
                frame = playback.source.next_frame()
                if frame is None:
                    playback.finish(PlayOutcome.COMPLETED)
                elif out is None:
                    out = frame
                else:
                    out = np.clip(out.astype(np.int32) + frame, -32768, 32767).astype(np.int16)
        if self._recorder is not None and not self.recording_paused:
            self.recorded_frames += 1
            left = self._rec_left
            silence = np.zeros(160, dtype=np.int16)
            self._recorder.write(
                left if left is not None else silence, out if out is not None else silence
            )
        return out

    def _on_digit(self, digit: str, via: str) -> None:
        """A digit from any source, on the hub loop."""
        if len(self._digits) < MAX_BUFFERED_DIGITS:
            self._digits.append(digit)
        self._digit_event.set()
        with self._engine.lock:
            playback = self._playback
            if playback is not None and playback.interrupt_on_dtmf:
                playback.finish(PlayOutcome.DTMF)
        self._note(f"DTMF {digit} ({via})")
        self._emit("dtmf", digit=digit, via=via)

    # --- teardown -----------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        """Release everything; idempotent."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.ended_at = time.time()
        self.end_reason = reason
        self._note(f"ended: {reason}")
        with self._engine.lock:  # the clock stops taking this call's frames at once
            if self._playback is not None:
                self._playback.finish(PlayOutcome.HANGUP)
            self._engine.calls.discard(self)
            rtp, self.rtp = self.rtp, None
            if rtp is not None:
                self._final_stats = rtp.stats_dict()
        self.stop_recording()
        self.leave_conference()
        for queue in self._streams:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._digit_event.set()
        if rtp is not None:
            self.endpoint._release_rtp(rtp)
        self.ended.set()
        self.endpoint._forget(self)
        self._emit("ended", reason=reason)
