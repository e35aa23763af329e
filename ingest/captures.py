"""Raw captures' bodies: compressed for the archive, addressed by their content, and read back
whatever codec they were kept in.

A page's decoded body is archived once however many articles were extracted from it (the
posts of one day page, a podcast's episodes on the show's page, and later each re-check that
finds the page unchanged): `pack` gives it its address, the SHA-256 of the decoded bytes, and
its compressed bytes. A page that came gzip- or zlib-encoded, in one member that holds exactly
the body, is kept as it came, re-framed as a zlib stream (its deflate data untouched, an
Adler-32 for its trailer): no compression at all, and a server's gzip at its usual level 6 is
as small as zstd at level 3. Any other page is compressed with zstd at level 3 (0.20 of the
size for 0.44 ms of a worker's CPU a page; level 6 keeps 9% less for three times that, a
millisecond that every page archived would pay: `bench.captures`). `ingest db pack-captures`
recompresses kept bodies at a higher level when the archive has the time.

The codec is told by the stored bytes' first ones, so nothing else records it and every codec
the archive ever wrote stays readable: a zstd frame or a zlib stream (a page kept as it came,
or a capture made before revision 0015, inline in ``captures.body``). A zstd frame names the
dictionary it needs, if any; none is written today, and a frame that needs one is refused with
its id, rather than read wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import zstandard
from isal import isal_zlib

from ingest.errors import StoreError

LEVEL = 3  # zstd's own default: a third of level 6's CPU for 9% more bytes (docstring)
ZLIB_HEADER = b"\x78\x9c"  # deflate, 32 KiB window, no dictionary (its level bits are a hint)
GZIP_MAGIC = b"\x1f\x8b\x08"  # a gzip member of deflate data (RFC 1952)
FHCRC, FEXTRA, FNAME, FCOMMENT = 2, 4, 8, 16
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878, a frame's first four bytes (little-endian)
# Far above any page kept (`fetch.max_page_bytes`): a damaged length cannot ask for more.
MAX_BODY = 256 * 1024 * 1024

_compressor = zstandard.ZstdCompressor(level=LEVEL)  # one per process: cheaper than per call


@dataclass(frozen=True, slots=True)
class PackedBody:
    """A decoded page body ready for the archive: its address and its compressed bytes."""

    sha256: str  # hex digest of the decoded body: one ``capture_bodies`` row per value
    size: int  # decoded bytes
    data: bytes  # a zstd frame or a zlib stream


def pack(body: bytes, encoded: bytes | None = None, encoding: str = "") -> PackedBody:
    """``body`` (decoded: the page as it was received, its Content-Encoding undone) as the
    archive keeps it; ``encoded``: the same page as it came, in Content-Encoding
    ``encoding``, kept as it came when it can be (`as_zlib`)."""
    kept = as_zlib(encoded, encoding, body) if encoded is not None else None
    data = kept if kept is not None else _compressor.compress(body)
    return PackedBody(hashlib.sha256(body).hexdigest(), len(body), data)


def recompress(body: bytes, level: int) -> bytes:
    """``body`` as a zstd frame at ``level`` (`ingest db pack-captures`)."""
    return zstandard.ZstdCompressor(level=level).compress(body)


def as_zlib(encoded: bytes, encoding: str, body: bytes) -> bytes | None:
    """``encoded`` as a zlib stream of ``body``, when it is one gzip member or one zlib stream
    holding exactly ``body`` (its checksum and length say so); else None (identity, raw deflate,
    several members, trailing bytes, another codec)."""
    name = encoding.strip().lower()
    if name in {"gzip", "x-gzip"}:
        deflate = _gzip_deflate(encoded)
        size = len(body) & 0xFFFFFFFF  # ISIZE: the length modulo 2**32
        trailer = isal_zlib.crc32(body).to_bytes(4, "little") + size.to_bytes(4, "little")
        if deflate is not None and encoded[-8:] == trailer:
            return ZLIB_HEADER + deflate + isal_zlib.adler32(body).to_bytes(4, "big")
    elif name == "deflate" and _is_zlib(encoded):  # the checksum says it holds exactly ``body``
        adler = isal_zlib.adler32(body).to_bytes(4, "big")
        return encoded if encoded[-4:] == adler else None
    return None


def _gzip_deflate(data: bytes) -> bytes | None:
    """The deflate data of a gzip member (RFC 1952): after its header, before its trailer."""
    if len(data) < 18 or not data.startswith(GZIP_MAGIC):
        return None
    flags, at = data[3], 10
    if flags & FEXTRA:
        at += 2 + int.from_bytes(data[at : at + 2], "little")
    for flag in (FNAME, FCOMMENT):  # zero-terminated strings
        if flags & flag:
            end = data.find(b"\0", at)
            if end < 0:
                return None
            at = end + 1
    if flags & FHCRC:
        at += 2
    return data[at:-8] if at <= len(data) - 8 else None


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
