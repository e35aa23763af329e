"""What counts as a change worth a version, and the word diff between two versions."""

from __future__ import annotations

import pytest

from ingest.changes import (
    changed_paragraphs,
    chars_changed,
    count_changes,
    is_meaningful_change,
    is_timestamp_line,
    word_diff,
)

TEXT = (
    "The council approved the budget on Tuesday.\n\n"
    "Spending on roads rises by 4%, the first increase in six years.\n\n"
    "Last updated 10:02 AM EST, March 5, 2025"
)


@pytest.mark.parametrize(
    "line",
    [
        "Updated 3:45 PM EDT, March 5, 2025",
        "Last modified: 2025-03-05 14:35",
        "2 hours ago",
        "Published 5 minutes ago",
        "This article was last updated at 11:52 GMT on 6 March 2025.",
        "Aktualisiert am 12.03.2025, 14:35 Uhr",
        "Mis à jour le 05/03/2025 à 14h35",
        "Thursday 6 March 2025 09.14 GMT",
    ],
)
def test_timestamp_lines_are_told(line: str) -> None:
    assert is_timestamp_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "The vote was 52 to 48 on March 5.",
        "Score: 3-2",
        "The bridge opened in 1964.",
        "Spending on roads rises by 4%, the first increase in six years.",
        "Updated guidance tells schools to reopen on March 10 for all pupils in years 1 to 6.",
        "",
    ],
)
def test_lines_that_say_more_than_when_are_not_timestamps(line: str) -> None:
    assert not is_timestamp_line(line)


def test_whitespace_quotes_and_timestamps_are_not_changes() -> None:
    respaced = TEXT.replace("approved the", "approved  the").replace("\n\n", "\n \n")
    assert not is_meaningful_change("Budget", TEXT, "Budget ", respaced)
    curly = TEXT.replace("council", "council’s").replace("approved", "approved")
    straight = TEXT.replace("council", "council's")
    assert not is_meaningful_change("A", curly, "A", straight)
    restamped = TEXT.replace("10:02 AM", "4:40 PM")
    assert not is_meaningful_change("Budget", TEXT, "Budget", restamped)


def test_a_word_a_headline_or_a_paragraph_is_a_change() -> None:
    assert is_meaningful_change("Budget", TEXT, "Budget", TEXT.replace("4%", "5%"))
    assert is_meaningful_change("Budget passed", TEXT, "Budget passes narrowly", TEXT)
    assert is_meaningful_change("B", TEXT, "B", TEXT + "\n\nCorrection: the rise is 5%.")
    assert is_meaningful_change("B", TEXT, "B", TEXT.split("\n\n", 1)[0])


def test_an_empty_new_text_is_not_a_version() -> None:
    assert not is_meaningful_change("B", TEXT, "B", "")
    assert not is_meaningful_change("B", TEXT, "B Other", "  \n")


def test_the_word_diff_gives_both_texts_back_and_counts_characters() -> None:
    new = TEXT.replace("on Tuesday", "late on Tuesday").replace(" the first", "")
    pieces = word_diff(TEXT, new)
    old_back = "".join(p.text for p in pieces if p.op != "insert")
    new_back = "".join(p.text for p in pieces if p.op != "delete")
    assert (old_back, new_back) == (TEXT, new)
    assert chars_changed(pieces) == (len("late"), len("thefirst"))
    assert [p.text.strip() for p in pieces if p.op == "insert"] == ["late"]


def test_only_changed_paragraphs_are_shown_with_a_gap_between() -> None:
    old = "One.\n\nTwo stays.\n\nThree.\n\nFour stays.\n\nFive."
    new = "One!\n\nTwo stays.\n\nThree.\n\nFour stays.\n\nFive!"
    shown = list(changed_paragraphs(word_diff(old, new)))
    assert len(shown) == 3 and shown[1] is None
    assert {p.text for p in shown[0] or [] if p.op == "insert"} == {"One!"}
    assert {p.text for p in shown[2] or [] if p.op == "delete"} == {"Five."}


def test_cjk_text_diffs_by_its_runs() -> None:
    pieces = word_diff("東京で 会議が 開かれた。", "東京で 会議が 延期された。")
    assert [p.text for p in pieces if p.op == "insert"] == ["延期された。"]


def test_counting_changes_agrees_with_the_diff() -> None:
    pairs = [
        ("", TEXT),
        (TEXT, ""),
        (TEXT, TEXT.replace("4%", "5%").replace("the first", "a first")),
        ("One two three.\n\nFour five.", "One two.\n\nThree four five six."),
    ]
    for old, new in pairs:
        assert count_changes(old, new) == chars_changed(word_diff(old, new))
