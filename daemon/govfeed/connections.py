"""A mailbox's connection budget, and how its folders are watched within it.

Every connection govfeed holds to a server has a numbered slot: slot 0 is the poll
connection (kept open between polls; syncs and sweeps run on it), slots 1 and up are the
watching connections. `max_connections` slots exist; a server that refuses a connection for
its limit (`NO [UNAVAILABLE]`, "Maximum number of connections") lowers the usable number by
one for a while (a minute, doubling while refusals go on, at most ten) and the watcher of
the highest slot gives way, so the connections that work keep ingesting. `plan` decides
which folder each slot watches: one NOTIFY connection for every folder where the server
has NOTIFY, else IDLE on as many folders as there are slots, in config order; the rest are
swept.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

LIMIT_HOLD_SECONDS = 60.0  # one connection less for this long after a limit refusal...
LIMIT_HOLD_MAX_SECONDS = 600.0  # ...doubling while refusals go on, up to this
LIMIT_STREAK_SECONDS = 900.0  # refusals this close together count as one streak

# Watch modes, as `status` shows them.
NOTIFY, IDLE, SWEEP, POLL = "notify", "idle", "sweep", "poll"


def retry_delay(failures: int, first: float, cap: float) -> float:
    """Exponential backoff: `first` doubled per failure up to `cap`, plus up to 25 % jitter
    so that many daemons (or folders) do not retry in step."""
    base = min(cap, first * 2.0 ** max(failures - 1, 0))
    return base + random.uniform(0, base / 4)  # noqa: S311 - jitter, not cryptography


class ConnectionBudget:
    """How many connections a mailbox may hold now: `size`, less one per recent limit
    refusal (never below one). Thread-safe; `monotonic` is for tests."""

    def __init__(self, size: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cut = 0  # connections given up after refusals
        self._until = 0.0  # when one of them may be tried again
        self._streak = 0
        self._last_hit = -LIMIT_STREAK_SECONDS

    @property
    def limit(self) -> int:
        """The connections that may be open now (slots 0 .. limit - 1)."""
        with self._lock:
            now = self._monotonic()
            if self._cut and now >= self._until:
                self._cut -= 1  # try one more again; a refusal takes it back
                self._until = now + self._hold()
            return self.size - self._cut

    def allows(self, slot: int) -> bool:
        return slot < self.limit

    def limit_hit(self) -> float:
        """The server refused a connection for its limit: one less, for a while. Returns
        how long (seconds) before the number goes up again."""
        with self._lock:
            now = self._monotonic()
            self._streak = self._streak + 1 if now - self._last_hit < LIMIT_STREAK_SECONDS else 1
            self._last_hit = now
            self._cut = min(self._cut + 1, self.size - 1)
            self._until = now + self._hold()
            return self._until - now

    def _hold(self) -> float:
        return min(LIMIT_HOLD_SECONDS * 2.0 ** max(self._streak - 1, 0), LIMIT_HOLD_MAX_SECONDS)


@dataclass(frozen=True)
class Plan:
    """Which connection watches which folder; the others are swept (or polled)."""

    notify: tuple[str, ...] = ()  # watched by the one NOTIFY connection (slot 1)
    idle: tuple[str, ...] = ()  # one IDLE connection each, slots 1, 2, ... in this order
    swept: tuple[str, ...] = ()  # checked every sweep_interval on the poll connection
    polled: tuple[str, ...] = ()  # `idle = false`: read every poll_interval only
    modes: dict[str, str] = field(default_factory=dict)


def plan(
    folders: tuple[str, ...], limit: int, *, watch: bool, has_notify: bool, has_idle: bool
) -> Plan:
    """How to watch `folders` with `limit` connections, one of them the poll connection."""
    watchers = limit - 1
    if not watch:
        return Plan(polled=folders, modes=dict.fromkeys(folders, POLL))
    if has_notify and has_idle and watchers >= 1:
        return Plan(notify=folders, modes=dict.fromkeys(folders, NOTIFY))
    idle = folders[: max(watchers, 0)] if has_idle else ()
    swept = folders[len(idle) :]
    modes = {**dict.fromkeys(idle, IDLE), **dict.fromkeys(swept, SWEEP)}
    return Plan(idle=idle, swept=swept, modes=modes)
