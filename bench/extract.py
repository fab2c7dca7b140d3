"""Extract time per message: what `govfeed.extract` costs on top of parsing.

Builds N distinct DoD-style messages (the corpus of bench/run.py), parses each with
`govfeed.parse` and times `extract_release` right after it, as the pipeline runs them
(so caches hold what a real run has in them). Also times the fixtures in tests/data/
one by one. Prints figures; asserts nothing.

    .venv/bin/python bench/extract.py            # N = 2000
    .venv/bin/python bench/extract.py --count 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from govfeed.extract import extract_release
from govfeed.models import ParsedMessage, RawMessage
from govfeed.parse import parse_message
from run import one_message  # bench/run.py: the import benchmark's corpus

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def time_corpus(count: int) -> None:
    raws = [one_message(i) for i in range(count)]
    parse_s: list[float] = []
    extract_s: list[float] = []
    for raw in raws:
        start = time.perf_counter()
        parsed = parse_message(RawMessage(raw, "bench"))
        parsed_at = time.perf_counter()
        extract_release(parsed)
        parse_s.append(parsed_at - start)
        extract_s.append(time.perf_counter() - parsed_at)
    size = sum(map(len, raws)) // count
    print(f"corpus: {count} messages of ~{size / 1000:.1f} KB")
    for label, values in (("parse", parse_s), ("extract", extract_s)):
        values.sort()
        mean = statistics.fmean(values) * 1e6
        p95 = values[int(len(values) * 0.95)] * 1e6
        print(f"  {label:8s} mean {mean:6.0f} us   median {values[len(values) // 2] * 1e6:6.0f} us"
              f"   p95 {p95:6.0f} us")  # fmt: skip


def time_fixtures(rounds: int = 50) -> None:
    print("fixtures (extract only, best of rounds):")
    for path in sorted(DATA.glob("*.eml")):
        parsed = parse_message(RawMessage(path.read_bytes(), str(path)))
        best = min(_once(parsed) for _ in range(rounds))
        print(f"  {path.name:36s} {path.stat().st_size / 1000:6.1f} KB  {best * 1e6:6.0f} us")


def _once(parsed: ParsedMessage) -> float:
    start = time.perf_counter()
    extract_release(parsed)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    time_corpus(args.count)
    time_fixtures()


if __name__ == "__main__":
    main()
