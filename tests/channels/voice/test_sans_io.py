"""The sans-IO parts on their own: offer/answer, digest, jitter buffer, ptime, mixer."""

from __future__ import annotations

import numpy as np
import pytest
from aiosipua import SipDigestAuth, build_credentials, parse_auth, stringify_auth

from channels.voice.digest import DigestAuthority
from channels.voice.jitter_buffer import JitterBuffer
from channels.voice.media_engine import _take_frame
from channels.voice.mixer import Conference, Role
from channels.voice.offer_answer import OfferError, answer, parse_media
from channels.voice.rtp_session import RtpSession
from speech.g711 import alaw_decode, alaw_encode

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
