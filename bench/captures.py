"""Raw captures: which codec, and what the archive takes per article.

    python -m bench.captures                     # both parts, both corpora
    python -m bench.captures --rounds 5 --json

1. Codecs on real pages (``../shared/corpus/extraction``, 108 news pages, and
   ``../shared/corpus/readability``, 130 pages of many kinds; read where they are, never
   copied): compressed size as a share of the raw bytes, and CPU milliseconds per page to
   compress and to decompress (the median of ``--rounds`` rounds, every codec in turn within a
   round). Each corpus is split in halves by the SHA-256 of the page's bytes: a zstd
   dictionary is trained on one half and every codec measured on the other. Also, for the
   hosts with two pages in the extraction corpus, the second page compressed with the first as
   a raw-content dictionary: what a dictionary of one's own site could give.

2. Archive size: the pages of both corpora stored as articles through `Store.save_articles`,
   every ``--shared-every``-th page shared by ``--posts`` articles (posts of a day page, a
   podcast's episodes on its show's page), into an SQLite archive; then the same archive with
   its captures as before revision 0015 (each inline, an ISA-L zlib stream at level 1, as the
   workers compressed a page that came unencoded), with shared bodies in zlib, and the old
   layout after `Store.pack_captures`. Each VACUUMed first, so the build's free pages do not
   count.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import statistics
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import zstandard
from isal import isal_zlib
from lxml import html as lxml_html

from ingest.captures import pack, unpack
from ingest.config import FeedSettings
from ingest.entryparts import entry_key
from ingest.records import ExtractedArticle, FeedEntry, Page, utcnow
from ingest.store import Store

ROOT = Path(__file__).resolve().parents[1].parent / "shared/corpus"
DICT_SIZE = 112_640  # zstd's default dictionary size (110 KiB)
Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]


@dataclass(frozen=True)
class Corpus:
    name: str
    pages: list[bytes]  # raw bytes, ordered by their SHA-256
    texts: list[str]  # each page's article text (the ground truth, or Readability's)
    hosts: list[str | None]


def load(extraction: Path, readability: Path) -> list[Corpus]:
    truth = json.loads((extraction / "ground-truth.json").read_text(encoding="utf-8"))
    rows = [
        (
            gzip.decompress((extraction / "html" / f"{key}.html.gz").read_bytes()),
            value["articleBody"],
            urlsplit(value["url"]).hostname,
        )
        for key, value in truth.items()
    ]
    other = []
    for folder in sorted((readability / "pages").iterdir()):
        expected = lxml_html.fromstring((folder / "expected.html").read_bytes())
        other.append(((folder / "source.html").read_bytes(), expected.text_content(), None))
    corpora = []
    for name, found in (("extraction", rows), ("readability", other)):
        found.sort(key=lambda row: hashlib.sha256(row[0]).hexdigest())
        corpora.append(Corpus(name, *map(list, zip(*found, strict=True))))  # type: ignore[arg-type]
    return corpora


# --- 1. codecs -----------------------------------------------------------------------------------


def codecs(train: Sequence[bytes]) -> dict[str, Codec]:
    """Every codec measured; the dictionary ones trained on ``train``."""
    found: dict[str, Codec] = {
        "zlib 1, ISA-L (today: a page that came unencoded)": (
            lambda b: isal_zlib.compress(b, 1),
            isal_zlib.decompress,
        ),
        "zlib 6 (today: a page gzipped by its server at 6)": (
            lambda b: zlib.compress(b, 6),
            isal_zlib.decompress,
        ),
        "zlib 9": (lambda b: zlib.compress(b, 9), isal_zlib.decompress),
    }
    plain = zstandard.ZstdDecompressor()
    for level in (1, 3, 6, 9, 12, 19):
        found[f"zstd {level}"] = (zstandard.ZstdCompressor(level=level).compress, plain.decompress)
    trained = zstandard.train_dictionary(DICT_SIZE, list(train))
    with_dict = zstandard.ZstdDecompressor(dict_data=trained)
    for level in (3, 6, 9):
        compressor = zstandard.ZstdCompressor(level=level, dict_data=trained)
        found[f"zstd {level} + dictionary trained on the other half"] = (
            compressor.compress,
            with_dict.decompress,
        )
    return found


def measure_codecs(corpus: Corpus, rounds: int) -> list[dict[str, Any]]:
    train, test = corpus.pages[0::2], corpus.pages[1::2]
    found = codecs(train)
    raw = sum(map(len, test))
    cpu: dict[str, list[tuple[float, float]]] = defaultdict(list)
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for name, (compress, decompress) in found.items():
            started = time.process_time()
            packed = [compress(page) for page in test]
            middle = time.process_time()
            for data in packed:
                decompress(data)
            ended = time.process_time()
            sizes[name] = sum(map(len, packed))
            cpu[name].append((middle - started, ended - middle))
    return [
        {
            "corpus": corpus.name,
            "codec": name,
            "pages": len(test),
            "ratio": round(sizes[name] / raw, 4),
            "compress_ms": round(1000 * statistics.median(c for c, _ in cpu[name]) / len(test), 3),
            "decompress_ms": round(
                1000 * statistics.median(d for _, d in cpu[name]) / len(test), 3
            ),
        }
        for name in found
    ]


def same_site(corpus: Corpus, level: int = 6) -> dict[str, Any]:
    """Hosts with two pages: the second compressed alone, and with the first as dictionary."""
    pages: dict[str, list[bytes]] = defaultdict(list)
    for page, host in zip(corpus.pages, corpus.hosts, strict=True):
        if host:
            pages[host].append(page)
    raw = alone = reference = 0
    pairs = [found for found in pages.values() if len(found) >= 2]
    for first, second, *_ in pairs:
        as_dict = zstandard.ZstdCompressionDict(first, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        raw += len(second)
        alone += len(zstandard.ZstdCompressor(level=level).compress(second))
        reference += len(zstandard.ZstdCompressor(level=level, dict_data=as_dict).compress(second))
    return {
        "hosts": len(pairs),
        f"zstd {level}": round(alone / raw, 4),
        f"zstd {level}, the site's other page as dictionary": round(reference / raw, 4),
    }


# --- 2. archive size -----------------------------------------------------------------------------


def build(path: Path, corpora: Sequence[Corpus], shared_every: int, posts: int) -> int:
    """The archive of every page as articles, through the code `ingest fetch` runs to store
    them; returns the number of articles."""
    store = Store.open(f"sqlite:///{path}")
    (feed,) = store.sync_feeds([FeedSettings(url="https://bench.example/feed", name="Bench")])
    pages = [(p, t) for c in corpora for p, t in zip(c.pages, c.texts, strict=True)]
    articles = 0
    for n, (body, text) in enumerate(pages):
        link = f"https://bench.example/{n}.html"
        links = [link] if n % shared_every else [f"{link}#post{k}" for k in range(posts)]
        entries = [
            FeedEntry(
                key=entry_key(f"guid-{url}", url, None, None),
                guid=f"guid-{url}",
                link=url,
                title=f"Page {n}",
                summary=None,
                content=None,
            )
            for url in links
        ]
        jobs = store.record_entries(feed, entries).jobs
        packed = pack(body)
        headers = {"content-type": "text/html; charset=utf-8"}
        saves = [
            (
                job,
                ExtractedArticle(text=text, title=f"Page {n}"),
                Page(job.url, job.url, 200, headers, b"", utcnow()),
                packed,
            )
            for job in jobs
        ]
        store.save_articles(saves)
        articles += len(saves)
    store.close()
    return articles


def rewrite(path: Path, layout: str) -> None:
    """Turn the archive's captures into ``layout``: ``zlib-shared`` (shared bodies in zlib),
    ``inline`` (each capture its own zlib stream, no shared body: before revision 0015)."""
    store = Store.open(f"sqlite:///{path}")
    with store.engine.begin() as conn:
        bodies = {
            id_: unpack(data, what=str(id_))
            for id_, data in conn.exec_driver_sql("SELECT id, body FROM capture_bodies")
        }
        if layout == "zlib-shared":
            for id_, body in bodies.items():
                conn.execute(
                    sa.text("UPDATE capture_bodies SET body = :b WHERE id = :i"),
                    {"b": isal_zlib.compress(body, 1), "i": id_},
                )
        else:
            captures = conn.exec_driver_sql("SELECT id, body_id FROM captures").all()
            for capture, body_id in captures:
                conn.execute(
                    sa.text("UPDATE captures SET body = :b, body_id = NULL WHERE id = :i"),
                    {"b": isal_zlib.compress(bodies[body_id], 1), "i": capture},
                )
            conn.exec_driver_sql("DELETE FROM capture_bodies")
    store.close()


def sizes(path: Path) -> dict[str, Any]:
    with sa.create_engine(f"sqlite:///{path}").connect() as conn:
        conn.exec_driver_sql("VACUUM")
    store = Store.open(f"sqlite:///{path}", read_only=True)
    try:
        return store.storage()
    finally:
        store.close()


def measure_archive(
    corpora: Sequence[Corpus], shared_every: int, posts: int, folder: Path
) -> dict[str, Any]:
    now = folder / "now.sqlite3"
    articles = build(now, corpora, shared_every, posts)
    layouts: dict[str, Path] = {}
    for name in ("zlib-shared", "inline"):
        layouts[name] = folder / f"{name}.sqlite3"
        shutil.copyfile(now, layouts[name])
        rewrite(layouts[name], name)
    packed = folder / "packed.sqlite3"
    shutil.copyfile(layouts["inline"], packed)
    store = Store.open(f"sqlite:///{packed}")
    started = time.process_time()
    done = store.pack_captures()
    pack_ms = 1000 * (time.process_time() - started) / max(1, done.captures)
    store.close()
    return {
        "pages": sum(len(c.pages) for c in corpora),
        "articles": articles,
        "before 0015: each capture inline, zlib": sizes(layouts["inline"]),
        "bodies shared, zlib": sizes(layouts["zlib-shared"]),
        "bodies shared, zstd 6 (now)": sizes(now),
        "before 0015, then pack-captures": sizes(packed) | {"pack_ms_per_capture": pack_ms},
    }


# --- output --------------------------------------------------------------------------------------


def format_text(result: dict[str, Any]) -> str:
    lines = []
    for corpus in ("extraction", "readability"):
        rows = [r for r in result["codecs"] if r["corpus"] == corpus]
        if not rows:
            continue
        lines.append(f"\n{corpus}: {rows[0]['pages']} pages measured (the other half trains)")
        lines.append(f"{'codec':<56} {'size':>7} {'compress':>9} {'decompress':>11}")
        for r in rows:
            lines.append(
                f"{r['codec']:<56} {r['ratio']:>7.4f} {r['compress_ms']:>6.2f} ms "
                f"{r['decompress_ms']:>8.2f} ms"
            )
    lines.append(f"\nsame site, second page of {result['same_site']['hosts']} hosts:")
    lines += [f"  {k}: {v}" for k, v in result["same_site"].items() if k != "hosts"]
    archive = result.get("archive")
    if archive:
        lines.append(f"\narchive: {archive['pages']} pages as {archive['articles']} articles")
        lines.append(f"{'captures':<40} {'bytes':>12} {'per article':>12} {'captures':>9}")
        for name, s in archive.items():
            if isinstance(s, dict):
                lines.append(
                    f"{name:<40} {s['archive_bytes']:>12,} {s['bytes_per_article']:>12,} "
                    f"{s['captures_share']:>9.1%}"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extraction", type=Path, default=ROOT / "extraction")
    parser.add_argument("--readability", type=Path, default=ROOT / "readability")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-every", type=int, default=5)
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--no-archive", action="store_true", help="codecs only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    corpora = load(args.extraction, args.readability)
    result: dict[str, Any] = {
        "codecs": [row for c in corpora for row in measure_codecs(c, args.rounds)],
        "same_site": same_site(corpora[0]),
    }
    if not args.no_archive:
        with tempfile.TemporaryDirectory() as folder:
            result["archive"] = measure_archive(
                corpora, args.shared_every, args.posts, Path(folder)
            )
    print(json.dumps(result, indent=2) if args.json else format_text(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
