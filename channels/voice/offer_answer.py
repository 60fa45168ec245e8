"""SDP offer/answer for one audio stream (RFC 3264), sans-IO.

We speak PCMU (PT 0), PCMA (PT 8) and telephone-event (RFC 4733) at 8 kHz, 20 ms ptime.
Parsing reuses :func:`aiosipua.parse_sdp`; building is ours, so the answer lists exactly the
codec we chose plus telephone-event (RFC 3264 §6.1) and mirrors the direction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiosipua import parse_sdp

PCMU = 0
PCMA = 8
SUPPORTED = {PCMU: "PCMU", PCMA: "PCMA"}
DEFAULT_DTMF_PT = 101
ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class OfferError(ValueError):
    """The offer cannot be answered (RFC 3264 §6: reject with 488)."""


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What was agreed for the audio stream, from our side's point of view."""

    remote_addr: tuple[str, int]
    payload_type: int
    dtmf_payload_type: int | None
    direction: str  # the remote side's direction as offered/answered

    @property
    def codec_name(self) -> str:
        return SUPPORTED[self.payload_type]

    @property
    def remote_on_hold(self) -> bool:
        """The peer put us on hold: it offers sendonly/inactive, or a 0.0.0.0 address
        (RFC 3264 §8.4 and the RFC 2543 style)."""
        return self.direction in ("sendonly", "inactive") or self.remote_addr[0] == "0.0.0.0"  # noqa: S104 (comparison, not a bind)


def _dtmf_pt(audio: object) -> int | None:
    for codec in getattr(audio, "codecs", []):
        if codec.encoding_name.lower() == "telephone-event" and codec.clock_rate == 8000:
            return codec.payload_type
    return None


def parse_media(sdp_text: str, preferred: tuple[int, ...] = (PCMU, PCMA)) -> MediaParams:
    """Pick the first of the offerer's codecs that we support (the offerer's order wins).

    Raises :class:`OfferError` if there is no audio stream or no common codec.
    """
    try:
        sdp = parse_sdp(sdp_text)
    except Exception as exc:  # aiosipua raises several types on garbage
        raise OfferError(f"unparsable SDP: {exc}") from exc
    audio = sdp.audio
    if audio is None or audio.port == 0:
        raise OfferError("no audio stream")
    addr = sdp.rtp_address
    if addr is None:
        raise OfferError("no connection address")
    chosen: int | None = None
    for fmt in audio.formats:
        try:
            pt = int(fmt)
        except ValueError:
            continue
        if pt in SUPPORTED and pt in preferred:
            chosen = pt
            break
    if chosen is None:
        raise OfferError("no common codec (PCMU/PCMA)")
    return MediaParams(
        remote_addr=(addr[0], int(addr[1])),
        payload_type=chosen,
        dtmf_payload_type=_dtmf_pt(audio),
        direction=audio.direction,
    )


def build_sdp(
    host: str,
    port: int,
    payload_types: tuple[int, ...],
    dtmf_payload_type: int | None = DEFAULT_DTMF_PT,
    direction: str = "sendrecv",
    session_id: int | None = None,
    version: int = 1,
) -> str:
    """An SDP body (RFC 4566) for one audio stream; ``version`` must grow on each
    re-offer (RFC 3264 §8)."""
    sid = session_id if session_id is not None else int(time.time())
    fmts = [str(pt) for pt in payload_types]
    lines = [
        "v=0",
        f"o=contacthub {sid} {version} IN IP4 {host}",
        "s=contacthub",
        f"c=IN IP4 {host}",
        "t=0 0",
    ]
    if dtmf_payload_type is not None:
        fmts.append(str(dtmf_payload_type))
    lines.append(f"m=audio {port} RTP/AVP {' '.join(fmts)}")
    for pt in payload_types:
        lines.append(f"a=rtpmap:{pt} {SUPPORTED[pt]}/8000")
    if dtmf_payload_type is not None:
        lines.append(f"a=rtpmap:{dtmf_payload_type} telephone-event/8000")
        lines.append(f"a=fmtp:{dtmf_payload_type} 0-16")
    lines.append("a=ptime:20")
    lines.append(f"a={direction}")
    return "\r\n".join(lines) + "\r\n"


def answer(offer: MediaParams, host: str, port: int, session_id: int, version: int = 1) -> str:
    """Our answer to ``offer``: the chosen codec, telephone-event if offered, and the
    mirrored direction (RFC 3264 §6.1)."""
    return build_sdp(
        host,
        port,
        (offer.payload_type,),
        offer.dtmf_payload_type,
        ANSWER_DIRECTION.get(offer.direction, "sendrecv"),
        session_id,
        version,
    )
