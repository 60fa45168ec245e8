"""A SIPp caller scenario written per test: talk from a pcap, key digits by SIP INFO
(each its own request, so repeated digits are never merged as a replayed RTP event can
be), pause, and hang up or wait for the hub to hang up."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.e2e.hub_process import free_sip_port
from tests.e2e.test_voice_calls import DID, Sipp, sipp_args

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="scripted caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]Caller[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]Caller[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

IN_DIALOG = """  <send>
    <![CDATA[
      {method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]Caller[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Max-Forwards: 70
{extra}      Content-Length: [len]
{body}
    ]]>
  </send>
  <recv response="200"/>
"""

WAIT_FOR_BYE = """  <recv request="BYE" timeout="{timeout}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""

TALK_UNTIL_BYE = """  <label id="talk"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE" timeout="{every}" ontimeout="talk"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""


class Script:
    """Steps after the answer; ``end_*`` closes the scenario."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.cseq = 2

    def pause(self, ms: int) -> Script:
        self.parts.append(f'  <pause milliseconds="{ms}"/>\n')
        return self

    def talk(self, pcap: str) -> Script:
        self.parts.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n')
        return self

    def keys(self, digits: str, gap_ms: int = 250) -> Script:
        for digit in digits:
            body = f"\n      Signal={digit}\n      Duration=160"
            self.parts.append(
                IN_DIALOG.format(
                    method="INFO",
                    cseq=self.cseq,
                    extra="      Content-Type: application/dtmf-relay\n",
                    body=body,
                )
            )
            self.cseq += 1
            self.pause(gap_ms)
        return self

    def end_hanging_up(self) -> str:
        self.parts.append(IN_DIALOG.format(method="BYE", cseq=self.cseq, extra="", body=""))
        return self.xml()

    def end_waiting_for_bye(self, timeout_ms: int = 90_000) -> str:
        self.parts.append(WAIT_FOR_BYE.format(timeout=timeout_ms))
        return self.xml()

    def end_talking_until_bye(self, pcap: str, every_ms: int) -> str:
        self.parts.append(TALK_UNTIL_BYE.format(pcap=pcap, every=every_ms))
        return self.xml()

    def xml(self) -> str:
        return HEAD + "".join(self.parts) + "</scenario>\n"


def scripted_call(
    tmp: Path, sip_port: int, xml: str, *, caller: str, files: dict[str, Path] | None = None
) -> Sipp:
    """Run the scenario once as ``caller`` calling the demo DID; ``files`` are linked into
    its folder (pcaps it plays)."""
    workdir = tmp / f"caller-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    (workdir / "scenario.xml").write_text(xml)
    for name, target in (files or {}).items():
        (workdir / name).symlink_to(target)
    args = sipp_args("x", local_port=free_sip_port(), calls=1, timeout=120)
    args[args.index("-sf") + 1] = str(workdir / "scenario.xml")
    return Sipp(workdir, [*args, f"127.0.0.1:{sip_port}", "-s", DID, "-key", "caller", caller])
