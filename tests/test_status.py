"""govfeed status: reads the database only; exit 0 healthy, 1 degraded, 2 unusable."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfeed.cli import cli
from govfeed.store import Store


def write_config(
    tmp_path: Path, db: Path, poll_interval: int = 60, trusted: str = '["mx.google.com"]'
) -> Path:
    config = tmp_path / "govfeed.toml"
    config.write_text(
        f"""
[database]
path = "{db}"

[authentication]
trusted_authserv_ids = {trusted}

[[mailboxes]]
name = "dod"
host = "imap.example.org"
username = "feeds@example.org"
password_env = "GOVFEED_TEST_PASSWORD"
folders = ["INBOX", "Archive"]
poll_interval = {poll_interval}
"""
    )
    return config


def run(config: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--config", str(config), "status", *args])


def test_healthy_when_every_folder_polled_recently(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store(db) as store:
        store.save_cursor("dod", "INBOX", 7, 120)
        store.save_cursor("dod", "Archive", 8, 3)
    result = run(write_config(tmp_path, db), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["healthy"] is True
    assert report["schema_version"] >= 1
    inbox = next(f for f in report["folders"] if f["folder"] == "INBOX")
    assert (inbox["uidvalidity"], inbox["last_uid"], inbox["last_error"]) == (7, 120, None)
    assert 0 <= inbox["lag_seconds"] < 60


def test_failed_poll_and_never_polled_folder_are_degraded(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store(db) as store:
        store.save_cursor("dod", "INBOX", 7, 120)
        store.save_poll_error("dod", "INBOX", "login failed: authentication rejected")
    result = run(write_config(tmp_path, db))
    assert result.exit_code == 1
    assert "DEGRADED" in result.output
    assert "dod/INBOX: last poll failed: login failed" in result.output
    assert "dod/Archive: never polled successfully" in result.output


def test_stale_success_is_degraded_and_max_age_overrides_the_window(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store(db) as store:
        for folder in ("INBOX", "Archive"):
            store.save_cursor("dod", folder, 7, 1)
        store.conn.execute("update mailbox_state set last_success_at = '2020-01-01T00:00:00Z'")
    config = write_config(tmp_path, db)
    assert run(config).exit_code == 1
    assert run(config, "--max-age", str(10 * 365 * 86400)).exit_code == 0


@pytest.mark.parametrize("problem", ["missing", "not-sqlite"])
def test_unusable_database_exits_2(tmp_path: Path, problem: str) -> None:
    db = tmp_path / "g.db"
    if problem == "not-sqlite":
        db.write_bytes(b"this is no database" * 100)
    result = run(write_config(tmp_path, db), "--json")
    assert result.exit_code == 2
    assert json.loads(result.output)["healthy"] is False


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[database]\npath = "x.db"\n[[mailboxes]]\nname = "dod"\nsecurity = "tls"\n')
    result = run(config)
    assert result.exit_code == 2
    assert "security" in result.output


def test_each_folder_shows_how_it_is_watched_and_when_last_checked(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with Store(db) as store:
        store.save_cursor("dod", "INBOX", 7, 120)
        store.save_cursor("dod", "Archive", 8, 3)
        store.save_watch(
            "dod", {"INBOX": ("idle", None), "Archive": ("sweep", "2026-01-01T00:00:00Z")}
        )
        store.save_watch("dod", {"INBOX": ("idle", "2026-01-02T00:00:00Z")})
        store.save_watch("dod", {"INBOX": ("sweep", None)})  # a mode change keeps the time
    config = write_config(tmp_path, db)
    report = json.loads(run(config, "--json").output)
    watched = {f["folder"]: (f["watch"], f["last_checked_at"]) for f in report["folders"]}
    assert watched == {
        "INBOX": ("sweep", "2026-01-02T00:00:00Z"),
        "Archive": ("sweep", "2026-01-01T00:00:00Z"),
    }
    text = run(config).output
    assert "WATCH" in text and "CHECKED" in text
    assert "dod/Archive     sweep" in text


def test_no_trusted_server_is_degraded_with_the_reason(tmp_path: Path) -> None:
    """Without a trusted authserv-id every bulletin is quarantined: status must say so."""
    db = tmp_path / "g.db"
    config = write_config(tmp_path, db, trusted="[]")
    with Store(db) as store:
        store.save_cursor("dod", "INBOX", 7, 120)
        store.save_cursor("dod", "Archive", 8, 3)
    result = run(config, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["problems"] == [
        "no trusted_authserv_ids (mailbox dod): government mail will be quarantined"
    ]
    assert all(folder["healthy"] for folder in report["folders"])


DATA = Path(__file__).parent / "data"
DOD = "U.S. Department of Defense"


def cadence_config(tmp_path: Path, db: Path, hours: float) -> Path:
    """The demo's trust (mx.google.com) and DoD expected every `hours`; no mailboxes."""
    config = tmp_path / "cadence.toml"
    config.write_text(
        f"""
[database]
path = "{db}"

[authentication]
trusted_authserv_ids = ["mx.google.com"]

[[agencies]]
name = "{DOD}"
aliases = ["U.S. Department of War"]
account_codes = ["USDOD"]
senders = ["usdod@public.govdelivery.com", "defense.gov", "war.gov"]
expected_every_hours = {hours}
"""
    )
    return config


def age_releases(db: Path, hours: float) -> None:
    """Move every release's first sighting `hours` into the past (time passing)."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "update releases set first_seen_at = strftime('%Y-%m-%dT%H:%M:%SZ', first_seen_at, ?)",
            (f"-{hours} hours",),
        )


def test_an_agency_silent_past_its_cadence_is_degraded(tmp_path: Path) -> None:
    db = tmp_path / "govfeed.db"
    config = cadence_config(tmp_path, db, 24)
    imported = CliRunner().invoke(
        cli, ["--config", str(config), "import", str(DATA / "dod-release.eml")]
    )
    assert imported.exit_code == 0, imported.output
    fresh = run(config, "--json")
    assert fresh.exit_code == 0, fresh.output
    agency = json.loads(fresh.stdout)["agencies"][0]
    assert agency["agency"] == DOD and agency["problem"] is None

    age_releases(db, 31)
    silent = run(config)
    assert silent.exit_code == 1
    assert f"no release from {DOD} in 31 h (expected every 24 h)" in silent.stdout
    assert "DEGRADED" in silent.stdout


def test_cadence_counts_published_releases_only(tmp_path: Path) -> None:
    """A quarantined release (its sender not authenticated) is no sign of life."""
    db = tmp_path / "govfeed.db"
    config = cadence_config(tmp_path, db, 24)
    untrusted = config.read_text().replace('["mx.google.com"]', "[]")
    config.write_text(untrusted)
    imported = CliRunner().invoke(
        cli, ["--config", str(config), "import", str(DATA / "dod-release.eml")]
    )
    assert imported.exit_code == 0, imported.output
    report = json.loads(run(config, "--json").stdout)
    assert report["releases_quarantined"] == 1
    assert f"no release from {DOD} yet (expected every 24 h)" in report["problems"]


def test_agencies_without_a_cadence_are_not_judged(tmp_path: Path) -> None:
    db = tmp_path / "govfeed.db"
    config = write_config(tmp_path, db)
    Store(db).close()
    report = json.loads(run(config, "--json").stdout)
    assert report["agencies"] == []
    assert report["replication"] is None
