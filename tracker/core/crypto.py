"""Encryption of stored provider credentials: AES-256-GCM with a key-id prefix for rotation.

A stored value looks like `v1.<key id>.<base64url(nonce || ciphertext || tag)>`. The key id is
derived from the key itself (first 8 hex digits of its SHA-256), so after `ENCRYPTION_KEY`
changes, values still written with the old key are recognised and read with
`ENCRYPTION_KEY_PREVIOUS` until `keys rotate` re-encrypts them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tracker.core.errors import CredentialError

FORMAT_VERSION = "v1"
NONCE_BYTES = 12
# Binds ciphertexts to their purpose: a value cut from another AES-GCM use will not decrypt here.
ASSOCIATED_DATA = b"ai-cost-tracker:provider-credential:v1"


class Secret:
    """A plaintext secret that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the plaintext; call only where it is sent to its provider."""
        return self._value

    @property
    def last4(self) -> str:
        return last4(self._value)

    def __repr__(self) -> str:
        return f"Secret('…{self.last4}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def last4(value: str) -> str:
    """The last four characters, the only part of a key the UI may show."""
    return value[-4:] if len(value) >= 8 else ""


def key_id(key: bytes) -> str:
    """A short public identifier of a key (not reversible)."""
    return hashlib.sha256(key).hexdigest()[:8]


class CredentialCipher:
    """Encrypts with the current key; decrypts with the current or the previous one."""

    def __init__(self, current_key: bytes, previous_key: bytes | None = None) -> None:
        if len(current_key) != 32 or (previous_key is not None and len(previous_key) != 32):
            raise CredentialError("encryption keys must be exactly 32 bytes (AES-256)")
        self._current_id = key_id(current_key)
        self._keys = {self._current_id: AESGCM(current_key)}
        if previous_key is not None and key_id(previous_key) != self._current_id:
            self._keys[key_id(previous_key)] = AESGCM(previous_key)

    def __repr__(self) -> str:
        return f"CredentialCipher(current={self._current_id}, keys={len(self._keys)})"

    @property
    def current_key_id(self) -> str:
        return self._current_id

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a credential with the current key and a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current_id].encrypt(nonce, plaintext.encode(), ASSOCIATED_DATA)
        payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{FORMAT_VERSION}.{self._current_id}.{payload}"

    def decrypt(self, stored: str) -> Secret:
        """Decrypt a stored credential; raise CredentialError, never return garbage."""
        version, kid, payload = self._split(stored)
        aead = self._keys.get(kid)
        if aead is None:
            raise CredentialError(
                f"a stored credential was encrypted with another key (id {kid}); set "
                "ENCRYPTION_KEY to that key, or give it as ENCRYPTION_KEY_PREVIOUS and run "
                "`python -m tracker keys rotate`"
            )
        try:
            raw = base64.urlsafe_b64decode(payload.encode("ascii"))
            plaintext = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ASSOCIATED_DATA)
        except (InvalidTag, binascii.Error, ValueError):
            raise CredentialError(
                f"a stored credential (key id {kid}) failed its integrity check: it was "
                "altered or truncated; re-enter that account's key"
            ) from None
        return Secret(plaintext.decode())

    def needs_rotation(self, stored: str) -> bool:
        """True when the value is not encrypted with the current key."""
        return self._split(stored)[1] != self._current_id

    def rotate(self, stored: str) -> str:
        """Re-encrypt a stored value with the current key."""
        return self.encrypt(self.decrypt(stored).reveal())

    @staticmethod
    def _split(stored: str) -> tuple[str, str, str]:
        parts = stored.split(".")
        if len(parts) != 3 or parts[0] != FORMAT_VERSION:
            raise CredentialError(
                "a stored credential is not in the expected encrypted format; re-enter that "
                "account's key"
            )
        return parts[0], parts[1], parts[2]
