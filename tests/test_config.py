"""`ingest.config.load_settings`: layering, strict file validation, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.config import DEFAULT_DATABASE_URL, SECTIONS, load_settings, parse_duration
from ingest.errors import ConfigError

DOCUMENTED = """\
[database]
url = "sqlite:////srv/archive/archive.sqlite3"
[fetch]
allow_private_networks = true
[[feeds]]
url = "http://127.0.0.1:8080/feeds/world.rss"
name = "World"
"""


def write(tmp_path: Path, text: str, name: str = "ingest.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- the documented form and the defaults ------------------------------------------------------


def test_documented_example_loads(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENTED)

    settings = load_settings(path, environ={})

    assert settings.database.url == "sqlite:////srv/archive/archive.sqlite3"
    assert settings.fetch.allow_private_networks is True
    assert [(f.url, f.name) for f in settings.feeds] == [
        ("http://127.0.0.1:8080/feeds/world.rss", "World")
    ]
    assert settings.source == str(path)


def test_partial_file_keeps_defaults_for_other_keys(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[fetch]\nmax_redirects = 2\n"), environ={})

    assert settings.fetch.max_redirects == 2
    assert settings.fetch.timeout == 20.0
    assert settings.database.url == DEFAULT_DATABASE_URL
    assert settings.feeds == []


def test_defaults_when_default_file_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings(environ={})

    assert settings.database.url == DEFAULT_DATABASE_URL
    assert settings.fetch.allow_private_networks is False
    assert settings.extract.workers == 0
    assert settings.feeds == []
    assert settings.source == "(defaults)"


def test_default_file_is_read_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", '[[feeds]]\nurl = "https://news.example.org/rss"\n')
    monkeypatch.chdir(tmp_path)

    settings = load_settings(environ={})

    assert [f.url for f in settings.feeds] == ["https://news.example.org/rss"]


def test_ingest_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[fetch]\nper_host = 1\n", name="other.toml")

    settings = load_settings(environ={"INGEST_CONFIG": str(path)})

    assert settings.fetch.per_host == 1
    assert settings.source == str(path)


def test_integer_is_accepted_for_a_float_field(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[fetch]\ntimeout = 20\n"), environ={})

    assert settings.fetch.timeout == 20.0
    assert isinstance(settings.fetch.timeout, float)


# --- durations: every key that is a length of time takes units ------------------------------

DURATION_KEYS = [
    "database.lease",
    "fetch.timeout",
    "fetch.connect_timeout",
    "fetch.read_timeout",
    "fetch.host_delay",
    "fetch.retry_after",
    "fetch.max_retry_after",
    "extract.timeout",
    "schedule.interval",
    "schedule.min_interval",
    "schedule.max_interval",
    "schedule.error_backoff",
    "schedule.max_error_backoff",
    "daemon.tick",
    "daemon.retry_every",
    "daemon.reload_every",
    "daemon.shutdown_timeout",
    "sitemaps.backfill",
]


def test_every_float_key_is_a_duration() -> None:
    # A key of seconds added later as a bare float would refuse "2s": this list would miss it.
    floats = {
        f"{section}.{key}"
        for section, model in SECTIONS.items()
        for key, field in model.model_fields.items()
        if field.annotation is float
    }
    assert floats == set(DURATION_KEYS)
    for key in DURATION_KEYS:
        section, name = key.split(".")
        metadata = SECTIONS[section].model_fields[name].metadata
        assert any(getattr(m, "func", None) is parse_duration for m in metadata), key


@pytest.mark.parametrize("key", DURATION_KEYS)
@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0)]
)
def test_every_duration_key_takes_units(
    tmp_path: Path, key: str, text: str, seconds: float
) -> None:
    section, name = key.split(".")
    lines = [f"[{section}]", f'{name} = "{text}"']
    if name == "max_interval":
        lines.append('min_interval = "1ms"')  # the bounds stay ordered

    settings = load_settings(write(tmp_path, "\n".join(lines) + "\n"), environ={})

    assert getattr(getattr(settings, section), name) == seconds


@pytest.mark.parametrize("key", DURATION_KEYS)
def test_every_duration_key_takes_units_from_the_environment(tmp_path: Path, key: str) -> None:
    variable = "INGEST_" + key.replace(".", "_").upper()

    settings = load_settings(write(tmp_path, ""), environ={variable: "10m"})

    section, name = key.split(".")
    assert getattr(getattr(settings, section), name) == 600.0


@pytest.mark.parametrize("key", DURATION_KEYS)
@pytest.mark.parametrize("text", ["2x", "soon", "5 parsecs", "-1s", ""])
def test_bad_duration_names_the_key(tmp_path: Path, key: str, text: str) -> None:
    section, name = key.split(".")
    path = write(tmp_path, f'[{section}]\n{name} = "{text}"\n')

    message = config_error(path)

    assert str(path) in message
    assert key in message
    assert "duration" in message or "greater than" in message


def test_a_feed_interval_takes_units(tmp_path: Path) -> None:
    path = write(tmp_path, '[[feeds]]\nurl = "https://a.example/rss"\ninterval = "1h30m"\n')

    assert load_settings(path, environ={}).feeds[0].interval == 5400.0


def test_a_host_delay_of_zero_means_none(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[fetch]\nhost_delay = "0s"\n'), environ={})

    assert settings.fetch.host_delay == 0.0


# --- precedence ---------------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENTED)

    settings = load_settings(path, environ={"INGEST_DATABASE_URL": "sqlite:///from-env.sqlite3"})

    assert settings.database.url == "sqlite:///from-env.sqlite3"
    assert settings.fetch.allow_private_networks is True  # the rest of the file still applies


def test_environment_strings_are_coerced(tmp_path: Path) -> None:
    environ = {"INGEST_FETCH_TIMEOUT": "7.5", "INGEST_EXTRACT_KEEP_RAW": "false"}

    settings = load_settings(write(tmp_path, ""), environ=environ)

    assert settings.fetch.timeout == 7.5
    assert settings.extract.keep_raw is False


def test_overrides_beat_environment(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENTED)

    settings = load_settings(
        path,
        environ={"INGEST_DATABASE_URL": "sqlite:///from-env.sqlite3"},
        overrides={"database": {"url": "sqlite:///from-flag.sqlite3"}},
    )

    assert settings.database.url == "sqlite:///from-flag.sqlite3"


# --- errors: one line naming the file and the key -----------------------------------------------


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[fetch]\ntimout = 5\n")

    message = config_error(path)

    assert str(path) in message
    assert "fetch.timout" in message
    assert "unknown key" in message


def test_unknown_section_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[fecth]\ntimeout = 5\n")

    message = config_error(path)

    assert str(path) in message
    assert "fecth" in message


def test_top_level_source_key_is_unknown(tmp_path: Path) -> None:
    # `source` is an internal field of Settings, not a config key: a file stating it must be
    # refused like any other unknown key, not silently ignored.
    path = write(tmp_path, 'source = "elsewhere"\n')

    message = config_error(path)

    assert str(path) in message
    assert "source" in message


def test_string_for_boolean_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[fetch]\nallow_private_networks = "yes"\n')

    message = config_error(path)

    assert str(path) in message
    assert "fetch.allow_private_networks" in message


@pytest.mark.parametrize(
    "url", ["ftp://files.example.org/feed.xml", "https:///feed.xml", "news.example.org/rss"]
)
def test_bad_feed_url_names_file_and_key(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f'[[feeds]]\nurl = "{url}"\n')

    message = config_error(path)

    assert str(path) in message
    assert "feeds[0].url" in message


def test_feed_without_url_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[feeds]]\nname = "World"\n')

    message = config_error(path)

    assert str(path) in message
    assert "feeds[0].url" in message


def test_duplicate_feed_url_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[feeds]]\nurl = "https://a.example/rss"\nname = "A"\n'
        '[[feeds]]\nurl = "https://a.example/rss"\nname = "B"\n',
    )

    message = config_error(path)

    assert str(path) in message
    assert "feeds" in message
    assert "https://a.example/rss" in message


def test_duplicate_feed_name_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[feeds]]\nurl = "https://a.example/rss"\nname = "World"\n'
        '[[feeds]]\nurl = "https://b.example/rss"\nname = "World"\n',
    )

    message = config_error(path)

    assert str(path) in message
    assert "feeds" in message
    assert "World" in message


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[fetch\ntimeout = 5\n")

    message = config_error(path)

    assert str(path) in message
    assert "TOML" in message
    assert "line 1" in message


def test_config_file_not_utf8_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[fetch]\nuser_agent = "café bot"\n'.encode("latin-1"))

    message = config_error(path)

    assert str(path) in message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    message = config_error(path)

    assert str(path) in message
    assert "cannot read" in message


def test_missing_file_named_by_environment_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    message = config_error(None, {"INGEST_CONFIG": str(path)})

    assert str(path) in message


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a-directory.toml"
    path.mkdir()

    message = config_error(path)

    assert str(path) in message
    assert "cannot read" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INGEST_FETCH_TIMEOUT", "soon"),
        ("INGEST_FETCH_ALLOW_PRIVATE_NETWORKS", "maybe"),
        ("INGEST_FETCH_MAX_REDIRECTS", "2.5"),
    ],
)
def test_bad_environment_value_names_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    message = config_error(write(tmp_path, ""), {variable: value})

    assert variable in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INGEST_FETCH_TIMEOUT", "-5"),
        ("INGEST_FETCH_CONCURRENCY", "0"),
        ("INGEST_DATABASE_URL", "mysql://db.example.org/news"),
    ],
)
def test_out_of_range_environment_value_names_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    # Well-typed but invalid (a constraint or validator fails): still the variable's fault.
    message = config_error(write(tmp_path, ""), {variable: value})

    assert variable in message


def test_bad_override_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={}, overrides={"database": {"url": "mysql://db.example.org"}})

    assert "database.url" in str(caught.value)


# --- through the real command line --------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ingest: error:")
    for name in names:
        assert name in lines[0]


def test_cli_wrong_type_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[fetch]\nallow_private_networks = "yes"\n')

    result = run_cli(tmp_path, "--config", str(path), "fetch")

    assert_one_line_error(result, str(path), "fetch.allow_private_networks")


def test_cli_unknown_key_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///a.sqlite3"\npath = "x"\n')

    result = run_cli(tmp_path, "--config", str(path), "fetch")

    assert_one_line_error(result, str(path), "database.path")


def test_cli_missing_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    result = run_cli(tmp_path, "--config", str(path), "fetch")

    assert_one_line_error(result, str(path))


def test_cli_config_not_utf8_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[fetch]\nuser_agent = "café bot"\n'.encode("latin-1"))

    result = run_cli(tmp_path, "--config", str(path), "fetch")

    assert_one_line_error(result, str(path))
