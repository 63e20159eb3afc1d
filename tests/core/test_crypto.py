"""Credential encryption: AES-256-GCM, key ids, rotation, clear errors, no leaks."""

from __future__ import annotations

import pytest

from tracker.core.crypto import CredentialCipher, Secret, key_id
from tracker.core.errors import CredentialError

OLD, NEW = b"o" * 32, b"n" * 32
PLAINTEXT = "sk-admin-0123456789abcdefWXYZ"


def test_round_trip_with_random_nonce():
    cipher = CredentialCipher(NEW)
    a, b = cipher.encrypt(PLAINTEXT), cipher.encrypt(PLAINTEXT)
    assert a != b  # a fresh nonce each time
    assert a.startswith(f"v1.{key_id(NEW)}.")
    assert PLAINTEXT not in a
    assert cipher.decrypt(a).reveal() == PLAINTEXT == cipher.decrypt(b).reveal()


def test_rotation_reads_old_values_and_writes_new_ones():
    stored = CredentialCipher(OLD).encrypt(PLAINTEXT)
    rotating = CredentialCipher(NEW, previous_key=OLD)
    assert rotating.needs_rotation(stored)
    rotated = rotating.rotate(stored)
    assert not rotating.needs_rotation(rotated)
    assert CredentialCipher(NEW).decrypt(rotated).reveal() == PLAINTEXT


def test_wrong_key_is_a_clear_error_not_garbage():
    stored = CredentialCipher(OLD).encrypt(PLAINTEXT)
    with pytest.raises(CredentialError, match="ENCRYPTION_KEY_PREVIOUS"):
        CredentialCipher(NEW).decrypt(stored)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-4] + ("AAAA" if not s.endswith("AAAA") else "BBBB"),
        lambda s: s[: len(s) // 2],
    ],
)
def test_tampered_value_fails_integrity_check(tamper):
    cipher = CredentialCipher(NEW)
    with pytest.raises(CredentialError, match="integrity check|expected encrypted format"):
        cipher.decrypt(tamper(cipher.encrypt(PLAINTEXT)))


def test_same_key_id_with_different_key_bytes_cannot_forge():
    stored = CredentialCipher(OLD).encrypt(PLAINTEXT)
    forged = stored.replace(key_id(OLD), key_id(NEW))
    with pytest.raises(CredentialError, match="integrity check"):
        CredentialCipher(NEW).decrypt(forged)


@pytest.mark.parametrize("bad", ["", "plaintext-key", "v2.abc.def", "v1.onlytwo"])
def test_unexpected_format(bad):
    with pytest.raises(CredentialError, match="expected encrypted format"):
        CredentialCipher(NEW).decrypt(bad)


def test_secret_never_shows_itself():
    secret = Secret(PLAINTEXT)
    for text in (repr(secret), str(secret), f"{secret}", repr([secret])):
        assert PLAINTEXT not in text and "WXYZ" in text
    assert secret.last4 == "WXYZ"
    assert Secret("short").last4 == ""  # too short to show any part of it
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError as exc:
        assert PLAINTEXT not in str(exc)
    assert "o" * 32 not in repr(CredentialCipher(OLD))
