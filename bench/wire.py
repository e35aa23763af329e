"""Wire copies: does `ingest.stories` group the copies of one story and nothing else?

    python -m bench.wire                         # quality, thresholds, cost; about a minute
    python -m bench.wire --scale 100000 --scale 1000000   # lookups in a large archive too

A labelled set made from the extraction corpus (108 real news pages, read from
../shared/corpus/extraction, `--corpus PATH` elsewhere; never copied): each page as it was, and
its story as three other outlets would publish it, each outlet with its own page around the
article (navigation, share bars, related links and most-read lists naming the outlet's other
stories, newsletter boxes, ads between paragraphs, footer), a tweaked headline, the last
paragraph or two trimmed, an editor's line or a dateline added. A tenth of the copies also
carry a background paragraph taken from another story (a same-topic story that reuses a
paragraph: not a copy). Every page goes through the real extraction (`ingest.extract`), then
the fingerprint.

Pairs of copies of one story are positives; every other pair is a negative, among them the
pages of one outlet (same chrome) and the pairs that share a reused paragraph. Precision and
recall over every pair, for each measure and threshold: ours (estimated containment and
Jaccard from the signature), the exact values of the same shingle sets (what the estimate
aims at), trafilatura's Simhash, and datasketch's MinHash when it is installed. Then the real
`ingest.storyindex` links every page into an SQLite archive in a shuffled order, and the stories
it made are scored the same way, with the cost of fingerprinting and of linking an article.

``--scale N`` builds an archive of N synthetic fingerprints (random signatures: 32 band keys
each) and times the linking of the corpus pages into it, with SQLite's query plan.
"""

from __future__ import annotations

import argparse
import gzip
import html
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from bench.extraction import DEFAULT_CORPUS, load_corpus

THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SEED = 13
OUTLETS = ("ledger", "tribune", "kxyz", "valley")
SECTIONS = ("Home", "U.S.", "World", "Politics", "Business", "Tech", "Science", "Sports", "Opinion")


@dataclass(frozen=True)
class Doc:
    story: int  # the corpus page it is a copy of
    site: str  # the outlet (or the corpus page's host)
    url: str
    html: str
    borrowed: int | None = None  # the story a background paragraph was taken from


@dataclass
class Extracted:
    doc: Doc
    text: str
    title: str | None


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def _headline(title: str, rng: random.Random, outlet: str) -> str:
    tweaks: list[Callable[[str], str]] = [
        lambda t: f"UPDATE: {t}",
        lambda t: f"{t} | {outlet.title()}",
        lambda t: t.split(":")[0].split(" - ")[0],
        lambda t: f"WATCH: {t}",
        lambda t: t.upper()[:1] + t[1:].lower(),
    ]
    return rng.choice(tweaks)(title)


def _edited(body: list[str], rng: random.Random, borrowed: str | None) -> list[str]:
    """The outlet's edit: trimmed ending, an editor's line or dateline, a borrowed paragraph."""
    body = list(body)
    if len(body) >= 5:
        body = body[: -rng.choice((1, 2))]
    elif len(body) >= 3:
        body = body[:-1]
    edit = rng.randrange(4)
    if edit == 0:
        body.insert(0, "Editor's note: This story has been updated with additional details.")
    elif edit == 1:
        body.append("The Associated Press contributed to this report.")
    elif edit == 2:
        body[0] = f"NEW YORK (AP) — {body[0]}"
    else:
        body.append("Correction: An earlier version of this story misstated a date.")
    if borrowed:
        body.insert(len(body) // 2, borrowed)
    return body


def _links(titles: Sequence[str], outlet: str) -> str:
    return "".join(
        f'<li><a href="https://{outlet}.example/news/{i}">{html.escape(t)}</a></li>'
        for i, t in enumerate(titles)
    )


def outlet_page(outlet: str, headline: str, body: list[str], others: Sequence[str]) -> str:
    """A story as ``outlet`` lays its pages out: each outlet its own markup and chrome."""
    paras = [f"<p>{html.escape(p)}</p>" for p in body]
    nav = "".join(f'<a href="/{s.lower()}">{s}</a> ' for s in SECTIONS)
    share = (
        '<div class="share">Share this article: <a href="#">Facebook</a> '
        '<a href="#">Twitter</a> <a href="#">Email</a> <a href="#">Copy link</a></div>'
    )
    h1 = html.escape(headline)
    if outlet == "ledger":
        middle = "".join(paras)
        main = (
            f'<article><h1>{h1}</h1><div class="byline">By The Associated Press</div>'
            f'{share}<div class="article-body">{middle}</div>{share}</article>'
            f"<aside><h3>Related stories</h3><ul>{_links(others[:4], outlet)}</ul></aside>"
        )
    elif outlet == "tribune":
        ad = '<div class="ad">Advertisement</div>'
        middle = "".join(p + (ad if i % 4 == 3 else "") for i, p in enumerate(paras))
        main = (
            f'<main><div class="story"><h1 class="headline">{h1}</h1>'
            f'<p class="dateline">Published 6:42 a.m. ET</p><section class="content">{middle}'
            f'</section><div class="newsletter">Get the morning briefing: sign up for our '
            f"newsletter, delivered to your inbox every weekday.</div></div>"
            f'<div class="most-read"><h3>Most read</h3><ol>{_links(others[4:9], outlet)}</ol>'
            f"</div></main>"
        )
    elif outlet == "kxyz":
        middle = "".join(paras)
        main = (
            f'<div id="content"><h2 class="title">{h1}</h2><div class="video-player">'
            f"Watch live: KXYZ News at 6</div>{middle}<p>Copyright 2025 The Associated Press. "
            f"All rights reserved. This material may not be published, broadcast, rewritten "
            f'or redistributed.</p><div class="tags">Tags: news, national</div>{share}</div>'
            f'<div class="sidebar"><h3>Trending</h3><ul>{_links(others[9:13], outlet)}</ul>'
            f"</div>"
        )
    else:
        related = f'<p class="related">Related: <a href="/news/r">{html.escape(others[13])}</a></p>'
        middle = "".join(p + (related if i == 2 else "") for i, p in enumerate(paras))
        main = (
            f'<div class="entry"><h1 class="entry-title">{h1}</h1>'
            f'<div class="entry-meta">Posted by Valley News Staff</div>'
            f'<div class="entry-content">{middle}</div><div class="comments">23 comments. '
            f"Join the conversation: log in to comment.</div></div>"
        )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{h1} - "
        f"{outlet.title()}</title></head><body><header><div class=logo>{outlet.title()}</div>"
        f'<nav>{nav}</nav><div class="cookie">We use cookies to improve your experience. '
        f'<button>Accept</button></div></header>{main}<footer><a href="/about">About us</a> '
        f'<a href="/contact">Contact</a> <a href="/privacy">Privacy policy</a> '
        f"© 2025 {outlet.title()} Media Group. All rights reserved.</footer></body></html>"
    )


def build_docs(corpus: Path) -> list[Doc]:
    """Each corpus page as it was, and as three of the outlets publish its story."""
    from urllib.parse import urlsplit

    pages = load_corpus(corpus)
    rng = random.Random(SEED)
    bodies = [paragraphs(p.truth) for p in pages]
    titles = [_title(p.html_path) or b[0][:80] for p, b in zip(pages, bodies, strict=True)]
    docs = []
    for story, page in enumerate(pages):
        original = gzip.decompress(page.html_path.read_bytes()).decode("utf-8", "replace")
        docs.append(Doc(story, urlsplit(page.url).hostname or "", page.url, original))
        others = [titles[(story + k) % len(pages)] for k in range(1, 15)]
        for outlet in OUTLETS:
            if OUTLETS.index(outlet) == story % len(OUTLETS):
                continue
            lender = (story + 1 + rng.randrange(len(pages) - 1)) % len(pages)
            # A background paragraph, at most a fifth of the story: the story stays its own.
            size = sum(len(p) for p in bodies[story])
            fits = [p for p in bodies[lender] if 5 * len(p) <= size]
            lend = rng.random() < 0.1 and bool(fits)
            borrowed = max(fits, key=len) if lend else None
            body = _edited(bodies[story], rng, borrowed)
            headline = _headline(titles[story], rng, outlet)
            url = f"https://{outlet}.example/news/story-{story}"
            page_html = outlet_page(outlet, headline, body, others)
            docs.append(Doc(story, outlet, url, page_html, lender if lend else None))
    return docs


def _title(path: Path) -> str | None:
    import lxml.html

    tree = lxml.html.fromstring(gzip.decompress(path.read_bytes()))
    found = tree.findtext(".//title")
    return " ".join(found.split()) if found else None


def extract(doc: Doc) -> Extracted:
    from ingest.errors import ExtractionError
    from ingest.extract import extract_article

    try:
        article = extract_article(doc.html, doc.url)
    except ExtractionError:
        return Extracted(doc, "", None)
    return Extracted(doc, article.text, article.title)


# Measures: a score for a pair of texts' fingerprints, precomputed per text.


def shingle_set(text: str) -> set[str]:
    from ingest.stories import SHINGLE, words

    tokens = words(text)
    return {" ".join(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def measures(texts: Sequence[str]) -> dict[str, Callable[[int, int], float]]:
    """Each measure as a function of two texts' indexes; a text too short to tell scores 0."""
    from trafilatura.deduplication import Simhash

    from ingest.stories import MIN_WORDS, Fingerprint, fingerprint, similarity, words

    prints = [fingerprint(t) for t in texts]
    sets = [shingle_set(t) if p else set() for t, p in zip(texts, prints, strict=True)]
    hashes = [Simhash(t) if len(words(t)) >= MIN_WORDS else None for t in texts]

    def containment(a: Fingerprint, b: Fingerprint) -> float:
        """The share of the shorter text's shingles the other holds, from the estimate j:
        |A∩B| = j (|A| + |B|) / (1 + j)."""
        j = similarity(a, b)
        return min(1.0, j * (a.shingles + b.shingles) / (1 + j) / min(a.shingles, b.shingles))

    def ours(score: Callable[..., float]) -> Callable[[int, int], float]:
        def pair(i: int, j: int) -> float:
            a, b = prints[i], prints[j]
            return score(a, b) if a and b else 0.0

        return pair

    def exact_jaccard(i: int, j: int) -> float:
        a, b = sets[i], sets[j]
        return len(a & b) / len(a | b) if a and b else 0.0

    def exact_containment(i: int, j: int) -> float:
        a, b = sets[i], sets[j]
        return len(a & b) / min(len(a), len(b)) if a and b else 0.0

    def simhash(i: int, j: int) -> float:
        a, b = hashes[i], hashes[j]
        return a.similarity(b) if a and b else 0.0

    found = {
        "ours: Jaccard (estimated)": ours(similarity),
        "ours: containment (estimated)": ours(containment),
        "exact containment (same shingles)": exact_containment,
        "exact Jaccard (same shingles)": exact_jaccard,
        "trafilatura Simhash (64 bits)": simhash,
    }
    try:
        from datasketch import MinHash
    except ImportError:
        return found
    sketches = []
    for shingles in sets:
        sketch = MinHash(num_perm=128)
        sketch.update_batch([s.encode() for s in shingles])
        sketches.append(sketch if shingles else None)

    def datasketch(i: int, j: int) -> float:
        a, b = sketches[i], sketches[j]
        return float(a.jaccard(b)) if a and b else 0.0

    found["datasketch MinHash Jaccard (128 perms)"] = datasketch
    return found


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    fp_same_site: int = 0
    fp_borrowed: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def count(docs: Sequence[Doc], same: Callable[[int, int], bool]) -> Counts:
    counts = Counts()
    for i, j in combinations(range(len(docs)), 2):
        a, b = docs[i], docs[j]
        truth = a.story == b.story
        said = same(i, j)
        if truth and said:
            counts.tp += 1
        elif truth:
            counts.fn += 1
        elif said:
            counts.fp += 1
            counts.fp_same_site += a.site == b.site
            counts.fp_borrowed += a.borrowed == b.story or b.borrowed == a.story
    return counts


def link_all(texts: Sequence[str], order: Sequence[int]) -> tuple[list[int | None], list[float]]:
    """Every text linked by the real `ingest.storyindex` into a fresh SQLite archive, in
    ``order``, `SAVE_BATCH` a transaction as the pipeline saves them; the story each got, and
    the ms each batch took an article (lookups, verification, rows, commit)."""
    from ingest.saving import SAVE_BATCH
    from ingest.store import Store
    from ingest.stories import fingerprint
    from ingest.storyindex import link

    prints = [fingerprint(t) for t in texts]  # made in the extraction workers
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/wire.sqlite3")
        ids = _fill(store, len(texts))
        stories: list[int | None] = [None] * len(texts)
        ms = []
        with store.engine.connect() as conn:
            for start in range(0, len(order), SAVE_BATCH):
                batch = order[start : start + SAVE_BATCH]
                started = time.perf_counter()
                with conn.begin():
                    for index in batch:
                        stories[index] = link(conn, ids[index], prints[index])
                ms.append((time.perf_counter() - started) * 1000 / len(batch))
        store.close()
    return stories, ms


def _fill(store: object, count: int) -> list[int]:
    """``count`` stored articles of one feed, in the archive's own schema; their ids."""
    engine = store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO feeds (url, error_count, active) VALUES ('f', 0, 1)")
        conn.exec_driver_sql(
            "INSERT INTO articles (feed_id, authors, content_source, status, attempts) "
            "VALUES " + ",".join(["(1, '[]', 'page', 'ok', 0)"] * count)
        )
        return [row[0] for row in conn.exec_driver_sql("SELECT id FROM articles ORDER BY id")]


def fingerprint_ms(texts: Sequence[str]) -> tuple[float, float]:
    """CPU ms a text of making the fingerprint, and of its band keys (median of 5 runs)."""
    from ingest.stories import fingerprint

    runs, band_runs = [], []
    for _ in range(5):
        started = time.process_time()
        prints = [fingerprint(t) for t in texts]
        runs.append((time.process_time() - started) * 1000 / len(texts))
        started = time.process_time()
        for p in prints:
            if p:
                p.bands  # noqa: B018 (what it costs is the point)
        band_runs.append((time.process_time() - started) * 1000 / len(texts))
    return statistics.median(runs), statistics.median(band_runs)


def scale(texts: Sequence[str], size: int) -> str:
    """Link the corpus texts into an archive of ``size`` synthetic fingerprints: ms each."""
    from ingest.cjk import register
    from ingest.store import Store
    from ingest.stories import BANDS, BINS, fingerprint
    from ingest.storyindex import link

    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp) / "scale.sqlite3"
        Store.open(f"sqlite:///{path}").close()
        started = time.perf_counter()
        db = sqlite3.connect(path)
        register(db)  # the search index's triggers call it
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("INSERT INTO feeds (url, error_count, active) VALUES ('f', 0, 1)")
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO articles (id, feed_id, authors, content_source, status, attempts, "
            "story_id) SELECT i, 1, '[]', 'page', 'ok', 0, i FROM n",
            (size,),
        )
        db.execute(
            "INSERT INTO story_fingerprints SELECT id, randomblob(?), 600 FROM articles",
            (BINS * 4,),
        )
        # Random keys, as unrelated texts' are; sorted, as a B-tree is best filled.
        db.execute(
            "WITH RECURSIVE b(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM b WHERE k < ?) "
            "INSERT INTO story_bands SELECT abs(random()) AS band, id FROM articles, b "
            "ORDER BY band",
            (BANDS - 1,),
        )
        db.commit()
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT article_id, count(*) FROM story_bands WHERE band IN "
            "(1, 2, 3) AND article_id != 0 GROUP BY article_id ORDER BY 2 DESC LIMIT 16"
        ).fetchall()
        db.close()
        built = time.perf_counter() - started
        megabytes = path.stat().st_size / 1e6
        store = Store.open(f"sqlite:///{path}")
        prints = [fingerprint(t) for t in texts]
        ms, batches = [], []
        with store.engine.connect() as conn:
            pairs = list(enumerate(prints, start=size + 1))
            # Batches of 32 as the pipeline saves them, commits (and WAL checkpoints) counted.
            for start in range(0, len(pairs), 32):
                batch = pairs[start : start + 32]
                began = time.perf_counter()
                with conn.begin():
                    for article_id, found in batch:
                        started = time.perf_counter()
                        link(conn, article_id, found)
                        ms.append((time.perf_counter() - started) * 1000)
                batches.append((time.perf_counter() - began) * 1000 / len(batch))
        store.close()
    ms.sort()
    plan_text = "; ".join(row[-1] for row in plan)
    return (
        f"{size:>9,} fingerprints ({megabytes:,.0f} MB, built in {built:.0f} s): link p50 "
        f"{ms[len(ms) // 2]:.3f} ms, p95 {ms[int(len(ms) * 0.95)]:.3f} ms, max {ms[-1]:.3f} ms; "
        f"with commits, an article: {sum(batches) / len(batches):.3f} ms (mean of "
        f"{len(batches)} batches of 32)"
        f"\n           plan: {plan_text}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--jobs", type=int, default=1, help="extraction processes")
    parser.add_argument("--scale", type=int, action="append", default=[], metavar="N")
    args = parser.parse_args(argv)
    from ingest.stories import THRESHOLD

    docs = build_docs(args.corpus)
    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            extracted = list(pool.map(extract, docs, chunksize=8))
    else:
        extracted = [extract(d) for d in docs]
    texts = [e.text for e in extracted]
    stories = len({d.story for d in docs})
    borrowed = sum(d.borrowed is not None for d in docs)
    print(
        f"{len(docs)} pages ({stories} stories: each page as it was and 3 outlets' copies; "
        f"{borrowed} copies with a paragraph of another story), extracted in "
        f"{time.perf_counter() - started:.0f} s; {sum(not t for t in texts)} gave no text"
    )
    print("\nPairs: precision / recall (false positives: same site, shared paragraph)")
    found = measures(texts)
    for name, score in found.items():
        print(f"\n  {name}")
        scores = {pair: score(*pair) for pair in combinations(range(len(docs)), 2)}
        for threshold in THRESHOLDS:
            c = count(docs, lambda i, j, t=threshold: scores[i, j] >= t)  # noqa: B023
            chosen = name.startswith("ours: Jaccard") and threshold == THRESHOLD
            mark = " <- chosen" if chosen else ""
            print(
                f"    >= {threshold:.2f}: {c.precision:.4f} / {c.recall:.4f}  "
                f"(fp {c.fp}: {c.fp_same_site}, {c.fp_borrowed}; fn {c.fn}){mark}"
            )
    order = list(range(len(docs)))
    random.Random(SEED).shuffle(order)
    linked, ms = link_all(texts, order)
    c = count(docs, lambda i, j: linked[i] is not None and linked[i] == linked[j])
    made, bands = fingerprint_ms([t for t in texts if t])
    print(
        f"\nStories as ingest.storyindex links them (SQLite, shuffled arrival, threshold "
        f"{THRESHOLD}): precision {c.precision:.4f}, recall {c.recall:.4f} (fp {c.fp}, fn "
        f"{c.fn}); {len(set(linked) - {None})} stories for {stories}"
    )
    ms.sort()
    print(
        f"Cost an article: fingerprint {made:.3f} ms CPU (in the worker) + band keys "
        f"{bands:.3f} ms; linking in batches of 32 (lookups, verification, rows, commit) "
        f"{statistics.median(ms):.3f} ms an article (median of {len(ms)} batches)"
    )
    for size in args.scale:
        print(scale(texts, size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
