"""A Twilio-compatible SMS provider: signed form webhooks in, the REST Messages API out.

Signature (Twilio's "Webhooks security"): base64(HMAC-SHA1(auth token, full URL + every
POST parameter name and value, sorted by name)), sent as ``X-Twilio-Signature`` and checked
here with ``hmac.compare_digest``. Outbound: ``POST {base}/2010-04-01/Accounts/{sid}/
Messages.json`` with To/From/Body/StatusCallback, HTTP basic auth (sid, token).
Many SMS APIs copy this shape, so the base URL is a setting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import httpx

from channels.base import (
    Address,
    AddressKind,
    ChannelKind,
    DeliveryStatus,
    DeliveryUpdate,
    InboundAttachment,
    InboundMessage,
    Ingestor,
    OutboundMessage,
    SendResult,
)
from channels.sms.settings import SmsSettings
from hub.contacts import AddressError, normalize_phone

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_MEDIA = 10  # Twilio sends at most 10 MediaUrlN per message
# MessageStatus values (Twilio's message resource) and what they mean here; None: ignore.
STATUS: dict[str, DeliveryStatus | None] = {
    "accepted": DeliveryStatus.SENT,
    "scheduled": DeliveryStatus.SENT,
    "queued": DeliveryStatus.SENT,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    "receiving": None,
    "received": None,
}


# A provider's message id: printable ASCII, no spaces (Twilio's are 34 characters). It is
# the ``source_id`` (300 characters in the database), so anything else can never be stored.
PROVIDER_ID = re.compile(r"[\x21-\x7e]{1,200}")


class BadWebhook(ValueError):
    """A signed request that no retry will make valid: 400 with this reason, never a 500
    (which makes the provider deliver it again and again)."""


def check_ids(form: dict[str, str]) -> None:
    for name in ("MessageSid", "SmsMessageSid", "SmsSid"):
        value = form.get(name)
        if value is not None and not PROVIDER_ID.fullmatch(value):
            raise BadWebhook(f"{name} is not a message id (1-200 printable ASCII characters)")


def media_count(form: dict[str, str]) -> int:
    raw = form.get("NumMedia") or "0"
    if not raw.isascii() or not raw.isdigit():
        raise BadWebhook(f"NumMedia is not a count: {raw[:20]!r}")
    return min(int(raw), MAX_MEDIA)


def sender_number(form: dict[str, str], region: str) -> str:
    raw = form.get("From", "")
    if not raw.strip():
        raise BadWebhook("From is missing")
    if not raw.isprintable():
        raise BadWebhook("From holds control characters")
    try:
        return normalize_phone(raw, region)
    except AddressError as exc:
        raise BadWebhook(f"From: {exc}") from None


def without_nul(form: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """NUL characters replaced (PostgreSQL's text cannot hold them): the rest is kept."""
    if not any("\x00" in v for v in form.values()):
        return form, ()
    cleaned = {k: v.replace("\x00", "\ufffd") for k, v in form.items()}
    return cleaned, ("the provider sent NUL characters; they are shown as \ufffd",)


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """What Twilio puts in ``X-Twilio-Signature`` for a form POST to ``url``."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed (Twilio signs the URL
    as it dialled it, which a proxy may rewrite either way)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is None and default:
        other = parts._replace(netloc=f"{parts.netloc}:{default}")
    elif parts.port == default:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        return [url]
    return [url, urlunsplit(other)] if host else [url]


def valid_signature(
    auth_token: str, url: str, params: list[tuple[str, str]], given: str | None
) -> bool:
    if not given or not auth_token:
        return False
    return any(
        hmac.compare_digest(signature(auth_token, candidate, params).encode(), given.encode())
        for candidate in _port_variants(url)
    )


def delivery_update(inbox_id: int, form: dict[str, str]) -> DeliveryUpdate | None:
    """A status callback as a DeliveryUpdate (None for states that change nothing)."""
    check_ids(form)
    sid = form.get("MessageSid") or form.get("SmsSid")
    raw = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    status = STATUS.get(raw)
    if not sid or status is None:
        return None
    code = form.get("ErrorCode")
    return DeliveryUpdate(inbox_id, sid, status, f"{raw} (error {code})" if code else raw)


class TwilioChannel:
    """One Twilio(-compatible) account serving one SMS inbox."""

    def __init__(
        self,
        ingestor: Ingestor,
        inbox_id: int,
        settings: SmsSettings,
        public_url: str = "",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.inbox_id = inbox_id
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.http = client or httpx.AsyncClient(timeout=15.0)

    async def close(self) -> None:
        await self.http.aclose()

    @property
    def auth_token(self) -> str:
        return self.settings.twilio_auth_token

    def signed_url(self, request_url: str, path_and_query: str) -> str:
        """The URL Twilio signed: our public URL when we sit behind a proxy."""
        return self.public_url + path_and_query if self.public_url else request_url

    # inbound -------------------------------------------------------------------------------
    async def inbound_message(self, form: dict[str, str]) -> InboundMessage:
        """The form as an InboundMessage, media fetched (a failed fetch is a problem, not a
        lost message: the URLs stay in ``meta``). Raises BadWebhook for what can never be
        stored; NUL characters are replaced, with a note."""
        check_ids(form)
        count = media_count(form)
        sender = sender_number(form, self.settings.default_region)
        form, cleaned = without_nul(form)
        problems: list[str] = list(cleaned)
        attachments: list[InboundAttachment] = []
        urls: list[str] = []
        for i in range(count):
            url = form.get(f"MediaUrl{i}")
            if not url:
                continue
            urls.append(url)
            ctype = form.get(f"MediaContentType{i}") or "application/octet-stream"
            try:
                resp = await self.http.get(
                    url,
                    auth=(self.settings.twilio_account_sid, self.auth_token),
                    follow_redirects=True,
                )
                resp.raise_for_status()
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                problems.append(f"media {i} not downloaded ({exc}); see meta.sms.media")
                continue
            ext = ctype.split("/")[-1].split(";")[0]
            attachments.append(InboundAttachment(f"media{i}.{ext}", ctype, resp.content))
        body = form.get("Body", "")
        kind = "text"
        if attachments and not body:
            kind = "image" if attachments[0].content_type.startswith("image/") else "file"
        return InboundMessage(
            inbox_id=self.inbox_id,
            channel=ChannelKind.SMS,
            sender=Address(AddressKind.PHONE, sender),
            body=body,
            source_id=form.get("MessageSid") or form.get("SmsMessageSid") or None,
            content_type=kind,
            attachments=tuple(attachments),
            problems=tuple(problems),
            meta={
                "sms": {
                    "to": form.get("To", ""),
                    "via": "twilio",
                    "segments": form.get("NumSegments"),
                    "media": urls,
                }
            },
        )

    # outbound ------------------------------------------------------------------------------
    def status_callback(self) -> str:
        if self.settings.twilio_status_callback:
            return self.settings.twilio_status_callback
        if self.public_url:
            return f"{self.public_url}/webhooks/sms/twilio/{self.inbox_id}/status"
        return ""

    async def send(self, message: OutboundMessage) -> SendResult:
        s = self.settings
        url = (
            f"{s.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{s.twilio_account_sid}/Messages.json"
        )
        form = {
            "To": message.to.value,
            "From": s.twilio_from or s.source_addr,
            "Body": message.body,
        }
        callback = self.status_callback()
        if callback:
            form["StatusCallback"] = callback
        try:
            resp = await self.http.post(
                url, data=form, auth=(s.twilio_account_sid, s.twilio_auth_token)
            )
        except httpx.HTTPError as exc:
            return SendResult(DeliveryStatus.FAILED, detail=f"provider unreachable: {exc}")
        try:
            payload = resp.json()
        except ValueError:
            payload = {}
        if resp.status_code >= 400 or not payload.get("sid"):
            code = payload.get("code", resp.status_code)
            text = payload.get("message") or resp.text[:200]
            return SendResult(DeliveryStatus.FAILED, detail=f"provider error {code}: {text}")
        detail = f"{payload.get('status', 'queued')}, {payload.get('num_segments', '?')} segment(s)"
        if message.attachments:
            detail += "; attachments are not sent by SMS"
        return SendResult(DeliveryStatus.SENT, provider_id=payload["sid"], detail=detail)
