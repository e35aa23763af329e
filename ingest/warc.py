"""WARC files (WARC 1.1, ISO 28500) written from kept captures and read back, over warcio.

Written: a ``warcinfo`` record, then four records for each capture, each its own gzip member
(what replay tools and indexers seek by):

- ``request``: the request's headers as sent; for a capture kept before they were (revision
  0016), a minimal GET, marked ``Ingest-Request: reconstructed``;
- ``response``: the status line with its reason phrase, the headers as received and the body
  as the archive keeps it, decoded: ``Content-Length`` is its real length, and a
  ``Content-Encoding``, ``Transfer-Encoding`` or ``Content-Length`` that said otherwise is kept
  as ``X-Archive-Orig-*`` (as replay tools name them), so that no reader decodes it twice;
- ``conversion``: the clean text (text/plain), ``WARC-Refers-To`` the response;
- ``metadata``: the article's record (application/json, as ``ingest export`` writes it),
  ``WARC-Refers-To`` the response.

Read: `check_warc` reads a whole file (every record to its end, every digest it carries)
before anything is stored; `read_captures` yields each HTTP response with its request and our
metadata record, whichever tool wrote it. Only this module touches warcio.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO, StringIO
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from isal import igzip
from warcio.archiveiterator import WARCIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.timeutils import datetime_to_iso_date, iso_date_to_datetime
from warcio.warcwriter import WARCWriter

from ingest.errors import UsageError

WARC_VERSION = "WARC/1.1"
# Said by the archive's decoded body, never by these: kept for the record under this prefix.
ORIG_PREFIX = "X-Archive-Orig-"
FRAMING_HEADERS = ("content-encoding", "transfer-encoding", "content-length")
RECONSTRUCTED = "Ingest-Request"  # a WARC header of ours: the request was not kept
RECORD_TYPE = "application/json"  # our metadata record: the article's record
CHUNK = 1 << 16
GZIP_LEVEL = 3  # ISA-L's best (of 0-3)


@dataclass(frozen=True, slots=True)
class WarcCapture:
    """One HTTP exchange as a WARC holds it: the response (body decoded), the request's
    headers, and, in our files, the article's record and clean text."""

    url: str  # WARC-Target-URI: where the response came from
    fetched_at: datetime
    status: int
    headers: dict[str, str]  # as the archive keeps them: lower-case, less the framing headers
    body: bytes
    request_headers: dict[str, str] | None = None  # as sent; None: not known
    record: dict[str, Any] | None = None  # the article's record (our metadata record)
    text: str | None = None  # the clean text (our conversion record)
    skip: str | None = None  # why this response cannot become an article (too large, ...)
    response_id: str = field(default="", compare=False)


class _Head(StatusAndHeaders):  # type: ignore[misc]
    """HTTP headers written as UTF-8 (what a server's non-ASCII value most often was) rather
    than warcio's percent-encoding, which rewrites some values and fails on others."""

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        self.headers_buff = self.to_bytes(header_filter, encoding="utf-8")


def warc_date(moment: datetime) -> str:
    """A WARC-Date: UTC, to the microsecond (WARC 1.1)."""
    return str(datetime_to_iso_date(moment.astimezone(UTC).replace(tzinfo=None), use_micros=True))


def response_headers(headers: Mapping[str, str], length: int) -> list[tuple[str, str]]:
    """The headers a response record carries for a decoded body of ``length`` bytes."""
    kept = [
        (ORIG_PREFIX + name.title() if name.lower() in FRAMING_HEADERS else name, value)
        for name, value in headers.items()
    ]
    return [*kept, ("Content-Length", str(length))]


def archive_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """A response record's headers as the archive keeps them, as a fetch stores them (`net`):
    lower-case names, repeated ones joined, less Content-Encoding and Content-Length (the
    body is kept decoded); `response_headers` undone."""
    kept: dict[str, str] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name.startswith(ORIG_PREFIX.lower()):
            name = name.removeprefix(ORIG_PREFIX.lower())
        if name in {"content-encoding", "content-length"}:
            continue
        kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return kept


class _Members:
    """What warcio writes of a record, gathered and written out as one gzip member when it
    flushes (at each record's end). ISA-L's level 3 instead of warcio's zlib level 9: a file
    1.11 times the size (news pages: 0.229 of their bytes against 0.206), made 10 times
    faster; zlib took 80% of an export's time."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.record = BytesIO()

    def write(self, data: bytes) -> None:
        self.record.write(data)

    def flush(self) -> None:
        self.out.write(igzip.compress(self.record.getbuffer(), compresslevel=GZIP_LEVEL))
        self.record = BytesIO()  # a big page's buffer is not kept for the next record
        self.out.flush()


class WarcWriter:
    """Writes a WARC file a record at a time (one gzip member each, unless ``gzip`` is off):
    nothing but the capture at hand is held in memory."""

    def __init__(self, out: IO[bytes], *, gzip: bool = True) -> None:
        target = _Members(out) if gzip else out
        self._writer = WARCWriter(target, gzip=False, warc_version=WARC_VERSION)

    def warcinfo(self, filename: str, fields: Mapping[str, str]) -> None:
        """The file's first record: what wrote it, from what, with which filters."""
        self._writer.write_record(self._writer.create_warcinfo_record(filename, dict(fields)))

    def capture(self, capture: WarcCapture) -> str:
        """Write a capture's request, response, conversion and metadata records; returns the
        response's record id."""
        make_id = StatusAndHeadersParser.make_warc_id
        request_id, response_id = make_id(), make_id()
        common = {"WARC-Date": warc_date(capture.fetched_at)}
        url = capture.url
        request = capture.request_headers
        request_fields = {**common, "WARC-Record-ID": request_id, "WARC-Concurrent-To": response_id}
        if request is None:
            parts = urlsplit(url)
            request = {"Host": parts.netloc}
            request_fields[RECONSTRUCTED] = "reconstructed: a minimal GET (headers not kept)"
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._write(
            url,
            "request",
            request_fields,
            http=_Head(f"GET {target} HTTP/1.1", list(request.items())),
        )
        try:
            phrase = HTTPStatus(capture.status).phrase
        except ValueError:
            phrase = "Unknown"
        self._write(
            url,
            "response",
            {**common, "WARC-Record-ID": response_id, "WARC-Concurrent-To": request_id},
            http=_Head(
                f"{capture.status} {phrase}",
                response_headers(capture.headers, len(capture.body)),
                protocol="HTTP/1.1",
            ),
            payload=capture.body,
        )
        refers = {**common, "WARC-Refers-To": response_id}
        if capture.text is not None:
            self._write(
                url,
                "conversion",
                refers,
                payload=capture.text.encode("utf-8"),
                content_type="text/plain; charset=utf-8",
            )
        if capture.record is not None:
            record = json.dumps(capture.record, ensure_ascii=False).encode("utf-8")
            self._write(url, "metadata", refers, payload=record, content_type=RECORD_TYPE)
        return response_id

    def _write(
        self,
        url: str,
        kind: str,
        fields: dict[str, str],
        *,
        http: StatusAndHeaders | None = None,
        payload: bytes = b"",
        content_type: str = "",
    ) -> None:
        writer = self._writer
        record = writer.create_warc_record(
            url,
            kind,
            payload=BytesIO(payload),
            length=len(payload),
            warc_content_type=content_type,
            warc_headers_dict=fields,
            http_headers=http,
        )
        writer.write_record(record)


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WarcSummary:
    """What `check_warc` found in a whole file."""

    records: int
    responses: int  # HTTP responses: what an import makes articles of


def _bad(path: Path, why: str) -> UsageError:
    return UsageError(f"{path}: {why}; nothing was imported")


class _Records(WARCIterator):  # type: ignore[misc]
    """warcio's reader, which also tells whether a gzipped file's last member was whole: a
    file cut inside a member ends the records quietly otherwise."""

    whole = True

    def close(self) -> None:
        decompressor = self.reader.decompressor if self.reader else None
        if decompressor is not None and not decompressor.eof:
            self.whole = False
        super().close()


@contextmanager
def _records(path: Path) -> Iterator[_Records]:
    """The records of ``path``, their digests checked as they are read (a mismatch raises)."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with fh:
        if not fh.read(1):
            raise _bad(path, "empty file, not a WARC")
        fh.seek(0)
        yield _Records(fh, check_digests="raise")


def _drain(stream: Any) -> int:
    """Read ``stream`` to its end; how many bytes it gave."""
    total = 0
    while piece := stream.read(CHUNK):
        total += len(piece)
    return total


def _is_http_response(record: ArcWarcRecord) -> bool:
    head = record.http_headers
    return (
        head is not None
        and str(head.protocol).upper().startswith("HTTP/")
        and str(head.get_statuscode()).isdigit()
    )


def check_warc(path: Path) -> WarcSummary:
    """Read every record of ``path`` to its end: a file that is not a WARC, is cut short, or
    whose records do not match their digests or lengths is refused (`UsageError`, one line),
    as is a response record that is not an HTTP response (a DNS lookup, say)."""
    records = responses = 0
    # warcio warns on stderr of a record longer than it says; counted here instead.
    with _records(path) as iterator, redirect_stderr(StringIO()):
        try:
            for record in iterator:
                records += 1
                kind = record.rec_type
                uri = record.rec_headers.get_header("WARC-Target-URI") or "no target URI"
                where = f"record {records} ({kind}, {uri})"
                if kind == "response":
                    if not _is_http_response(record):
                        raise _bad(path, f"{where} is not an HTTP response")
                    responses += 1
                if record.length is None:  # WARC requires it: a file cut in a record's head
                    raise _bad(path, f"{where} is cut short or damaged (no Content-Length)")
                # What is left after the HTTP head, as warcio counted it reading the head.
                expected = record.payload_length if record.http_headers else record.length
                got = _drain(record.raw_stream)
                if got != expected:
                    raise _bad(path, f"{where} is cut short ({got} of {expected} bytes)")
                if iterator.err_count:
                    raise _bad(path, f"{where} is longer than its Content-Length says")
        except ArchiveLoadFailed as exc:
            raise _bad(path, _load_failure(exc)) from None
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise _bad(path, f"unreadable after record {records} ({exc})") from None
    if not iterator.whole:
        raise _bad(path, f"cut short after record {records} (its last gzip member is not whole)")
    if not records:
        raise _bad(path, "no WARC record in it")
    return WarcSummary(records, responses)


def _load_failure(exc: ArchiveLoadFailed) -> str:
    text = " ".join(str(exc).split())
    if "non-chunked gzip" in text:
        return (
            "one gzip stream holding several records, not one per record "
            "(`warcio recompress` fixes it)"
        )
    if "first line" in text:
        line = text.partition("first line: ")[2][:60]
        shown = line if line.isprintable() else "with bytes that are not text"
        return f"not a WARC file, or a damaged one (a record begins {shown})"
    return f"not a valid WARC ({text[:120]})"


@dataclass
class _Pending:
    """A response being read, and what follows it that belongs to it."""

    capture: WarcCapture
    concurrent: set[str]


def read_captures(path: Path, *, max_bytes: int) -> Iterator[WarcCapture]:
    """Every HTTP response of ``path`` (checked by `check_warc` first) as a `WarcCapture`, in
    file order, with the request and metadata records that belong to it (by
    ``WARC-Concurrent-To``/``WARC-Refers-To``, or a request for the same URL right before or
    after it). A body past ``max_bytes``, or in an encoding that cannot be undone, comes with
    ``skip`` saying so (and no body)."""
    pending: _Pending | None = None
    request: tuple[str, str, dict[str, str] | None] | None = None  # (id, url, headers)
    with _records(path) as iterator:
        for record in iterator:
            fields = record.rec_headers
            url = fields.get_header("WARC-Target-URI") or ""
            if record.rec_type == "response" and _is_http_response(record):
                if pending is not None:
                    yield pending.capture
                pending = _Pending(
                    _response(record, url, max_bytes), _ids(fields, "WARC-Concurrent-To")
                )
                if request is not None and (request[0] in pending.concurrent or request[1] == url):
                    pending.capture = replace(pending.capture, request_headers=request[2])
                request = None
            elif record.rec_type == "request":
                headers = _request_headers(record)
                record_id = fields.get_header("WARC-Record-ID") or ""
                if pending is not None and (
                    pending.capture.response_id in _ids(fields, "WARC-Concurrent-To")
                    or record_id in pending.concurrent
                ):
                    pending.capture = replace(pending.capture, request_headers=headers)
                else:  # before its response (wget), or unrelated
                    request = (record_id, url, headers)
            elif record.rec_type == "metadata" and pending is not None:
                refers = _ids(fields, "WARC-Refers-To")
                media = (fields.get_header("Content-Type") or "").split(";")[0].strip()
                article = _json_record(record, max_bytes) if media == RECORD_TYPE else None
                if pending.capture.response_id in refers and article is not None:
                    pending.capture = replace(pending.capture, record=article)
            else:
                _drain(record.raw_stream)
    if pending is not None:
        yield pending.capture


def _ids(fields: StatusAndHeaders, name: str) -> set[str]:
    return {value for key, value in fields.headers if key.lower() == name.lower()}


def _response(record: ArcWarcRecord, url: str, max_bytes: int) -> WarcCapture:
    fields = record.rec_headers
    head = record.http_headers
    date = fields.get_header("WARC-Date") or ""
    capture = WarcCapture(
        url=url,
        fetched_at=iso_date_to_datetime(date).replace(tzinfo=UTC),
        status=int(head.get_statuscode()),
        headers=archive_headers(head.headers),
        body=b"",
        response_id=fields.get_header("WARC-Record-ID") or "",
    )
    encoding = (head.get_header("content-encoding") or "identity").strip().lower()
    if encoding not in {"identity", "gzip", "x-gzip", "deflate", "br"}:
        _drain(record.raw_stream)
        return replace(capture, skip=f"unsupported Content-Encoding {encoding!r}")
    body = bytearray()
    try:
        stream = record.content_stream()  # chunks joined, Content-Encoding undone
        while len(body) <= max_bytes and (piece := stream.read(CHUNK)):
            body += piece
    except Exception as exc:  # zlib, brotli: a body the server sent damaged
        _drain(record.raw_stream)
        return replace(capture, skip=f"bad content encoding ({type(exc).__name__})")
    if len(body) > max_bytes:
        _drain(record.raw_stream)
        return replace(capture, skip=f"body over {max_bytes} bytes")
    return replace(capture, body=bytes(body))


def _request_headers(record: ArcWarcRecord) -> dict[str, str] | None:
    """A request record's headers as sent; None for a request we reconstructed."""
    _drain(record.raw_stream)
    if record.rec_headers.get_header(RECONSTRUCTED) or record.http_headers is None:
        return None
    sent: dict[str, str] = {}
    for name, value in record.http_headers.headers:
        sent[name] = f"{sent[name]}, {value}" if name in sent else value
    return sent


def _json_record(record: ArcWarcRecord, max_bytes: int) -> dict[str, Any] | None:
    data = record.raw_stream.read(max_bytes + 1)
    _drain(record.raw_stream)
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
