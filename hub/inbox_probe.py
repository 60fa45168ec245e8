""" "Test connection" for an inbox: talk to the real service and say exactly what failed.

Each probe opens the same kind of connection the channel adapter would, with the
settings the adapter would run with (the environment overlaid with the inbox's config),
then closes it. The answer is a sentence for the admin: "connection refused on
host:port", "authentication failed: <the server's text>", "TLS certificate not trusted",
"no answer from host:port within N s".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aioimaplib
import aiosmtplib
import httpx

from channels.base import ChannelKind
from channels.email.settings import EmailSettings
from channels.sms.pdu import Command, Pdu, PduReader, Status, bind_transceiver
from channels.sms.settings import SmsSettings
from channels.telegram.settings import TelegramSettings
from hub.inbox_config import overlay


@dataclass(frozen=True, slots=True)
class ProbeResult:
    service: str  # "SMTP", "IMAP", "SMPP", "Telegram", "HTTP SMS"
    ok: bool
    message: str


class ProbeFailed(Exception):
    """A probe's failure, worded for the admin."""


def _network_error(exc: BaseException, host: str, port: int, limit: float) -> str:
    """The common causes, in words, for any client library's connection error."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted on {host}:{port}: {err.verify_message}"
        if isinstance(err, ssl.SSLError):
            return f"TLS failed on {host}:{port}: {err.reason or err}"
        if isinstance(err, ConnectionRefusedError):
            return f"connection refused on {host}:{port}"
        if isinstance(err, TimeoutError | asyncio.TimeoutError):
            return f"no answer from {host}:{port} within {limit:g} s"
        if isinstance(err, OSError) and err.errno is None and "Name or service" in str(err):
            return f"host {host} not found"
        if isinstance(err, OSError) and err.strerror:
            return f"cannot connect to {host}:{port}: {err.strerror}"
    text = str(exc)
    if "refused" in text.lower():
        return f"connection refused on {host}:{port}"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"no answer from {host}:{port} within {limit:g} s"
    return f"{host}:{port}: {text or type(exc).__name__}"


# ----------------------------------------------------------------------- SMTP


async def probe_smtp(s: EmailSettings, limit: float) -> str:
    if not s.relay_host:
        raise ProbeFailed("no SMTP relay host is set")
    host, port = s.relay_host, s.relay_port
    client = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        timeout=limit,
        use_tls=port == 465,  # implicit TLS (RFC 8314)
        start_tls=False,
        tls_context=s.tls_context(),
    )
    try:
        await client.connect()
        await client.ehlo()
        steps = ["EHLO"]
        if s.relay_starttls:
            await client.starttls(tls_context=s.tls_context())
            steps.append("STARTTLS")
        if s.relay_username:
            await client.login(s.relay_username, s.relay_password)
            steps.append(f"login as {s.relay_username}")
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise ProbeFailed(f"authentication failed: {exc.code} {exc.message}") from exc
    except aiosmtplib.SMTPNotSupported as exc:
        raise ProbeFailed(f"{host}:{port} does not offer it: {exc.message}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise ProbeFailed(f"{host}:{port} answered {exc.code} {exc.message}") from exc
    except (OSError, aiosmtplib.SMTPException, TimeoutError) as exc:
        raise ProbeFailed(_network_error(exc, host, port, limit)) from exc
    finally:
        with contextlib.suppress(Exception):
            await client.quit()
    return f"connected to {host}:{port} ({', '.join(steps)})"


# ----------------------------------------------------------------------- IMAP


async def probe_imap(s: EmailSettings, limit: float) -> str:
    if not s.imap_host:
        raise ProbeFailed("no IMAP host is set")
    host, port = s.imap_host, s.imap_port
    client: aioimaplib.IMAP4
    if s.imap_ssl:
        client = aioimaplib.IMAP4_SSL(
            host=host, port=port, timeout=limit, ssl_context=s.tls_context()
        )
    else:
        client = aioimaplib.IMAP4(host=host, port=port, timeout=limit)
    try:
        await asyncio.wait_for(client.wait_hello_from_server(), limit)
        response = await asyncio.wait_for(client.login(s.imap_username, s.imap_password), limit)
        if response.result != "OK":
            text = b" ".join(
                line if isinstance(line, bytes) else str(line).encode() for line in response.lines
            ).decode(errors="replace")
            raise ProbeFailed(f"authentication failed: {text.strip()}")
        response = await asyncio.wait_for(client.select(s.imap_mailbox), limit)
        if response.result != "OK":
            raise ProbeFailed(f"logged in, but the folder {s.imap_mailbox!r} cannot be opened")
    except ProbeFailed:
        raise
    except Exception as exc:
        raise ProbeFailed(_network_error(exc, host, port, limit)) from exc
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), 2)
    return f"logged in to {host}:{port} as {s.imap_username}, folder {s.imap_mailbox}"


# ----------------------------------------------------------------------- SMPP


async def probe_smpp(s: SmsSettings, limit: float) -> str:
    """bind_transceiver, then unbind (SMPP 3.4 §4.1.5, §4.2)."""
    if not s.smpp_host:
        raise ProbeFailed("no SMPP host is set")
    host, port = s.smpp_host, s.smpp_port
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
    except Exception as exc:
        raise ProbeFailed(_network_error(exc, host, port, limit)) from exc
    framer = PduReader()

    async def answer(sequence: int) -> Pdu:
        while True:
            data = await reader.read(4096)
            if not data:
                raise ProbeFailed(f"{host}:{port} closed the connection before answering")
            for pdu in framer.feed(data):
                if pdu.sequence == sequence:
                    return pdu

    try:
        bind = bind_transceiver(1, s.smpp_system_id, s.smpp_password, s.smpp_system_type)
        writer.write(bind.encode())
        await writer.drain()
        resp = await asyncio.wait_for(answer(1), limit)
        if resp.command_status != Status.ROK:
            raise ProbeFailed(
                f"bind refused: {_smpp_status(resp.command_status)} "
                f"(system_id {s.smpp_system_id!r})"
            )
        writer.write(Pdu(Command.UNBIND, 0, 2).encode())
        await writer.drain()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(answer(2), limit)
    except ProbeFailed:
        raise
    except Exception as exc:
        raise ProbeFailed(_network_error(exc, host, port, limit)) from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return f"bound to {host}:{port} as {s.smpp_system_id} and unbound"


_SMPP_STATUS = {0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD", 0x0F: "ESME_RINVSYSID"}


def _smpp_status(code: int) -> str:
    name = _SMPP_STATUS.get(code)
    return f"{name} (0x{code:08x})" if name else f"status 0x{code:08x}"


# ----------------------------------------------------------------------- HTTP (Bot API, SMS)


async def _http_get(url: str, limit: float, **kw: Any) -> httpx.Response:
    parts = httpx.URL(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with httpx.AsyncClient(timeout=limit) as client:
            return await client.get(url, **kw)
    except httpx.TimeoutException as exc:
        raise ProbeFailed(f"no answer from {parts.host}:{port} within {limit:g} s") from exc
    except httpx.HTTPError as exc:
        raise ProbeFailed(_network_error(exc, parts.host, port, limit)) from exc


async def probe_telegram(s: TelegramSettings, limit: float) -> str:
    if not s.token:
        raise ProbeFailed("no bot token is set")
    response = await _http_get(f"{s.base_url}{s.token}/getMe", limit)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 401:
        raise ProbeFailed(f"authentication failed: {body.get('description') or 'Unauthorized'}")
    if response.status_code != 200 or not body.get("ok"):
        raise ProbeFailed(
            f"the Bot API answered {response.status_code}: {body.get('description') or ''}".strip()
        )
    user = body.get("result") or {}
    return f"connected as @{user.get('username', '?')} ({s.api_base_url})"


async def probe_http_sms(s: SmsSettings, limit: float) -> str:
    """GET the account resource: it checks both the base URL and the credentials."""
    if not s.twilio_account_sid:
        raise ProbeFailed("no HTTP account SID is set")
    url = f"{s.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{s.twilio_account_sid}.json"
    response = await _http_get(url, limit, auth=(s.twilio_account_sid, s.twilio_auth_token))
    if response.status_code in (401, 403):
        raise ProbeFailed(f"authentication failed: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise ProbeFailed(f"the provider answered HTTP {response.status_code} for {url}")
    return f"the provider at {s.twilio_base_url} accepted account {s.twilio_account_sid}"


# ----------------------------------------------------------------------- per inbox

Probe = Callable[[], Awaitable[str]]


def probes_for(kind: str, config: Mapping[str, Any], limit: float) -> list[tuple[str, Probe]]:
    """The services an inbox of ``kind`` talks to, each with its probe (maybe none)."""
    if kind == ChannelKind.EMAIL.value:
        email = overlay(EmailSettings.from_env(), config)
        found: list[tuple[str, Probe]] = []
        if email.relay_host:
            found.append(("SMTP", lambda: probe_smtp(email, limit)))
        if email.imap_host:
            found.append(("IMAP", lambda: probe_imap(email, limit)))
        return found
    if kind == ChannelKind.SMS.value:
        sms = overlay(SmsSettings.from_env(), config)
        provider = config.get("provider") or ("http" if sms.twilio_enabled else "smpp")
        if provider == "http":
            return [("HTTP SMS", lambda: probe_http_sms(sms, limit))]
        return [("SMPP", lambda: probe_smpp(sms, limit))]
    if kind == ChannelKind.TELEGRAM.value:
        tg = overlay(TelegramSettings.from_env(), config)
        return [("Telegram", lambda: probe_telegram(tg, limit))]
    return []


async def check_inbox(kind: str, config: Mapping[str, Any], limit: float) -> list[ProbeResult]:
    """Run every probe of the inbox; an empty list means there is nothing to connect to."""
    results = []
    for service, probe in probes_for(kind, config, limit):
        try:
            results.append(ProbeResult(service, True, await probe()))
        except ProbeFailed as exc:
            results.append(ProbeResult(service, False, str(exc)))
    return results
