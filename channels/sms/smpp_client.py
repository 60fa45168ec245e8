"""An asyncio SMPP 3.4 ESME: bind_transceiver, enquire_link, reconnect with backoff.

The session answers each ``deliver_sm`` (and ``data_sm``, §4.7) with the command_status
the handler returns, and only once it has returned: the handler commits first (SMPP 3.4
§4.6.2; a non-zero status such as ``ESME_RX_T_APPN`` makes the SMSC redeliver). Up to
``window`` deliver_sm are handled at once (§2.7 windowing); the socket is always read, so
responses to our own requests are never stuck behind slow commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from channels.sms.pdu import (
    Command,
    Pdu,
    PduError,
    PduReader,
    ShortMessage,
    Status,
    bind_transceiver,
    generic_nack,
    response,
    response_message_id,
    submit_sm,
)

log = logging.getLogger(__name__)

DeliverHandler = Callable[[ShortMessage], Awaitable[int]]


class BindFailed(ConnectionError):
    """The SMSC refused our bind (wrong credentials, too many binds…)."""


class NotBound(ConnectionError):
    """No session with the SMSC is up to carry a submit_sm."""


@dataclass(frozen=True, slots=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    enquire_link_seconds: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 10.0
    reconnect_min_seconds: float = 0.5
    reconnect_max_seconds: float = 60.0
    window: int = 10


def backoff_delay(attempt: int, low: float, high: float) -> float:
    """Exponential backoff: ``low`` × 2^attempt, capped at ``high``."""
    return min(high, low * (2 ** min(attempt, 30)))


class SmppClient:
    def __init__(self, config: SmppConfig, on_deliver: DeliverHandler) -> None:
        self.config = config
        self._on_deliver = on_deliver
        self._sequence = 0
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._bound = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.binds = 0  # successful binds so far (a reconnect adds one)
        self.last_error: str | None = None

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    def _next_sequence(self) -> int:
        # §3.2: sequence numbers run 0x00000001..0x7FFFFFFF and then wrap.
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="smpp-client")

    async def wait_bound(self) -> None:
        await self._bound.wait()

    async def stop(self) -> None:
        """Unbind politely (§4.2), then close; in-flight handlers are cancelled."""
        self._stopping = True
        if self.bound:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._request(Pdu(Command.UNBIND, 0, 0)), 2.0)
        if self._writer is not None:
            self._writer.close()
        for task in [self._task, *self._handlers]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._task, *self._handlers] if t), return_exceptions=True
        )

    async def submit(self, message: ShortMessage, wait_bound: float = 10.0) -> tuple[int, str]:
        """Send one submit_sm; returns (command_status, the SMSC's message_id)."""
        try:
            await asyncio.wait_for(self._bound.wait(), wait_bound)
        except TimeoutError as exc:
            raise NotBound(self.last_error or "not bound to the SMSC") from exc
        resp = await self._request(submit_sm(0, message))
        return resp.command_status, response_message_id(resp)

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            binds_before = self.binds
            try:
                await self._session()
            except (OSError, PduError, TimeoutError, EOFError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not self._stopping:
                    log.warning("SMPP session to %s:%s ended: %s", *self._peer, self.last_error)
            except Exception as exc:  # a bug must cost a reconnect, not the adapter
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("SMPP session to %s:%s failed", *self._peer)
            if self._stopping:
                return
            attempt = 0 if self.binds > binds_before else attempt + 1
            c = self.config
            await asyncio.sleep(
                backoff_delay(attempt, c.reconnect_min_seconds, c.reconnect_max_seconds)
            )

    @property
    def _peer(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    async def _session(self) -> None:
        c = self.config
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(c.host, c.port), c.connect_timeout
        )
        self._writer = writer
        window = asyncio.Semaphore(c.window)
        reading = asyncio.create_task(self._read_loop(reader, window), name="smpp-read")
        keepalive: asyncio.Task[None] | None = None
        try:
            bind = bind_transceiver(0, c.system_id, c.password, c.system_type)
            resp = await self._request(bind)
            if resp.command_status != Status.ROK:
                raise BindFailed(f"bind_transceiver refused: 0x{resp.command_status:08x}")
            self.binds += 1
            self.last_error = None
            self._bound.set()
            log.info("SMPP bound to %s:%s as %s", c.host, c.port, c.system_id)
            keepalive = asyncio.create_task(self._keepalive(), name="smpp-enquire-link")
            done, _ = await asyncio.wait({reading, keepalive}, return_when="FIRST_COMPLETED")
            for task in done:
                task.result()  # raise what ended the session
        finally:
            self._bound.clear()
            for task in (reading, keepalive):
                if task is not None:
                    task.cancel()
            await asyncio.gather(
                *(t for t in (reading, keepalive) if t is not None), return_exceptions=True
            )
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("SMPP session closed"))
            self._pending.clear()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._writer = None

    async def _keepalive(self) -> None:
        """enquire_link every interval (§4.11); no answer in time ends the session."""
        while True:
            await asyncio.sleep(self.config.enquire_link_seconds)
            await self._request(Pdu(Command.ENQUIRE_LINK, 0, 0))

    async def _request(self, pdu: Pdu) -> Pdu:
        sequence = self._next_sequence()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        try:
            await self._write(Pdu(pdu.command_id, 0, sequence, pdu.body))
            return await asyncio.wait_for(future, self.config.response_timeout)
        finally:
            self._pending.pop(sequence, None)

    async def _write(self, pdu: Pdu) -> None:
        writer = self._writer
        if writer is None:
            raise NotBound("no connection to the SMSC")
        async with self._write_lock:
            writer.write(pdu.encode())
            await writer.drain()

    async def _read_loop(self, reader: asyncio.StreamReader, window: asyncio.Semaphore) -> None:
        framer = PduReader()
        while True:
            data = await reader.read(65536)
            if not data:
                raise EOFError("the SMSC closed the connection")
            for pdu in framer.feed(data):
                if pdu.is_response:
                    future = self._pending.get(pdu.sequence)
                    if future is not None and not future.done():
                        future.set_result(pdu)
                elif pdu.command_id in (Command.DELIVER_SM, Command.DATA_SM):
                    # The reader never waits for handlers, so enquire_link and submit_sm
                    # responses are read while commits are slow; the SMSC's own window
                    # bounds how many deliver_sm can be waiting here.
                    task = asyncio.create_task(self._handle_deliver(pdu, window))
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)
                elif pdu.command_id == Command.ENQUIRE_LINK:
                    await self._write(response(pdu))
                elif pdu.command_id == Command.UNBIND:
                    await self._write(response(pdu))
                    raise EOFError("the SMSC unbound")
                else:
                    await self._write(generic_nack(pdu.sequence, Status.RINVCMDID))

    async def _handle_deliver(self, pdu: Pdu, window: asyncio.Semaphore) -> None:
        await window.acquire()
        try:
            try:
                if pdu.command_id == Command.DATA_SM:
                    message = ShortMessage.decode_data_sm(pdu.body)
                else:
                    message = ShortMessage.decode_body(pdu.body)
            except PduError as exc:
                log.warning("malformed deliver_sm %s: %s", pdu.sequence, exc)
                await self._write(generic_nack(pdu.sequence, Status.RINVCMDLEN))
                return
            try:
                status = await self._on_deliver(message)
            except Exception:  # the handler's bug must not end the session or lose the MO
                log.exception("deliver_sm handler failed")
                status = Status.RX_T_APPN
            await self._write(response(pdu, status))
        except (OSError, NotBound) as exc:
            log.warning("deliver_sm_resp %s not sent: %s", pdu.sequence, exc)
        finally:
            window.release()
