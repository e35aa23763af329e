"""Synthetic news archive rows for `bench.archive`: no publisher text, realistic shapes.

- Vocabulary: generated, pronounceable words per language (en 50,000; de/fr/es 20,000 each,
  with their diacritics), drawn with Zipf-Mandelbrot frequencies (p ~ 1/(rank + 2.7)); frequent
  words are short, rare ones long, as in real text (about 6 bytes per word with the space).
- Bodies: log-normal length (median 600 words, sigma 0.6; the extraction corpus has median 528,
  sigma 0.93), clipped to 80..6000 words, in 5..40 paragraphs of sentences of 6..28 words.
  Each article has 2..6 "topic" words (log-uniform over ranks 200..V) repeated 2..8 times:
  real news is bursty (a rare name occurs many times in few articles), which shapes document
  frequencies and BM25 the way real archives do.
- Metadata: 50 sites (42 en, 3 de, 3 fr, 2 es) with 4 section feeds each, titles of 6..14
  words (one topic word), a lead of 15..35 words, 1..3 authors from a pool of 3,000 names plus
  wire services, `published` increasing with the id over 5 years (ids grow with time, as in a
  real archive), `content_source='page'`, `status='ok'`, 3% of articles also listed by a second
  feed of the same site.

Every batch is seeded by its index, so an archive is the same whatever the number of
producer processes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SECTIONS = ("world", "politics", "business", "science")
LANGUAGES = (("en", 42), ("de", 3), ("fr", 3), ("es", 2))
VOCAB_SIZE = {"en": 50_000, "de": 20_000, "fr": 20_000, "es": 20_000}
ZIPF_Q = 2.7  # Mandelbrot's offset: flattens the head like real word counts
YEARS = 5
PHRASES = 500_000
WIRES = ("Reuters", "The Associated Press", "AFP")

_ONSETS = "b c d f g h j k l m n p r s t v w y z b d l m n r s t br ch cr dr gr pl pr sh st th"
_VOWELS = {
    "en": "a e i o u a e i o ea ee ou ai io",
    "de": "a e i o u ä ö ü ei au ie e",
    "fr": "a e i o u é è ou ai eau ê a",
    "es": "a e i o u á é í ó ia ue o",
}
_CODAS = "- - - - - n r s t l m n r s nd st ng"

ARTICLE_COLUMNS = (
    "id",
    "url_key",
    "url",
    "final_url",
    "canonical_url",
    "feed_id",
    "guid",
    "title",
    "authors",
    "published",
    "updated",
    "language",
    "site_name",
    "summary",
    "text",
    "content_source",
    "content_hash",
    "status",
    "attempts",
    "next_attempt_at",
    "error",
    "error_message",
    "fetched_at",
    "created_at",
)
ENTRY_COLUMNS = ("feed_id", "entry_key", "article_id", "seen_at")
FEED_COLUMNS = (
    "id",
    "url",
    "name",
    "title",
    "site_url",
    "language",
    "last_polled_at",
    "last_status",
    "error_count",
    "next_poll_at",
    "created_at",
    "active",
    "interval",
)


# (up to rank, syllables min, max): the head is short words, the tail long ones.
_SYLLABLES = ((150, 1, 1), (5_000, 1, 2), (30_000, 2, 2), (10**9, 2, 3))


def _words(lang: str, size: int, seed: int) -> list[str]:
    """``size`` distinct pronounceable words, frequent (short) ones first."""
    rng = random.Random(seed)
    onsets, vowels = _ONSETS.split(), _VOWELS[lang].split()
    codas = [c.strip("-") for c in _CODAS.split()]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < size:
        low, high = next((lo, hi) for upto, lo, hi in _SYLLABLES if len(out) < upto)
        word = "".join(
            rng.choice(onsets) * (rng.random() < 0.8) + rng.choice(vowels) + rng.choice(codas)
            for _ in range(rng.randint(low, high))
        )
        if len(word) > 1 and word not in seen:
            seen.add(word)
            out.append(word)
    return out


@dataclass(frozen=True)
class Vocabulary:
    words: list[str]
    cum: list[float]  # cumulative Zipf-Mandelbrot weights
    table: list[str]  # inverse CDF: `rng.choices(table, k=n)` is 3x faster than cum_weights
    title_table: list[str]  # the same without the 30 most frequent words
    phrases: list[tuple[str, int]]  # (text, words): bodies are built from these

    @classmethod
    def make(cls, lang: str, seed: int = 1) -> Vocabulary:
        size = VOCAB_SIZE[lang]
        words = _words(lang, size, seed * 1000 + sum(map(ord, lang)))
        weights = [1.0 / (rank + ZIPF_Q) for rank in range(1, size + 1)]
        cum = list(itertools.accumulate(weights))
        # 2^22 slots: the rarest word (p ~ 2e-6) still gets about 8
        table = _inverse_cdf(words, weights, 1 << 22)
        title = _inverse_cdf(words[30:], weights[30:], 1 << 20)
        # Drawing every word of 600M costs ~250 ns each in Python (too slow for 1M articles on
        # 2 cores); drawing phrases of 3..10 Zipf words from a large pool keeps the word
        # frequencies and document frequencies, at a tenth of the cost.
        rng = random.Random(seed * 7919 + size)
        phrases = []
        for _ in range(PHRASES if lang == "en" else PHRASES // 5):
            length = rng.randint(3, 10)
            phrases.append((" ".join(rng.choices(table, k=length)), length))
        return cls(words, cum, table, title, phrases)

    def frequency(self, rank: int) -> float:
        """Probability of the word of ``rank`` (1-based) at any position."""
        return (1.0 / (rank + ZIPF_Q)) / self.cum[-1]


def _inverse_cdf(words: list[str], weights: list[float], slots: int) -> list[str]:
    total = sum(weights)
    table: list[str] = []
    for word, cum in zip(words, itertools.accumulate(weights), strict=True):
        table.extend([word] * (round(cum / total * slots) - len(table)))
    return table


@dataclass(frozen=True)
class Site:
    domain: str
    name: str
    language: str
    feed_ids: tuple[int, ...]


class Corpus:
    """Deterministic generator of feeds, articles and entries."""

    def __init__(self, total: int, *, seed: int = 1, end: datetime | None = None) -> None:
        self.total = total
        self.seed = seed
        self.vocab = {lang: Vocabulary.make(lang, seed) for lang in VOCAB_SIZE}
        rng = random.Random(seed)
        end = end or datetime(2026, 1, 1, tzinfo=UTC)
        self.start = end - timedelta(days=365 * YEARS)
        self.span = (end - self.start).total_seconds()
        names = Vocabulary.make("en", seed + 7).words[2000:8000]
        first, last = names[:3000], names[3000:]
        self.authors = [
            f"{rng.choice(first).capitalize()} {rng.choice(last).capitalize()}" for _ in range(3000)
        ]
        self.sites: list[Site] = []
        langs = [lang for lang, count in LANGUAGES for _ in range(count)]
        for index, lang in enumerate(langs):
            stem = names[index * 7] + names[index * 7 + 1]
            ids = tuple(range(index * len(SECTIONS) + 1, (index + 1) * len(SECTIONS) + 1))
            self.sites.append(Site(f"{stem}.example", stem.capitalize() + " News", lang, ids))
        self.site_of_feed = {f: s for s in self.sites for f in s.feed_ids}

    def feeds(self) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        now = _stamp(self.start + timedelta(seconds=self.span))
        for site in self.sites:
            for section, feed_id in zip(SECTIONS, site.feed_ids, strict=True):
                rows.append(
                    (
                        feed_id,
                        f"https://www.{site.domain}/{section}/rss.xml",
                        f"{site.name} {section.capitalize()}",
                        f"{site.name}: {section}",
                        f"https://www.{site.domain}/",
                        site.language,
                        now,
                        "ok",
                        0,
                        now,
                        _stamp(self.start),
                        1,
                        1800.0,
                    )
                )
        return rows

    def batch(self, first_id: int, count: int) -> tuple[list[tuple[object, ...]], list[tuple]]:
        """Articles ``first_id .. first_id + count - 1`` and their entries."""
        rng = random.Random(self.seed * 1_000_003 + first_id)
        articles: list[tuple[object, ...]] = []
        entries: list[tuple[object, ...]] = []
        feed_count = len(self.site_of_feed)
        for article_id in range(first_id, first_id + count):
            feed_id = rng.randint(1, feed_count)
            site = self.site_of_feed[feed_id]
            row = self._article(rng, article_id, feed_id, site)
            articles.append(row)
            seen_at = row[-1]
            entries.append((feed_id, _sha(str(row[6])), article_id, seen_at))
            if rng.random() < 0.03:  # also listed by another section of the same site
                other = rng.choice([f for f in site.feed_ids if f != feed_id])
                entries.append((other, _sha(str(row[6])), article_id, seen_at))
        return articles, entries

    def _article(self, rng: random.Random, article_id: int, feed_id: int, site: Site) -> tuple:
        vocab = self.vocab[site.language]
        words = vocab.words
        size = len(words)
        topics = [
            words[min(size, int(math.exp(rng.uniform(math.log(200), math.log(size))))) - 1]
            for _ in range(rng.randint(2, 6))
        ]
        count = min(6000, max(80, int(rng.lognormvariate(math.log(600), 0.6))))
        body: list[str] = []
        have = 0
        while have < count:  # one draw of enough phrases (mean 6.5 words), rarely two
            for phrase, length in rng.choices(vocab.phrases, k=(count - have) // 6 + 1):
                body.append(phrase)
                have += length
                if have >= count:
                    break
        for topic in topics:
            for _ in range(rng.randint(2, 8)):
                body.insert(rng.randrange(len(body) + 1), topic)
        text = _paragraphs(rng, body, have)
        title_words = rng.choices(vocab.title_table, k=rng.randint(6, 14))
        title_words[rng.randrange(len(title_words))] = topics[0]
        title = " ".join(w.capitalize() if len(w) > 3 else w for w in title_words)
        title = title[0].upper() + title[1:]
        lead = rng.choices(vocab.table, k=rng.randint(15, 35))
        lead[0] = topics[0]
        summary = _sentence(lead)
        # ids grow with time: evenly spread over the span, with jitter inside each slot
        when = self.start + timedelta(
            seconds=(article_id - 1 + rng.random()) * self.span / self.total
        )
        section = SECTIONS[site.feed_ids.index(feed_id)]
        # ASCII slugs: a URL with é would be percent-encoded by url_key, not kept as is
        slug = "-".join(title_words[:6]).translate(_ASCII).lower()
        url = (f"https://www.{site.domain}/{section}/{when:%Y/%m/%d}/{slug}-{article_id}").lower()
        authors = (
            [rng.choice(WIRES)]
            if rng.random() < 0.15
            else [rng.choice(self.authors) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        )
        created = when + timedelta(seconds=rng.uniform(60, 3 * 3600))
        fetched = created + timedelta(seconds=rng.uniform(0.5, 30))
        updated = (
            _stamp(when + timedelta(seconds=rng.uniform(600, 2 * 86400)))
            if rng.random() < 0.3
            else None
        )
        return (
            article_id,
            url,  # url_key: these URLs are already normal (checked by bench.archive)
            url,
            url,
            url,
            feed_id,
            url,
            title,
            json.dumps(authors),
            _stamp(when),
            updated,
            site.language,
            site.name,
            summary,
            text,
            "page",
            hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest(),
            "ok",
            1,
            None,
            None,
            None,
            _stamp(fetched),
            _stamp(created),
        )


_ASCII = str.maketrans("äöüéèêàáíóñ", "aoueeeaaion")


def _sentence(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _paragraphs(rng: random.Random, body: list[str], words: int) -> str:
    """Sentences of 1..4 phrases (6..28 words), grouped in 5..40 paragraphs."""
    sentences: list[str] = []
    i = 0
    for length in rng.choices((1, 2, 3, 4), k=len(body)):
        if i >= len(body):
            break
        sentences.append(_sentence(body[i : i + length]))
        i += length
    wanted = min(40, max(5, round(words / rng.uniform(25, 55))))
    wanted = max(1, min(wanted, len(sentences)))
    cuts = sorted(rng.sample(range(1, len(sentences)), wanted - 1)) if wanted > 1 else []
    bounds = [0, *cuts, len(sentences)]
    return "\n\n".join(" ".join(sentences[a:b]) for a, b in itertools.pairwise(bounds))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a DateTime on SQLite: naive UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def rank_of(vocab: Vocabulary, word: str) -> int:
    return vocab.words.index(word) + 1


def sample_rank(rng: random.Random, low: int, high: int) -> int:
    """A rank log-uniform in [low, high]."""
    return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))
