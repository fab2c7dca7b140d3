"""The Datasette tables, JSON API and canned queries behind the reader's site: the
package's metadata (govfeed/site/metadata.json) served by a real Datasette 0.65 (with
datasette-render-html and govfeed's plugin, as `govfeed site` runs it) over a database
the real pipeline built. The reader's own pages are tested in test_site.py.

The database: six fixture mails from tests/data/ (a DoD release seen twice and then
corrected, an advisory, a transcript, a general GovDelivery bulletin), a bulletin whose
HTML tries script injection, an unauthenticated bulletin the quarantine policy holds back,
and a mail that fails. Requests go through Datasette's own ASGI test client (`ds.client`),
no socket.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from datasette.app import Datasette
from markupsafe import escape

from govfeed import pipeline
from govfeed.config import AuthenticationSettings
from govfeed.models import RawMessage
from govfeed.site import METADATA, create_datasette
from govfeed.sources import open_sources
from govfeed.store import Store

ROOT = Path(__file__).parent.parent
DATA = ROOT / "tests" / "data"

FIXTURES = (
    "dod-release.eml",  # ROK-U.S. ministerial; "trash balloons" is in its body only
    "dod-release-topic2.eml",  # the same bulletin to a second topic: no new release
    "dod-release-corrected.eml",  # a corrected re-send: a second version
    "dod-advisory.eml",
    "dod-transcript.eml",
    "govdelivery-standard.eml",
)
BODY_WORD = "balloons"  # in the ROK release's body, not in any title
HOSTILE_TITLE = "<script>alert(5)</script> Zanzibar notice"
HOSTILE_BODY = (
    "<p>Zanzibar harbour notice.<script>alert(1)</script></p>"
    '<p><img src="https://www.example.gov/x.png" onerror="alert(2)">Read'
    ' <a href="javascript:alert(3)">this</a> and <a href="JaVaScRiPt:alert(6)">that</a>.</p>'
    '<p onclick="alert(4)">See <a href="https://www.example.gov/notice">the notice</a>.</p>'
)
QUARANTINED_TITLE = "Forged notice about quokkas"
FAILED_MAIL = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR not mail at all"
PUBLISHED_VIEW_COLUMNS = [  # schema 5
    "id",
    "release_date",
    "title",
    "release_type",
    "agency",
    "agency_as_written",
    "url",
    "body_html",
    "body_text",
    "account_code",
    "bulletin_id",
    "first_seen_at",
    "message_count",
    "version_count",
    "release_month",
]


def bulletin(number: int, headline: str, date_line: str, body: str, sent: str) -> bytes:
    """A minimal HTML-only GovDelivery bulletin (the X-Accountcode makes it one)."""
    mail = f"""From: Example Agency <example@public.govdelivery.com>
To: subscriber@example.org
Subject: Example bulletin {number}
Date: {sent}
Message-ID: <test.{number}@public.govdelivery.com>
X-Accountcode: USEXAMPLE
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><body><table id="yahoo"><tr><td>
<h1 id="main-headline">{headline}</h1>
<p>{date_line}</p>
{body}
</td></tr></table></body></html>
"""
    return mail.replace("\n", "\r\n").encode()


@dataclass(frozen=True)
class Site:
    ds: Datasette
    db: Path

    def get(self, path: str, *, root: bool = False) -> httpx.Response:
        cookies = {"ds_actor": self.ds.sign({"a": {"id": "root"}}, "actor")} if root else None
        return asyncio.run(self.ds.client.get(path, cookies=cookies))

    def json(self, path: str, *, root: bool = False) -> Any:
        response = self.get(path, root=root)
        assert response.status_code == 200, (path, response.text[:500])
        return response.json()

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()


def build_database(path: Path) -> None:
    # The fixtures carry Authentication-Results from mx.google.com; the hand-made bulletins
    # carry none, so the quarantine policy holds the quokka one back. The hostile one goes
    # in under "publish", as from a sender that authenticates but was compromised.
    trusted = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
    with Store(path) as store:
        sources, problems = open_sources([DATA / name for name in FIXTURES])
        assert not problems
        pipeline.import_sources(store, sources, policy=trusted)
        hostile = bulletin(
            1,
            "&lt;script&gt;alert(5)&lt;/script&gt; Zanzibar notice",
            "September 2, 2024",
            HOSTILE_BODY,
            "Mon, 02 Sep 2024 10:00:00 -0400",
        )
        forged = bulletin(
            2,
            QUARANTINED_TITLE,
            "January 5, 2026",  # the newest of all: it would head every list if it leaked
            "<p>Quokkas have taken over the harbour.</p>",
            "Mon, 05 Jan 2026 10:00:00 -0500",
        )
        summary = pipeline.Summary()
        publish = AuthenticationSettings(unauthenticated="publish")
        pipeline.save_batch(store, [RawMessage(hostile, source="test")], summary, policy=publish)
        pipeline.save_batch(
            store,
            [RawMessage(forged, source="test"), RawMessage(FAILED_MAIL, source="test")],
            summary,
            policy=trusted,
        )
        assert (summary.new_releases, summary.quarantined, summary.failed) == (2, 1, 1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("datasette") / "govfeed.db"  # the database is named "govfeed"
    build_database(db)
    ds = create_datasette(db)
    asyncio.run(ds.invoke_startup())
    yield Site(ds, db)
    for database in ds.databases.values():
        database.close()


@pytest.fixture(scope="module")
def published(site: Site) -> list[tuple[Any, ...]]:
    """(id, title, release_date, agency, release_type) of published releases, newest first."""
    return site.rows(
        "select id, title, release_date, agency, release_type from releases"
        " where status = 'published' order by release_date desc, id desc"
    )


def titles_in_order(html: str, titles: list[str]) -> list[str]:
    """The titles that occur in `html` (escaped, as Jinja escapes them), in page order."""
    found = {title: html.find(str(escape(title))) for title in titles}
    return sorted((t for t in found if found[t] >= 0), key=found.__getitem__)


def test_the_database_has_what_the_tests_rely_on(site: Site) -> None:
    statuses = dict(site.rows("select status, count(*) from releases group by status"))
    assert statuses == {"published": 5, "quarantined": 1}
    (failed,) = site.rows("select error from messages where status = 'failed'")
    assert failed[0]
    (body,) = site.rows("select body_html from releases where title = ?", HOSTILE_TITLE)
    assert "Zanzibar harbour notice" in body[0]  # the hostile release was stored, sanitized
    for needle in ("<script", "onerror", "onclick", "javascript:"):
        assert needle not in body[0].lower()


def test_metadata_describes_every_column_a_reader_sees(site: Site) -> None:
    tables = json.loads(METADATA.read_text())["databases"]["govfeed"]["tables"]
    for table in (
        "releases",
        "published_releases",
        "release_versions",
        "published_release_versions",
        "messages",
        "contract_awards",
        "published_contract_awards",
    ):
        columns = {row[1] for row in site.rows(f"pragma table_info({table})")}
        described = set(tables[table]["columns"])
        message = f"{table}: undocumented {columns - described}, stale {described - columns}"
        assert columns == described, message
        assert all(tables[table]["columns"].values()), table
        assert tables[table]["title"] and tables[table]["description"]
    mailbox_columns = {row[1] for row in site.rows("pragma table_info(mailbox_state)")}
    assert mailbox_columns == set(tables["mailbox_state"]["columns"])


def test_anonymous_readers_see_the_published_views_and_no_table(site: Site) -> None:
    database = site.json("/govfeed.json")
    # Not even listed: every table (raw mail, messages with the subscriber's address,
    # releases with the quarantined ones, FTS over every release) is the operator's.
    assert database["tables"] == []
    views = {view["name"] for view in database["views"]}
    assert views == {
        "published_releases",
        "published_release_versions",
        "published_contract_awards",
    }
    queries = {query["name"] for query in database["queries"]}
    assert "problem_mail" not in queries
    assert {"latest_releases", "releases_by_type", "search"} <= queries


def test_the_operator_sees_every_table(site: Site) -> None:
    database = site.json("/govfeed.json", root=True)
    hidden = {t["name"] for t in database["tables"] if t["hidden"]}
    shown = {t["name"] for t in database["tables"] if not t["hidden"]}
    assert {"release_keys", "govfeed_migrations", "releases", "release_versions"} <= hidden
    assert {"messages", "mailbox_state", "raw_messages"} <= hidden | shown
    assert "problem_mail" in {query["name"] for query in database["queries"]}


def test_raw_mail_and_arbitrary_sql_are_for_the_operator_only(site: Site) -> None:
    for table in ("raw_messages", "messages", "mailbox_state", "releases", "releases_fts"):
        assert site.get(f"/govfeed/{table}").status_code == 403, table
        assert site.get(f"/govfeed/{table}.json").status_code == 403, table
    assert site.get("/govfeed/problem_mail").status_code == 403
    assert site.get("/govfeed.db").status_code in (403, 404)
    assert site.get("/govfeed/messages", root=True).status_code == 200
    assert site.get("/govfeed?sql=select+1").status_code == 403
    assert site.get("/govfeed/raw_messages", root=True).status_code == 200
    # render-html is configured per table, so SQL output is escaped even for the operator.
    page = site.get("/govfeed?sql=select+'<script>alert(7)</script>'+as+body_html", root=True).text
    assert "&lt;script&gt;alert(7)" in page
    assert "<script>alert(7)" not in page


def test_releases_page_lists_published_releases_newest_first(
    site: Site, published: list[tuple[Any, ...]]
) -> None:
    response = site.get("/govfeed/published_releases")
    assert response.status_code == 200
    titles = [row[1] for row in published]
    assert titles_in_order(response.text, titles) == titles
    assert "quokka" not in response.text.lower()
    assert "sorted by release_date descending" in response.text
    # body_html is rendered as HTML (not escaped) by datasette-render-html
    assert "<p>Zanzibar harbour notice.</p>" in response.text


def test_reader_release_versions_leave_quarantined_texts_out(site: Site) -> None:
    data = site.json("/govfeed/published_release_versions.json?_shape=objects&_size=max")
    titles = {row["title"] for row in data["rows"]}
    assert QUARANTINED_TITLE not in titles
    published = site.rows(
        "select v.title from release_versions v join releases r on r.id = v.release_id"
        " where r.status = 'published'"
    )
    assert titles == {title for (title,) in published}
    page = site.get("/govfeed/published_release_versions")
    assert page.status_code == 200 and "quokka" not in page.text.lower()
    assert "Release versions" in page.text  # the metadata's title, with the HTML rendered
    # The operator table (hidden, reached by its address) keeps every version.
    everything = site.json("/govfeed/release_versions.json?_shape=objects&_size=max", root=True)
    assert QUARANTINED_TITLE in {row["title"] for row in everything["rows"]}


def test_releases_json_api(site: Site, published: list[tuple[Any, ...]]) -> None:
    data = site.json("/govfeed/published_releases.json?_shape=objects&_size=max")
    assert data["columns"] == PUBLISHED_VIEW_COLUMNS
    assert [row["id"] for row in data["rows"]] == [row[0] for row in published]
    first = data["rows"][0]
    assert first["release_month"] == first["release_date"][:7]
    facets = data["facet_results"]
    assert set(facets) == {"agency", "release_type", "release_month"}
    months = {item["value"]: item["count"] for item in facets["release_month"]["results"]}
    assert sum(months.values()) == len(published)
    assert "2026-01" not in months  # the quarantined release's month
    types = {item["value"] for item in facets["release_type"]["results"]}
    assert types == {row[4] for row in published}


def test_operator_table_keeps_quarantined_releases(site: Site) -> None:
    data = site.json("/govfeed/releases.json?_shape=objects&_facet=status", root=True)
    assert data["rows"][0]["title"] == QUARANTINED_TITLE  # newest first, status shown
    statuses = {i["value"]: i["count"] for i in data["facet_results"]["status"]["results"]}
    assert statuses == {"published": 5, "quarantined": 1}
    page = site.get(f"/govfeed/releases/{data['rows'][0]['id']}", root=True)
    assert page.status_code == 200
    assert "<p>Quokkas have taken over the harbour.</p>" in page.text


def test_full_text_search_finds_a_word_of_the_body(site: Site) -> None:
    (release_id,) = site.rows("select id from releases where body_text like ?", f"%{BODY_WORD}%")
    data = site.json(f"/govfeed/published_releases.json?_search={BODY_WORD}&_shape=objects")
    assert [row["id"] for row in data["rows"]] == [release_id[0]]
    assert site.get(f"/govfeed/published_releases?_search={BODY_WORD}").status_code == 200
    quokka = site.json("/govfeed/published_releases.json?_search=quokkas&_shape=objects")
    assert quokka["rows"] == []
    # Search syntax a reader might type by accident is escaped, not an error.
    odd = site.get('/govfeed/published_releases.json?_search="unbalanced+AND+NEAR(')
    assert odd.status_code == 200


def test_latest_releases_query(site: Site, published: list[tuple[Any, ...]]) -> None:
    data = site.json("/govfeed/latest_releases.json?_shape=objects")
    assert [row["title"] for row in data["rows"]] == [row[1] for row in published]
    page = site.get("/govfeed/latest_releases")
    assert page.status_code == 200
    body = page.text.split("</head>")[1]
    assert "from published_releases" not in body  # the page opens with rows, not SQL


def test_releases_by_type_query(site: Site, published: list[tuple[Any, ...]]) -> None:
    data = site.json("/govfeed/releases_by_type.json?release_type=transcript&_shape=objects")
    expected = [row[1] for row in published if row[4] == "transcript"]
    assert [row["title"] for row in data["rows"]] == expected
    assert len(expected) == 1
    assert site.get("/govfeed/releases_by_type?release_type=advisory").status_code == 200
    other = site.json("/govfeed/releases_by_type.json?release_type=other&_shape=objects")
    assert QUARANTINED_TITLE not in {row["title"] for row in other["rows"]}


def test_search_query(site: Site) -> None:
    data = site.json(f"/govfeed/search.json?q={BODY_WORD}&_shape=objects")
    assert len(data["rows"]) == 1
    assert f"[{BODY_WORD}]" in data["rows"][0]["excerpt"]
    assert site.get(f"/govfeed/search?q={BODY_WORD}").status_code == 200
    assert site.json("/govfeed/search.json?q=quokkas&_shape=objects")["rows"] == []
    for awkward in ("", "+++", '"', '"unbalanced+AND+NEAR(', "x*+OR+y"):
        response = site.get(f"/govfeed/search.json?q={awkward}&_shape=objects")
        assert response.status_code == 200, (awkward, response.text[:300])
    assert site.json("/govfeed/search.json?q=&_shape=objects")["rows"] == []


def test_problem_mail_query_shows_failed_and_quarantined_mail(site: Site) -> None:
    ((failed_id, error),) = site.rows("select id, error from messages where status = 'failed'")
    data = site.json("/govfeed/problem_mail.json?_shape=objects", root=True)
    by_id = {row["id"]: row for row in data["rows"]}
    assert by_id[failed_id]["error"] == error
    assert {row["status"] for row in data["rows"]} == {"failed", "quarantined"}
    page = site.get("/govfeed/problem_mail", root=True)
    assert page.status_code == 200
    assert error.split(":")[0] in page.text


def test_no_script_from_a_hostile_release_reaches_a_page_or_the_feed(site: Site) -> None:
    (release_id,) = site.rows("select id from releases where title = ?", HOSTILE_TITLE)
    pages = [
        ("/govfeed/published_releases", False),
        ("/govfeed/published_releases?_search=zanzibar", False),
        ("/govfeed/releases", True),
        (f"/govfeed/releases/{release_id[0]}", True),
        ("/govfeed/release_versions", True),
        ("/govfeed/published_release_versions", False),
        ("/govfeed/latest_releases", False),
        ("/govfeed/search?q=zanzibar", False),
        ("/", False),
        (f"/releases/{release_id[0]}", False),
        ("/search?q=zanzibar", False),
        ("/feeds/releases.atom", False),
    ]
    for path, root in pages:
        response = site.get(path, root=root)
        assert response.status_code == 200, path
        text = response.text
        assert "Zanzibar" in text, path  # the hostile release is on the page
        lowered = text.lower()
        assert "<script>alert" not in lowered, path
        assert "alert(1)" not in lowered and "alert(2)" not in lowered, path
        assert "onerror" not in lowered and "onclick=" not in lowered, path
        assert "javascript:" not in lowered, path


def test_schema_creates_the_published_releases_view(tmp_path: Path) -> None:
    with Store(tmp_path / "fresh.db") as store:
        columns = [row[1] for row in store.conn.execute("pragma table_info(published_releases)")]
    assert columns == PUBLISHED_VIEW_COLUMNS
