"""SDP offer/answer for one audio stream (RFC 3264), sans-IO.

We speak PCMU (PT 0), PCMA (PT 8) and telephone-event (RFC 4733) at 8 kHz, 20 ms ptime.
Parsing reuses :func:`aiosipua.parse_sdp`; building is ours, so the answer lists exactly the
codec we chose plus telephone-event (RFC 3264 §6.1) and mirrors the direction.
"""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
import time
from dataclasses import dataclass

from aiosipua import SipMessage, parse_sdp

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


def sdp_body(msg: SipMessage) -> str | None:
    """The session description a request or response carries, or ``None``.

    ``application/sdp`` is the body itself (RFC 3264 §5); ``multipart/mixed`` (SIP-I/T
    gateways put ISUP beside the SDP, RFC 5621) yields its ``application/sdp`` part. A
    message without a body has no SDP; one whose body is of any other type has none we
    can read (the endpoint answers an INVITE like that 415, RFC 3261 §8.2.3).
    """
    if not msg.body:
        return None
    ctype = (msg.content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/sdp":
        return msg.text
    if ctype.startswith("multipart/"):
        raw = b"Content-Type: " + (msg.content_type or "").encode() + b"\r\n\r\n" + msg.body
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
        for part in parsed.walk():
            if part.get_content_type() == "application/sdp":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload.decode("utf-8", "replace")
    return None


def media_address(address: str) -> str:
    """The ``c=`` address as a literal unicast IPv4 address, or :class:`OfferError`.

    RFC 4566 §5.7 also allows host names and multicast groups; we take neither: a name
    would need a DNS lookup on the media path (a hostile SDP could stall it), and a
    phone call has no use for a multicast group or a broadcast address. ``0.0.0.0`` is
    kept: it is the RFC 2543 way to put a call on hold (RFC 3264 §8.4)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise OfferError(f"media address {address[:64]!r} is not an IP address") from None
    if ip.version != 4:
        raise OfferError("IPv6 media is not supported")
    if ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        raise OfferError(f"media address {address} is not a unicast address")
    return str(ip)


def parse_media(sdp_text: str, preferred: tuple[int, ...] = (PCMU, PCMA)) -> MediaParams:
    """Pick the first of the offerer's codecs that we support (the offerer's order wins).

    Raises :class:`OfferError` if there is no audio stream, no common codec, or the
    stream cannot be sent to: a port outside 1-65535, an address that is not a literal
    unicast IPv4 address, a transport other than RTP/AVP (RFC 3264 §6: decline what
    cannot be used, answered 488 by the endpoint).
    """
    try:
        sdp = parse_sdp(sdp_text)
    except Exception as exc:  # aiosipua raises several types on garbage
        raise OfferError(f"unparsable SDP: {exc}") from exc
    audio = sdp.audio
    if audio is None or audio.port == 0:
        raise OfferError("no audio stream")
    if not 0 < audio.port < 65536:
        raise OfferError(f"impossible media port {audio.port}")
    if audio.proto.upper() != "RTP/AVP":
        raise OfferError(f"media transport {audio.proto[:32]!r} is not RTP/AVP")
    addr = sdp.rtp_address
    if addr is None or not addr[0]:
        raise OfferError("no connection address")
    addr = (media_address(addr[0]), addr[1])
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
