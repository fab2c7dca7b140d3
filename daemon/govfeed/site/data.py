"""The reader's site's SQL: every query a public page or feed runs.

Public rows come from the published views (`published_releases`,
`published_release_versions`, `published_contract_awards`), never from `releases`, so a
quarantined release cannot reach a page by a forgotten `where`. Two exceptions, both
joined to a published release first: the FTS index (`releases_fts` covers every
release), and the public-safe columns of `messages` (subject, date, sender name; never
the subscriber's address or the unsubscribe link).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from datasette.database import Database
from datasette.utils import escape_fts

PAGE_SIZE = 25
SEARCH_COUNT_CAP = 1000
FACET_SIZE = 12
# The filters a reader can set on the home page: query-string name -> view column.
RELEASE_FILTERS = {"agency": "agency", "type": "release_type", "month": "release_month"}
AWARD_FILTERS = {"branch": "branch", "contractor": "contractor", "month": "release_month"}
# char(2)/char(3) mark matches in snippet(): they cannot occur in extracted text, so the
# page can escape the excerpt first and turn only these into <mark> (text.marked).
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"

Row = dict[str, Any]


@dataclass(frozen=True)
class Facet:
    """Counts of one column's values under the current filters."""

    name: str
    label: str
    selected: str
    values: list[tuple[str, int]]


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    total: int
    facets: list[Facet]


def _where(filters: dict[str, str], allowed: dict[str, str]) -> tuple[str, list[str]]:
    clauses, params = [], []
    for key, column in allowed.items():
        if filters.get(key):
            clauses.append(f"{column} = ?")  # column names come from `allowed`, not the reader
            params.append(filters[key])
    return (" where " + " and ".join(clauses)) if clauses else "", params


async def _dicts(db: Database, sql: str, params: list[Any] | None = None) -> list[Row]:
    """The rows of one query, each as a dict."""
    found = await db.execute(sql, params or [])
    return [dict(row) for row in found.rows]


async def _facets(
    db: Database,
    source: str,
    filters: dict[str, str],
    allowed: dict[str, str],
    labels: dict[str, str],
) -> list[Facet]:
    facets = []
    for key, column in allowed.items():
        # Each facet counts under the other filters, so a reader can switch within one.
        others = {k: v for k, v in filters.items() if k != key}
        where, params = _where(others, allowed)
        # Months read newest first; the others by how many rows they hold.
        order = f"{column} desc" if key == "month" else f"count(*) desc, {column}"
        found = await db.execute(
            f"select {column}, count(*) from {source}{where}"
            f"{' and' if where else ' where'} {column} is not null"
            f" group by {column} order by {order} limit {FACET_SIZE}",
            params,
        )
        values = [(str(value), int(count)) for value, count in found.rows]
        facets.append(Facet(key, labels[key], filters.get(key, ""), values))
    return facets


@dataclass(frozen=True)
class Signature:
    """What changes when a writer commits: the database file's and its -wal's stat."""

    stats: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, path: str) -> Signature:
        stats = []
        for name in (path, path + "-wal"):
            try:
                found = os.stat(name)
            except FileNotFoundError:
                stats.append((0, 0))
            else:
                stats.append((found.st_mtime_ns, found.st_size))
        return cls(tuple(stats))


Cube = list[tuple[Any, Any, Any, int]]
# (agency, release_type, release_month) -> published releases, per database file, kept
# until the file changes: every home page's facets and total come from it, so a page
# costs one scan of the covering index per commit instead of four per request. The
# facets computed from it are kept too, per filter combination (a bounded number).
_CUBES: dict[str, tuple[Signature, Cube, dict[tuple[str, ...], tuple[int, list[Facet]]]]] = {}
_FACET_MEMO_SIZE = 512


async def release_facets(db: Database, filters: dict[str, str]) -> tuple[int, list[Facet]]:
    """(total, facets) of published releases under `filters`."""
    cube, memo = await _release_cube(db)
    key = tuple(filters.get(name, "") for name in RELEASE_FILTERS)
    if key not in memo:
        if len(memo) >= _FACET_MEMO_SIZE:
            memo.clear()
        memo[key] = _cube_facets(cube, filters)
    return memo[key]


async def _release_cube(
    db: Database,
) -> tuple[Cube, dict[tuple[str, ...], tuple[int, list[Facet]]]]:
    signature = Signature.of(str(db.path))
    cached = _CUBES.get(str(db.path))
    if cached is not None and cached[0] == signature:
        return cached[1], cached[2]
    # Grouped month first so SQLite reads the covering (status, release_date, agency,
    # release_type) index instead of the (agency, release_type) one and every row.
    found = await db.execute(
        "select agency, release_type, release_month, count(*) from published_releases"
        " group by release_month, agency, release_type"
    )
    cube = [(row[0], row[1], row[2], int(row[3])) for row in found.rows]
    memo: dict[tuple[str, ...], tuple[int, list[Facet]]] = {}
    _CUBES[str(db.path)] = (signature, cube, memo)
    return cube, memo


def _cube_facets(cube: Cube, filters: dict[str, str]) -> tuple[int, list[Facet]]:
    keys = list(RELEASE_FILTERS)  # agency, type, month: the cube's column order
    labels = {"agency": "Agency", "type": "Type", "month": "Month"}
    total = 0
    counts: dict[str, dict[str, int]] = {key: {} for key in keys}
    for *values, count in cube:
        matches = [not filters.get(k) or filters[k] == v for k, v in zip(keys, values, strict=True)]
        if all(matches):
            total += count
        for index, key in enumerate(keys):
            # Each facet counts under the other filters, so a reader can switch within one.
            others = matches[:index] + matches[index + 1 :]
            if values[index] is not None and all(others):
                bucket = counts[key]
                bucket[values[index]] = bucket.get(values[index], 0) + count
    facets = []
    for key in keys:
        if key == "month":  # months read newest first; the others by size
            ordered = sorted(counts[key].items(), reverse=True)
        else:
            ordered = sorted(counts[key].items(), key=lambda item: (-item[1], item[0]))
        facets.append(Facet(key, labels[key], filters.get(key, ""), ordered[:FACET_SIZE]))
    return total, facets


async def latest_releases(db: Database, filters: dict[str, str], page: int) -> Listing:
    """A page of published releases, newest first, with facet counts."""
    where, params = _where(filters, RELEASE_FILTERS)
    found = await db.execute(
        "select id, title, release_date, agency, release_type, url,"
        f" substr(body_text, 1, 1500) as summary from published_releases{where}"
        f" order by release_date desc, id desc limit {PAGE_SIZE} offset ?",
        [*params, (page - 1) * PAGE_SIZE],
    )
    total, facets = await release_facets(db, filters)
    return Listing([dict(row) for row in found.rows], total, facets)


async def release(db: Database, release_id: int) -> Row | None:
    """One published release, or None (unknown, or held back: the same to a reader)."""
    found = await db.execute("select * from published_releases where id = ?", [release_id])
    row = found.first()
    return dict(row) if row is not None else None


async def versions(db: Database, release_id: int) -> list[Row]:
    return await _dicts(
        db,
        "select version, title, release_date, url, body_text,"
        " coalesce(sent_at, seen_at) as sent_at from published_release_versions"
        " where release_id = ? order by version",
        [release_id],
    )


async def arrivals(db: Database, release_id: int) -> list[Row]:
    """The mails that carried a published release: public-safe columns only."""
    return await _dicts(
        db,
        "select m.subject, m.sent_at, m.from_name from messages m"
        " join published_releases p on p.id = m.release_id"
        " where m.release_id = ? and m.status in ('stored', 'duplicate')"
        " order by m.sent_at, m.id limit 100",
        [release_id],
    )


async def awards_of(db: Database, release_id: int) -> list[Row]:
    return await _dicts(
        db,
        "select * from published_contract_awards where release_id = ? order by position",
        [release_id],
    )


async def search(db: Database, query: str, page: int) -> tuple[list[Row], int]:
    """Published releases matching `query` (FTS5, porter), best first, with excerpts."""
    match = escape_fts(query.strip())
    if not match:
        return [], 0
    # releases_fts covers every release: the join to the published view is the filter.
    found = await db.execute(
        "select p.id, p.release_date, p.agency, p.release_type,"
        f" highlight(releases_fts, 0, char(2), char(3)) as title,"
        f" snippet(releases_fts, 1, char(2), char(3), ' … ', 32) as excerpt"
        " from releases_fts join published_releases p on p.id = releases_fts.rowid"
        " where releases_fts match ? order by bm25(releases_fts, 5.0, 1.0), p.release_date desc"
        f" limit {PAGE_SIZE} offset ?",
        [match, (page - 1) * PAGE_SIZE],
    )
    # Counted up to a cap: a common word matches most of the archive, and counting all
    # of it costs more than the page (the page says "more than 1,000").
    total = await db.execute(
        "select count(*) from (select 1 from releases_fts join published_releases p"
        f" on p.id = releases_fts.rowid where releases_fts match ? limit {SEARCH_COUNT_CAP})",
        [match],
    )
    return [dict(row) for row in found.rows], int(total.first()[0])


async def awards(db: Database, filters: dict[str, str], minimum: int, page: int) -> Listing:
    """Contract awards of published releases, largest first, with facet counts."""
    where, params = _where(filters, AWARD_FILTERS)
    amount = f"{' and' if where else ' where'} coalesce(amount_usd, 0) >= {int(minimum)}"
    found = await db.execute(
        "select release_id, position, release_date, title, branch, contractor,"
        " contractor_location, amount_usd, contract_number, is_modification, small_business"
        f" from published_contract_awards{where}{amount}"
        f" order by amount_usd desc, release_date desc limit {PAGE_SIZE} offset ?",
        [*params, (page - 1) * PAGE_SIZE],
    )
    total = await db.execute(
        f"select count(*) from published_contract_awards{where}{amount}", params
    )
    labels = {"branch": "Branch", "contractor": "Contractor", "month": "Month"}
    facets = await _facets(db, "published_contract_awards", filters, AWARD_FILTERS, labels)
    return Listing([dict(row) for row in found.rows], int(total.first()[0]), facets)


async def feed_releases(db: Database, column: str | None, value: str) -> list[Row]:
    """The 50 newest published releases, all or where `column` (a fixed name) = value."""
    where = f" where {column} = ?" if column else ""
    return await _dicts(
        db,
        "select p.id, p.title, p.release_date, p.agency, p.release_type, p.url, p.body_html,"
        " p.first_seen_at, (select max(coalesce(v.sent_at, v.seen_at))"
        "   from published_release_versions v where v.release_id = p.id) as updated"
        f" from published_releases p{where} order by release_date desc, id desc limit 50",
        [value] if column else [],
    )


async def feed_awards(db: Database, minimum: int) -> list[Row]:
    return await _dicts(
        db,
        "select a.*, p.first_seen_at from published_contract_awards a"
        " join published_releases p on p.id = a.release_id"
        " where a.amount_usd >= ? order by a.release_date desc, a.release_id desc, a.position"
        " limit 100",
        [minimum],
    )


async def distinct(db: Database, column: str) -> list[str]:
    """Every value of a fixed published_releases column (agency, release_type)."""
    found = await db.execute(
        f"select distinct {column} from published_releases where {column} is not null"
        f" order by {column}"
    )
    return [str(row[0]) for row in found.rows]
