"""The durable event log's records, encrypted at rest: AES-GCM under a data
key of each segment, which is kept beside it only wrapped by the project's
key-encryption key (``privacy/kek.py``). What one append writes is sealed as
one line (``~`` and base64: one cipher call per append, not per record), so
the log's byte offsets and its line framing stay as they are, and a log that
holds plain records from before reads on."""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .kek import KeyEncryptionKey

MARK = b"~"
NONCE = 12


class LogCipher:
    def __init__(self, kek: "Callable[[], KeyEncryptionKey]"):
        """``kek`` gives the key-encryption key when it is first needed (a log that seals nothing and
        holds nothing sealed never makes one)."""
        self._kek_source = kek
        self._kek: "KeyEncryptionKey | None" = None

    @property
    def kek(self) -> "KeyEncryptionKey":
        if self._kek is None:
            self._kek = self._kek_source()
        return self._kek

    def new_key(self) -> tuple[Any, bytes]:
        """A segment's key: (the cipher, the key wrapped, to keep beside the segment)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key, wrapped = self.kek.generate_data_key()
        return AESGCM(key), wrapped

    def key(self, wrapped: bytes) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self.kek.decrypt_data_key(wrapped))

    @staticmethod
    def seal(aes: Any, payload: bytes, offset: int) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return MARK + base64.b64encode(nonce + aes.encrypt(nonce, payload, _aad(offset)))

    @staticmethod
    def sealed(line: bytes) -> bool:
        return line.startswith(MARK)

    @staticmethod
    def open(aes: Any, line: bytes, offset: int) -> bytes:
        """The payload of the sealed line written at ``offset``; a ValueError when it does not open there."""
        import binascii

        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(line[len(MARK):], validate=True)
            return bytes(aes.decrypt(raw[:NONCE], raw[NONCE:], _aad(offset)))
        except (InvalidTag, binascii.Error, ValueError):
            raise ValueError("a sealed record does not open (changed, or moved from where it was written)") from None


def _aad(offset: int) -> bytes:
    return b"personable-log@" + str(offset).encode()
