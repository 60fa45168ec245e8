"""What an admin can set on each kind of inbox, and how a saved value meets the environment.

Each field is a key of ``Inbox.config``. Channel fields are named like the channel's own
settings dataclass (``EmailSettings.relay_host``, ``SmsSettings.smpp_host``,
``TelegramSettings.token``), so the settings a channel runs with are the ``HUB_*``
environment values with the inbox's saved values laid over them: a value saved on the
inbox wins, a field left blank falls back to the environment (the bootstrap).

Secrets are write-only: a page never renders them, a blank field keeps the stored value,
and ``redacted`` is what the audit log keeps (``"(set)"`` in place of the value).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from channels.base import ChannelKind

FieldType = Literal["text", "int", "bool", "lines", "choice", "secret"]
SET = "(set)"
CLEAR_PREFIX = "clear_"


class InboxConfigError(ValueError):
    """A value an admin entered that the channel cannot use; the message names the field."""


@dataclass(frozen=True, slots=True)
class ConfigField:
    key: str
    label: str
    type: FieldType = "text"
    help: str = ""
    choices: tuple[str, ...] = ()
    env: str = ""  # the HUB_* variable that bootstraps it, shown beside the field

    @property
    def secret(self) -> bool:
        return self.type == "secret"


def _f(key: str, label: str, type_: FieldType = "text", env: str = "", **kw: Any) -> ConfigField:
    return ConfigField(key, label, type_, env=env, **kw)


EMAIL_FIELDS = (
    _f("email_addresses", "Addresses this mailbox receives (one per line)", "lines"),
    _f("relay_host", "SMTP relay host", env="HUB_EMAIL_RELAY_HOST"),
    _f("relay_port", "SMTP relay port", "int", env="HUB_EMAIL_RELAY_PORT"),
    _f("relay_starttls", "SMTP STARTTLS", "bool", env="HUB_EMAIL_RELAY_STARTTLS"),
    _f("relay_username", "SMTP user name", env="HUB_EMAIL_RELAY_USERNAME"),
    _f("relay_password", "SMTP password", "secret", env="HUB_EMAIL_RELAY_PASSWORD"),
    _f("imap_host", "IMAP host", env="HUB_EMAIL_IMAP_HOST"),
    _f("imap_port", "IMAP port", "int", env="HUB_EMAIL_IMAP_PORT"),
    _f("imap_ssl", "IMAP over TLS", "bool", env="HUB_EMAIL_IMAP_SSL"),
    _f("imap_username", "IMAP user name", env="HUB_EMAIL_IMAP_USERNAME"),
    _f("imap_password", "IMAP password", "secret", env="HUB_EMAIL_IMAP_PASSWORD"),
    _f("imap_mailbox", "IMAP folder", env="HUB_EMAIL_IMAP_MAILBOX"),
)
SMS_FIELDS = (
    _f("provider", "Provider", "choice", choices=("smpp", "http")),
    _f("source_addr", "Our number or short code", env="HUB_SMS_SOURCE_ADDR"),
    _f("smpp_host", "SMPP host", env="HUB_SMS_SMPP_HOST"),
    _f("smpp_port", "SMPP port", "int", env="HUB_SMS_SMPP_PORT"),
    _f("smpp_system_id", "SMPP system_id", env="HUB_SMS_SMPP_SYSTEM_ID"),
    _f("smpp_password", "SMPP password", "secret", env="HUB_SMS_SMPP_PASSWORD"),
    _f("smpp_system_type", "SMPP system_type", env="HUB_SMS_SMPP_SYSTEM_TYPE"),
    _f("twilio_base_url", "HTTP provider base URL", env="HUB_SMS_TWILIO_BASE_URL"),
    _f("twilio_account_sid", "HTTP account SID", env="HUB_SMS_TWILIO_ACCOUNT_SID"),
    _f("twilio_auth_token", "HTTP auth token", "secret", env="HUB_SMS_TWILIO_AUTH_TOKEN"),
    _f("twilio_from", "HTTP sender number", env="HUB_SMS_TWILIO_FROM"),
)
TELEGRAM_FIELDS = (
    _f("api_base_url", "Bot API base URL", env="HUB_TELEGRAM_API_BASE_URL"),
    _f("token", "Bot token", "secret", env="HUB_TELEGRAM_TOKEN"),
    _f("mode", "Updates by", "choice", choices=("polling", "webhook"), env="HUB_TELEGRAM_MODE"),
    _f("secret_token", "Webhook secret", "secret", env="HUB_TELEGRAM_SECRET_TOKEN"),
    _f("webhook_url", "Webhook URL", env="HUB_TELEGRAM_WEBHOOK_URL"),
)
FIELDS: dict[str, tuple[ConfigField, ...]] = {
    ChannelKind.VOICE.value: (
        _f("dids", "DIDs this inbox answers (one per line, E.164)", "lines"),
    ),
    ChannelKind.EMAIL.value: EMAIL_FIELDS,
    ChannelKind.SMS.value: SMS_FIELDS,
    ChannelKind.TELEGRAM.value: TELEGRAM_FIELDS,
    ChannelKind.FAX.value: (
        _f(
            "fax_numbers",
            "Fax numbers (one per line, E.164; shown to people, the gateway picks the inbox)",
            "lines",
        ),
        _f("email_addresses", "Addresses that take faxes by email (one per line)", "lines"),
    ),
    ChannelKind.WEBCHAT.value: (),  # origins and identity secret: /admin/widgets
}
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-_:\[\]]{1,253}$")


def fields_for(kind: str) -> tuple[ConfigField, ...]:
    return FIELDS.get(kind, ())


def secret_keys(kind: str) -> set[str]:
    return {f.key for f in fields_for(kind) if f.secret}


def _parse(field: ConfigField, raw: str) -> Any:
    """A non-blank form value as the config stores it, or a 422-worthy error."""
    if field.type == "int":
        try:
            value = int(raw)
        except ValueError:
            raise InboxConfigError(f"{field.label}: “{raw}” is not a whole number.") from None
        if not 1 <= value <= 65535 and field.key.endswith("port"):
            raise InboxConfigError(f"{field.label}: {value} is not a port (1–65535).")
        return value
    if field.type == "bool":
        if raw not in ("on", "off"):
            raise InboxConfigError(f"{field.label}: choose on, off or the environment's value.")
        return raw == "on"
    if field.type == "choice":
        if raw not in field.choices:
            raise InboxConfigError(f"{field.label}: choose one of {', '.join(field.choices)}.")
        return raw
    if field.type == "lines":
        items = [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]
        if field.key in ("dids", "fax_numbers"):
            for item in items:
                if not _NUMBER.fullmatch(item.replace(" ", "").replace("-", "")):
                    raise InboxConfigError(f"{field.label}: “{item}” is not a phone number.")
            return [i.replace(" ", "").replace("-", "") for i in items]
        if field.key == "email_addresses":
            for item in items:
                if item.count("@") != 1 or " " in item:
                    raise InboxConfigError(f"{field.label}: “{item}” is not an email address.")
            return [i.lower() for i in items]
        return items
    if len(raw) > 512:
        raise InboxConfigError(f"{field.label} is too long (at most 512 characters).")
    if field.key.endswith("_host") and not _HOST.fullmatch(raw):
        raise InboxConfigError(f"{field.label}: “{raw}” is not a host name or address.")
    if field.key.endswith("_url") and not raw.startswith(("http://", "https://")):
        raise InboxConfigError(f"{field.label}: “{raw}” must start with http:// or https://.")
    return raw


def apply_form(kind: str, old: Mapping[str, Any], form: Mapping[str, Any]) -> dict[str, Any]:
    """The new config: the form's values over the old config.

    Keys the page does not edit (``allowed_origins``, a voice inbox's ``block_prompt``…)
    are kept. A blank field removes the key (the environment applies again), except a
    secret: blank keeps it, and only its "clear" box removes it.
    """
    config = dict(old)
    for field in fields_for(kind):
        raw = str(form.get(field.key) or "").strip()
        if field.secret:
            if str(form.get(CLEAR_PREFIX + field.key) or "") in ("on", "1", "true"):
                config.pop(field.key, None)
            elif raw:
                config[field.key] = raw
            continue
        if raw:
            config[field.key] = _parse(field, raw)
        else:
            config.pop(field.key, None)
    if kind == ChannelKind.VOICE.value:
        # the seed's single "did" becomes part of the list the page edits
        config.pop("did", None)
    return config


def form_values(kind: str, config: Mapping[str, Any]) -> dict[str, str]:
    """What the edit form shows: plain values as text, secrets only as "(set)" or ""."""
    values: dict[str, str] = {}
    for field in fields_for(kind):
        value = config.get(field.key)
        if field.key == "dids":
            value = [config["did"], *(config.get("dids") or [])] if config.get("did") else value
        if value is None:
            values[field.key] = ""
        elif field.secret:
            values[field.key] = SET if value else ""
        elif field.type == "bool":
            values[field.key] = "on" if value else "off"
        elif field.type == "lines":
            values[field.key] = "\n".join(str(v) for v in value)
        else:
            values[field.key] = str(value)
    return values


def redacted(kind: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config with every secret (this kind's and the widget's) replaced by "(set)"."""
    hidden = secret_keys(kind) | {"identity_secret"}
    return {k: (SET if k in hidden and v else v) for k, v in (config or {}).items()}


def overlay(settings: Any, config: Mapping[str, Any]) -> Any:
    """A channel settings dataclass with the inbox's saved values over the environment's."""
    names = {f.name for f in dataclasses.fields(settings)}
    values = {k: v for k, v in config.items() if k in names and v not in (None, "")}
    return dataclasses.replace(settings, **values)
