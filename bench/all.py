"""Every speed and memory figure from one run, as the tables of the README: `make bench`.

Runs bench/run.py's file import measurement (`govfeed import` of an mbox against a bare
`email.message_from_bytes` pass over the same messages) for each of `--counts`, then
bench/imap.py's IMAP measurements against a private Dovecot on loopback for
`--imap-count` messages (first sync against `govfeed import` of the same messages,
mbsync's copy time, empty-poll latency, IDLE latency, idle RSS, peak RSS of N against
N/10 messages), then bench/folders.py's (200 folders, 60 with --quick, on a Dovecot at its
default connection limit: connections held, threads, RSS against 3 folders, latency of a
NOTIFY-, IDLE- and sweep-watched folder, the issue K acceptance run), then bench/site.py's
page latencies of `govfeed site` at 20,000 releases (5,000 with --quick), and prints one
report: the machine and the date, then markdown tables that can be pasted into the
README's "Speed and memory" section. Progress goes to stderr, the report to stdout.
Nothing here asserts a time: every figure is compared with the baseline measured in the
same run (the bare parse, the file import, the 3-folder run).

    .venv/bin/python bench/all.py            # 10,000 and 50,000 messages, IMAP 5,000
    .venv/bin/python bench/all.py --quick    # 2,000 messages, IMAP 1,000, idle 10 s
    make bench BENCH_ARGS=--quick            # the same through make

Then bench/bigfolder.py: the first sync of a big folder (`--big-count`, default 100,000,
and a tenth of it; 1,000,000 when run on its own), how long a trickling server holds a
poll, and how long SIGTERM takes in a stalled command.

bench/run.py, bench/imap.py, bench/bigfolder.py and bench/folders.py still run on their
own.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import bigfolder  # bench/bigfolder.py
import folders  # bench/folders.py
import imap  # bench/imap.py: bench/ is this script's directory, first on sys.path
import run  # bench/run.py

# bench/site.py cannot be imported by name: `site` is the standard library module Python
# loaded at start-up, so `import site` would give that one.
_spec = importlib.util.spec_from_file_location("site_bench", Path(__file__).with_name("site.py"))
assert _spec is not None and _spec.loader is not None
site_bench = importlib.util.module_from_spec(_spec)
sys.modules["site_bench"] = site_bench  # dataclasses look their module up there
_spec.loader.exec_module(site_bench)

QUICK_COUNTS, QUICK_IMAP_COUNT, QUICK_IDLE, QUICK_BIG = "2000", 1000, 10, 20_000
QUICK_FOLDERS = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--counts", help="comma-separated mbox sizes for the file import (10000,50000)"
    )
    parser.add_argument("--imap-count", type=int, help="messages in the IMAP mailbox (5000)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a quick look: --counts {QUICK_COUNTS} --imap-count {QUICK_IMAP_COUNT}, idle"
        f" {QUICK_IDLE} s instead of 60 s (explicit --counts/--imap-count still win)",
    )
    parser.add_argument(
        "--big-count", type=int, help="messages in bench/bigfolder.py's big folder (100000)"
    )
    args = parser.parse_args()
    counts = args.counts or (QUICK_COUNTS if args.quick else "10000,50000")
    imap_count = args.imap_count or (QUICK_IMAP_COUNT if args.quick else 5000)
    idle_seconds = QUICK_IDLE if args.quick else 60
    site_releases = 5_000 if args.quick else 20_000

    started, start, load = datetime.now(UTC), time.perf_counter(), os.getloadavg()
    files = []
    run.compile_package()
    for count in map(int, counts.split(",")):
        progress(f"file import of {count:,} messages (and the bare parse)...")
        files.append(run.measure(count))
    files_seconds = time.perf_counter() - start
    # The report so far goes out now: a failure in the IMAP part does not lose it.
    command = " ".join(["bench/all.py", *sys.argv[1:]])
    print(f"govfeed bench, {started:%Y-%m-%d %H:%M} UTC: `{command}`")
    print(machine())
    busy = f"load average {load[0]:.2f} at the start"
    if load[0] >= 0.5:
        busy += ": something else may be running, and skewing the figures"
    print(f"{busy}.")
    print()
    print_files(files)
    print(flush=True)
    took = f"took {minutes(files_seconds)} for the file import"
    if imap.find_dovecot() is None:
        print("No IMAP figures: dovecot is not installed (apt-get install dovecot-imapd).")
    else:
        progress(f"IMAP, {imap_count:,} messages on a private Dovecot, idle {idle_seconds} s...")
        imap_start = time.perf_counter()
        print_imap(imap.measure(imap_count, idle_seconds))
        took += f", {minutes(time.perf_counter() - imap_start)} for IMAP"
        big = args.big_count or (QUICK_BIG if args.quick else 100_000)
        progress(f"a big folder of {big:,} messages, a trickling server, SIGTERM...")
        big_start = time.perf_counter()
        print()
        bigfolder.report(bigfolder.measure(big, bigfolder.PARTS))
        took += f", {minutes(time.perf_counter() - big_start)} for the big folder"
        count = QUICK_FOLDERS if args.quick else 200
        progress(f"many folders: {count} on a Dovecot at its default connection limit...")
        folders_start = time.perf_counter()
        print()
        folders.report(folders.measure(count))
        took += f", {minutes(time.perf_counter() - folders_start)} for many folders"
    progress(f"reader's site at {site_releases:,} releases...")
    site_start = time.perf_counter()
    print()
    site_bench.report(site_bench.measure(site_releases, site_bench.ROUNDS))
    took += f", {minutes(time.perf_counter() - site_start)} for the site"
    print(f"The bench {took}.")


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = f" ({line.split(':', 1)[1].strip()})"
                break
    except OSError:
        pass
    try:
        system = platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError):
        system = f"{platform.system()} {platform.release()}"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores{cpu}, {memory:.0f} GB RAM, {system},"
        f" Python {platform.python_version()}"
    )


def print_files(files: list[run.Figures]) -> None:
    size = statistics.mean(f.size_kb for f in files)
    workers = {f.imported.workers for f in files}
    with_workers = (
        f"main process + {workers.pop()} parsing workers"
        if len(workers) == 1
        else "main process + parsing workers"
    )
    table(
        [f"`govfeed import` of an mbox ({size:.0f} KB messages)"]
        + [f"{f.count:,} messages" for f in files],
        [
            ["wall time"] + [f"{f.imported.seconds:.1f} s" for f in files],
            ["messages per second"] + [f"{f.rate:,.0f}" for f in files],
            ["bare stdlib parse, messages per second"] + [f"{f.bare_rate:,.0f}" for f in files],
            ["pipeline cost over bare parse"] + [f"{f.ratio:.1f}×" for f in files],
            ["import rate / bare parse rate (goal ≥ 0.5)"] + [f"{f.share:.2f}" for f in files],
            ["`govfeed reparse`, messages per second"]
            + [f"{f.count / f.reparsed.seconds:,.0f}" for f in files],
            ["reparse rate / bare parse rate"] + [f"{f.reparse_share:.2f}" for f in files],
            ["peak RSS, main process"] + [f"{f.imported.peak_main_mb} MB" for f in files],
            [f"peak RSS, {with_workers}"] + [f"{f.imported.peak_tree_mb} MB" for f in files],
        ],
    )


def print_imap(f: imap.Figures) -> None:
    synced, imported, small = f.synced, f.imported, f.small_sync
    empty, idle = f.empty_ms, f.daemon.latencies
    idled = "a minute" if f.idle_seconds == 60 else f"{f.idle_seconds} s"
    rows = [
        [
            "first sync vs `govfeed import` of the same messages",
            f"{synced.seconds:.2f} s vs {imported.seconds:.2f} s"
            f" ({synced.seconds / imported.seconds:.2f}×)",
            "≤ 1.25×",
        ],
        ["mbsync copying the folder to a Maildir (tmpfs)", copy(f, f.copy_memory), ""],
        ["mbsync copying the folder to a Maildir (disk)", copy(f, f.copy_seconds), ""],
        [
            "a poll that finds nothing new (median of 20, min–max)",
            f"{statistics.median(empty):.0f} ms ({min(empty):.0f}–{max(empty):.0f})",
            "< 50 ms",
        ],
        [
            "IDLE: message appended → row in the database (median of 5, max)",
            f"{statistics.median(idle):.2f} s ({max(idle):.2f})",
            "< 2 s",
        ],
        [
            f"`govfeed run` first sync of {f.small:,} messages",
            f"{f.daemon.first_sync:.2f} s ({f.small / f.daemon.first_sync:,.0f}/s)",
            "",
        ],
        [f"`govfeed run` idle for {idled}, RSS", f"{f.daemon.rss:.0f} MB", "< 80 MB"],
        [
            f"`govfeed run` idle for {idled}, its child processes' RSS",
            f"{f.daemon.children_rss:.0f} MB" if f.daemon.children_rss else "none running",
            "",
        ],
        [
            f"peak RSS syncing {f.count:,} vs {f.small:,} messages",
            f"{synced.peak_rss_mb:.0f} vs {small.peak_rss_mb:.0f} MB"
            f" (+{synced.peak_rss_mb - small.peak_rss_mb:.0f})",
            "≤ +50 MB",
        ],
    ]
    table([f"IMAP ({f.count:,} messages on loopback Dovecot)", "measured", "target"], rows)
    print()
    print(f"govfeed import: {imported.output}")
    print(f"govfeed poll:   {synced.output}")
    print("Peak RSS here is of the command's largest process (main or an analyzer worker).")


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("|" + "".join(f" {cell} |" if cell else " |" for cell in row))


def copy(f: imap.Figures, value: float | None) -> str:
    if f.copy_seconds is None:
        return "mbsync not installed"
    return "no /dev/shm" if value is None else f"{value:.2f} s"


def minutes(value: float) -> str:
    whole, rest = divmod(round(value), 60)
    return f"{whole} min {rest} s" if whole else f"{rest} s"


if __name__ == "__main__":
    main()
