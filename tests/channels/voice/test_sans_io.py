"""The sans-IO parts on their own: offer/answer, digest, jitter buffer, ptime, mixer; and the
RTP session draining its socket."""

from __future__ import annotations

import socket
import struct

import numpy as np
import pytest
from aiosipua import SipDigestAuth, build_credentials, parse_auth, stringify_auth

from channels.voice.digest import DigestAuthority
from channels.voice.jitter_buffer import JitterBuffer
from channels.voice.media_engine import _take_frame
from channels.voice.mixer import Conference, Role
from channels.voice.offer_answer import OfferError, answer, parse_media
from channels.voice.rtp_session import PortPool, RtpSession
from speech.g711 import alaw_decode, alaw_encode
from tests.ports import rtp_range

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n"
)


def test_answer_takes_the_offerers_first_common_codec_and_its_event_pt() -> None:
    media = parse_media(OFFER)
    assert (media.payload_type, media.dtmf_payload_type) == (8, 96)
    assert media.remote_addr == ("10.0.0.5", 4000) and media.remote_on_hold
    sdp = answer(media, "127.0.0.1", 20000, session_id=7)
    assert "m=audio 20000 RTP/AVP 8 96" in sdp
    assert "a=rtpmap:96 telephone-event/8000" in sdp and "a=recvonly" in sdp


def test_offer_without_common_codec_is_refused() -> None:
    with pytest.raises(OfferError):
        parse_media(OFFER.replace(" 18 8 0 96", " 18 96"))


def test_digest_accepts_the_right_password_only() -> None:
    authority = DigestAuthority("hub")
    challenge = parse_auth(authority.challenge())
    uri = "sip:hub"
    good = build_credentials(SipDigestAuth("1001", "pw"), challenge, "REGISTER", uri)
    bad = build_credentials(SipDigestAuth("1001", "nope"), challenge, "REGISTER", uri)
    assert good is not None and bad is not None
    assert authority.verify(stringify_auth(good), "REGISTER", {"1001": "pw"}) == ("1001", False)
    assert authority.verify(stringify_auth(bad), "REGISTER", {"1001": "pw"}) == (None, False)
    # a forged nonce is not accepted even with the right password
    forged = stringify_auth(good).replace(challenge.params["nonce"], "123.deadbeef")
    assert authority.verify(forged, "REGISTER", {"1001": "pw"})[0] is None


def test_jitter_buffer_reorders_and_conceals() -> None:
    jb = JitterBuffer(prefill=2)
    for seq in (11, 10, 13):  # 12 is lost
        jb.put(seq, bytes([seq]))
    assert [jb.pop(), jb.pop(), jb.pop(), jb.pop()] == [b"\x0a", b"\x0b", None, b"\x0d"]
    assert jb.concealed == 1
    jb.put(5, b"late")
    assert jb.late == 1


def test_a_backlog_after_a_stall_drains_and_a_jittery_stream_keeps_every_frame() -> None:
    """After a stall, ten frames arrive at once; with one frame in and one out per tick the
    backlog would stand for the rest of the call. It is skipped away, a frame a second, and
    ends within ``shrink_window`` pops of steady state; a stream that is only jittery (two
    packets, then none) loses nothing."""
    jb = JitterBuffer(prefill=2)
    seq = 0
    for seq in range(2):  # playout starts
        jb.put(seq, bytes([seq % 256]))
    for _ in range(10):  # steady: a frame out at each tick, the next one in before the next
        assert jb.pop() is not None
        seq += 1
        jb.put(seq, bytes([seq % 256]))
    for _ in range(10):  # the stall's frames come at once
        seq += 1
        jb.put(seq, bytes([seq % 256]))
    depths = []
    for _ in range(50 * 15):  # 15 s of steady stream
        assert jb.pop() is not None
        depths.append(len(jb.frames))
        seq += 1
        jb.put(seq, bytes([seq % 256]))
    assert depths[0] == 11 and depths[-1] <= 2, (depths[0], depths[-1])
    assert jb.skipped == 9 and jb.concealed == 0

    jittery = JitterBuffer(prefill=2)
    played = []
    for tick in range(50 * 15):
        if tick % 2 == 0:  # two packets every other tick
            jittery.put(tick, b"a")
            jittery.put(tick + 1, b"b")
        payload = jittery.pop()
        if payload is not None:
            played.append(payload)
    assert jittery.skipped == 0 and jittery.concealed == 0
    assert len(played) >= 50 * 15 - 2


def test_audio_the_buffer_never_played_is_counted_for_the_leg() -> None:
    """A burst past ``max_frames`` (the hub's clock stalled, or the far end's sender) is
    trimmed to the newest frames; the leg's counters say how much was lost that way."""
    jb = JitterBuffer(prefill=2, max_frames=12)
    for seq in range(2):
        jb.put(seq, b"x")
    assert jb.pop() == b"x"
    for seq in range(2, 22):  # 400 ms at once
        jb.put(seq, b"x")
    jb.put(0, b"late")
    assert jb.trimmed == 11  # at 13 frames held, all but the newest two went
    assert jb.playout_counters() == {
        "frames_late": 1,
        "frames_concealed": 0,
        "frames_dropped": jb.trimmed,
    }
    rtp = RtpSession("127.0.0.1", 0)
    assert rtp.stats_dict()["frames_dropped"] == 0 and "packets_lost" in rtp.stats_dict()


def test_30_ms_packets_are_replayed_as_20_ms_frames_without_loss() -> None:
    rtp = RtpSession("127.0.0.1", 0)
    rtp.payload_type = 8
    t = np.arange(2400) / 8000
    pcm = (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)
    for i in range(10):
        rtp.jitter.put(i, alaw_encode(pcm[i * 240 : (i + 1) * 240]))
    frames = [_take_frame(rtp, None) for _ in range(15)]
    assert np.array_equal(np.concatenate(frames), alaw_decode(alaw_encode(pcm)))


def test_mixer_roles() -> None:
    conf: Conference[str] = Conference()
    conf.add("customer")
    conf.add("agent")
    conf.add("boss", Role.WHISPER, target="agent")
    ones = {
        k: np.full(160, v, dtype=np.int16)
        for k, v in {"customer": 1, "agent": 10, "boss": 100}.items()
    }
    out = conf.mix(ones)
    assert (out["customer"][0], out["agent"][0], out["boss"][0]) == (10, 101, 11)
    conf.add("boss", Role.LISTEN)
    out = conf.mix(ones)
    assert (out["customer"][0], out["agent"][0], out["boss"][0]) == (10, 1, 11)
    loud = {k: np.full(160, 30000, dtype=np.int16) for k in ones}
    conf.add("boss")
    assert conf.mix(loud)["agent"][0] == 32767  # clipped, not wrapped


async def test_a_wake_up_takes_every_datagram_queued_on_the_socket() -> None:
    """asyncio hands a datagram protocol one datagram per ready socket per loop pass; a
    media loop whose pass outlasts the 20 ms packet interval (hundreds of legs) would fall
    behind by a packet a pass until the kernel dropped them. The session drains its socket
    on each wake-up instead."""
    low, high = rtp_range()
    session = await PortPool("127.0.0.1", low, high).open(lambda p: RtpSession("127.0.0.1", p))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.bind(("127.0.0.1", 0))
        session.configure(sender.getsockname(), 8, None)
        target = ("127.0.0.1", session.local_port)
        for seq in range(40):  # a media loop 0.8 s behind on this leg
            sender.sendto(struct.pack("!BBHII", 0x80, 8, seq, seq * 160, 7) + bytes(160), target)
        assert session._sock is not None
        first, addr = session._sock.recvfrom(2048)  # what the transport would hand over
        session.datagram_received(first, addr)  # one wake-up, no loop pass in between
        assert session.stats.packets_received == 40
    finally:
        sender.close()
        session.close()
