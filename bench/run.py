"""Import throughput and memory: `govfeed import` against a bare stdlib parse, one run.

Makes an mbox of N unique DoD-style messages (multipart/alternative, quoted-printable,
about 20 KB: the realistic tracker links make them bigger than the 12 KB the issue
asked for, so the figures are conservative) from examples/mailgen.py, then for each N:
  - times a bare `email.message_from_bytes` pass over the same messages (the baseline),
  - times `govfeed import` of the mbox into a fresh database in a child process and
    samples the peak RSS of its main process and of its whole process tree (the main
    process plus the parsing workers) from /proc,
and prints the figures side by side. Nothing here asserts a time: it prints.

    .venv/bin/python bench/run.py                 # N = 10000 and 50000
    .venv/bin/python bench/run.py --counts 2000   # a quick look
"""

from __future__ import annotations

import argparse
import email
import mailbox
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - examples/ is not a package

OUT = ROOT / "bench" / "out"
KINDS = ("release", "advisory", "transcript", "contract", "speech")
WORDS = ("readiness", "logistics", "training", "partners", "industry", "munitions", "space")


def one_message(i: int) -> bytes:
    """Message i of the corpus: its own title, body, article, bulletin id and Message-ID."""
    kind = KINDS[i % len(KINDS)]
    word = WORDS[i % len(WORDS)]
    return mailgen.dod_release(
        kind=kind,
        title=f"Department Update {i} on {word.title()} and Alliance Cooperation",
        release_date=date(2024, 1, 1) + timedelta(days=i % 700),
        paragraphs=[
            f"Item {i}: the Department today announced progress on {word} with allies.",
            "Officials said the effort strengthens deterrence and supports partners"
            f" across the region, the {i % 97}th such update this year.",
        ],
        article_id=3_000_000 + i,
        bulletin_id=f"2024{i % 12 + 1:02d}01.{100_000_000 + i}",
        message_id=f"<bench.{i}.{100_000_000 + i}@public.govdelivery.com>",
        subscriber=f"subscriber{i % 50}@example.org",
    )


def make_corpus(count: int) -> Path:
    """An mbox of `count` unique messages, made once and kept in bench/out/."""
    path = OUT / f"corpus-{count}.mbox"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out, ProcessPoolExecutor() as pool:
        for data in pool.map(one_message, range(count), chunksize=200):
            data = data.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
            out.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2024\n" + data + b"\n")
    tmp.rename(path)
    return path


def bare_parse(path: Path) -> tuple[int, float]:
    box = mailbox.mbox(path, create=False)
    keys = list(box.iterkeys())
    start = time.perf_counter()
    for key in keys:
        email.message_from_bytes(box.get_bytes(key))
    elapsed = time.perf_counter() - start
    box.close()
    return len(keys), elapsed


def govfeed_import(path: Path) -> tuple[float, int, int, str]:
    """Wall time, peak RSS of the main process and of the whole process tree (MB), summary.

    The tree (govfeed and its parsing workers) is sampled from /proc every 50 ms: the
    kernel's ru_maxrss would give one process only, and one that starts from the RSS of
    this bench, which it was forked from.
    """
    db = OUT / f"{path.stem}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    govfeed = ROOT / ".venv" / "bin" / "govfeed"
    config = ROOT / "config" / "demo.toml"  # trusts mx.google.com, as the corpus's mail says
    command = [str(govfeed), "--config", str(config), "--db", str(db), "--log-level", "error"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "import", "--no-progress", str(path)], stdout=subprocess.PIPE
    )
    peak_main = peak_tree = 0
    while proc.poll() is None:
        main_kb, tree_kb = _rss_kb(proc.pid)
        peak_main, peak_tree = max(peak_main, main_kb), max(peak_tree, tree_kb)
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    assert proc.stdout is not None
    summary = proc.stdout.read().decode().strip().splitlines()[-1]
    if proc.returncode != 0:
        raise SystemExit(f"bench: govfeed import failed: {summary}")
    return elapsed, peak_main // 1024, peak_tree // 1024, summary


def _rss_kb(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of pid and all its descendants), in kB; 0 for vanished processes."""
    own = _status_kb(pid)
    total, todo = own, _children(pid)
    while todo:
        child = todo.pop()
        total += _status_kb(child)
        todo.extend(_children(child))
    return own, total


def _status_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10000,50000", help="comma-separated corpus sizes")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print(f"govfeed bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    columns = ("messages", "import s", "import/s", "RSS main", "RSS all", "bare/s")
    print(" ".join(f"{c:>9}" for c in columns), f"{'ratio':>6}")
    for count in counts:
        path = make_corpus(count)
        size = path.stat().st_size / count / 1024
        parsed, bare_s = bare_parse(path)
        elapsed, main_mb, tree_mb, summary = govfeed_import(path)
        rate, bare_rate = count / elapsed, parsed / bare_s
        print(
            f"{count:>9} {elapsed:>9.2f} {rate:>9.0f} {main_mb:>6} MB {tree_mb:>6} MB"
            f" {bare_rate:>9.0f} {bare_rate / rate:>5.1f}x"
        )
        print(f"{'':>9} ~{size:.1f} KB/message; govfeed: {summary}")


if __name__ == "__main__":
    main()
