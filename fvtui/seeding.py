"""Per-round random streams derived from (seed, round, purpose), so a resumed session replays exactly."""

from __future__ import annotations

import zlib

import numpy as np


def seed_for(seed: int, round_index: int, purpose: str) -> int:
    """A 63-bit seed that depends only on its arguments, never on what ran before."""
    sequence = np.random.SeedSequence([seed, round_index, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, np.uint64)[0]) >> 1


def rng_for(seed: int, round_index: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(seed_for(seed, round_index, purpose))
