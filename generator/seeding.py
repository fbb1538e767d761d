"""Explicit seeds derived from (seed, key) so randomness never touches global state."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``keys`` (stable across processes and runs).

    Python's ``hash()`` is salted per process, so a cryptographic digest is used instead.
    """
    text = ":".join([str(int(seed))] + [str(k) for k in keys])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


def image_seed(seed: int, image_id: str) -> int:
    """Seed of one image's artefact realization: common random numbers across variants."""
    return derive_seed(seed, "artefact", image_id)
