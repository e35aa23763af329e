"""Page bytes -> text, right whatever the page declares, or fails to.

Browsers trust a byte-order mark, then the HTTP charset, then ``<meta charset>`` (or an XML
declaration's ``encoding``). Archived pages break that order in three ways, each handled here:

- nothing is declared, and the bytes are not UTF-8 (a windows-1252 or Shift_JIS page with no
  charset anywhere): the charset is detected (charset_normalizer);
- a declaration that does not fit the bytes (a server that says UTF-8 of every page, on
  windows-1252 bytes): a charset that cannot decode the bytes is not theirs, so the page's own
  declaration, then detection, is tried;
- UTF-8 with a few stray legacy bytes (a windows-1252 snippet pasted into a UTF-8 page): the
  page stays UTF-8, each stray byte read as windows-1252, rather than the whole page being
  re-read in a legacy charset.

Valid UTF-8 with non-ASCII characters is UTF-8 whatever is declared: legacy text almost never
forms valid multi-byte sequences by chance. A leading XML declaration is dropped from the
text, as lxml refuses a decoded string that still names an encoding.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

_XML_DECLARATION = re.compile(r"\A\s*<\?xml\b[^>]*\?>")
_UTF8 = {"utf-8", "utf8", "utf_8", "u8"}
# UTF-8 whose invalid bytes are at most this share of its non-ASCII characters is UTF-8 with
# damage (stray legacy bytes), not a legacy page: real windows-1252 text read as UTF-8 is
# nearly all invalid bytes.
DAMAGE_SHARE = 0.2
DETECT_BYTES = 256 << 10  # enough of a page for detection to be sure; past it, slower only


def _cp1252_bytes(error: UnicodeError) -> tuple[str, int]:
    """A decoding error handler: the bytes UTF-8 could not read, read as windows-1252."""
    assert isinstance(error, UnicodeDecodeError)
    chunk = error.object[error.start : error.end]
    return bytes(chunk).decode("cp1252", errors="replace"), error.end


codecs.register_error("ingest-cp1252", _cp1252_bytes)


def _codec(name: str | None) -> str | None:
    """The Python codec for a declared charset name (WHATWG aliases: latin-1 is cp1252)."""
    if not name:
        return None
    try:
        info = codecs.lookup(resolve_encoding(name) or name)
    except LookupError:
        return None
    # A charset, not any Python codec a page may name: "undefined" raises on every byte;
    # rot13, base64 and zlib are no text encodings.
    if info.name == "undefined" or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


# The web's most used legacy charsets, most used first (W3Techs' survey): of charsets that
# read a page equally well, the one the web uses most is the likelier.
COMMON = ("cp1252", "cp1251", "shift_jis", "cp932", "gb2312", "gbk", "gb18030", "euc_kr")
COMMON += ("euc_jp", "cp1250", "big5", "iso8859_2", "cp1256", "cp1254", "iso8859_9", "cp874")
CLOSE = 0.05  # candidates this close to the least chaotic reading are weighed again
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


# Inside a word, these are not a sign of a wrong charset: apostrophes, hyphens, middle dots.
IN_WORD = frozenset("’ʼ‘'‐‑·\xad")


def _oddities(text: str) -> int:
    """Signs of a wrong charset in a reading: a symbol, number or control character inside a
    word ("W³adze", "bźd¹": Polish read as windows-1257), or a C1 control anywhere."""
    odd = 0
    for match in _NON_ASCII.finditer(text):
        c, at = match.group(), match.start()
        kind = unicodedata.category(c)[0]
        if "\x80" <= c <= "\x9f":
            odd += 1
        elif kind not in "LM" and c not in IN_WORD and 0 < at < len(text) - 1:
            odd += text[at - 1].isalpha() and text[at + 1].isalpha()
    return odd


def detect_encoding(body: bytes) -> str | None:
    """The charset ``body`` is most likely in, or None: charset_normalizer's candidates that
    read it with (nearly) the least chaos, weighed by the symbols they put inside words, then
    by how much they look like a language, then by how much the web uses them. Detection
    alone ties or errs between charsets of one script (windows-1250, -1252 and -1257 share
    most accented letters)."""
    from charset_normalizer import from_bytes  # only pages declaring nothing usable need it

    sample = body[:DETECT_BYTES]
    matches = list(from_bytes(sample))
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    close = [m for m in matches if m.chaos <= least + CLOSE]

    def rank(order: int) -> tuple[int, int, int, int]:
        match = close[order]
        names = [_codec(n) for n in match.could_be_from_charset]
        common = min((COMMON.index(n) for n in names if n in COMMON), default=len(COMMON))
        # Coherence (how much the reading looks like a language) in tenths: finer steps
        # than that are noise between charsets of one script.
        return _oddities(str(match)), -int(match.coherence * 10), common, order

    return _codec(close[min(range(len(close)), key=rank)].encoding)


def _damaged_utf8(body: bytes) -> str | None:
    """``body`` as UTF-8 with stray legacy bytes, if that is what it is."""
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - body.count(b"\xef\xbf\xbd")  # real U+FFFDs are fine
    wide = sum(1 for c in text if c > "\x7f") - invalid
    if wide > 0 and invalid <= DAMAGE_SHARE * wide:
        return body.decode("utf-8", errors="ingest-cp1252")
    return None


def decode_bytes(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """``body`` as text, and the codec it was read with (see the module docstring)."""
    encoding, bom = read_bom(body)
    if encoding and bom:
        codec = _codec(encoding) or "utf-8"
        return body[len(bom) :].decode(codec, errors="replace"), codec
    if body.isascii():
        return body.decode("ascii"), "ascii"
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = [_codec(http_content_type_encoding(content_type)) if content_type else None]
    declared.append(_codec(html_body_declared_encoding(body)))
    if any(d in _UTF8 for d in declared) or not any(declared):
        # Said to be UTF-8, or nothing said: damaged UTF-8 is still UTF-8.
        text = _damaged_utf8(body)
        if text is not None:
            return text, "utf-8"
    for codec in declared:
        if codec and codec not in _UTF8:
            try:  # strict: a charset that cannot read the bytes is not theirs
                return body.decode(codec), codec
            except (UnicodeError, LookupError):  # punycode's are not UnicodeDecodeError
                continue
    if any(declared):  # a legacy declaration that does not fit: UTF-8 saved under an old header
        text = _damaged_utf8(body)
        if text is not None:
            return text, "utf-8"
    codec = detect_encoding(body) or "cp1252"
    return body.decode(codec, errors="replace"), codec


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """An HTML page's bytes as text for lxml (see the module docstring)."""
    text, _ = decode_bytes(body, content_type)
    return _XML_DECLARATION.sub("", text, count=1)
