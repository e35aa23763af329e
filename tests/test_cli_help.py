"""Every command's `--help` works and shows an example; `ingest --version`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ingest import __version__
from ingest.cli import cli

COMMANDS = sorted(cli.commands)


def help_text(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="ingest")
    assert result.exit_code == 0, result.output
    assert result.exception is None
    return result.output


def description(output: str) -> str:
    """The help text above the option list: usage, the docstring, its example."""
    head, separator, _ = output.partition("\nOptions:\n")
    assert separator, output
    return head.rstrip()


def test_the_expected_commands_exist() -> None:
    assert {"fetch", "search", "show", "export", "feeds"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_ends_with_an_example(command: str) -> None:
    output = help_text(command)

    assert output.startswith(f"Usage: ingest {command} ")
    example = description(output).split("\n\n")[-1].splitlines()
    assert example[0].strip() == "Example:", output
    assert len(example) >= 2, output
    for line in example[1:]:
        assert line.startswith("    ingest "), output
    assert example[1].strip().startswith(f"ingest {command}"), output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_short_help_flag(command: str) -> None:
    assert CliRunner().invoke(cli, [command, "-h"], prog_name="ingest").output == help_text(command)


def test_group_help_ends_with_an_example_and_lists_commands() -> None:
    output = help_text()

    example = description(output).split("\n\n")[-1].splitlines()
    assert example[0].strip() == "Example:"
    assert example[1].strip().startswith("ingest ")
    commands = output.partition("\nCommands:\n")[2]
    for command in COMMANDS:
        assert f"\n  {command} " in f"\n{commands}"


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"], prog_name="ingest")

    assert result.exit_code == 0
    assert result.output == f"ingest, version {__version__}\n"


def test_version_as_a_module() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "ingest", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ingest, version {__version__}"
