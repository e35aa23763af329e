"""Wire copies: the same story published by several outlets, told by a fingerprint of its text.

An article's clean text is cut into shingles (runs of `SHINGLE` words, each CJK character a
word: Chinese and Japanese have no spaces), and the set of shingles is summed up by a MinHash
signature of `BINS` values made with one hash a shingle (one-permutation hashing: a shingle
goes to the bin its hash names and counts there if smaller than the bin's minimum; bins left
empty take their next non-empty neighbour's value, shifted by the distance, so that two texts
agree on an empty bin about as often as their shingle sets agree). The share of bins two
signatures agree on estimates the Jaccard similarity of their shingle sets (`similarity`):
other chrome left by the extraction, a tweaked first line, a trimmed ending move it little,
while two different stories share hardly any run of five words.

Candidates are found by locality-sensitive hashing: the signature in `BANDS` bands of `ROWS`
bins, each band one 63-bit key; two texts at similarity s share a key with probability
1 - (1 - s**ROWS) ** BANDS (0.68 at 0.3, 0.96 at 0.42, 0.996 at 0.5), and are one story when
their similarity reaches `THRESHOLD`. The keys are what the archive indexes (`story_bands`), so
finding candidates costs index lookups however large the archive (`ingest.storyindex`).
Nothing here touches the database: the extraction workers run it.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from hashlib import blake2b
from operator import eq

from ingest.cjk import CJK

SHINGLE = 5  # words a shingle: long enough that unrelated texts share few
BINS = 128
ROWS = 3
BANDS = BINS // ROWS  # 42, of 3 bins each (the last 2 bins are only compared)
MIN_WORDS = 50  # below this, a text is too short to tell a copy from a shared phrase
# The similarity from which two texts are one story, chosen on bench.wire's figures (README,
# "Wire copies"): copies there are 0.42 or more, different stories 0.21 or less.
THRESHOLD = 0.3
_LATIN = re.compile(r"\w+")
_WORD = re.compile(f"[{CJK}]|[^\\W{CJK}]+")  # each CJK character alone, or a run of others
_HAS_CJK = re.compile(f"[{CJK}]")
_BIN_BITS = 7  # log2(BINS): a shingle's bin is its hash's low bits, its value the others
_EMPTY = 1 << (32 - _BIN_BITS)  # above any bin value
_SPREAD = 0x9E3779B1  # an empty bin's borrowed value, moved by its distance
_PACK = struct.Struct(f"<{BINS}I")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A text's MinHash signature (`BINS` values), and the number of distinct shingles it
    was made of."""

    signature: tuple[int, ...]
    shingles: int

    @property
    def bands(self) -> list[int]:
        """One key a band: 63 bits (a signed 64-bit column takes it) of the band's values and
        its place, so that equal values in different bands are different keys."""
        keys = []
        for band in range(BANDS):
            values = self.signature[band * ROWS : (band + 1) * ROWS]
            digest = blake2b(struct.pack(f"<H{ROWS}I", band, *values), digest_size=8).digest()
            keys.append(int.from_bytes(digest, "little") >> 1)
        return keys

    def to_bytes(self) -> bytes:
        return _PACK.pack(*self.signature)

    @classmethod
    def from_bytes(cls, data: bytes, shingles: int) -> Fingerprint:
        return cls(_PACK.unpack(data), shingles)


def words(text: str) -> list[str]:
    """The words of ``text``, case folded; each CJK character is one."""
    folded = text.casefold()
    return (_WORD if _HAS_CJK.search(folded) else _LATIN).findall(folded)


def fingerprint(text: str | None) -> Fingerprint | None:
    """The fingerprint of a clean text; None for one too short to tell (`MIN_WORDS`)."""
    tokens = words(text or "")
    if len(tokens) < MIN_WORDS:
        return None
    join = " ".join
    # CRC-32 of each shingle: a C call, a third of the time of a cryptographic hash (this
    # runs for every article archived); 32 bits are plenty for sets of thousands.
    runs = zip(*(tokens[i:] for i in range(SHINGLE)), strict=False)  # the shorter ends it
    hashes = {zlib.crc32(join(run).encode()) for run in runs}
    mins = [_EMPTY] * BINS
    for value in hashes:
        slot, rest = value & (BINS - 1), value >> _BIN_BITS
        if rest < mins[slot]:
            mins[slot] = rest
    return Fingerprint(_densified(mins), len(hashes))


def _densified(mins: list[int]) -> tuple[int, ...]:
    """Empty bins filled from the next non-empty bin to the right (circularly), its value
    shifted by the distance: two texts then agree on a filled bin only if they agree on the
    bin it came from at the same distance."""
    if _EMPTY not in mins:
        return tuple(mins)
    out = list(mins)
    for slot in range(BINS):
        if out[slot] != _EMPTY:
            continue
        for distance in range(1, BINS):
            source = mins[(slot + distance) % BINS]
            if source != _EMPTY:
                out[slot] = (source + distance * _SPREAD) % _EMPTY
                break
    return tuple(out)


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """The estimated Jaccard similarity of two texts' shingle sets: the share of bins their
    signatures agree on."""
    return sum(map(eq, a.signature, b.signature)) / BINS
