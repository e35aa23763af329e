"""Raw captures' bodies: compressed for the archive, addressed by their content, and read back
whatever codec they were kept in.

A page's decoded body is archived once however many articles were extracted from it (the
posts of one day page, a podcast's episodes on the show's page, and later each re-check that
finds the page unchanged): `pack` gives it its address, the SHA-256 of the decoded bytes, and
compresses it with zstd at level 3 (`bench.captures`: 0.20 of the size, against 0.23 for the
ISA-L zlib stream it replaces, for 0.44 ms of a worker's CPU a page, and read back faster;
level 6 keeps 9% less for three times the CPU, a millisecond a page that every page archived
pays: issue 9's budget for all the work outside extraction is 3).

The codec is told by the stored bytes' first ones, so nothing else records it and every codec
the archive ever wrote stays readable: a zstd frame (bodies stored since revision 0015, in
``capture_bodies``) or a zlib stream (captures made before, inline in ``captures.body``). A zstd
frame names the dictionary it needs, if any; none is written today, and a frame that needs one
is refused with its id, rather than read wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import zstandard
from isal import isal_zlib

from ingest.errors import StoreError

LEVEL = 3  # zstd's own default: a third of level 6's CPU for 9% more bytes (docstring)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878, a frame's first four bytes (little-endian)
# Far above any page kept (`fetch.max_page_bytes`): a damaged length cannot ask for more.
MAX_BODY = 256 * 1024 * 1024

_compressor = zstandard.ZstdCompressor(level=LEVEL)  # one per process: cheaper than per call


@dataclass(frozen=True, slots=True)
class PackedBody:
    """A decoded page body ready for the archive: its address and its compressed bytes."""

    sha256: str  # hex digest of the decoded body: one ``capture_bodies`` row per value
    size: int  # decoded bytes
    data: bytes  # a zstd frame


def pack(body: bytes) -> PackedBody:
    """``body`` (decoded: the page as it was received, its Content-Encoding undone) as the
    archive keeps it."""
    return PackedBody(hashlib.sha256(body).hexdigest(), len(body), _compressor.compress(body))


def unpack(data: bytes, *, what: str, max_bytes: int = MAX_BODY) -> bytes:
    """The decoded body of stored bytes ``data``, whatever their codec; ``what`` names the
    capture in the `StoreError` raised for bytes no codec reads (damaged, or a dictionary this
    archive does not hold)."""
    try:
        if data.startswith(ZSTD_MAGIC):
            return _zstd(data, what, max_bytes)
        if _is_zlib(data):
            inflater = isal_zlib.decompressobj()
            body = inflater.decompress(data, max_bytes + 1)
            if len(body) > max_bytes:
                raise StoreError(f"{what}: body over {max_bytes} bytes")
            if not inflater.eof:
                raise StoreError(f"{what}: zlib stream cut short (damaged body)")
            return body
    except (zstandard.ZstdError, isal_zlib.error) as exc:
        raise StoreError(f"{what}: unreadable body ({exc})") from exc
    raise StoreError(f"{what}: body in no known codec (neither zstd nor zlib): damaged?")


def _zstd(data: bytes, what: str, max_bytes: int) -> bytes:
    frame = zstandard.get_frame_parameters(data)
    if frame.dict_id:
        raise StoreError(
            f"{what}: body needs zstd dictionary {frame.dict_id}, which this archive does not "
            "hold (written by another tool or a newer ingest?)"
        )
    if frame.content_size > max_bytes and frame.content_size != zstandard.CONTENTSIZE_UNKNOWN:
        raise StoreError(f"{what}: body over {max_bytes} bytes")
    # A frame without its size (not one of ours) is read under the cap all the same.
    return zstandard.ZstdDecompressor().decompress(data, max_output_size=max_bytes)


def _is_zlib(data: bytes) -> bool:
    """A zlib stream's header (RFC 1950): deflate, no preset dictionary, check bits."""
    return (
        len(data) >= 6
        and data[0] & 0x0F == 8
        and not data[1] & 0x20
        and (data[0] << 8 | data[1]) % 31 == 0
    )
