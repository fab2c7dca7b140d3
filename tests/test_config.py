"""load_settings and read_secret: defaults, validation messages, secrets kept out of sight."""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path

import pydantic
import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from govfeed.cli import cli
from govfeed.config import (
    DEFAULT_SENDER_DOMAINS,
    AgencySettings,
    AuthenticationSettings,
    DatabaseSettings,
    MailboxSettings,
    ReplicationSettings,
    Secret,
    Settings,
    load_settings,
    read_secret,
    trust_policy,
)
from govfeed.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "govfeed.example.toml"

MAILBOX = """
[[mailboxes]]
name = "dod"
host = "imap.example.org"
username = "feeds@example.org"
password_env = "IMAP_PASSWORD"
"""


def write(tmp_path: Path, text: str, name: str = "govfeed.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert "\n" not in message
    return message.replace(f"{path}: ", "govfeed.toml: ", 1)


def mailbox(**overrides: object) -> MailboxSettings:
    values: dict[str, object] = {
        "name": "dod",
        "host": "imap.example.org",
        "username": "feeds@example.org",
        "password_env": "IMAP_PASSWORD",
    }
    values.update(overrides)
    return MailboxSettings.model_validate(values)


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVFEED_CONFIG", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_no_file_gives_the_defaults() -> None:
    settings = load_settings(None)
    assert settings.database.path == Path("govfeed.db")
    assert settings.mailboxes == ()
    assert settings.authentication.unauthenticated == "quarantine"
    assert settings.authentication.sender_domains == DEFAULT_SENDER_DOMAINS
    assert settings.source is None


def test_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[database]\npath = "/srv/feeds.db"\n')
    monkeypatch.setenv("GOVFEED_CONFIG", str(path))
    settings = load_settings(None)
    assert settings.database.path == Path("/srv/feeds.db")
    assert settings.source == path


def test_db_override_wins(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\npath = "/srv/feeds.db"\n' + MAILBOX)
    settings = load_settings(path, db_override=Path("other.db"))
    assert settings.database.path == Path("other.db")
    assert settings.mailboxes[0].name == "dod"
    assert settings.source == path


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    text = '[database]\npath = "data/govfeed.db"\n' + MAILBOX.replace(
        'password_env = "IMAP_PASSWORD"', 'password_file = "secret/pw"\nca_file = "ca.pem"'
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.database.path == tmp_path / "data" / "govfeed.db"
    assert settings.mailboxes[0].password_file == tmp_path / "secret" / "pw"
    assert settings.mailboxes[0].ca_file == tmp_path / "ca.pem"


def test_mailbox_defaults() -> None:
    m = mailbox()
    assert (m.security, m.port, m.folders, m.poll_interval) == ("imaps", 993, ("INBOX",), 300)
    assert (m.batch_size, m.timeout, m.post_action, m.idle) == (200, 60, "none", True)
    assert (m.since, m.move_target, m.ca_file) == (None, None, None)
    assert m.secret_source == ("password_env", "IMAP_PASSWORD")


def test_port_follows_security() -> None:
    assert mailbox(security="starttls").port == 143
    assert mailbox(security="none", allow_plaintext=True).port == 143
    assert mailbox(security="starttls", port=1143).port == 1143


def test_settings_are_frozen() -> None:
    settings = load_settings(None)
    with pytest.raises(pydantic.ValidationError):
        settings.database = DatabaseSettings(path=Path("x.db"))


def test_a_bad_value_names_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, MAILBOX + 'security = "ssl"\n')
    assert message == (
        "govfeed.toml: mailboxes[0].security: must be one of imaps, starttls, none (got 'ssl')"
    )


def test_plaintext_is_refused_unless_allowed(tmp_path: Path) -> None:
    message = error_for(tmp_path, MAILBOX + 'security = "none"\n')
    assert message.startswith("govfeed.toml: mailboxes[0].security: ")
    assert "allow_plaintext = true" in message
    settings = load_settings(write(tmp_path, MAILBOX + 'security = "none"\nallow_plaintext = true'))
    assert settings.mailboxes[0].security == "none"


def test_unknown_keys_are_errors_with_a_suggestion(tmp_path: Path) -> None:
    assert error_for(tmp_path, MAILBOX + "poll_intervall = 60\n") == (
        "govfeed.toml: mailboxes[0].poll_intervall: unknown key (did you mean poll_interval?)"
    )
    assert error_for(tmp_path, "[databse]\npath = 'x'\n") == (
        "govfeed.toml: databse: unknown key (did you mean database?)"
    )


def test_an_inline_password_is_refused_with_the_alternatives(tmp_path: Path) -> None:
    message = error_for(tmp_path, MAILBOX + 'password = "hunter2"\n')
    assert "mailboxes[0].password: inline passwords are not supported" in message
    assert "hunter2" not in message


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[database]\npath = \n")
    assert message.startswith("govfeed.toml: invalid TOML: ")
    assert "line 2" in message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read: No such file"):
        load_settings(tmp_path / "nope.toml")


def test_exactly_one_secret_source(tmp_path: Path) -> None:
    none = MAILBOX.replace('password_env = "IMAP_PASSWORD"\n', "")
    assert "set exactly one of password_file, password_env" in error_for(tmp_path, none)
    assert "(found none)" in error_for(tmp_path, none)
    two = MAILBOX + 'credential = "imap-password"\n'
    assert "(found password_env and credential)" in error_for(tmp_path, two)


def test_several_problems_on_one_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, MAILBOX + "poll_interval = 5\nbatch_size = 9000\nfolders = []\n")
    assert "mailboxes[0].poll_interval: must be greater than or equal to 10" in message
    assert "mailboxes[0].batch_size: must be less than or equal to 5000" in message
    assert "mailboxes[0].folders: must not be empty" in message


def test_mailbox_names_are_unique(tmp_path: Path) -> None:
    message = error_for(tmp_path, MAILBOX + MAILBOX)
    assert message == "govfeed.toml: mailboxes[1].name: 'dod' is used twice"


def test_required_keys(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[[mailboxes]]\nname = "x"\npassword_env = "P"\n')
    assert "mailboxes[0].host: required" in message
    assert "mailboxes[0].username: required" in message


def test_post_actions() -> None:
    assert mailbox(post_action="seen").move_target is None
    assert mailbox(post_action="move:Processed").move_target == "Processed"
    with pytest.raises(pydantic.ValidationError, match="must be none, seen or move:<folder>"):
        mailbox(post_action="delete")
    with pytest.raises(pydantic.ValidationError, match="a folder it reads"):
        mailbox(post_action="move:INBOX")


def test_since_is_a_toml_date(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MAILBOX + "since = 2024-01-31\n"))
    assert settings.mailboxes[0].since == date(2024, 1, 31)


def test_authentication_overrides_per_mailbox(tmp_path: Path) -> None:
    text = (
        '[authentication]\ntrusted_authserv_ids = ["MX.Google.com"]\n'
        + MAILBOX
        + 'unauthenticated = "reject"\n'
        + MAILBOX.replace('"dod"', '"doj"')
    )
    settings = load_settings(write(tmp_path, text))
    dod = settings.authentication_for("dod")
    assert (dod.trusted_authserv_ids, dod.unauthenticated) == (("mx.google.com",), "reject")
    assert settings.authentication_for("doj") == trust_policy(settings.authentication)
    assert settings.authentication_for(None) == trust_policy(settings.authentication)
    assert settings.mailbox("doj").name == "doj"
    with pytest.raises(ConfigError, match="no mailbox named 'x'"):
        settings.mailbox("x")


def test_the_example_config_is_valid_and_documents_every_key() -> None:
    settings = load_settings(EXAMPLE)
    assert [m.name for m in settings.mailboxes] == ["dod"]
    text = EXAMPLE.read_text()
    for model in (
        Settings,
        DatabaseSettings,
        AuthenticationSettings,
        MailboxSettings,
        AgencySettings,
        ReplicationSettings,
    ):
        for key in model.model_fields:
            # An optional section may be shown commented out: `# [replication]`.
            pattern = rf"^#? ?\[{key}\]|^\[\[{key}\]\]|^#? ?{key} = "
            assert re.search(pattern, text, re.MULTILINE), f"{key} is not in the example"


# -- secrets ---------------------------------------------------------------------------


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2", "password")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n")
    (tmp_path / "pw").chmod(0o600)
    secret = read_secret(mailbox(password_env=None, password_file=tmp_path / "pw"))
    assert (secret.reveal(), secret.kind) == ("hunter2", "password")


def test_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAP_PASSWORD", "hunter2 ")
    assert read_secret(mailbox()).reveal() == "hunter2 "
    monkeypatch.delenv("IMAP_PASSWORD")
    with pytest.raises(ConfigError, match=r"mailbox dod: password_env: \$IMAP_PASSWORD is not"):
        read_secret(mailbox())


def test_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = mailbox(password_env=None, credential="imap-password")
    with pytest.raises(ConfigError, match=r"\$CREDENTIALS_DIRECTORY is not set"):
        read_secret(m)
    (tmp_path / "imap-password").write_text("hunter2")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret(m).reveal() == "hunter2"
    with pytest.raises(pydantic.ValidationError):
        mailbox(password_env=None, credential="../etc/shadow")


def test_oauth2_token_file_and_command(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  ya29.token\n")
    secret = read_secret(mailbox(password_env=None, oauth2_token_file=tmp_path / "token"))
    assert (secret.reveal(), secret.kind) == ("ya29.token", "oauth2")
    command = [sys.executable, "-c", "print('ya29.fresh')"]
    secret = read_secret(mailbox(password_env=None, oauth2_token_command=command))
    assert (secret.reveal(), secret.kind) == ("ya29.fresh", "oauth2")


def test_a_failing_token_command_is_a_config_error() -> None:
    failing = [sys.executable, "-c", "print('ya29.partial'); raise SystemExit(3)"]
    with pytest.raises(ConfigError, match="exited with status 3") as raised:
        read_secret(mailbox(password_env=None, oauth2_token_command=failing))
    assert "ya29" not in str(raised.value)
    with pytest.raises(ConfigError, match="cannot run /nonexistent/get-token"):
        read_secret(mailbox(password_env=None, oauth2_token_command=["/nonexistent/get-token"]))


def test_an_unreadable_or_empty_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mailbox dod: password_file: cannot read .*/pw"):
        read_secret(mailbox(password_env=None, password_file=tmp_path / "pw"))
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_secret(mailbox(password_env=None, password_file=tmp_path / "pw"))


def test_secrets_are_not_in_the_settings(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n")
    (tmp_path / "pw").chmod(0o600)
    text = MAILBOX.replace('password_env = "IMAP_PASSWORD"', 'password_file = "pw"')
    settings = load_settings(write(tmp_path, text))
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


def test_a_secret_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n")
    (tmp_path / "pw").chmod(0o644)
    text = MAILBOX.replace('password_env = "IMAP_PASSWORD"', 'password_file = "pw"')
    path = write(tmp_path, text)
    with capture_logs() as logs:
        load_settings(path)
    assert logs == [
        {
            "event": "config_secret_readable",
            "log_level": "warning",
            "mailbox": "dod",
            "key": "password_file",
            "path": str(tmp_path / "pw"),
            "mode": "0644",
            "problem": "readable by group or others",
        }
    ]
    (tmp_path / "pw").chmod(0o600)
    with capture_logs() as logs:
        load_settings(path)
    assert logs == []


def test_a_secret_file_in_a_folder_others_can_write_is_warned_about(tmp_path: Path) -> None:
    """Whoever may write the folder may swap the file for one of their own."""
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "pw").write_text("hunter2\n")
    (folder / "pw").chmod(0o600)
    text = MAILBOX.replace('password_env = "IMAP_PASSWORD"', 'password_file = "shared/pw"')
    path = write(tmp_path, text)
    for mode, warned in ((0o777, True), (0o775, True), (0o1777, False), (0o755, False)):
        folder.chmod(mode)
        with capture_logs() as logs:
            load_settings(path)
        problems = [(log["path"], log["problem"]) for log in logs]
        expected = [(str(folder), "in a folder group or others can write")] if warned else []
        assert problems == expected, oct(mode)


def test_check_config_never_shows_a_token_commands_arguments(tmp_path: Path) -> None:
    text = MAILBOX.replace(
        'password_env = "IMAP_PASSWORD"',
        'oauth2_token_command = ["/usr/local/bin/get-token", "--secret", "s3cr3t"]',
    )
    result = CliRunner().invoke(cli, ["--config", str(write(tmp_path, text)), "check-config"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in result.output and "--secret" not in result.output
    assert "oauth2_token_command /usr/local/bin/get-token (2 arguments not shown)" in result.output


# -- the agency registry ----------------------------------------------------------------


def test_config_agencies_extend_the_built_in_registry_and_replace_by_name(
    tmp_path: Path,
) -> None:
    text = (
        '[[agencies]]\nname = "Oxford City Council"\naccount_codes = ["ukoxford"]\n'
        'senders = ["YourOxford@public.govdelivery.com"]\n'
        '[[agencies]]\nname = "U.S. Department of Defense"\naccount_codes = ["USDOD"]\n'
    )
    registry = load_settings(write(tmp_path, text)).registry
    assert [a.name for a in registry] == ["Oxford City Council", "U.S. Department of Defense"]
    assert registry[0].account_codes == ("UKOXFORD",)
    assert registry[0].senders == ("youroxford@public.govdelivery.com",)
    assert registry[1].aliases == ()  # replaced: the built-in aliases are gone
    built_in = load_settings(write(tmp_path, "")).registry
    assert [a.name for a in built_in] == ["U.S. Department of Defense"]
    assert "U.S. Department of War" in built_in[0].aliases
    assert "war.gov" in built_in[0].senders


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "X"\naccount_codes = ["no spaces"]', "agencies[0].account_codes: "),
        ('name = "X"\nsenders = ["not a domain"]', "agencies[0].senders: "),
        ('name = ""', "agencies[0].name: "),
        ('name = "X"\nalias = ["Y"]', "agencies[0].alias: unknown key (did you mean aliases?)"),
    ],
)
def test_a_bad_agency_entry_names_the_key(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(write(tmp_path, f"[[agencies]]\n{entry}\n"))


def test_an_agency_cannot_take_a_built_in_agencys_alias(tmp_path: Path) -> None:
    """ "DoD" names the built-in Department of Defense: a county calling itself so would be
    matched in registry order, silently; replacing the built-in entry by name is the way."""
    text = '[[agencies]]\nname = "Dodge County"\naliases = ["DoD"]\n'
    message = "agencies[0]: 'DoD' already names 'U.S. Department of Defense' (built in: an entry"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(write(tmp_path, text))
    replacing = '[[agencies]]\nname = "U.S. Department of Defense"\naliases = ["DoD"]\n'
    registry = load_settings(write(tmp_path, replacing)).registry
    assert [a.aliases for a in registry if a.name == "U.S. Department of Defense"] == [("DoD",)]


def test_two_agencies_cannot_share_a_name(tmp_path: Path) -> None:
    text = '[[agencies]]\nname = "A"\naliases = ["Same"]\n[[agencies]]\nname = "Same"\n'
    with pytest.raises(ConfigError, match="'Same' already names 'A'"):
        load_settings(write(tmp_path, text))
