"""The config file edited in place: only the feed tables added or removed change, in any
layout a person writes; what the edit cannot follow, or would break, is refused unwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import ConfigError
from ingest.configedit import ConfigFile

FEED = "https://a.example/rss"


def edit(tmp_path: Path, text: str) -> ConfigFile:
    path = tmp_path / "ingest.toml"
    path.write_bytes(text.encode())
    return ConfigFile(path)


def test_line_endings_are_kept(tmp_path: Path) -> None:
    config = edit(tmp_path, '# config\r\n[[feeds]]\r\nurl = "https://b.example/rss"\r\n')

    text = config.with_feeds_added([{"url": FEED, "name": "A"}])

    assert text == (
        '# config\r\n[[feeds]]\r\nurl = "https://b.example/rss"\r\n\r\n'
        f'[[feeds]]\r\nname = "A"\r\nurl = "{FEED}"\r\n'
    )


def test_a_file_without_feeds_gets_them_at_its_end(tmp_path: Path) -> None:
    config = edit(tmp_path, "[fetch]\nhost_delay = 0  # no final newline")

    text = config.with_feeds_added([{"url": FEED, "tags": ["a b", 'q"uote']}])

    assert text == (
        "[fetch]\nhost_delay = 0  # no final newline\n\n"
        f'[[feeds]]\nurl = "{FEED}"\ntags = ["a b", "q\\"uote"]\n'
    )


def test_the_files_opening_comment_is_not_taken_with_the_first_feed(tmp_path: Path) -> None:
    config = edit(
        tmp_path,
        f'# my feeds\n[[feeds]]\nurl = "{FEED}"\n\n# B\n[[feeds]]\nurl = "https://b.example/"\n',
    )

    assert config.with_feed_removed(0) == '# my feeds\n# B\n[[feeds]]\nurl = "https://b.example/"\n'
    assert config.with_feed_removed(1) == f'# my feeds\n[[feeds]]\nurl = "{FEED}"\n'


def test_feeds_written_inline_are_not_edited(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"written as a \[\[feeds\]\] table"):
        edit(tmp_path, f'feeds = [{{url = "{FEED}"}}]\n')


def test_a_feeds_header_inside_a_multiline_string_is_refused(tmp_path: Path) -> None:
    text = f'[[feeds]]\nurl = "{FEED}"\n\n[serve]\ntoken = """\n[[feeds]]\n0123456789abcdef"""\n'

    with pytest.raises(ConfigError, match="multi-line string"):
        edit(tmp_path, text)


def test_an_edit_that_would_not_validate_is_refused(tmp_path: Path) -> None:
    config = edit(tmp_path, "")

    with pytest.raises(ConfigError, match=r"would make it invalid: .*feeds\[0\]\.url"):
        config.with_feeds_added([{"url": "gopher://a.example/"}])


def test_a_file_changed_meanwhile_is_left_as_the_other_writer_left_it(tmp_path: Path) -> None:
    config = edit(tmp_path, "")
    text = config.with_feeds_added([{"url": FEED}])
    config.path.write_text("# someone else's edit\n")

    with pytest.raises(ConfigError, match="changed by someone else"):
        config.write(text)

    assert config.path.read_text() == "# someone else's edit\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ingest.toml"]
