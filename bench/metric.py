"""The article-extraction benchmark's metric (shared/corpus/extraction/README.md).

Texts become multisets of 4-token shingles; each page gets TP/FP/FN by multiset
intersection; precision and recall are averaged over pages (each page weighs the same),
F1 is the harmonic mean of those two averages, and the spread is a bootstrap over pages.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

SHINGLE_SIZE = 4
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0

_TOKEN_RE = re.compile(r"\w+")

Shingle = tuple[str, ...]


def tokens(text: str) -> list[str]:
    """Unicode word-character runs, case kept; punctuation and whitespace dropped."""
    return _TOKEN_RE.findall(text)


def shingles(toks: Sequence[str]) -> Counter[Shingle]:
    """Multiset of runs of 4 consecutive tokens; 1-3 tokens give one short shingle."""
    if len(toks) < SHINGLE_SIZE:
        return Counter([tuple(toks)] if toks else [])
    return Counter(tuple(toks[i : i + SHINGLE_SIZE]) for i in range(len(toks) - SHINGLE_SIZE + 1))


@dataclass(frozen=True)
class PageScore:
    """Shingle counts for one page. Ratios are None where the benchmark leaves the page out."""

    tp: int
    fp: int
    fn: int
    exact: bool

    @property
    def precision(self) -> float | None:
        # An empty prediction has no precision: it is only penalised through recall.
        predicted = self.tp + self.fp
        return self.tp / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        expected = self.tp + self.fn
        return self.tp / expected if expected else None

    @property
    def f1(self) -> float:
        """Per-page F1, for ranking pages only; the benchmark's F1 is not a mean of these."""
        return _harmonic(self.precision or 0.0, self.recall or 0.0)


def page_scores(pred: str, truth: str) -> PageScore:
    """Score one predicted article body against its ground truth."""
    pred_tokens, truth_tokens = tokens(pred), tokens(truth)
    pred_shingles, truth_shingles = shingles(pred_tokens), shingles(truth_tokens)
    tp = (pred_shingles & truth_shingles).total()
    return PageScore(
        tp=tp,
        fp=pred_shingles.total() - tp,
        fn=truth_shingles.total() - tp,
        exact=pred_tokens == truth_tokens,
    )


@dataclass(frozen=True)
class Summary:
    precision: float
    recall: float
    f1: float
    accuracy: float


@dataclass(frozen=True)
class Report:
    """Corpus figures, their bootstrap standard deviations, and the per-page scores."""

    score: Summary
    std: Summary
    pages: dict[str, PageScore] = field(repr=False)


def summarize(scores: Sequence[PageScore]) -> Summary:
    """Average per-page precision and recall over the pages where each is defined."""
    precisions = [s.precision for s in scores if s.precision is not None]
    recalls = [s.recall for s in scores if s.recall is not None]
    precision = statistics.fmean(precisions) if precisions else 0.0
    recall = statistics.fmean(recalls) if recalls else 0.0
    return Summary(
        precision=precision,
        recall=recall,
        f1=_harmonic(precision, recall),
        accuracy=sum(s.exact for s in scores) / len(scores) if scores else 0.0,
    )


def evaluate(
    preds: dict[str, str],
    truths: dict[str, str],
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> Report:
    """Score predictions against ground truth, both keyed by page id."""
    if preds.keys() != truths.keys():
        # A silently missing page would shift every average; make the caller decide.
        missing, extra = truths.keys() - preds.keys(), preds.keys() - truths.keys()
        raise ValueError(f"page ids differ: {len(missing)} missing, {len(extra)} unexpected")
    pages = {page_id: page_scores(preds[page_id], truths[page_id]) for page_id in truths}
    scores = list(pages.values())
    return Report(
        score=summarize(scores), std=_bootstrap_std(scores, n_bootstrap, seed), pages=pages
    )


def _bootstrap_std(scores: Sequence[PageScore], n_bootstrap: int, seed: int) -> Summary:
    # Resampling pages with replacement shows how much the figures owe to which pages were picked.
    if len(scores) < 2 or n_bootstrap < 2:
        return Summary(0.0, 0.0, 0.0, 0.0)
    rng = random.Random(seed)
    samples = [summarize(rng.choices(scores, k=len(scores))) for _ in range(n_bootstrap)]
    return Summary(
        precision=statistics.stdev(s.precision for s in samples),
        recall=statistics.stdev(s.recall for s in samples),
        f1=statistics.stdev(s.f1 for s in samples),
        accuracy=statistics.stdev(s.accuracy for s in samples),
    )


def _harmonic(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b else 0.0
