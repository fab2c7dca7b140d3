"""The reader's site's latency at N published releases (default 20,000): `govfeed site`'s
pages through Datasette's full ASGI stack (no socket), as govfeed.site builds it.

The database: examples/demo-maildir imported through the real pipeline, then its
releases copied by SQL until there are N (titles numbered, dates spread over six years,
agencies and types rotated), each with its version row, so the FTS index, the published
views and their indexes are the ones a real archive has. Every page is requested once to
warm caches, then `--rounds` times; the report gives the median and p95. The baseline in
the same run is a bare Datasette request (/-/versions.json) and Datasette's own table page
of the same view (/govfeed/published_releases). The target (issue G): home and release
page under 50 ms. Prints figures; asserts nothing.

    .venv/bin/python bench/site.py               # 20,000 releases, 30 rounds
    .venv/bin/python bench/site.py --count 5000 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from govfeed import pipeline
from govfeed.config import AuthenticationSettings
from govfeed.site import create_datasette, data
from govfeed.sources import open_sources
from govfeed.store import Store

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo-maildir"
AGENCIES = ("U.S. Department of Defense", "Department of Example", "City of Example")
TARGET_MS = 50.0
ROUNDS = 30


@dataclass(frozen=True)
class Timing:
    label: str
    path: str
    median_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Figures:
    count: int
    build_seconds: float
    size_mb: float
    timings: list[Timing]


def build(path: Path, count: int) -> None:
    """The demo mail through the pipeline, then copies up to `count` releases."""
    with Store(path) as store:
        sources, _ = open_sources([DEMO])
        trusted = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
        pipeline.import_sources(store, sources, policy=trusted)
    with sqlite3.connect(path) as conn:
        seeds = conn.execute("select count(*) from releases").fetchone()[0]
        columns = [r[1] for r in conn.execute("pragma table_info(releases)") if r[1] != "id"]
        varied = {
            "title": "title || ' (' || n || ')'",
            "release_date": "date('2020-01-01', '+' || (n % 2190) || ' days')",
            "agency": f"case n % 3 when 0 then '{AGENCIES[0]}' when 1 then '{AGENCIES[1]}'"
            f" else '{AGENCIES[2]}' end",
            "bulletin_id": "null",
            "url": "url || '?copy=' || n",
            "content_hash": "content_hash || n",
            "status": "'published'",
        }
        picked = ", ".join(varied.get(c, c) for c in columns)
        # Numbers n from a recursive CTE; each copy takes seed (n % seeds) + 1.
        conn.execute(
            f"insert into releases ({', '.join(columns)})"  # noqa: S608 - fixed names
            f" with recursive k(n) as (select {seeds + 1} union all select n + 1 from k"
            f" where n < {count}) select {picked} from k"
            f" join releases r on r.id = (k.n % {seeds}) + 1"
        )
        # Indexed as govfeed's writer indexes a release (no insert trigger since migration 10).
        conn.execute(
            "insert into releases_fts (rowid, title, body_text)"  # noqa: S608 - fixed names
            f" select id, title, body_text from releases where id > {seeds}"
        )
        conn.execute(
            "insert into release_versions (release_id, version, content_hash, title,"  # noqa: S608 - fixed names
            " release_date, url, body_text, body_html, sent_at, seen_at)"
            " select id, 1, content_hash, title, release_date, url, body_text, body_html,"
            f" first_seen_at, first_seen_at from releases where id > {seeds}"
        )
        conn.execute("analyze")


def time_path(ds: object, path: str, rounds: int, cold: bool = False) -> tuple[float, float]:
    """Median and p95 in ms; `cold` drops the facet cache first, as a commit would."""
    client = ds.client  # type: ignore[attr-defined]

    async def run() -> list[float]:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        times = []
        for _ in range(rounds):
            if cold:
                data._CUBES.clear()
            start = time.perf_counter()
            await client.get(path)
            times.append((time.perf_counter() - start) * 1000)
        return sorted(times)

    times = asyncio.run(run())
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def measure(count: int = 20_000, rounds: int = 30) -> Figures:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "govfeed.db"
        start = time.perf_counter()
        build(db, count)
        build_seconds = time.perf_counter() - start
        with sqlite3.connect(db) as conn:
            newest = conn.execute(
                "select id from published_releases order by release_date desc, id desc limit 1"
            ).fetchone()[0]
        ds = create_datasette(db)
        asyncio.run(ds.invoke_startup())
        pages = [
            ("bare Datasette request (baseline)", "/-/versions.json"),
            ("Datasette's table page of the view (baseline)", "/govfeed/published_releases"),
            ("home page", "/"),
            ("home page, one agency", "/?agency=City+of+Example"),
            ("home page, page 200", "/?page=200"),
            ("release page", f"/releases/{newest}"),
            ("search", "/search?q=defense"),
            ("Atom feed, every release", "/feeds/releases.atom"),
        ]
        timings = [Timing(label, path, *time_path(ds, path, rounds)) for label, path in pages]
        cold = time_path(ds, "/", rounds, cold=True)
        timings.insert(3, Timing("home page, first request after a write", "/", *cold))
        size_mb = db.stat().st_size / 2**20
        for database in ds.databases.values():
            database.close()
    return Figures(count, build_seconds, size_mb, timings)


def report(figures: Figures) -> None:
    print(
        f"| `govfeed site` at {figures.count:,} releases ({figures.size_mb:.0f} MB database)"
        " | median | p95 | target |"
    )
    print("|---|---|---|---|")
    for t in figures.timings:
        target = f"< {TARGET_MS:.0f} ms" if t.label in ("home page", "release page") else ""
        print(f"| {t.label} (`{t.path}`) | {t.median_ms:.1f} ms | {t.p95_ms:.1f} ms | {target} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="releases (20000)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"requests per page ({ROUNDS})")
    args = parser.parse_args()
    figures = measure(args.count, args.rounds)
    print(f"database built in {figures.build_seconds:.1f} s", file=sys.stderr)
    report(figures)


if __name__ == "__main__":
    main()
