"""The benchmark metric on hand-made texts (no corpus needed)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.metric import evaluate, page_scores, shingles, tokens

BODY = "The council approved the budget on Tuesday.\n\nSpending on schools rises by four percent."
SECOND = "Opposition members said the plan cut too deep into transport."


def test_tokens_are_unicode_word_runs_with_case_kept() -> None:
    assert tokens("Hello, Wörld! 東京 — x_y 42%") == ["Hello", "Wörld", "東京", "x_y", "42"]


def test_shingles_are_overlapping_runs_of_four() -> None:
    assert shingles(tokens("a b c d e")) == Counter(
        {("a", "b", "c", "d"): 1, ("b", "c", "d", "e"): 1}
    )


@pytest.mark.parametrize("text", ["one", "one two", "one two three"])
def test_one_to_three_tokens_give_one_short_shingle(text: str) -> None:
    assert shingles(tokens(text)) == Counter({tuple(text.split()): 1})


def test_empty_text_gives_no_shingle() -> None:
    assert shingles(tokens(" ,. ")) == Counter()


def test_exact_match_ignores_punctuation_and_whitespace() -> None:
    score = page_scores(BODY.replace("\n\n", " ").replace(".", " !"), BODY)
    assert (score.precision, score.recall, score.exact) == (1.0, 1.0, True)


def test_case_is_kept() -> None:
    score = page_scores(BODY.lower(), BODY)
    assert not score.exact
    assert score.precision is not None
    assert score.precision < 1.0


def test_missing_paragraph_lowers_recall_only() -> None:
    score = page_scores(BODY, f"{BODY}\n\n{SECOND}")
    assert score.precision == 1.0
    assert score.recall is not None
    assert 0.0 < score.recall < 1.0
    assert not score.exact


def test_extra_boilerplate_lowers_precision_only() -> None:
    score = page_scores(f"Subscribe to our newsletter for more news\n\n{BODY}", BODY)
    assert score.recall == 1.0
    assert score.precision is not None
    assert 0.0 < score.precision < 1.0


def test_short_texts_match_only_as_a_whole() -> None:
    assert page_scores("Breaking news", "Breaking news").exact
    partial = page_scores("Breaking", "Breaking news")
    assert (partial.tp, partial.fp, partial.fn) == (0, 1, 1)


def test_multiplicity_counts() -> None:
    # The truth's one shingle matches only one of the two repeated copies (a repeated lead).
    score = page_scores("alpha beta gamma delta alpha beta gamma delta", "alpha beta gamma delta")
    assert (score.tp, score.fp, score.fn) == (1, 4, 0)


def test_empty_prediction_has_no_precision_and_zero_recall() -> None:
    score = page_scores("", BODY)
    assert score.precision is None
    assert score.recall == 0.0


def test_empty_prediction_is_excluded_from_precision_but_counts_against_recall() -> None:
    report = evaluate({"a": BODY, "b": ""}, {"a": BODY, "b": SECOND}, n_bootstrap=0)
    assert report.score.precision == 1.0
    assert report.score.recall == 0.5
    assert report.score.accuracy == 0.5


def test_f1_is_harmonic_mean_of_averages_not_mean_of_page_f1() -> None:
    long, short = "a b c d e f g", "a b c d e"  # 4 shingles, and 2 of them
    report = evaluate({"x": short, "y": long}, {"x": long, "y": short}, n_bootstrap=0)
    assert report.pages["x"].precision == report.pages["y"].recall == 1.0
    assert report.pages["x"].recall == report.pages["y"].precision == 0.5
    assert report.score.precision == report.score.recall == 0.75
    assert report.score.f1 == pytest.approx(0.75)
    mean_page_f1 = (report.pages["x"].f1 + report.pages["y"].f1) / 2
    assert mean_page_f1 == pytest.approx(2 / 3)


def test_bootstrap_is_seeded_and_zero_when_pages_agree() -> None:
    truths = {"a": BODY, "b": SECOND, "c": BODY}
    mixed = {"a": BODY, "b": "", "c": f"Advertisement {BODY}"}
    assert evaluate(mixed, truths).std == evaluate(mixed, truths).std
    assert evaluate(mixed, truths).std.recall > 0.0
    perfect = evaluate(truths, truths).std
    assert (perfect.precision, perfect.recall, perfect.f1, perfect.accuracy) == (0, 0, 0, 0)


def test_page_ids_must_match() -> None:
    with pytest.raises(ValueError, match="1 missing"):
        evaluate({"a": BODY}, {"a": BODY, "b": SECOND})


# --- bench.generality -------------------------------------------------------------------------

STORY = (
    "The harbour authority will replace the old tide gauge at the north pier this spring. "
    "Engineers said the new gauge sends a reading every minute to the port office."
)


def test_reference_text_keeps_blocks_apart() -> None:
    from bench.generality import reference_text

    html = "<div><h2>Tides</h2><p>One <b>bold</b> line</p><ul><li>a</li><li>b</li></ul></div>"

    assert reference_text(html) == "Tides\nOne bold line\na\nb"


def test_generality_counts_a_page_given_up_as_empty(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from bench.generality import main

    pages = {
        "story": f"<html><body><article><h1>Gauge</h1><p>{STORY}</p></article></body></html>",
        "empty": "<html><body><div><img src='/logo.png' alt=''></div></body></html>",
    }
    for name, html in pages.items():
        folder = tmp_path / "pages" / name
        folder.mkdir(parents=True)
        (folder / "source.html").write_text(html, encoding="utf-8")
        (folder / "expected.html").write_text(f"<div><p>{STORY}</p></div>", encoding="utf-8")
        (folder / "expected-metadata.json").write_text('{"readerable": true}', encoding="utf-8")

    assert main(["--corpus", str(tmp_path), "--jobs", "1", "--json", "--per-page"]) == 0

    doc = json.loads(capsys.readouterr().out)
    ingest = doc["totals"]["all"]["ingest"]
    assert ingest["gave_up"] == 1
    assert ingest["recall"] == pytest.approx(0.5)  # the page given up counts, with recall 0
    assert {p["page"]: p["ingest"]["failure"] is not None for p in doc["pages"]} == {
        "story": False,
        "empty": True,
    }
