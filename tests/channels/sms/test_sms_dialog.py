"""The inbox's dialog answers an SMS conversation through a real SMSC (smpp34's server)."""

from __future__ import annotations

import smpp34

from channels.sms.smpp_channel import SmppChannel
from channels.sms.udh import split_udh
from hub.services import Services
from models import Inbox
from tests.channels.sms.conftest import Smsc
from tests.channels.sms.test_smpp_peer import OK, adapter, deliver_mo, inbound  # noqa: F401
from tests.hub.text_dialog_support import (
    account_endpoint,
    assert_billing_path,
    bot_lines,
    handed_over,
    use_demo_dialog,
)


async def submitted_text(smsc: Smsc, ending: str) -> str:
    """The text the SMSC was given, part after part, up to one ending with ``ending``."""
    text = ""
    while not text.endswith(ending):
        _id, event = await smsc.submitted()
        assert event.destination_addr == "15551234567"
        body = split_udh(event.short_message)[1] if event.esm_class & 0x40 else event.short_message
        text += body.decode("utf-16-be") if event.data_coding == 8 else body.decode()
    return text


async def test_the_dialog_answers_by_sms_and_queues_with_what_it_collected(
    services: Services,
    smsc: Smsc,
    adapter: SmppChannel,  # noqa: F811
    sms_inbox: Inbox,
) -> None:
    await use_demo_dialog(services, "sms")
    with account_endpoint() as base:
        services.settings.public_url = base  # the dialog's "/demo/accounts/…" lookup
        await services.start()
        esme: smpp34.Esme = await smsc.esme()
        assert await deliver_mo(esme, "hi") == OK
        (first,) = await inbound(services)
        interaction_id = first.interaction_id
        (greeting,) = await bot_lines(services, interaction_id, 1)
        assert await submitted_text(smsc, "2. Billing") == greeting
        assert await deliver_mo(esme, "2") == OK
        await bot_lines(services, interaction_id, 2)
        assert "account number" in await submitted_text(smsc, "then press hash.")
        assert await deliver_mo(esme, "123456") == OK
        lines = await bot_lines(services, interaction_id, 3)
        interaction, queue = await handed_over(services, interaction_id)
    assert lines[0] == greeting
    assert_billing_path(interaction, queue, lines)
