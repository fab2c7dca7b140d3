"""The speed work changes no row: the same mail gives the same database byte for byte
whether it is analysed in-process, by one worker or by a pool, in any batch size, and
the stdlib parser with govfeed's boundary matcher builds the same message trees.

Only the wall-clock columns (when a row was written) are left out of the comparison.
"""

from __future__ import annotations

import email
import email.feedparser
import email.policy
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from govfeed import parse, pipeline
from govfeed.config import load_settings
from govfeed.sources import open_sources
from govfeed.store import Store

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
import mailgen  # noqa: E402 - examples/ is not a package

CONFIG = Path(__file__).parent.parent / "config" / "demo.toml"
FIXTURES = sorted(DATA.rglob("*.eml"))
# Columns that hold the time a row was written: they differ between any two runs.
CLOCK_COLUMNS = frozenset(
    {"imported_at", "first_seen_at", "last_seen_at", "seen_at", "received_at", "released_at"}
)


def everything(db: Path, *, fts_pages: bool = True) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, clock columns left out. The FTS index's own pages
    (`releases_fts_data`, ...) depend on where the transactions fall; `fts_pages=False`
    leaves them out (the FTS table's rows and a search are compared instead)."""
    with sqlite3.connect(db) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "select name from sqlite_master where type = 'table'"
                " and name not in ('govfeed_migrations', 'sqlite_sequence') order by name"
            )
            if fts_pages or not name.startswith("releases_fts_")
        ]
        found = {}
        for table in tables:
            columns = [
                row[1]
                for row in conn.execute(f"pragma table_info('{table}')")
                if row[1] not in CLOCK_COLUMNS
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            # WITHOUT ROWID tables (FTS index, config) are ordered by their key.
            order = "1, 2" if table in ("releases_fts_idx", "releases_fts_config") else "rowid"
            found[table] = conn.execute(
                f'select {listed} from "{table}" order by {order}'  # noqa: S608 - table names
            ).fetchall()
        found["search"] = conn.execute(
            "select rowid from releases_fts where releases_fts match 'generated' order by rowid"
        ).fetchall()
    return found


def corpus(tmp_path: Path) -> Path:
    """The fixtures (good, malformed, forged) and enough generated mail to fill a pool,
    with re-sends and the same release under two Message-IDs, so that later messages of
    a batch depend on earlier ones."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, path in enumerate(FIXTURES):
        shutil.copy(path, folder / f"f{i:03d}-{path.name}")
    for i in range(150):
        title = f"Generated release {i % 110}"  # 40 re-sends of an earlier release
        (folder / f"gen-{i:03d}.eml").write_bytes(
            mailgen.dod_release(
                title=title,
                article_id=4_000_000 + i % 110,
                bulletin_id=f"20240901.{500_000 + i % 110}",
                message_id=f"<gen.{i}@public.govdelivery.com>",
                paragraphs=[f"Corrected text {i}." if i >= 110 else f"Text of {title}."],
            )
        )
    return folder


def import_with(db: Path, folder: Path, workers: int, batch_size: int) -> dict[str, int]:
    settings = load_settings(CONFIG)
    sources, _ = open_sources([folder])
    with Store(db) as store:
        summary = pipeline.import_sources(
            store,
            sources,
            workers=workers,
            batch_size=batch_size,
            policy=settings.authentication,
        )
    return summary.as_dict()


def test_in_process_one_worker_and_a_pool_store_the_same_rows(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    results = {}
    for workers, batch_size in ((0, 500), (1, 500), (2, 500), (2, 7)):
        db = tmp_path / f"w{workers}-b{batch_size}.db"
        summary = import_with(db, folder, workers, batch_size)
        results[workers, batch_size] = (summary, everything(db, fts_pages=batch_size == 500))
    baseline = results[0, 500]
    assert baseline[0]["new_releases"] >= 110
    assert baseline[0]["new_versions"] >= 30  # the corrected re-sends
    assert len(baseline[1]["search"]) >= 110
    for key, (summary, tables) in results.items():
        assert summary == baseline[0], key
        assert tables == {k: v for k, v in baseline[1].items() if k in tables}, key


def test_reparse_in_a_pool_leaves_the_rows_an_import_made(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    db = tmp_path / "reparsed.db"
    import_with(db, folder, 2, 500)
    before = everything(db, fts_pages=False)  # a reparse rewrites the FTS rows
    with Store(db) as store:
        summary = pipeline.reparse(store, load_settings(CONFIG), workers=2)
    assert summary.changes == {}
    assert summary.read == len(before["messages"])
    assert everything(db, fts_pages=False) == before


BOUNDARIES = ["simple", "a.b+c*d?(e)[f]{g}|h^$\\i", "with space", "tab\there", "==_Part_1=="]
LINES = [
    "--{b}\n",
    "--{b}--\n",
    "--{b}--",
    "--{b}",
    "--{b}  \t\r\n",
    "--{b}--  \r\n",
    "--{b}x\n",
    "--{b}--x\n",
    "--{b} \n\n",
    " --{b}\n",
    "--{b}\r",
    "text --{b}\n",
    "--{b}-\n",
]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_boundary_matcher_matches_as_the_stdlib_pattern(boundary: str) -> None:
    separator = "--" + boundary
    pattern = (
        "(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    )
    stdlib, ours = re.compile(pattern), email.feedparser.re.compile(pattern)
    assert isinstance(ours, parse._BoundaryMatcher)
    for template in LINES:
        line = template.replace("{b}", boundary)
        want, got = stdlib.match(line), ours.match(line)
        assert (want is None) == (got is None), line
        if want is not None and got is not None:
            assert want.group("end", "linesep") == got.group("end", "linesep"), line
            assert want.end() == got.end(), line


ENDINGS = ["", "\n", "\r", "\r\n", "\n\r", "\r\r", "\n\n", "\r\n\r\n", "\r\r\n", "x"]


@pytest.mark.parametrize("body", ["", "x", "line\r\n" * 300, "a\rb\nc\r\nd", "\r\n" * 3])
@pytest.mark.parametrize("ending", ENDINGS)
def test_line_end_search_matches_as_the_stdlib_pattern(body: str, ending: str) -> None:
    text = body + ending
    want = re.compile(r"(\r\n|\r|\n)\Z").search(text)
    got = email.feedparser.NLCRE_eol.search(text)  # type: ignore[attr-defined]
    assert isinstance(email.feedparser.NLCRE_eol, parse._LineEndAtEnd)  # type: ignore[attr-defined]
    assert (want is None) == (got is None)
    if want is not None and got is not None:
        assert (want.group(0), want.span()) == (got.group(0), got.span())


@pytest.mark.parametrize("value", ["plain ascii", "caf\u00e9 unicode", "raw \udce9 byte", ""])
def test_header_values_are_read_as_compat32_reads_them(value: str) -> None:
    """The ASCII shortcut in header_fetch_parse gives what compat32 gives, for every kind
    of value: ASCII, decoded text, and undecodable bytes (surrogate escapes) as a Header."""
    ours = parse._POLICY.header_fetch_parse("Subject", value)
    stdlib = email.policy.compat32.header_fetch_parse("Subject", value)
    assert type(ours) is type(stdlib)
    assert str(ours) == str(stdlib)


def tree(message: email.message.Message) -> list[object]:
    return [
        (
            part.get_content_type(),
            part.preamble,
            part.epilogue,
            [type(d).__name__ for d in part.defects],
            None if part.is_multipart() else part.get_payload(),
        )
        for part in message.walk()
    ]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixtures_parse_to_the_same_tree_as_with_the_stdlib_patterns(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    ours = tree(email.message_from_bytes(data))
    monkeypatch.setattr(email.feedparser, "re", re)
    monkeypatch.setattr(email.feedparser, "NLCRE_eol", re.compile(r"(\r\n|\r|\n)\Z"))
    assert tree(email.message_from_bytes(data)) == ours


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_an_analysis_comes_back_equal_from_a_worker(path: Path) -> None:
    import pickle

    from govfeed.analysis import analyze, as_trust_policy

    settings = load_settings(CONFIG)
    analysis = analyze(path.read_bytes(), as_trust_policy(settings.authentication))
    assert pickle.loads(pickle.dumps(analysis)) == analysis  # noqa: S301 - our own bytes
