"""Keyed person hashes and encryption of contact details, both derived from VOP_SECRET_KEY.

The raw person identifier is never stored: the same identifier from two providers gives the same
HMAC-SHA256 key, so people are matched across agencies without anyone holding the raw id. Contact
details are encrypted with AES-256-GCM under a key derived separately (HKDF), so the hash key and the
encryption key never coincide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settings import get_settings


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"vop-v1", info=purpose).derive(secret)


@dataclass(frozen=True, slots=True)
class Keyring:
    """Purpose-specific keys derived from the deployment secret."""

    person: bytes
    aead: AESGCM  # built once: constructing it per value costs more than the encryption itself

    @classmethod
    def from_secret(cls, secret: bytes) -> Keyring:
        return cls(person=_derive(secret, b"person-key"), aead=AESGCM(_derive(secret, b"contact-encryption")))

    def person_key(self, person_id: str) -> str:
        """The keyed hash of a referrer's person identifier (hex), after trimming surrounding spaces."""
        # hmac.digest is the one-call C path: a year of referrals is hashed in a fraction of a second.
        return hmac.digest(self.person, person_id.strip().encode(), "sha256").hex()

    def encrypt(self, plaintext: str | None) -> str | None:
        """AES-GCM ciphertext as base64 (nonce + ciphertext); None and empty stay None."""
        if not plaintext:
            return None
        nonce = os.urandom(12)
        sealed = self.aead.encrypt(nonce, plaintext.encode(), b"contact")
        return base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str | None) -> str | None:
        if not token:
            return None
        raw = base64.b64decode(token)
        return self.aead.decrypt(raw[:12], raw[12:], b"contact").decode()


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    """The process's keyring from the settings' secret."""
    return Keyring.from_secret(get_settings().secret_key)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token (API key, survey link): safe to store, cheap to look up."""
    return hashlib.sha256(token.encode()).hexdigest()
