"""`ingest.inflate`: bodies inflated under a cap."""

from __future__ import annotations

import gzip
import random
import struct
import zlib

import pytest

from ingest.errors import NetworkError, TooLargeError
from ingest.inflate import Inflater, decode_body, encoded_cap

PAGE = b"<html><body>" + b"<p>The harbour master counted the boats again.</p>" * 400 + b"</html>"
URL = "http://news.example/a.html"


def gzip_member(
    body: bytes, *, name: bytes = b"", extra: bytes = b"", comment: bytes = b""
) -> bytes:
    """A gzip member with the optional header fields of RFC 1952 (gzip.compress writes none)."""
    flags = (4 if extra else 0) | (8 if name else 0) | (16 if comment else 0) | 2
    head = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff"
    if extra:
        head += struct.pack("<H", len(extra)) + extra
    for text in (name, comment):
        if text:
            head += text + b"\0"
    head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflate = packer.compress(body) + packer.flush()
    return head + deflate + struct.pack("<II", zlib.crc32(body), len(body) & 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (PAGE, ""),
        (PAGE, "identity"),
        (gzip.compress(PAGE), "gzip"),
        (gzip.compress(PAGE), "x-gzip"),
        (gzip_member(PAGE, name=b"page.html", extra=b"xy", comment=b"hi"), "gzip"),
        (zlib.compress(PAGE), "deflate"),
        (zlib.compress(PAGE, 9)[2:-4], "deflate"),  # raw deflate, as some servers send it
    ],
)
def test_a_body_is_decoded_whatever_encoding_it_came_in(data: bytes, encoding: str) -> None:
    assert decode_body(data, encoding, max_bytes=len(PAGE), url=URL) == PAGE


@pytest.mark.parametrize("piece", [1 << 30, 65536, 1000])
def test_a_large_body_inflates_whole_however_it_arrives(piece: int) -> None:
    body = b"".join(b"<p>Paragraph %d of the long live blog.</p>" % n for n in range(200_000))
    data = gzip.compress(body)
    out = bytearray()
    inflater = Inflater("gzip", URL)
    for at in range(0, len(data), piece):
        inflater.inflate_into(out, data[at : at + piece], len(body))
    assert out == body


def test_input_left_at_a_cap_is_inflated_by_a_later_call_with_a_higher_cap() -> None:
    # The client inflates a small part of a body first, then the rest in its big-body turn.
    body = b"".join(b"<p>Paragraph %d of the long live blog.</p>" % n for n in range(50_000))
    inflater = Inflater("gzip", URL)
    out = bytearray()
    inflater.inflate_into(out, gzip.compress(body), 10_000)
    assert 10_000 < len(out) < len(body)
    assert inflater.pending
    inflater.inflate_into(out, b"", len(body))
    assert out == body
    assert not inflater.pending


def test_a_body_past_the_cap_is_too_large_without_inflating_much_more() -> None:
    bomb = gzip.compress(b" " * 50_000_000, 9)
    with pytest.raises(TooLargeError) as caught:
        decode_body(bomb, "gzip", max_bytes=100_000, url=URL)
    assert caught.value.url == URL


def test_a_body_at_the_cap_is_kept() -> None:
    assert len(decode_body(gzip.compress(PAGE), "gzip", max_bytes=len(PAGE), url=URL)) == len(PAGE)
    with pytest.raises(TooLargeError):
        decode_body(gzip.compress(PAGE), "gzip", max_bytes=len(PAGE) - 1, url=URL)


@pytest.mark.parametrize(("data", "encoding"), [(b"not gzip at all", "gzip"), (PAGE, "br")])
def test_a_broken_or_unknown_encoding_is_a_decoding_error(data: bytes, encoding: str) -> None:
    with pytest.raises(NetworkError) as caught:
        decode_body(data, encoding, max_bytes=len(PAGE), url=URL)
    assert caught.value.reason == "decoding"


def test_incompressible_bytes_fit_the_encoded_cap() -> None:
    noise = random.Random(7).randbytes(1_000_000)
    packed = zlib.compressobj(9, zlib.DEFLATED, 31)
    wire = packed.compress(noise) + packed.flush()
    assert len(wire) > len(noise)  # compression made it larger
    assert len(wire) <= encoded_cap(len(noise))
