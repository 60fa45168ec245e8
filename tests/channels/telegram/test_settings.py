"""``HUB_TELEGRAM_*``: what an operator writes in the environment."""

from __future__ import annotations

import pytest

from channels.telegram.settings import TelegramSettings


def test_telegram_settings_from_env() -> None:
    settings = TelegramSettings.from_env(
        {
            "HUB_TELEGRAM_TOKEN": "1:abc",
            "HUB_TELEGRAM_MODE": "webhook",
            "HUB_TELEGRAM_SECRET_TOKEN": "s",
            "HUB_TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/",
        }
    )
    assert settings.base_url == "http://127.0.0.1:8081/bot"
    assert settings.base_file_url == "http://127.0.0.1:8081/file/bot"
    assert not TelegramSettings.from_env({}).enabled


def test_telegram_webhook_mode_needs_a_secret_and_a_known_mode() -> None:
    with pytest.raises(ValueError, match="SECRET_TOKEN"):
        TelegramSettings.from_env({"HUB_TELEGRAM_TOKEN": "1:abc", "HUB_TELEGRAM_MODE": "webhook"})
    with pytest.raises(ValueError, match="webhook or polling"):
        TelegramSettings.from_env({"HUB_TELEGRAM_MODE": "push"})
