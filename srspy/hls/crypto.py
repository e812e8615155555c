"""AES-128 segment encryption (RFC 8216 4.3.2.4, ``METHOD=AES-128``): the whole segment
in AES-128-CBC with PKCS#7 padding, as SRS's ``SrsEncFileWriter`` produces it
(kernel/srs_kernel_ts.cpp). SRS draws a random key and a random IV every
``hls_fragments_per_key`` segments and lists the IV in ``EXT-X-KEY``; :func:`sequence_iv`
is the IV a player assumes when the tag carries none.

Uses the ``cryptography`` package (OpenSSL underneath): a maintained cipher beats a
hand-written one.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import SrsError


class HlsKeyError(SrsError):
    """A key or IV of the wrong size."""


def sequence_iv(seq: int) -> bytes:
    """The default IV: the media sequence number as a 128-bit big-endian integer."""
    return seq.to_bytes(16, "big")


def new_key(random_bytes=os.urandom) -> tuple[bytes, bytes]:
    """A fresh (key, iv) pair, 16 random bytes each."""
    return random_bytes(16), random_bytes(16)


def key_starts(seq: int, fragments_per_key: int) -> bool:
    """Whether segment ``seq`` starts a new key (SRS: ``seq % hls_fragments_per_key == 0``)."""
    return fragments_per_key <= 1 or seq % fragments_per_key == 0


def encrypt_segment(data: bytes, key: bytes, iv: bytes) -> bytes:
    if len(key) != 16 or len(iv) != 16:
        raise HlsKeyError(f"hls: AES-128 wants a 16-byte key and IV, got {len(key)} and {len(iv)}")
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def decrypt_segment(data: bytes, key: bytes, iv: bytes) -> bytes:
    """The inverse (for tests and tools)."""
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(dec.update(data) + dec.finalize()) + unpadder.finalize()
