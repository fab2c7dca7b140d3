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
    .venv/bin/python bench/run.py --counts 5000 --against 37ad7d6 --rounds 3
        # A/B: the same import with the code of another commit, alternating, in one run

`make bench` (bench/all.py) runs this and bench/imap.py together and prints one report;
`measure(count)` is what it calls.
"""

from __future__ import annotations

import argparse
import email
import mailbox
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
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


@dataclass
class ImportRun:
    seconds: float
    peak_main_mb: int  # peak RSS of govfeed's main process
    peak_tree_mb: int  # peak RSS of the main process and its parsing workers together
    workers: int  # the most parsing workers seen at once
    summary: str  # govfeed's closing line
    cpu_seconds: float  # user + system time of govfeed and its workers: steadier under load


def govfeed_import(path: Path, code: Path | None = None) -> ImportRun:
    """`govfeed import` of the mbox into a fresh database (bench/out/<corpus>.db)."""
    db = OUT / f"{path.stem}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return govfeed_command(db, ["import", "--no-progress", str(path)], code)


def govfeed_reparse(path: Path) -> ImportRun:
    """`govfeed reparse` of the database the last import of `path` made."""
    return govfeed_command(OUT / f"{path.stem}.db", ["reparse", "--no-progress"])


def govfeed_command(db: Path, args: list[str], code: Path | None = None) -> ImportRun:
    """One govfeed command on `db`: wall time, peak RSS of the main process and of the
    whole process tree, its CPU time and its closing line.

    The tree (govfeed and its parsing workers) is sampled from /proc every 50 ms: the
    kernel's ru_maxrss would give one process only, and one that starts from the RSS of
    this bench, which it was forked from.
    """
    python = ROOT / ".venv" / "bin" / "python"
    config = ROOT / "config" / "demo.toml"  # trusts mx.google.com, as the corpus's mail says
    command = [str(python), "-m", "govfeed", "--config", str(config), "--db", str(db)]
    env = dict(os.environ)
    if code is not None:  # another commit's package, ahead of the installed one
        env["PYTHONPATH"] = str(code / "daemon")
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--log-level", "error", *args], stdout=subprocess.PIPE, env=env
    )
    peak_main = peak_tree = workers = 0
    while proc.poll() is None:
        main_kb, tree_kb, running = _rss_kb(proc.pid)
        peak_main, peak_tree = max(peak_main, main_kb), max(peak_tree, tree_kb)
        workers = max(workers, running)
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    assert proc.stdout is not None
    lines = proc.stdout.read().decode().strip().splitlines()
    summary = lines[-1] if args[0] == "import" else "; ".join(lines[-2:])
    if proc.returncode != 0:
        raise SystemExit(f"bench: govfeed {args[0]} failed: {summary}")
    return ImportRun(elapsed, peak_main // 1024, peak_tree // 1024, workers, summary, cpu)


def _children_cpu() -> float:
    """CPU seconds of the reaped children: govfeed, with its workers (which it reaps)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rss_kb(pid: int) -> tuple[int, int, int]:
    """(RSS of pid, RSS of pid and all its descendants) in kB, 0 for vanished processes;
    and how many of the descendants are multiprocessing workers (the tree also holds
    multiprocessing's resource tracker)."""
    own = _status_kb(pid)
    total, todo, workers = own, _children(pid), 0
    while todo:
        child = todo.pop()
        total += _status_kb(child)
        workers += _is_worker(child)
        todo.extend(_children(child))
    return own, total, workers


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


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


@dataclass
class Figures:
    count: int
    size_kb: float  # average message size in the mbox
    bare_seconds: float  # email.message_from_bytes over every message, in this process
    imported: ImportRun
    reparsed: ImportRun  # `govfeed reparse` of the database the import made

    @property
    def rate(self) -> float:
        return self.count / self.imported.seconds

    @property
    def bare_rate(self) -> float:
        return self.count / self.bare_seconds

    @property
    def reparse_share(self) -> float:
        """govfeed reparse's rate over the bare parse rate (the issue: "at the same rate")."""
        return self.count / self.reparsed.seconds / self.bare_rate

    @property
    def ratio(self) -> float:
        """How many times longer govfeed's pipeline takes than a bare stdlib parse."""
        return self.bare_rate / self.rate

    @property
    def share(self) -> float:
        """govfeed's import rate over the bare parse rate: the issue's goal is >= 0.5."""
        return self.rate / self.bare_rate


def measure(count: int) -> Figures:
    """The bare parse and `govfeed import` of a corpus of `count` messages (made if new)."""
    path = make_corpus(count)
    parsed, before = bare_parse(path)
    assert parsed == count, (parsed, count)
    imported = govfeed_import(path)
    reparsed = govfeed_reparse(path)
    # The bare parse is timed before and after the import: on a machine shared with
    # other work the load moves, and the mean stands for the same stretch of time.
    _, after = bare_parse(path)
    size_kb = path.stat().st_size / count / 1024
    return Figures(count, size_kb, (before + after) / 2, imported, reparsed)


def print_header() -> None:
    print(f"govfeed bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    columns = ("messages", "import s", "import/s", "RSS main", "RSS all", "bare/s")
    print(
        " ".join(f"{c:>9}" for c in columns),
        f"{'ratio':>6} {'import/bare':>11} {'reparse/s':>9} {'reparse/bare':>12}",
    )


def print_row(f: Figures) -> None:
    run = f.imported
    print(
        f"{f.count:>9} {run.seconds:>9.2f} {f.rate:>9.0f} {run.peak_main_mb:>6} MB"
        f" {run.peak_tree_mb:>6} MB {f.bare_rate:>9.0f} {f.ratio:>5.1f}x {f.share:>11.2f}"
        f" {f.count / f.reparsed.seconds:>9.0f} {f.reparse_share:>12.2f}"
    )
    print(f"{'':>9} ~{f.size_kb:.1f} KB/message; govfeed: {run.summary}")
    again = f.reparsed
    print(
        f"{'':>9} reparse: peak RSS {again.peak_main_mb} MB main, {again.peak_tree_mb} MB all;"
        f" {again.summary}",
        flush=True,
    )


def print_median(rounds: list[Figures]) -> None:
    shares = [f.share for f in rounds]
    reparse = [f.reparse_share for f in rounds]
    print(
        f"{'':>9} median of {len(rounds)}: import/bare {statistics.median(shares):.2f}"
        f" (each: {_each(shares)}), reparse/bare {statistics.median(reparse):.2f}"
        f" (each: {_each(reparse)})",
        flush=True,
    )


def _each(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def compile_package(folder: Path = ROOT / "daemon") -> None:
    """Byte-compile govfeed as an installed package is: with PYTHONDONTWRITEBYTECODE set
    (as on this machine), a module edited since its .pyc was written is compiled anew by
    the main process and by every worker, each time."""
    python = ROOT / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "compileall", "-q", str(folder)], check=True)


def stages(path: Path, sample: int = 500) -> dict[str, float]:
    """Milliseconds per message of each stage, in this process, on the first `sample`
    messages: the bare parse, govfeed's parse (stdlib + mail-parser), extraction, the
    whole analysis a worker does (parse, authenticate, extract, assess, hash, compress),
    and the writer's share (de-duplication and SQL, one transaction) in the main process.
    """
    import tempfile

    # The bare parse first, before govfeed is imported: govfeed.parse speeds up two of the
    # stdlib feedparser's patterns for the whole process (same results), and the baseline
    # is the stdlib as it ships.
    box = mailbox.mbox(path, create=False)
    datas = [box.get_bytes(key) for key, _ in zip(box.iterkeys(), range(sample), strict=False)]
    box.close()
    start = time.perf_counter()
    for data in datas:
        email.message_from_bytes(data)
    bare = (time.perf_counter() - start) * 1000 / len(datas)

    from govfeed import pipeline
    from govfeed.analysis import analyze
    from govfeed.config import load_settings
    from govfeed.extract import extract_release
    from govfeed.models import RawMessage
    from govfeed.parse import parse_message
    from govfeed.sources import open_sources
    from govfeed.store import Store

    settings = load_settings(ROOT / "config" / "demo.toml")
    (source,), _ = open_sources([path])
    raws = [raw for _, raw in zip(range(sample), source.fetch(), strict=False)]
    policy = pipeline.as_trust_policy(settings.authentication)

    def per_message(work: object) -> float:
        start = time.perf_counter()
        for raw in raws:
            work(raw)  # type: ignore[operator]
        return (time.perf_counter() - start) * 1000 / len(raws)

    figures = {"bare parse": bare}
    parsed = [parse_message(raw) for raw in raws]
    figures["govfeed parse"] = per_message(parse_message)
    start = time.perf_counter()
    for message in parsed:
        extract_release(message)
    figures["extract"] = (time.perf_counter() - start) * 1000 / len(raws)
    figures["whole analysis (worker)"] = per_message(lambda raw: analyze(raw.data, policy))
    analyzed: list[tuple[RawMessage, object]] = [(r, analyze(r.data, policy)) for r in raws]
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "s.db") as store:
        start = time.perf_counter()
        pipeline.save_analyzed(store, analyzed, pipeline.Summary())  # type: ignore[arg-type]
        figures["writer (main process)"] = (time.perf_counter() - start) * 1000 / len(raws)
    return figures


def print_stages(figures: dict[str, float]) -> None:
    print(
        "per stage, ms/message (one process): "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in figures.items()),
        flush=True,
    )


def checkout(rev: str) -> Path:
    """The package as it was at `rev` (git archive of daemon/), in bench/out/."""
    folder = OUT / f"code-{rev}"
    if not folder.exists():
        folder.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "daemon"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    compile_package(folder / "daemon")  # as this tree's: a fair comparison
    return folder


def compare(count: int, rev: str, rounds: int) -> None:
    """Import the same corpus with this tree's code and with `rev`'s, alternating."""
    path = make_corpus(count)
    other = checkout(rev)
    rates: dict[str, list[float]] = {"this tree": [], rev: []}
    cpu: dict[str, list[float]] = {"this tree": [], rev: []}
    for _ in range(rounds):
        for label, code in (("this tree", None), (rev, other)):
            run = govfeed_import(path, code)
            rates[label].append(count / run.seconds)
            cpu[label].append(run.cpu_seconds * 1000 / count)
            print(
                f"  {label:>10}: {count / run.seconds:7.0f} msg/s,"
                f" CPU {run.cpu_seconds * 1000 / count:.2f} ms/msg  {run.summary}",
                flush=True,
            )
    ours, theirs = (sorted(r)[len(r) // 2] for r in rates.values())
    our_cpu, their_cpu = (sorted(c)[len(c) // 2] for c in cpu.values())
    print(
        f"median of {rounds}: this tree {ours:.0f} msg/s, {rev} {theirs:.0f} msg/s,"
        f" ratio {ours / theirs:.2f}; CPU per message (all processes) {our_cpu:.2f} vs"
        f" {their_cpu:.2f} ms, ratio {their_cpu / our_cpu:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10000,50000", help="comma-separated corpus sizes")
    parser.add_argument("--against", metavar="REV", help="compare with the code of a commit")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds for --against")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage timing")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each size this many times (bare, import, reparse, bare each time)"
        " and print the median ratios too: this machine's speed drifts by a third",
    )
    args = parser.parse_args()
    compile_package()
    if args.against:
        for count in args.counts.split(","):
            compare(int(count), args.against, args.rounds)
        return
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print_header()
    counts = [int(count) for count in args.counts.split(",")]
    for count in counts:
        rounds = []
        for _ in range(args.repeat):
            rounds.append(measure(count))
            print_row(rounds[-1])
        if args.repeat > 1:
            print_median(rounds)
    if not args.no_stages:
        print_stages(stages(make_corpus(counts[0])))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
