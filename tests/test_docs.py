"""The README matches the code: its status sample is what `govfeed status` prints, every
command has an example, and every example runs `govfeed` the way the set-up says."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from govfeed.cli import cli
from govfeed.schema import SCHEMA_VERSION

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DEMO_MAIL = ROOT / "examples" / "demo-maildir"


def code_blocks(text: str, language: str = "sh") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def readme_status_sample() -> str:
    """The block after the line `<!-- status sample: tests/test_docs.py -->`."""
    found = re.search(r"<!-- status sample: tests/test_docs.py -->\n```\n(.*?)```", README, re.S)
    assert found, "README lost its status sample marker"
    return found.group(1)


def status_of_the_demo(tmp_path: Path) -> str:
    """`govfeed status` on the demo mail, as read from a mailbox `dod` with DoD's cadence."""
    db = tmp_path / "govfeed.db"
    config = tmp_path / "govfeed.toml"
    config.write_text(
        f"""
[database]
path = "{db}"

[authentication]
trusted_authserv_ids = ["mx.google.com"]

[[mailboxes]]
name = "dod"
host = "imap.example.org"
username = "feeds@example.org"
password_env = "IMAP_PASSWORD"

[[agencies]]
name = "U.S. Department of Defense"
aliases = ["U.S. Department of War", "Department of War", "Department of Defense"]
account_codes = ["USDOD"]
senders = ["usdod@public.govdelivery.com", "defense.gov", "war.gov"]
expected_every_hours = 72
"""
    )
    imported = CliRunner().invoke(cli, ["--config", str(config), "import", str(DEMO_MAIL)])
    assert imported.exit_code == 0, imported.output
    # The demo mail came from files; say it came from the mailbox, polled a moment ago.
    with sqlite3.connect(db) as conn:
        conn.execute("update messages set mailbox = 'dod', folder = 'INBOX'")
        conn.execute(
            "insert into mailbox_state (mailbox, folder, uidvalidity, last_uid, last_poll_at,"
            " last_success_at) values ('dod', 'INBOX', 1, 15,"
            " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
        )
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 0, result.output
    return result.stdout


def mask(text: str) -> list[str]:
    """What changes from run to run (paths, sizes, times, lags) masked; columns un-padded."""
    text = re.sub(r"database  \S+ \(\d+\.\d MB", "database  DB (N MB", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
    text = re.sub(r"\b\d+[smh]\b|\b\d+ h ago\b", "AGO", text)
    return [" ".join(line.split()) for line in text.splitlines()]


def test_the_readme_status_sample_is_real_output(tmp_path: Path) -> None:
    sample = readme_status_sample()
    assert f"schema {SCHEMA_VERSION})" in sample
    assert mask(sample) == mask(status_of_the_demo(tmp_path))


def test_every_command_has_an_example_in_the_readme() -> None:
    examples = "\n".join(code_blocks(README))
    for name in cli.commands:
        pattern = rf"^(?:sudo )?govfeed(?: --\S+ \S+)* {re.escape(name)}\b"
        assert re.search(pattern, examples, re.MULTILINE), f"no README example runs `{name}`"


def test_the_readme_puts_govfeed_on_path_and_every_example_uses_it() -> None:
    setup = README.split("## What it does")[0]
    assert ". .venv/bin/activate" in setup
    for block in code_blocks(README):
        assert ".venv/bin/govfeed" not in block, block


def test_every_lock_file_pins_what_pyproject_asks_for() -> None:
    """requirements/EXTRA.txt exists for every extra and satisfies pyproject's bounds; after
    a dependency change `make lock` brings it back in step."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"base": project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        groups[extra] = project["dependencies"] + requirements
    for group, requirements in groups.items():
        lock = ROOT / "requirements" / f"{group}.txt"
        assert lock.is_file(), f"{lock} is missing: run `make lock`"
        pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), re.MULTILINE))
        pins = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}
        for line in requirements:
            wanted = Requirement(line)
            name = re.sub(r"[-_.]+", "-", wanted.name).lower()
            assert name in pins, f"{lock.name} lacks {name}: run `make lock`"
            assert wanted.specifier.contains(pins[name]), (
                f"{lock.name} pins {name}=={pins[name]}, outside {wanted.specifier}: `make lock`"
            )
        assert "--hash=sha256:" in lock.read_text()
