"""The command line: every command documented, the contract's names present."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from govfeed import __version__
from govfeed.cli import cli

CONTRACT = {"run", "poll", "import", "status", "reparse", "check-config"}


def test_every_command_has_help_with_an_example() -> None:
    for name, command in cli.commands.items():
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help and len(command.help.split()) > 5, name
        assert "Example:" in result.output, name


def test_contract_commands_exist() -> None:
    assert set(cli.commands) >= CONTRACT


def test_version_and_python_dash_m() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.output.strip() == f"govfeed, version {__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "govfeed", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "import" in done.stdout


def test_bad_log_level_names_the_option() -> None:
    result = CliRunner().invoke(cli, ["--log-level", "loud", "status"])
    assert result.exit_code == 2
    assert "--log-level" in result.output
