"""The command line: every command documented, the contract's names present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def mailbox_config(tmp_path: Path, secret: str) -> Path:
    config = tmp_path / "govfeed.toml"
    config.write_text(
        f"""
[database]
path = "govfeed.db"

[[mailboxes]]
name = "dod"
host = "imap.example.org"
username = "feeds@example.org"
{secret}
"""
    )
    return config


def test_check_config_fails_naming_a_missing_password_file(tmp_path: Path) -> None:
    config = mailbox_config(tmp_path, 'password_file = "imap-password"')
    result = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert result.exit_code == 1
    missing = tmp_path / "imap-password"
    assert f"mailbox dod: password_file: cannot read {missing}: No such file" in result.output


def test_check_config_fails_naming_an_unreadable_token_file(tmp_path: Path) -> None:
    # A folder where the file should be: unreadable even for root, which reads any mode.
    (tmp_path / "token").mkdir()
    config = mailbox_config(tmp_path, 'oauth2_token_file = "token"')
    result = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert result.exit_code == 1
    assert f"oauth2_token_file: cannot read {tmp_path / 'token'}: Is a directory" in result.output


def test_check_config_passes_with_a_readable_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("hunter2\n")
    secret.chmod(0o600)
    config = mailbox_config(tmp_path, 'password_file = "imap-password"')
    result = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output


def test_run_without_mailboxes_exits_at_once_saying_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "govfeed.toml"
    config.write_text('[database]\npath = "govfeed.db"\n')
    # A real process: before this check, `run` idled forever with nothing to poll.
    done = subprocess.run(
        [sys.executable, "-m", "govfeed", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"error: {config}: no [[mailboxes]], so `run` has nothing to poll" in done.stderr
    assert "govfeed import" in done.stderr
    assert not (tmp_path / "govfeed.db").exists()


def test_import_without_a_config_names_the_database_and_the_trust_settings(
    tmp_path: Path,
) -> None:
    mail = Path(__file__).parent / "data" / "dod-release.eml"
    done = subprocess.run(
        [sys.executable, "-m", "govfeed", "import", str(mail)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "GOVFEED_LOG_LEVEL": "error"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first == (
        "warning: no trusted_authserv_ids ([authentication]): government mail will be"
        f" quarantined (database {tmp_path / 'govfeed.db'}; no config file: built-in"
        " defaults; pass --config FILE)"
    )
    assert "quarantined 1" in done.stdout
