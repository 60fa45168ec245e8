"""``HUB_SMS_*``: what an operator writes in the environment."""

from __future__ import annotations

from channels.sms.settings import SmsSettings


def test_sms_settings_from_env() -> None:
    settings = SmsSettings.from_env(
        {
            "HUB_SMS_SMPP_HOST": "smsc.example.net",
            "HUB_SMS_SMPP_PORT": "2776",
            "HUB_SMS_SMPP_ENQUIRE_LINK_SECONDS": "15.5",
            "HUB_SMS_SMPP_REQUEST_DLR": "no",
            "HUB_SMS_DEFAULT_REGION": "DE",
        }
    )
    assert settings.smpp_enabled and not settings.twilio_enabled
    assert (settings.smpp_port, settings.smpp_enquire_link_seconds) == (2776, 15.5)
    assert settings.smpp_request_dlr is False
    assert settings.default_region == "DE"
    assert not SmsSettings.from_env({}).smpp_enabled
