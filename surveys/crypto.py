"""Keyed person hashes and encryption of contact details, both derived from VOP_SECRET_KEY.

The raw person identifier is never stored: the same identifier from two providers gives the same
HMAC-SHA256 key, so people are matched across agencies without anyone holding the raw id. Contact
details are encrypted with AES-256-GCM under a key derived separately (HKDF), so the hash key and the
encryption key never coincide.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settings import get_settings

_NONCE = 12  # bytes: the AES-GCM nonce size


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
        # hmac.digest is the one-call C path for a single value; person_keys() is for many.
        return hmac.digest(self.person, person_id.strip().encode(), "sha256").hex()

    def person_keys(self, person_ids: Iterable[str]) -> list[str]:
        """person_key() of each identifier (a bulk import).

        The keyed state is set up once and copied per value, as HMAC.copy() is documented for: about
        twice as fast as hmac.digest, which sets the key up again for every value.
        """
        keyed = hmac.new(self.person, digestmod="sha256")
        keys = []
        for person_id in person_ids:
            mac = keyed.copy()
            mac.update(person_id.strip().encode())
            keys.append(mac.hexdigest())
        return keys

    def encrypt(self, plaintext: str | None) -> str | None:
        """AES-GCM ciphertext as base64 (nonce + ciphertext); None and empty stay None."""
        if not plaintext:
            return None
        nonce = os.urandom(_NONCE)
        sealed = self.aead.encrypt(nonce, plaintext.encode(), b"contact")
        return base64.b64encode(nonce + sealed).decode()

    def encrypt_all(self, plaintexts: Sequence[str | None]) -> list[str | None]:
        """encrypt() of each value (a bulk import); the random nonces come from one system call."""
        nonces = os.urandom(_NONCE * len(plaintexts))
        seal, b64 = self.aead.encrypt, binascii.b2a_base64
        sealed: list[str | None] = [None] * len(plaintexts)
        present = zip(compress(range(len(plaintexts)), plaintexts), filter(None, plaintexts), strict=True)
        for at, plaintext in present:  # (position, value) of the values present
            nonce = nonces[at * _NONCE : (at + 1) * _NONCE]
            sealed[at] = b64(nonce + seal(nonce, plaintext.encode(), b"contact"), newline=False).decode()
        return sealed

    def decrypt(self, token: str | None) -> str | None:
        if not token:
            return None
        raw = base64.b64decode(token)
        return self.aead.decrypt(raw[:_NONCE], raw[_NONCE:], b"contact").decode()


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    """The process's keyring from the settings' secret."""
    return Keyring.from_secret(get_settings().secret_key)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token (API key, survey link): safe to store, cheap to look up."""
    return hashlib.sha256(token.encode()).hexdigest()
