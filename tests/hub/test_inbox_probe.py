""" "Test connection" against real local services: aiosmtpd (plain, AUTH, STARTTLS with an
untrusted certificate), dovecot IMAP, smpp34's SMSC and the Bot API stand-in; each failure
says what failed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from channels.email.settings import EmailSettings
from channels.sms.settings import SmsSettings
from channels.telegram.settings import TelegramSettings
from hub.inbox_probe import (
    ProbeFailed,
    check_inbox,
    probe_http_sms,
    probe_imap,
    probe_smpp,
    probe_smtp,
    probe_telegram,
)
from tests.channels.email.dovecot import Dovecot
from tests.channels.sms.conftest import Smsc, smsc  # noqa: F401
from tests.channels.telegram.botapi import LocalBotApi

TOKEN = "7000000001:AAtest-token"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Sink:
    async def handle_DATA(self, *_args: object) -> str:
        return "250 OK"


def _authenticator(_server, _session, _envelope, mechanism: str, data: object) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"hub", b"right")
    return AuthResult(success=ok, handled=False)


@contextlib.asynccontextmanager
async def smtp_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            _Sink(),
            hostname="relay.test",
            authenticator=_authenticator,
            auth_require_tls=False,
            tls_context=tls,
            require_starttls=False,
        ),
        "127.0.0.1",
        0,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_smtp_login_succeeds_and_failures_are_named() -> None:
    async with smtp_server() as port:
        good = EmailSettings(
            relay_host="127.0.0.1", relay_port=port, relay_username="hub", relay_password="right"
        )
        assert "login as hub" in await probe_smtp(good, 5)
        bad = EmailSettings(
            relay_host="127.0.0.1", relay_port=port, relay_username="hub", relay_password="wrong"
        )
        with pytest.raises(ProbeFailed, match=r"authentication failed: 535"):
            await probe_smtp(bad, 5)
    port = closed_port()
    with pytest.raises(ProbeFailed, match=f"connection refused on 127.0.0.1:{port}"):
        await probe_smtp(EmailSettings(relay_host="127.0.0.1", relay_port=port), 5)


async def test_smtp_starttls_with_an_untrusted_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    async with smtp_server(server_tls) as port:
        untrusted = EmailSettings(relay_host="127.0.0.1", relay_port=port, relay_starttls=True)
        with pytest.raises(ProbeFailed, match="TLS certificate not trusted"):
            await probe_smtp(untrusted, 5)
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        trusted = EmailSettings(
            relay_host="127.0.0.1",
            relay_port=port,
            relay_starttls=True,
            ca_file=str(tmp_path / "ca.pem"),
        )
        assert "STARTTLS" in await probe_smtp(trusted, 5)


async def test_smpp_bind_unbind_refused_and_silent(smsc: Smsc) -> None:  # noqa: F811
    settings = SmsSettings(
        smpp_host="127.0.0.1", smpp_port=smsc.port, smpp_system_id="hub", smpp_password="pw"
    )
    assert "bound to" in await probe_smpp(settings, 5)
    assert (await smsc.esme()).system_id == "hub"
    port = closed_port()
    with pytest.raises(ProbeFailed, match=f"connection refused on 127.0.0.1:{port}"):
        await probe_smpp(SmsSettings(smpp_host="127.0.0.1", smpp_port=port), 5)
    # a peer that accepts and never answers the bind
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        quiet = SmsSettings(smpp_host="127.0.0.1", smpp_port=silent.sockets[0].getsockname()[1])
        with pytest.raises(ProbeFailed, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.5 s"):
            await probe_smpp(quiet, 0.5)
    finally:
        silent.close()


async def test_telegram_get_me_and_a_wrong_token() -> None:
    api = LocalBotApi(TOKEN).start()
    try:
        good = TelegramSettings(token=TOKEN, api_base_url=api.url)
        assert "@hub_test_bot" in await probe_telegram(good, 5)
        bad = TelegramSettings(token="1:wrong", api_base_url=api.url)
        with pytest.raises(ProbeFailed, match="authentication failed: Unauthorized"):
            await probe_telegram(bad, 5)
    finally:
        api.stop()


async def test_imap_login_and_a_wrong_password() -> None:
    server = Dovecot(password="secret")
    await server.start()
    try:
        base = dict(
            imap_host="127.0.0.1", imap_port=server.port, imap_ssl=False, imap_username="hub"
        )
        assert "logged in" in await probe_imap(EmailSettings(**base, imap_password="secret"), 5)
        with pytest.raises(ProbeFailed, match="authentication failed"):
            await probe_imap(EmailSettings(**base, imap_password="nope"), 5)
    finally:
        server.stop()


async def test_an_inbox_config_is_laid_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The saved config wins; a setting it lacks comes from HUB_* (here the SMTP port)."""
    async with smtp_server() as port:
        monkeypatch.setenv("HUB_EMAIL_RELAY_PORT", str(port))
        monkeypatch.setenv("HUB_EMAIL_RELAY_HOST", "relay.invalid")
        results = await check_inbox("email", {"relay_host": "127.0.0.1"}, 5)
    assert [(r.service, r.ok) for r in results] == [("SMTP", True)]
    assert f"127.0.0.1:{port}" in results[0].message


async def test_http_sms_account_and_wrong_credentials() -> None:
    from tests.channels.sms.twilio_api import LocalTwilio

    sid, token = "AC0123456789abcdef0123456789abcdef", "f00dfeedf00dfeedf00dfeedf00dfeed"
    api = LocalTwilio(sid, token).start()
    try:
        good = SmsSettings(twilio_base_url=api.url, twilio_account_sid=sid, twilio_auth_token=token)
        assert f"accepted account {sid}" in await probe_http_sms(good, 5)
        bad = SmsSettings(twilio_base_url=api.url, twilio_account_sid=sid, twilio_auth_token="x")
        with pytest.raises(ProbeFailed, match="authentication failed: HTTP 401"):
            await probe_http_sms(bad, 5)
    finally:
        api.stop()
