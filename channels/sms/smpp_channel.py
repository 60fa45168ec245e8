"""SMS over SMPP, wired to the hub: MO to ``ingest``, DLRs to ``update_delivery``, replies
out as ``submit_sm``.

Every ``deliver_sm_resp`` reports what happened to the commit: ``ESME_ROK`` once the MO (or
the part's spool file, or the receipt) is stored, ``ESME_RX_T_APPN`` when it is not, so the
SMSC redelivers and the ``source_id`` dedupes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    Ingestor,
    OutboundMessage,
    SendResult,
)
from channels.sms import dlr
from channels.sms.mo import DedupeWindow, MoText, PartSpool, Reassembler
from channels.sms.pdu import ShortMessage, Status
from channels.sms.segments import build_parts, describe
from channels.sms.smpp_client import SmppClient, SmppConfig
from hub.contacts import AddressError, normalize_phone

log = logging.getLogger(__name__)

# §5.2.5/§5.2.6 type of number and numbering plan for the addresses we send.
TON_INTERNATIONAL, TON_ALPHANUMERIC, NPI_E164 = 1, 5, 1
REGISTERED_DELIVERY_FINAL = 0x01  # §5.2.17: receipt on final success or failure
# How long a receipt for a message we just sent waits for the outbox to store its id.
DLR_MATCH_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def address_fields(address: str) -> tuple[str, int, int]:
    """(addr, ton, npi): E.164 goes international without its ``+``; letters alphanumeric."""
    if address.startswith("+") and address[1:].isdigit():
        return address[1:], TON_INTERNATIONAL, NPI_E164
    if address and not address.isdigit():
        return address, TON_ALPHANUMERIC, 0
    return address, 0, NPI_E164


class RecentIds:
    """The SMSC ids we were given lately, bounded: a receipt naming one of them may beat
    the outbox's commit of that id, and is worth waiting for a moment."""

    def __init__(self, max_ids: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._max = max_ids

    def add(self, ids: list[str]) -> None:
        for message_id in ids:
            self._ids[message_id] = None
        while len(self._ids) > self._max:
            self._ids.popitem(last=False)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids


class SmppChannel:
    """One SMPP account serving one SMS inbox."""

    def __init__(
        self,
        ingestor: Ingestor,
        inbox_id: int,
        config: SmppConfig,
        *,
        source_addr: str = "",
        spool: PartSpool | None = None,
        dedupe: DedupeWindow | None = None,
        default_region: str = "US",
        request_dlr: bool = True,
    ) -> None:
        self.ingestor = ingestor
        self.inbox_id = inbox_id
        self.source_addr = source_addr
        self.default_region = default_region
        self.request_dlr = request_dlr
        self.reassembler = Reassembler(spool or PartSpool())
        self.dedupe = dedupe or DedupeWindow()
        self.submitted = RecentIds()
        self.client = SmppClient(config, self.on_deliver)
        self._ref = secrets.randbelow(256)
        self._next_expiry = 0.0

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        await self.client.stop()

    # inbound -------------------------------------------------------------------------------
    async def on_deliver(self, message: ShortMessage) -> int:
        if dlr.is_receipt(message.esm_class, message.tlvs):
            return await self._on_receipt(message)
        if time.monotonic() >= self._next_expiry:  # parts whose siblings never came
            self._next_expiry = time.monotonic() + 3600
            self.reassembler.spool.expire()
        try:
            mo = self.reassembler.feed(message)
        except OSError:
            log.exception("could not spool an MO part")
            return Status.RX_T_APPN
        if mo is None:
            return Status.ROK  # a part, safely spooled; the last one brings the rest
        try:
            inbound = self.inbound_message(mo)
        except AddressError as exc:
            # No contact can be made from it (an alphanumeric sender): the SMSC must not
            # retry for ever, so refuse it for good and say so in the log.
            log.warning("MO from %r refused: %s", mo.source, exc)
            self.reassembler.finished(mo)
            return Status.RX_P_APPN
        try:
            await self.ingestor.ingest(inbound)
        except Exception:
            log.exception("MO from %s not committed; asking the SMSC to redeliver", mo.source)
            return Status.RX_T_APPN
        self.reassembler.finished(mo)
        return Status.ROK

    def inbound_message(self, mo: MoText) -> InboundMessage:
        phone = normalize_phone(mo.source, self.default_region)
        return InboundMessage(
            inbox_id=self.inbox_id,
            channel=ChannelKind.SMS,
            sender=Address(AddressKind.PHONE, phone),
            body=mo.text,
            source_id=self.dedupe.source_id(mo),
            problems=mo.problems,
            meta={"sms": {"to": mo.destination, "parts": mo.parts, "via": "smpp"}},
        )

    async def _on_receipt(self, message: ShortMessage) -> int:
        try:
            receipt = dlr.parse(message.payload, message.tlvs)
        except (dlr.NotAReceipt, UnicodeDecodeError) as exc:
            log.warning("unusable delivery receipt: %s", exc)
            return Status.ROK
        if receipt.status is None:
            return Status.ROK
        ours = receipt.message_id in self.submitted
        update = DeliveryUpdate(self.inbox_id, receipt.message_id, receipt.status, receipt.detail)
        try:
            matched = await self.ingestor.update_delivery(update)
            # A receipt can beat the outbox's commit of the id it names: wait a little.
            for delay in DLR_MATCH_DELAYS if ours else ():
                if matched:
                    break
                await asyncio.sleep(delay)
                matched = await self.ingestor.update_delivery(update)
        except Exception:
            log.exception("receipt for %s not committed", receipt.message_id)
            return Status.RX_T_APPN
        if not matched:
            log.info("receipt for unknown message id %s (%s)", receipt.message_id, receipt.state)
        return Status.ROK

    # outbound ------------------------------------------------------------------------------
    def _next_ref(self) -> int:
        self._ref = (self._ref + 1) % 256
        return self._ref

    async def send(self, message: OutboundMessage) -> SendResult:
        if not message.body:
            return SendResult(DeliveryStatus.FAILED, detail="an SMS needs text")
        dest, dest_ton, dest_npi = address_fields(message.to.value)
        if not dest:
            return SendResult(DeliveryStatus.FAILED, detail="the contact has no phone number")
        source, source_ton, source_npi = address_fields(self.source_addr)
        parts = build_parts(message.body, self._next_ref())
        ids: list[str] = []
        for seq, part in enumerate(parts, start=1):
            status, message_id = await self.client.submit(
                ShortMessage(
                    source_addr=source,
                    destination_addr=dest,
                    short_message=part.short_message,
                    source_addr_ton=source_ton,
                    source_addr_npi=source_npi,
                    dest_addr_ton=dest_ton,
                    dest_addr_npi=dest_npi,
                    esm_class=part.esm_class,
                    data_coding=part.data_coding,
                    registered_delivery=REGISTERED_DELIVERY_FINAL if self.request_dlr else 0,
                )
            )
            if status != Status.ROK:
                return SendResult(
                    DeliveryStatus.FAILED,
                    provider_id=ids[0] if ids else None,
                    detail=f"submit_sm_resp 0x{status:08x} for part {seq} of {len(parts)}",
                )
            ids.append(message_id)
        self.submitted.add(ids)
        info = describe(message.body)
        detail = f"{len(ids)} part(s), {info.encoding.value}"
        if message.attachments:
            detail += "; attachments are not sent by SMS"
        return SendResult(
            DeliveryStatus.SENT, provider_id=ids[0], detail=detail, part_ids=tuple(ids)
        )
