"""Telegram: python-telegram-bot in webhook mode (a Litestar route) and long-polling mode."""
