"""What indexing Chinese and Japanese as bigrams (migration 0009, `ingest.cjk`) costs.

    python -m bench.cjk --articles 20000                     # SQLite and PostgreSQL
    python -m bench.cjk --articles 50000 --no-postgres

The same archive is built at revision 0008 (CJK runs indexed as one word) and at the head:
`bench.archive_corpus` articles, every tenth one replaced by synthetic Japanese or Chinese
(Zipf-distributed characters from 3,000 ideographs, kana particles for Japanese, log-normal
length around 1,200 characters, 、。 every 8-30 characters). Rows go in with raw INSERTs in
transactions of 2,000, Latin first and CJK after, each timed, so the triggers' cost per
article shows for each. Reported: insert ms per article, index bytes per article (SQLite:
``articles_fts*`` by dbstat; PostgreSQL: the ``search`` column plus its GIN index), and
`Store.search` p50 (limit 20) for Latin two-word queries and CJK queries of 1, 2 and 3
characters taken from inside runs of the archive's own text.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.archive_corpus import ARTICLE_COLUMNS, FEED_COLUMNS, Corpus
from ingest.dbsession import open_engine
from ingest.search import Filters
from ingest.store import Store

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TITLE, TEXT, LANGUAGE = (ARTICLE_COLUMNS.index(c) for c in ("title", "text", "language"))
HAN = [chr(0x4E00 + i * 7) for i in range(3000)]  # spread over the block
KANA = [chr(c) for c in range(0x3041, 0x3094)]
WEIGHTS = [1 / (rank + 2.7) for rank in range(len(HAN))]


def cjk_text(rng: random.Random, chars: int, japanese: bool) -> str:
    out: list[str] = []
    clause = 0
    while sum(map(len, out)) < chars:
        out.append("".join(rng.choices(HAN, WEIGHTS, k=rng.randint(1, 3))))
        if japanese:
            out.append("".join(rng.choices(KANA, k=rng.randint(1, 3))))
        clause += len(out[-1])
        if clause > rng.randint(8, 30):
            out.append(rng.choice("、。。"))
            clause = 0
    return "".join(out)


def rows(total: int) -> list[tuple[Any, ...]]:
    corpus = Corpus(total)
    rng = random.Random(7)
    articles: list[tuple[Any, ...]] = []
    for first in range(1, total + 1, 2000):
        articles += corpus.batch(first, min(2000, total - first + 1))[0]
    for n in range(9, total, 10):  # every tenth: Japanese or Chinese
        row = list(articles[n])
        japanese = n % 20 == 9
        length = int(min(6000, max(200, rng.lognormvariate(7.1, 0.6))))
        row[TITLE] = cjk_text(rng, rng.randint(15, 30), japanese)
        row[TEXT] = cjk_text(rng, length, japanese)
        row[LANGUAGE] = "ja" if japanese else "zh"
        articles[n] = tuple(row)
    return articles


def migrate(url: str, revision: str) -> None:
    store = Store.open(url, migrate=False)
    store.upgrade(revision)
    store.close()


def _insert(table: str, columns: tuple[str, ...]) -> Any:
    names = ", ".join(columns)
    return sa.text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + c for c in columns)})")


def build(url: str, revision: str, articles: list[tuple[Any, ...]]) -> dict[str, float]:
    migrate(url, revision)
    engine = open_engine(url, create=False)
    insert, feeds = _insert("articles", ARTICLE_COLUMNS), _insert("feeds", FEED_COLUMNS)
    with engine.begin() as conn:
        rows = [dict(zip(FEED_COLUMNS, r, strict=True)) for r in Corpus(len(articles)).feeds()]
        conn.execute(feeds, [r | {"active": bool(r["active"])} for r in rows])
    result: dict[str, float] = {}
    for kind in ("latin", "cjk"):
        chosen = [a for a in articles if (a[LANGUAGE] in ("ja", "zh")) == (kind == "cjk")]
        params = [dict(zip(ARTICLE_COLUMNS, a, strict=True)) for a in chosen]
        started = time.perf_counter()
        for first in range(0, len(params), 2000):
            with engine.begin() as conn:
                conn.execute(insert, params[first : first + 2000])
        result[f"insert_ms_{kind}"] = (time.perf_counter() - started) * 1000 / len(params)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            size = conn.execute(
                sa.text("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'articles_fts%'")
            ).scalar()
        else:
            size = conn.execute(
                sa.text(
                    "SELECT pg_relation_size('ix_articles_search') + "
                    "(SELECT sum(pg_column_size(search)) FROM articles)"
                )
            ).scalar()
    result["index_bytes_per_article"] = float(size or 0) / len(articles)
    engine.dispose()
    return result


def queries(articles: list[tuple[Any, ...]], count: int) -> dict[str, list[str]]:
    rng = random.Random(11)
    cjk = [a for a in articles if a[LANGUAGE] in ("ja", "zh")]
    latin = [a for a in articles if a[LANGUAGE] not in ("ja", "zh")]
    out: dict[str, list[str]] = {
        "latin 2 words": [],
        "cjk 1 char": [],
        "cjk 2 chars": [],
        "cjk 3 chars": [],
    }
    for _ in range(count):
        words = str(rng.choice(latin)[TITLE]).split()
        out["latin 2 words"].append(" ".join(rng.sample(words, 2)))
        text = str(rng.choice(cjk)[TEXT])
        for n in (1, 2, 3):
            while True:
                at = rng.randrange(1, len(text) - 4)
                piece = text[at : at + n]
                if all(c in HAN or c in KANA for c in text[at - 1 : at + n + 1]):  # mid-run
                    break
            out[f"cjk {n} char{'s' if n > 1 else ''}"].append(piece)
    return out


def search(url: str, wanted: dict[str, list[str]]) -> dict[str, Any]:
    store = Store.open(url, migrate=False)  # 0008 too, as it was
    result: dict[str, Any] = {}
    for name, texts in wanted.items():
        times, found = [], []
        for text in texts:
            store.search(text, Filters(), limit=20)  # warm
            started = time.perf_counter()
            hits = store.search(text, Filters(), limit=20)
            times.append((time.perf_counter() - started) * 1000)
            found.append(len(hits))
        result[f"search_p50_ms {name}"] = statistics.median(times)
        result[f"search_max_ms {name}"] = max(times)
        result[f"hits_mean {name}"] = statistics.mean(found)
    store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    articles = rows(args.articles)
    wanted = queries(articles, args.queries)
    report: dict[str, Any] = {"articles": args.articles}
    with tempfile.TemporaryDirectory() as scratch:
        for revision in ("0008", "head"):
            url = f"sqlite:///{Path(scratch) / revision}.sqlite3"
            report[f"sqlite {revision}"] = build(url, revision, articles) | search(url, wanted)
            print(json.dumps(report, indent=1), flush=True)
    if not args.no_postgres:
        for revision in ("0008", "head"):
            schema = f"bench_cjk_{revision}"
            admin = sa.create_engine(POSTGRES)
            with admin.begin() as conn:
                conn.execute(
                    sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
                )
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            try:
                report[f"postgres {revision}"] = build(url, revision, articles) | search(
                    url, wanted
                )
            finally:
                with admin.begin() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()
            print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
    main()
