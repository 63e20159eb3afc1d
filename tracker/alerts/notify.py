"""Alert delivery: email over SMTP, Slack incoming webhooks and generic JSON webhooks.

A channel is written `email:ADDRESS`, `slack:URL` or `webhook:URL`. Webhook URLs carry their
own secret (Slack's path is the credential), so they are never logged or shown whole: use
`mask_channel` for anything a person or a log may see. Each send either returns or raises
`DeliveryError` with a message that is safe to store and show; retrying is the caller's job
(the alert checker retries failed deliveries on its next run).
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlparse

import requests

from tracker.core.config import Settings
from tracker.core.crypto import CredentialCipher
from tracker.core.errors import CredentialError, InvalidInput, TrackerError

log = logging.getLogger(__name__)

CHANNEL_TYPES = ("email", "slack", "webhook")
EMAIL_RE = re.compile(r"^[^@\s:]+@[^@\s]+\.[^@\s]+$")
DEFAULT_HTTP_TIMEOUT = 10.0


class DeliveryError(TrackerError):
    """A notification could not be delivered; the message never holds a secret."""


@dataclass(frozen=True)
class Channel:
    """A parsed channel: type is email, slack or webhook; target the address or URL."""

    type: str
    target: str

    def __str__(self) -> str:
        return f"{self.type}:{self.target}"

    @property
    def masked(self) -> str:
        """Printable form: addresses whole, URLs as scheme://host/…last4."""
        if self.type == "email":
            return str(self)
        return f"{self.type}:{self.masked_target}"

    @property
    def masked_target(self) -> str:
        return f"{_origin(self.target)}/…{self.target[-4:]}"

    @property
    def key(self) -> str:
        """A stable id for per-channel delivery records that does not reveal the URL."""
        return f"{self.type}:{hashlib.sha256(str(self).encode()).hexdigest()[:12]}"


def parse_channel(raw: str) -> Channel:
    """Parse and validate 'email:ADDRESS', 'slack:URL' or 'webhook:URL'."""
    kind, sep, target = str(raw).strip().partition(":")
    kind, target = kind.strip().lower(), target.strip()
    if not sep or kind not in CHANNEL_TYPES or not target:
        raise InvalidInput(
            "a channel must be email:ADDRESS, slack:URL or webhook:URL "
            f"(got {mask_raw(str(raw))!r})"
        )
    if kind == "email":
        if not EMAIL_RE.match(target):
            raise InvalidInput(f"{target!r} is not an email address")
        return Channel(kind, target)
    parsed = urlparse(target)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidInput(f"the {kind} channel needs an http(s) URL, e.g. {kind}:https://…")
    return Channel(kind, target)


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, without any user name or password it carries."""
    parsed = urlparse(url.strip())
    try:
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        port = ""
    return f"{parsed.scheme}://{parsed.hostname or ''}{port}"


def mask_raw(raw: str) -> str:
    """Mask a channel string that may not even parse (for error messages)."""
    kind, _sep, target = raw.partition(":")
    if kind.strip().lower() == "email" or "://" not in target:
        return raw if len(raw) <= 8 else raw[:6] + "…"
    return f"{kind}:{_origin(target)}/…"


# A Slack or webhook URL is a credential (whoever has it can post), so it is stored like a
# provider key: "slack:sealed:<ciphertext>:<masked URL>". The masked URL lets lists show it
# without the key; only delivery decrypts. Email addresses are stored as they are.
SEALED = "sealed:"


def seal(channel: Channel, cipher: CredentialCipher) -> str:
    """The stored form of a channel: URLs encrypted, addresses plain."""
    if channel.type == "email":
        return str(channel)
    return f"{channel.type}:{SEALED}{cipher.encrypt(channel.target)}:{channel.masked_target}"


def is_sealed(raw: str) -> bool:
    return raw.partition(":")[2].startswith(SEALED)


def open_channel(raw: str, cipher: CredentialCipher | None) -> Channel:
    """A stored channel ready to send to (decrypted); plain entries of old rules parse as is."""
    if not is_sealed(raw):
        return parse_channel(raw)
    if cipher is None:
        raise InvalidInput("this channel is encrypted; the encryption key is needed to use it")
    kind, _, rest = raw.partition(":")
    token = rest[len(SEALED) :].partition(":")[0]
    try:
        return Channel(kind, cipher.decrypt(token).reveal())
    except CredentialError as exc:
        raise InvalidInput(f"the {kind} channel cannot be read: {exc}") from None


def reseal(raw: str, cipher: CredentialCipher) -> str:
    """A stored channel under the current key: a plain URL of an older rule gets sealed, a
    sealed one under a previous key is re-encrypted; anything else is returned unchanged."""
    if is_sealed(raw):
        kind, _, rest = raw.partition(":")
        token, _, masked = rest[len(SEALED) :].partition(":")
        try:
            if not cipher.needs_rotation(token):
                return raw
            return f"{kind}:{SEALED}{cipher.rotate(token)}:{masked}"
        except CredentialError as exc:
            # Unreadable with every key we hold: leave it; its delivery will say so.
            log.warning("an alert channel (%s:%s) cannot be re-encrypted: %s", kind, masked, exc)
            return raw
    try:
        channel = parse_channel(raw)
    except InvalidInput:
        return raw
    return seal(channel, cipher)


def mask_channel(raw: str) -> str:
    """The printable form of a stored channel string (never decrypts)."""
    if is_sealed(raw):
        kind, _, rest = raw.partition(":")
        return f"{kind}:{rest[len(SEALED) :].partition(':')[2]}"
    try:
        return parse_channel(raw).masked
    except InvalidInput:
        return mask_raw(raw)


@dataclass(frozen=True)
class Notification:
    """What to say: a subject line, a plain-text body and structured fields for webhooks."""

    subject: str
    body: str
    fields: dict[str, Any]


def send_email(settings: Settings, to: str, note: Notification) -> None:
    """Send one plain-text email through the configured SMTP server."""
    if not settings.smtp_host:
        raise DeliveryError("SMTP_HOST is not set; configure SMTP_* to send email alerts")
    sender = settings.smtp_from or settings.smtp_username
    if not sender:
        raise DeliveryError("SMTP_FROM is not set; configure the sender address")
    message = EmailMessage()
    message["Subject"] = note.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="ai-cost-tracker")
    message.set_content(note.body)
    timeout = settings.smtp_timeout_seconds
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if settings.smtp_security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise DeliveryError(
            "the SMTP server rejected the login; check SMTP_USERNAME and SMTP_PASSWORD"
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError(
            "the SMTP server does not offer STARTTLS; set SMTP_SECURITY=ssl or none"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        # str(exc) of smtplib errors holds the server's reply, never our password.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeliveryError(
            f"email to {to} via {settings.smtp_host}:{settings.smtp_port} failed: {reason}"
        ) from None


def post_json(
    http: requests.Session, channel: Channel, payload: dict[str, Any], *, timeout: float
) -> None:
    """POST a JSON payload; any non-2xx answer or network error raises DeliveryError."""
    try:
        response = http.post(channel.target, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        raise DeliveryError(
            f"{channel.masked} could not be reached ({type(exc).__name__})"
        ) from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"{channel.masked} answered HTTP {response.status_code}")


def slack_payload(note: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message: a bold subject line and the body."""
    return {"text": f"*{note.subject}*\n{note.body}"}


def webhook_payload(note: Notification) -> dict[str, Any]:
    """The generic webhook's JSON document: subject, text and the alert's fields."""
    return {"subject": note.subject, "text": note.body, **note.fields}


def deliver(
    channel: Channel,
    note: Notification,
    *,
    settings: Settings,
    http: requests.Session,
    timeout: float = DEFAULT_HTTP_TIMEOUT,
) -> None:
    """Send one notification to one channel; raise DeliveryError when it did not go out."""
    log.debug("delivering %r to %s", note.subject, channel.masked)
    if channel.type == "email":
        send_email(settings, channel.target, note)
    elif channel.type == "slack":
        post_json(http, channel, slack_payload(note), timeout=timeout)
    else:
        post_json(http, channel, webhook_payload(note), timeout=timeout)
