"""The analyzer's worker pool under signals: real spawned workers, real signals.

A signal meant for the main process (Ctrl-C, a SIGTERM to the process group) must not
kill a worker; a worker that dies anyway (the OOM killer, a signal while it was starting)
costs a retry of the chunks in flight, not failed messages and never a hang; only a pool
that breaks again gives up on a chunk, recording its messages as failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfeed.analysis import Analyzer
from govfeed.config import AuthenticationSettings
from govfeed.models import RawMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import contextlib

import mailgen

POLICY = AuthenticationSettings(trusted_authserv_ids=["mx.google.com"])


@pytest.fixture(scope="module")
def messages() -> list[RawMessage]:
    return [
        RawMessage(
            data=mailgen.dod_release(
                title=f"Department Update {n} on Readiness",
                paragraphs=[f"Item {n}: the Department today announced progress."],
                article_id=6_000_000 + n,
                bulletin_id=f"20241201.{500_000_000 + n}",
                message_id=f"<analysis.{n}@public.govdelivery.com>",
            ),
            source="test",
        )
        for n in range(400)
    ]


def workers() -> list[int]:
    """This process's pool workers (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def consume(stream: Iterator[tuple[RawMessage, object]], after: int, act: object) -> list[object]:
    """Every analysis of the stream; `act()` once `after` of them came back."""
    results = []
    for _, analysis in stream:
        results.append(analysis)
        if len(results) == after:
            act()  # type: ignore[operator]
    return results


def wait_for_workers(count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while len(found := workers()) < count:
        assert time.monotonic() < deadline, f"{len(found)} workers, not {count}"
        time.sleep(0.05)
    return found


def test_a_signal_for_the_main_process_does_not_kill_a_worker(
    messages: list[RawMessage],
) -> None:
    analyzer = Analyzer(2, POLICY)
    signalled: list[int] = []
    try:

        def signal_workers() -> None:
            for pid in wait_for_workers(2):
                # From another process, as Ctrl-C or `kill -TERM -PGID` reach the whole
                # process group (the main process's own SIGTERM would end the worker).
                subprocess.run(["kill", "-INT", str(pid)], check=True)
                subprocess.run(["kill", "-TERM", str(pid)], check=True)
                signalled.append(pid)

        results = consume(analyzer.stream(messages), 64, signal_workers)
        assert signalled and set(signalled) <= set(workers())  # the same workers, alive
    finally:
        analyzer.close()
    assert len(results) == len(messages)
    assert all(a.error is None for a in results)  # type: ignore[attr-defined]
    assert workers() == []  # the pool's own shutdown still ends them


def test_a_worker_killed_mid_stream_costs_a_retry_not_a_message(
    messages: list[RawMessage],
) -> None:
    analyzer = Analyzer(2, POLICY)
    killed: list[int] = []
    try:

        def kill_one() -> None:
            pid = wait_for_workers(2)[0]
            os.kill(pid, signal.SIGKILL)  # the OOM killer's way
            killed.append(pid)

        started = time.monotonic()
        results = consume(analyzer.stream(messages), 64, kill_one)
        assert time.monotonic() - started < 120  # no hang waiting for the broken pool
        assert killed and killed[0] not in workers()
    finally:
        analyzer.close()
    assert len(results) == len(messages)
    assert all(a.error is None for a in results)  # type: ignore[attr-defined]
    assert workers() == []  # close() ended the fresh pool's workers too


def test_a_pool_that_breaks_again_records_the_chunk_as_failed_and_goes_on(
    messages: list[RawMessage],
) -> None:
    analyzer = Analyzer(2, POLICY)
    stop = threading.Event()

    def keep_killing() -> None:  # every worker dies as soon as it is seen, for a while
        while not stop.is_set():
            for pid in workers():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    killer = threading.Thread(target=keep_killing, daemon=True)
    try:
        killer.start()
        results = consume(analyzer.stream(messages), 96, stop.set)  # then the killing stops
    finally:
        stop.set()
        killer.join()
        analyzer.close()
    assert len(results) == len(messages)
    failed = [a for a in results if a is not None and a.error is not None]
    assert failed, "the killer never broke a pool twice"
    assert all("analysis" in str(a.error) for a in failed)
    assert len(failed) < len(messages)  # once the killing stopped, the rest went through


def test_the_pool_reads_ahead_a_bounded_number_of_bytes_not_of_messages() -> None:
    """A backlog of big messages: the main process holds the raw bytes of every message in
    flight, so the read-ahead stops at WINDOW_BYTES (plus one chunk), not at a count."""
    from govfeed import analysis

    size = 1 << 20
    pulled = 0

    def big_messages() -> Iterator[RawMessage]:
        nonlocal pulled
        for n in range(60):
            pulled += 1
            head = f"From: a@example.org\r\nSubject: big {n}\r\n\r\n".encode()
            yield RawMessage(data=head + (b"x" * 76 + b"\r\n") * (size // 78), source="test")

    analyzer = Analyzer(workers=2, policy=POLICY)
    try:
        stream = analyzer.stream(big_messages())
        next(stream)
        ahead = pulled
        assert sum(1 for _ in stream) == 59
    finally:
        analyzer.close()
    assert ahead <= (analysis.WINDOW_BYTES + analysis.CHUNK_BYTES) // size + 1


def test_the_command_line_leaves_reading_mail_to_the_workers() -> None:
    """Start-up of `govfeed import`: the main process, which hands messages to workers,
    does not load the parser, the extractors or the authenticator (about 0.2 s, half of
    its start-up before the first message could go to a worker), nor the daemon's
    scheduler and IMAP modules; a worker loads the readers as it starts."""
    readers = ("govfeed.parse", "govfeed.extract", "govfeed.auth", "mailparser", "selectolax")
    daemon = ("govfeed.daemon", "govfeed.sync", "apscheduler", "imapclient")
    probe = (
        "import sys, govfeed.cli, govfeed.analysis as a;"
        f"print([m for m in {readers + daemon!r} if m in sys.modules]);"
        "a._load_readers();"
        f"print([m for m in {readers!r} if m not in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "[]"]


def test_an_import_of_enough_mail_starts_its_workers_before_the_first_message(
    tmp_path: Path, messages: list[RawMessage]
) -> None:
    """`govfeed import` starts the workers as soon as it knows a source will use them,
    so they load the mail readers while the command loads the rest; a small import (one
    analysed in-process) starts none. The batch size the command offers is the pipeline's."""
    from govfeed import cli, pipeline
    from govfeed.analysis import default_workers
    from govfeed.sources import open_sources

    assert cli.BATCH_SIZE == pipeline.BATCH_SIZE
    if default_workers() < 2:
        pytest.skip("one core: imports analyse in-process, with no workers to start")
    big, small = tmp_path / "big.mbox", tmp_path / "small.mbox"
    for path, count in ((big, 100), (small, 10)):
        path.write_bytes(
            b"".join(
                b"From x Thu Jan  1 00:00:00 2024\n" + m.data + b"\n" for m in messages[:count]
            )
        )
    sources, _ = open_sources([small])
    analyzer = cli._import_analyzer(sources)
    assert workers() == []
    analyzer.close()
    sources, _ = open_sources([small, big])
    analyzer = cli._import_analyzer(sources)
    try:
        deadline = time.monotonic() + 10
        while len(workers()) < analyzer.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers()) == analyzer.workers >= 2  # before any message was sent
    finally:
        analyzer.close()
    assert workers() == []
