"""Alert delivery against a real SMTP server and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.fakes.smtp_server import free_port, smtp_server
from tests.fakes.webhook_server import WebhookServer
from tracker.alerts import notify
from tracker.alerts.notify import DeliveryError, Notification, deliver, mask_channel, parse_channel
from tracker.core.config import Settings, load_settings
from tracker.core.crypto import CredentialCipher
from tracker.core.errors import InvalidInput

NOTE = Notification("Budget 75 % reached", "You spent $750.00 of $1,000.00.", {"kind": "budget"})
SECRET_URL_PATH = "/services/T000/B000/SuperSecretToken1234"


def make_settings(tmp_path: Path, **smtp: object) -> Settings:
    base = load_settings(
        {
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATA_DIR": str(tmp_path / "data"),
        },
        dotenv_path=None,
    )
    return dataclasses.replace(base, **smtp)  # type: ignore[arg-type]


def test_email_reaches_a_real_smtp_server(tmp_path):
    with smtp_server() as inbox:
        settings = make_settings(
            tmp_path,
            smtp_host=inbox.host,
            smtp_port=inbox.port,
            smtp_security="none",
            smtp_from="tracker@example.org",
            smtp_timeout_seconds=5.0,
        )
        deliver(parse_channel("email:finance@example.org"), NOTE, settings=settings, http=None)  # type: ignore[arg-type]
    assert len(inbox.messages) == 1
    received = inbox.messages[0]
    assert received.rcpt_tos == ["finance@example.org"]
    assert received.message["Subject"] == NOTE.subject
    assert received.message["From"] == "tracker@example.org"
    assert "$750.00 of $1,000.00" in received.message.get_payload()


def test_starttls_against_a_server_without_it_says_what_to_change(tmp_path):
    with smtp_server() as inbox:
        settings = make_settings(
            tmp_path, smtp_host=inbox.host, smtp_port=inbox.port, smtp_from="t@example.org"
        )
        with pytest.raises(DeliveryError, match="SMTP_SECURITY"):
            deliver(parse_channel("email:a@example.org"), NOTE, settings=settings, http=None)  # type: ignore[arg-type]
    assert inbox.messages == []


def test_email_without_smtp_settings_fails_clearly(tmp_path):
    with pytest.raises(DeliveryError, match="SMTP_HOST"):
        deliver(
            parse_channel("email:a@example.org"), NOTE, settings=make_settings(tmp_path), http=None
        )  # type: ignore[arg-type]


def test_unreachable_smtp_server_is_a_delivery_error(tmp_path):
    settings = make_settings(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_security="none",
        smtp_from="t@example.org",
        smtp_timeout_seconds=2.0,
    )
    with pytest.raises(DeliveryError, match="failed"):
        deliver(parse_channel("email:a@example.org"), NOTE, settings=settings, http=None)  # type: ignore[arg-type]


def test_slack_and_webhook_payloads(tmp_path):
    server = WebhookServer().start()
    try:
        http = requests.Session()
        settings = make_settings(tmp_path)
        deliver(parse_channel("slack:" + server.url("/slack")), NOTE, settings=settings, http=http)
        deliver(parse_channel("webhook:" + server.url("/hook")), NOTE, settings=settings, http=http)
    finally:
        server.stop()
    slack, hook = server.posts
    assert slack.path == "/slack" and slack.content_type == "application/json"
    assert slack.body == {"text": f"*{NOTE.subject}*\n{NOTE.body}"}
    assert hook.body == {"subject": NOTE.subject, "text": NOTE.body, "kind": "budget"}


def test_http_errors_and_refusals_never_reveal_the_url(tmp_path):
    server = WebhookServer(fail_next=1).start()
    url = server.url(SECRET_URL_PATH)
    settings = make_settings(tmp_path)
    try:
        with pytest.raises(DeliveryError, match="HTTP 503") as refused:
            deliver(parse_channel("slack:" + url), NOTE, settings=settings, http=requests.Session())
    finally:
        server.stop()
    with pytest.raises(DeliveryError, match="could not be reached") as down:
        deliver(parse_channel("webhook:" + url), NOTE, settings=settings, http=requests.Session())
    for exc in (refused.value, down.value):
        assert "SuperSecretToken" not in str(exc)
        assert "…1234" in str(exc)


@pytest.mark.parametrize(
    "raw",
    ["sms:+123", "email:not-an-address", "slack:ftp://x/y", "webhook:", "nothing", "slack:hooks"],
)
def test_bad_channels_are_refused(raw):
    with pytest.raises(InvalidInput):
        parse_channel(raw)


def test_mask_channel_hides_webhook_paths():
    assert mask_channel("email:a@b.co") == "email:a@b.co"
    masked = mask_channel("slack:https://hooks.slack.com" + SECRET_URL_PATH)
    assert masked == "slack:https://hooks.slack.com/…1234"


def test_webhook_urls_are_sealed_masked_and_resealed_on_rotation():
    old = CredentialCipher(b"o" * 32)
    url = "https://hooks.slack.com/services/T0/B0/very-secret-abcd"
    sealed = notify.seal(notify.parse_channel(f"slack:{url}"), old)
    assert "very-secret" not in sealed and notify.is_sealed(sealed)
    assert notify.mask_channel(sealed) == "slack:https://hooks.slack.com/…abcd"
    assert notify.open_channel(sealed, old).target == url
    assert notify.seal(notify.parse_channel("email:a@b.co"), old) == "email:a@b.co"
    new = CredentialCipher(b"n" * 32, b"o" * 32)
    rotated = notify.reseal(sealed, new)
    assert (
        rotated != sealed
        and notify.open_channel(rotated, CredentialCipher(b"n" * 32)).target == url
    )
    legacy = notify.reseal(f"webhook:{url}", new)  # a rule saved before sealing
    assert notify.is_sealed(legacy) and notify.open_channel(legacy, new).target == url
    with pytest.raises(InvalidInput, match="cannot be read"):
        notify.open_channel(sealed, CredentialCipher(b"x" * 32))


def test_a_webhook_password_never_reaches_the_masked_form():
    raw = "webhook:https://bot:hunter2@hooks.example.com:8443/path/abcd"
    assert mask_channel(raw) == "webhook:https://hooks.example.com:8443/…abcd"
    sealed = notify.seal(notify.parse_channel(raw), CredentialCipher(b"o" * 32))
    assert "hunter2" not in sealed and "bot" not in sealed.split(":sealed:")[0]
    assert notify.mask_raw("webhook:https://bot:hunter2@h.example.com/x y") == (
        "webhook:https://h.example.com/…"
    )
