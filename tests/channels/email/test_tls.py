"""TLS to the mail servers the hub connects to, certificates always verified: IMAPS to a
real dovecot and STARTTLS to a real aiosmtpd relay, both signed by an in-house CA named in
``HUB_EMAIL_CA_FILE``. A server that CA did not sign is refused, and nothing is lost."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import pytest
import trustme

from channels.base import DeliveryStatus
from channels.email.runtime import start_email
from channels.email.sender import SmtpSender
from hub.channel_runtime import stop_channels
from hub.services import Services
from tests.channels.email.conftest import Sink, email_settings, serving
from tests.channels.email.dovecot import Dovecot
from tests.channels.email.helpers import customer_mail, eventually, messages_with


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path  # what an admin puts in HUB_EMAIL_CA_FILE
    chain: Path  # the server's certificate chain (PEM)
    key: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA(organization_name="Example in-house CA")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = Pki(ca, tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem")
    ca.cert_pem.write_to_path(str(paths.ca_file))
    paths.chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(paths.key))
    return paths


@pytest.fixture
async def imaps(pki: Pki) -> AsyncIterator[Dovecot]:
    server = Dovecot(tls=(pki.chain, pki.key))
    await server.start()
    try:
        client = aioimaplib.IMAP4_SSL(
            host="127.0.0.1",
            port=server.port,
            timeout=30,
            ssl_context=ssl.create_default_context(cafile=str(pki.ca_file)),
        )
        await client.wait_hello_from_server()
        assert (await client.login("support", server.password)).result == "OK"
        mail = customer_mail("Over TLS", "sent over IMAPS", message_id="<tls1@customer.test>")
        assert (await client.append(mail.as_bytes(), mailbox="INBOX")).result == "OK"
        await client.logout()
        yield server
    finally:
        server.stop()


async def test_imaps_with_the_in_house_ca_fetches_mail(
    services: Services, sink: Sink, imaps: Dovecot, pki: Pki
):
    settings = email_settings(
        sink.port,
        listen=False,
        imap_host="127.0.0.1",
        imap_port=imaps.port,
        imap_ssl=True,
        ca_file=str(pki.ca_file),
        imap_username="support",
        imap_password=imaps.password,
    )
    await start_email(services, settings)
    try:

        async def stored() -> bool:
            return bool(await messages_with(services, "<tls1@customer.test>"))

        await eventually(stored, "the message fetched over IMAPS is committed")
    finally:
        await services.outbox.close()
        await stop_channels(services)


async def test_imaps_refuses_a_server_its_trust_store_does_not_vouch_for(
    services: Services, sink: Sink, imaps: Dovecot, caplog: pytest.LogCaptureFixture
):
    settings = email_settings(
        sink.port,
        listen=False,
        imap_host="127.0.0.1",
        imap_port=imaps.port,
        imap_ssl=True,  # no ca_file: the system's trust store, which knows nothing of our CA
        imap_username="support",
        imap_password=imaps.password,
    )
    caplog.set_level(logging.WARNING, logger="channels.email.imap_poller")
    await start_email(services, settings)
    try:

        async def refused() -> bool:
            return "CERTIFICATE_VERIFY_FAILED" in caplog.text

        await eventually(refused, "the poller reports the unverifiable certificate")
        assert "reconnecting" in caplog.text  # and keeps trying, with backoff
        assert await messages_with(services, "<tls1@customer.test>") == []
    finally:
        await services.outbox.close()
        await stop_channels(services)


@pytest.fixture
async def starttls_relay(pki: Pki) -> AsyncIterator[Sink]:
    """A relay that refuses mail until the client has started TLS (RFC 3207 §4)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.chain, pki.key)
    async with serving(tls_context=context, require_starttls=True) as box:
        yield box


def reply() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "support@example.com"
    message["To"] = "jane@customer.test"
    message["Subject"] = "Re: your order"
    message["Message-ID"] = "<r1@hub.test>"
    message.set_content("It ships today.")
    return message


async def test_replies_go_to_the_relay_over_starttls_with_the_in_house_ca(
    services: Services, starttls_relay: Sink, pki: Pki
):
    settings = email_settings(starttls_relay.port, relay_starttls=True, ca_file=str(pki.ca_file))
    result = await SmtpSender(settings, services.sessionmaker).deliver(reply(), "<r1@hub.test>")
    assert result.status is DeliveryStatus.SENT, result.detail
    [received] = await starttls_relay.wait_for(1)
    assert received["Subject"] == "Re: your order"


async def test_a_relay_with_an_unverifiable_certificate_gets_nothing(
    services: Services, starttls_relay: Sink
):
    settings = email_settings(starttls_relay.port, relay_starttls=True, send_attempts=2)
    result = await SmtpSender(settings, services.sessionmaker).deliver(reply(), "<r1@hub.test>")
    assert result.status is DeliveryStatus.FAILED
    assert "gave up after 2 attempts" in result.detail
    assert "certificate verify failed" in result.detail.lower()
    assert starttls_relay.received == []
