"""Health of a govfeed installation, read from its database only (no daemon socket).

Works while the daemon runs and when it is down. Exit codes for monitors: 0 healthy,
1 degraded (a folder's last poll failed, or no successful poll within the staleness
window, an agency with an expected cadence silent past it, the Litestream replica behind),
2 unusable (config or database).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from govfeed.formats import iso, printable
from govfeed.replication import ReplicaView
from govfeed.schema import SCHEMA_VERSION

HEALTHY, DEGRADED, UNUSABLE = 0, 1, 2
_STATE = (
    "select mailbox, folder, uidvalidity, last_uid, last_poll_at, last_success_at, last_error,"
    " {} from mailbox_state order by mailbox, folder"
)
# A database from before schema 5 (not yet opened by this govfeed) has no watch columns.
_STATE_QUERIES = {True: _STATE.format("watch, last_checked_at"), False: _STATE.format("null, null")}
STALE_INTERVALS = 3  # default window: this many poll intervals without a success


@dataclass(frozen=True)
class Watch:
    """A folder the config says should be polled, and its staleness window in seconds."""

    mailbox: str
    folder: str
    max_age: float


@dataclass(frozen=True)
class Cadence:
    """An agency (its canonical name, as in releases.agency) expected to publish this often."""

    agency: str
    every_hours: float


@dataclass(frozen=True)
class ReplicaCheck:
    """What `[replication]` configures, and what Litestream said about the replica."""

    litestream_config: str
    max_lag_seconds: float
    view: ReplicaView


@dataclass
class AgencyStatus:
    agency: str
    expected_every_hours: float
    last_release_at: str | None  # newest first_seen_at of its published releases
    silent_hours: float | None
    problem: str | None


@dataclass
class ReplicationStatus:
    litestream_config: str
    replica_newest_at: str | None  # newest file in the replica
    last_write_at: str | None  # newest poll or new release recorded in the database
    lag_seconds: float | None  # how much older the replica is than the last write
    max_lag_seconds: float
    problem: str | None


@dataclass
class FolderStatus:
    mailbox: str
    folder: str
    configured: bool
    uidvalidity: int | None
    last_uid: int | None
    last_poll_at: str | None
    last_success_at: str | None
    last_error: str | None
    lag_seconds: float | None  # now - last success
    messages: int
    releases: int
    newest_release_date: str | None
    healthy: bool
    problem: str | None
    watch: str | None = None  # how `govfeed run` watches it: notify, idle, sweep or poll
    last_checked_at: str | None = None  # when the server last answered for it


@dataclass
class Report:
    database: str
    database_bytes: int
    schema_version: int
    checked_at: str
    messages_by_status: dict[str, int]
    releases: int
    releases_quarantined: int
    quarantined: list[dict[str, Any]]
    folders: list[FolderStatus] = field(default_factory=list)
    # Failed messages over max_message_bytes: only their header was fetched (schema 9).
    messages_too_large: int = 0
    agencies: list[AgencyStatus] = field(default_factory=list)
    replication: ReplicationStatus | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return DEGRADED if self.problems else HEALTHY

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = not self.problems
        data["exit_code"] = self.exit_code
        return data


class StatusError(Exception):
    """The database cannot be read as a govfeed database (exit 2)."""


def collect_status(
    path: Path,
    watches: list[Watch],
    *,
    now: datetime | None = None,
    warnings: Sequence[str] = (),
    cadences: Sequence[Cadence] = (),
    replica: ReplicaCheck | None = None,
) -> Report:
    """Read the database at `path` (read-only) and judge every watched folder, every
    agency's cadence and the replica. `warnings` (from the config, e.g. no trusted
    authserv-id) make the report degraded."""
    now = now or datetime.now(UTC)
    if not path.is_file():
        raise StatusError(f"database {path} does not exist")
    report = _read_any(path, watches, now, cadences, replica)
    report.problems[:0] = warnings
    return report


def _read_any(
    path: Path,
    watches: list[Watch],
    now: datetime,
    cadences: Sequence[Cadence],
    replica: ReplicaCheck | None,
) -> Report:
    """The report, read however this database can be read here."""
    try:
        return _read(path, watches, now, "mode=ro", cadences, replica)
    except sqlite3.Error as err:
        wal = path.with_name(path.name + "-wal")
        cannot_open = getattr(err, "sqlite_errorname", "") == "SQLITE_CANTOPEN"
        if cannot_open and not wal.exists():
            # A WAL database on a read-only file system (or in a directory this user may
            # not write) cannot make its -shm file. Without a -wal file everything is in
            # the database file itself, which can then be read as immutable.
            with contextlib.suppress(sqlite3.Error):
                return _read(path, watches, now, "mode=ro&immutable=1", cadences, replica)
        if cannot_open:
            # With both -wal and -shm (a writer running, or killed) SQLite reads fine; a
            # -wal alone (say, copied without its -shm) needs the -shm made first.
            raise StatusError(
                f"cannot read database {path}: {err}: {wal.name} holds changes not yet in the"
                f" database and {path.name}-shm cannot be created here; read it where its"
                " directory is writable"
            ) from err
        raise StatusError(f"cannot read database {path}: {err}") from err


def _read(
    path: Path,
    watches: list[Watch],
    now: datetime,
    options: str,
    cadences: Sequence[Cadence] = (),
    replica: ReplicaCheck | None = None,
) -> Report:
    conn = sqlite3.connect(f"file:{path}?{options}", uri=True)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        report = _report(conn, path, watches, now)
        report.agencies = [_cadence(conn, cadence, now) for cadence in cadences]
        report.problems.extend(a.problem for a in report.agencies if a.problem)
        if replica is not None:
            report.replication = _replication(conn, replica)
            if report.replication.problem:
                report.problems.append(report.replication.problem)
        return report
    finally:
        conn.close()


def _report(conn: sqlite3.Connection, path: Path, watches: list[Watch], now: datetime) -> Report:
    version = conn.execute("select max(version) from govfeed_migrations").fetchone()[0] or 0
    by_status = dict(conn.execute("select status, count(*) from messages group by status"))
    releases, quarantined = conn.execute(
        "select count(*), count(*) filter (where status = 'quarantined') from releases"
    ).fetchone()
    held = [
        {"id": row[0], "title": row[1], "agency": row[2], "release_date": row[3], "reason": row[4]}
        for row in conn.execute(
            "select id, title, agency, release_date, quarantine_reason from releases"
            " where status = 'quarantined' order by id desc limit 20"
        )
    ]
    report = Report(
        database=str(path),
        database_bytes=_size(path),
        schema_version=int(version),
        checked_at=iso(now) or "",
        messages_by_status={str(k): int(v) for k, v in by_status.items()},
        releases=int(releases),
        releases_quarantined=int(quarantined),
        quarantined=held,
    )
    if version > SCHEMA_VERSION:
        report.problems.append(f"database schema {version} is newer than this govfeed")
    elif version >= 5:
        unjudged = conn.execute("select count(*) from releases where sender is null").fetchone()[0]
        if unjudged:
            report.problems.append(
                f"{unjudged} releases were stored before senders were recorded (schema 5):"
                " run `govfeed reparse` to judge them under the current rules"
            )
    columns = {row[1] for row in conn.execute("pragma table_info(messages)")}
    if "server_size" in columns:
        report.messages_too_large = conn.execute(
            "select count(*) from messages where server_size is not null"
        ).fetchone()[0]
    report.folders = _folders(conn, watches, now)
    report.problems.extend(f.problem for f in report.folders if f.problem)
    return report


def _folders(conn: sqlite3.Connection, watches: list[Watch], now: datetime) -> list[FolderStatus]:
    columns = {row[1] for row in conn.execute("pragma table_info(mailbox_state)")}
    rows = {(row[0], row[1]): row for row in conn.execute(_STATE_QUERIES["watch" in columns])}
    windows = {(w.mailbox, w.folder): w.max_age for w in watches}
    result = []
    for key in sorted(set(rows) | set(windows)):
        row = rows.get(key, (*key, None, None, None, None, None, None, None))
        result.append(_folder(conn, row, windows.get(key), now))
    return result


def _folder(
    conn: sqlite3.Connection, row: tuple[Any, ...], max_age: float | None, now: datetime
) -> FolderStatus:
    mailbox, folder, uidvalidity, last_uid, last_poll, last_success, last_error = row[:7]
    watch, last_checked = row[7:9]
    messages, releases, newest = conn.execute(
        "select count(*), count(distinct m.release_id), max(r.release_date) from messages m"
        " left join releases r on r.id = m.release_id where m.mailbox = ? and m.folder = ?",
        (mailbox, folder),
    ).fetchone()
    lag = (now - _parse(last_success)).total_seconds() if last_success else None
    problem = None
    if max_age is not None:  # only folders the config still watches are judged
        if last_error:
            problem = f"{mailbox}/{folder}: last poll failed: {last_error}"
        elif lag is None:
            problem = f"{mailbox}/{folder}: never polled successfully"
        elif lag > max_age:
            problem = f"{mailbox}/{folder}: no successful poll for {lag:.0f} s (> {max_age:.0f} s)"
    return FolderStatus(
        mailbox=mailbox,
        folder=folder,
        configured=max_age is not None,
        uidvalidity=uidvalidity,
        last_uid=last_uid,
        last_poll_at=last_poll,
        last_success_at=last_success,
        last_error=last_error,
        lag_seconds=lag,
        messages=int(messages),
        releases=int(releases),
        newest_release_date=newest,
        healthy=problem is None,
        problem=problem,
        watch=watch,
        last_checked_at=last_checked,
    )


def _cadence(conn: sqlite3.Connection, cadence: Cadence, now: datetime) -> AgencyStatus:
    """Judged on published releases only, by when govfeed first saw them (its own clock: a
    sender cannot date a release into the future to hide a silence)."""
    (last,) = conn.execute(
        "select max(first_seen_at) from releases where agency = ? and status = 'published'",
        (cadence.agency,),
    ).fetchone()
    silent = (now - _parse(last)).total_seconds() / 3600 if last else None
    problem = None
    expected = f"(expected every {cadence.every_hours:g} h)"
    if silent is None:
        problem = f"no release from {cadence.agency} yet {expected}"
    elif silent > cadence.every_hours:
        problem = f"no release from {cadence.agency} in {silent:.0f} h {expected}"
    return AgencyStatus(cadence.agency, cadence.every_hours, last, silent, problem)


def _replication(conn: sqlite3.Connection, check: ReplicaCheck) -> ReplicationStatus:
    """Lag: how much older the replica's newest file is than the database's newest write
    (every poll writes, so a stopped Litestream shows within a poll interval)."""
    polled = conn.execute("select max(last_poll_at) from mailbox_state").fetchone()[0]
    released = conn.execute("select max(first_seen_at) from releases").fetchone()[0]
    writes = [_parse(stamp) for stamp in (polled, released) if stamp]
    last_write = max(writes) if writes else None
    newest = check.view.newest
    lag = None
    if last_write is not None and newest is not None:
        lag = max(0.0, (last_write - newest).total_seconds())
    problem = None
    if check.view.error:
        problem = f"replication: cannot read the replica: {check.view.error}"
    elif newest is None and last_write is not None:
        problem = "replication: the replica is empty (is `litestream replicate` running?)"
    elif lag is not None and lag > check.max_lag_seconds:
        problem = (
            f"replication: the replica is {_duration(lag)} behind the database"
            f" (> {_duration(check.max_lag_seconds)}; is `litestream replicate` running?)"
        )
    return ReplicationStatus(
        litestream_config=check.litestream_config,
        replica_newest_at=iso(newest),
        last_write_at=iso(last_write),
        lag_seconds=lag,
        max_lag_seconds=check.max_lag_seconds,
        problem=problem,
    )


def render_text(report: Report) -> str:
    """The human table for a terminal."""
    lines = [
        f"database  {report.database} ({report.database_bytes / 1e6:.1f} MB,"
        f" schema {report.schema_version})",
        "messages  " + (", ".join(_message_counts(report)) or "none"),
        f"releases  {report.releases} ({report.releases_quarantined} quarantined)",
    ]
    for agency in report.agencies:
        silent = "-" if agency.silent_hours is None else f"{agency.silent_hours:.0f} h ago"
        lines.append(
            f"agency    {agency.agency}: last release {agency.last_release_at or 'never'}"
            f" ({silent}; expected every {agency.expected_every_hours:g} h)"
        )
    if report.replication is not None:
        rep = report.replication
        lag = "-" if rep.lag_seconds is None else _duration(rep.lag_seconds)
        lines.append(
            f"replica   {rep.litestream_config}: newest {rep.replica_newest_at or 'none'},"
            f" lag {lag}"
        )
    if report.folders:
        lines.append("")
        header = (
            "MAILBOX/FOLDER",
            "WATCH",
            "CHECKED",
            "LAST SUCCESS",
            "LAG",
            "MESSAGES",
            "RELEASES",
            "NEWEST",
            "ERROR",
        )
        now = _parse(report.checked_at) if report.checked_at else datetime.now(UTC)
        table = [header] + [_folder_cells(f, now) for f in report.folders]
        widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
        for r in table:
            cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
            lines.append("  ".join([*cells, r[-1]]).rstrip())
    for held in report.quarantined:
        lines.append(
            f"quarantined release {held['id']}: {held['title']} ({held['agency']}):"
            f" {held['reason'] or 'no reason recorded'}"
        )
    lines.append("")
    lines.append("status    " + ("healthy" if not report.problems else "DEGRADED"))
    lines.extend(f"  - {problem}" for problem in report.problems)
    # Folder names and errors come from servers: escape sequences are shown, not obeyed.
    return "\n".join(printable(line) for line in lines)


def _message_counts(report: Report) -> list[str]:
    """ "failed 3 (1 too large, header only), stored 40": counts by status."""
    counts = []
    for status, count in sorted(report.messages_by_status.items()):
        counts.append(f"{status} {count}")
        if status == "failed" and report.messages_too_large:
            counts[-1] += f" ({report.messages_too_large} too large, header only)"
    return counts


def _folder_cells(f: FolderStatus, now: datetime) -> tuple[str, ...]:
    lag = "-" if f.lag_seconds is None else _duration(f.lag_seconds)
    error = (f.last_error or "")[:60]
    checked = "-"
    if f.last_checked_at:
        checked = _duration((now - _parse(f.last_checked_at)).total_seconds()) + " ago"
    return (
        f"{f.mailbox}/{f.folder}",
        f.watch or "-",
        checked,
        f.last_success_at or "never",
        lag,
        str(f.messages),
        str(f.releases),
        f.newest_release_date or "-",
        error,
    )


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            total += candidate.stat().st_size
    return total
