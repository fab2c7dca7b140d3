"""The reader's site (`govfeed site`): pages, search, feeds and the public surface.

A real Datasette built by govfeed.site.create_datasette (as `govfeed site` runs it) over a
database the real pipeline made (tests/site_db.py), reached through Datasette's ASGI
client. Feeds are read with feedparser, as a feed reader reads them. The browser checks
(layout, phone width, script errors) are in test_site_browser.py.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import feedparser
import httpx
import pytest
from click.testing import CliRunner
from datasette.app import Datasette
from markupsafe import escape

from govfeed import pipeline
from govfeed.cli import cli
from govfeed.config import AuthenticationSettings
from govfeed.site import create_datasette
from govfeed.sources import open_sources
from govfeed.store import Store
from tests.site_db import QUARANTINED_CONTRACTOR, build_site_database
from tests.test_datasette import BODY_WORD, DATA, HOSTILE_TITLE, QUARANTINED_TITLE

ATOM_TYPE = "application/atom+xml"
# Words of the quarantined release and its award: none may reach an anonymous reader.
SECRETS = ("Forged notice about quokkas", "Quokkas have taken over", "Quokka Holdings")
MAX_PAGES = 500


@dataclass(frozen=True)
class Site:
    ds: Datasette
    db: Path

    def get(self, path: str, *, root: bool = False) -> httpx.Response:
        cookies = {"ds_actor": self.ds.sign({"a": {"id": "root"}}, "actor")} if root else None
        return asyncio.run(self.ds.client.get(path, cookies=cookies))

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()

    def release_id(self, title: str) -> int:
        ((found,),) = self.rows("select id from releases where title = ?", title)
        return int(found)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("site") / "archive.db"  # any file name: served as "govfeed"
    build_site_database(db)
    ds = create_datasette(db)
    asyncio.run(ds.invoke_startup())
    yield Site(ds, db)
    for database in ds.databases.values():
        database.close()


def published_newest_first(site: Site) -> list[tuple[Any, ...]]:
    return site.rows(
        "select id, title, agency, release_type from releases where status = 'published'"
        " order by release_date desc, id desc"
    )


def test_home_lists_published_releases_newest_first_with_links(site: Site) -> None:
    response = site.get("/")
    assert response.status_code == 200
    page = response.text
    newest = published_newest_first(site)
    positions = [page.find(f'href="/releases/{row[0]}"') for row in newest]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert QUARANTINED_TITLE not in page
    assert 'name="q"' in page  # the search box
    assert "<table" not in page  # no Datasette table chrome
    for facet in ("Agency", "Type", "Month"):
        assert f"<h2>{facet}</h2>" in page


def test_home_facets_narrow_the_list(site: Site) -> None:
    page = site.get("/?type=transcript").text
    transcripts = [row for row in published_newest_first(site) if row[3] == "transcript"]
    others = [row for row in published_newest_first(site) if row[3] != "transcript"]
    assert transcripts and all(f'href="/releases/{row[0]}"' in page for row in transcripts)
    assert not any(f'href="/releases/{row[0]}"' in page for row in others)
    assert f"Showing {len(transcripts)} release" in page
    assert "/feeds/type/transcript.atom" in page  # that type's feed is announced


def test_release_page_reads_like_an_article(site: Site) -> None:
    ((release_id, title, url, body_html),) = site.rows(
        "select id, title, url, body_html from releases where body_text like ?"
        " and status = 'published'",
        f"%{BODY_WORD}%",
    )
    page = site.get(f"/releases/{release_id}").text
    assert f"<h1>{escape(title)}</h1>" in page
    assert f'href="{escape(url)}"' in page and "View online" in page
    assert body_html in page  # the sanitized body, rendered as HTML
    # The corrected re-send made a second version: the history says what changed.
    assert "Version 2" in page and ("<ins>" in page or "<del>" in page)
    assert "Mail that carried it" in page


def test_release_page_never_shows_the_subscriber(site: Site) -> None:
    addresses = {a for (a,) in site.rows("select to_address from messages") if a}
    addresses |= {s for (s,) in site.rows("select subscriber from messages") if s}
    assert addresses
    for (release_id,) in site.rows("select id from releases where status = 'published'"):
        page = site.get(f"/releases/{release_id}").text
        assert not [a for a in addresses if a in page], release_id


def test_quarantined_and_unknown_releases_are_not_found(site: Site) -> None:
    quarantined = site.release_id(QUARANTINED_TITLE)
    for path in (f"/releases/{quarantined}", "/releases/999999", "/releases/x"):
        response = site.get(path)
        assert response.status_code == 404, path
        assert "no published release" in response.text.lower()


def test_contract_release_shows_its_awards(site: Site) -> None:
    ((release_id,),) = site.rows("select id from releases where release_type = 'contract'")
    awards = site.rows(
        "select contractor, amount_usd from contract_awards where release_id = ?", release_id
    )
    assert awards
    page = site.get(f"/releases/{release_id}").text
    assert "Contract awards in this announcement" in page
    for contractor, amount in awards:
        assert str(escape(contractor.rstrip("*"))) in page
        assert f"${amount:,}" in page


def test_search_ranks_highlights_and_keeps_the_query(site: Site) -> None:
    page = site.get(f"/search?q={BODY_WORD}").text
    assert f"<mark>{BODY_WORD}</mark>" in page
    assert f'value="{BODY_WORD}"' in page
    assert "1 release matches" in page
    empty = site.get("/search?q=quokkas").text
    assert "No results" in empty and "Quokkas have" not in empty
    for awkward in ("", "+++", '"', '"unbalanced AND NEAR(', "x* OR y", "<script>"):
        response = site.get("/search?" + urlencode({"q": awkward}))
        assert response.status_code == 200, awkward
        assert "<script>" not in response.text.split("</head>")[1], awkward


def test_search_excerpt_escapes_the_text_around_the_marks(site: Site) -> None:
    page = site.get("/search?q=zanzibar").text
    assert "<mark>Zanzibar</mark>" in page
    assert "<script>alert" not in page
    assert str(escape(HOSTILE_TITLE)).replace("Zanzibar", "<mark>Zanzibar</mark>") in page


def feed(site: Site, path: str) -> Any:
    response = site.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    assert response.headers["content-type"].startswith(ATOM_TYPE), path
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, (path, parsed.get("bozo_exception"))
    assert parsed.version == "atom10"
    return parsed


def test_atom_feed_of_every_release(site: Site) -> None:
    parsed = feed(site, "/feeds/releases.atom")
    newest = published_newest_first(site)
    assert [e.title for e in parsed.entries] == [str(row[1]) for row in newest]
    assert [e.id for e in parsed.entries] == [f"tag:govfeed,2024:release:{r[0]}" for r in newest]
    for entry in parsed.entries:
        assert entry.content[0].type == "text/html"
        assert entry.link.startswith("http://localhost/releases/")
        assert entry.updated_parsed is not None
    rok = next(e for e in parsed.entries if BODY_WORD in e.content[0].value)
    assert "<p>" in rok.content[0].value  # the HTML body, not its text
    assert all(secret not in str(parsed) for secret in SECRETS)


def test_atom_feeds_per_agency_and_type(site: Site) -> None:
    newest = published_newest_first(site)
    dod = feed(site, "/feeds/agency/u-s-department-of-defense.atom")
    expected = [str(r[1]) for r in newest if r[2] == "U.S. Department of Defense"]
    assert [e.title for e in dod.entries] == expected
    advisories = feed(site, "/feeds/type/advisory.atom")
    assert [e.title for e in advisories.entries] == [
        str(r[1]) for r in newest if r[3] == "advisory"
    ]
    example = feed(site, "/feeds/agency/example-agency.atom")
    assert [e.title for e in example.entries] == [HOSTILE_TITLE]  # not the quarantined one
    assert site.get("/feeds/agency/nobody.atom").status_code == 404
    assert site.get("/feeds/type/gossip.atom").status_code == 404


def test_atom_feed_of_large_contract_awards(site: Site) -> None:
    awards = site.rows(
        "select contractor, amount_usd from contract_awards a join releases r"
        " on r.id = a.release_id where r.status = 'published' order by amount_usd desc"
    )
    everything = feed(site, "/feeds/awards.atom?min=0")
    assert len(everything.entries) == len(awards)
    large = feed(site, f"/feeds/awards.atom?min={awards[0][1]}")
    assert len(large.entries) == 1 and f"${awards[0][1]:,}" in large.entries[0].title
    assert QUARANTINED_CONTRACTOR not in str(everything)


def test_awards_page_lists_published_awards_with_facets(site: Site) -> None:
    page = site.get("/awards").text
    assert "<h2>Branch</h2>" in page and "<h2>Contractor</h2>" in page
    awards = site.rows(
        "select contractor, branch from contract_awards a join releases r"
        " on r.id = a.release_id where r.status = 'published'"
    )
    for contractor, _ in awards:
        assert str(escape(contractor.rstrip("*"))) in page
    assert QUARANTINED_CONTRACTOR not in page
    army = [contractor for contractor, branch in awards if branch == "Army"]
    page = site.get("/awards?branch=Army").text
    assert f"{len(army)} award" in page
    assert all(str(escape(c.rstrip("*"))) in page for c in army)
    for query in ("largest_awards_this_month", "awards_to_a_contractor"):
        assert site.get(f"/govfeed/{query}").status_code == 200, query
    to = site.get("/govfeed/awards_to_a_contractor.json?contractor=quokka&_shape=objects")
    assert to.json()["rows"] == []


def test_every_page_announces_its_feeds(site: Site) -> None:
    release_id = site.release_id(HOSTILE_TITLE)
    for path in ("/", f"/releases/{release_id}", "/search?q=x", "/awards", "/releases/0"):
        page = site.get(path).text
        head = page.split("</head>")[0]
        links = re.findall(r'<link rel="alternate" type="application/atom\+xml"[^>]*>', head)
        assert any('href="/feeds/releases.atom"' in link for link in links), path


def links_of(base: str, html: str) -> list[str]:
    found = []
    for href in re.findall(r'(?:href|src|action)="([^"]*)"', html):
        url = urljoin(base, href.replace("&amp;", "&"))
        parts = urlsplit(url)
        if parts.netloc in ("", "localhost") and parts.scheme in ("", "http"):
            found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def crawl(site: Site, secrets: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """Fetch, as anonymous, every page and JSON address reachable from the site's pages
    and every table, view and query by name; assert no secret is in any answer.
    Returns (every path fetched, the paths that answered 200)."""
    names = [
        n for (n,) in site.rows("select name from sqlite_master where type in ('table', 'view')")
    ]
    seeds = ["/", "/search?q=quokkas", "/search?q=notice", "/awards", "/feeds/releases.atom"]
    seeds += ["/govfeed", "/govfeed.json", "/-/metadata.json", "/-/databases.json"]
    seeds += ["/feeds/awards.atom?min=0", "/feeds/type/release.atom"]
    seeds += [f"/govfeed/{name}{suffix}" for name in names for suffix in ("", ".json", ".csv")]
    queries = site.get("/govfeed.json", root=True).json()["queries"]
    seeds += [f"/govfeed/{q['name']}{suffix}" for q in queries for suffix in ("", ".json")]
    seeds += ["/govfeed/search.json?q=quokkas", "/govfeed/published_releases.json?_search=quokkas"]
    seeds += ["/govfeed?sql=select+title+from+releases", "/govfeed.db"]
    seeds += [f"/releases/{i}" for (i,) in site.rows("select id from releases")]
    seen: set[str] = set()
    queue = deque(seeds)
    public = set()
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen or "/-/auth-token" in path:
            continue
        seen.add(path)
        response = site.get(path)
        body = response.text.lower()
        leaked = [secret for secret in secrets if secret.lower() in body]
        assert not leaked, (path, response.status_code, leaked)
        if response.status_code == 200:
            public.add(path.split("?")[0])
            if "html" in response.headers.get("content-type", ""):
                queue.extend(links_of(f"http://localhost{path}", response.text))
    reachable = {p.rsplit(".", 1)[0].removeprefix("/govfeed/") for p in public}
    private = {"releases", "release_versions", "releases_fts", "messages", "raw_messages"}
    private |= {"mailbox_state", "contract_awards", "release_keys", "problem_mail"}
    assert not private & reachable
    return seen, public


def test_no_quarantined_word_on_any_anonymous_page_or_json(site: Site) -> None:
    seen, public = crawl(site, SECRETS)
    assert {"/", "/search", "/awards", "/feeds/releases.atom"} <= public
    assert len(seen) > 100  # the crawl went beyond the seeds


def test_an_archive_imported_without_trust_settings_shows_readers_nothing(
    tmp_path: Path,
) -> None:
    """`govfeed import` with no trusted authserv-id quarantines government mail: the site
    must show none of it, though the operator sees every release."""
    db = tmp_path / "govfeed.db"
    fixtures = [str(p) for p in sorted(DATA.glob("dod-*.eml"))]
    result = CliRunner().invoke(cli, ["--db", str(db), "import", *fixtures])
    assert result.exit_code == 0, result.output
    titles = [t for (t,) in sqlite3.connect(db).execute("select title from releases")]
    statuses = {s for (s,) in sqlite3.connect(db).execute("select status from releases")}
    assert len(titles) > 5 and statuses == {"quarantined"}
    ds = create_datasette(db)
    asyncio.run(ds.invoke_startup())
    site = Site(ds, db)
    _, public = crawl(site, tuple(titles))
    assert {"/", "/search", "/feeds/releases.atom"} <= public
    assert "No published releases" in site.get("/").text
    assert len(site.get("/govfeed/releases.json?_shape=array", root=True).json()) == len(titles)
    for database in ds.databases.values():
        database.close()


def test_the_operator_reads_everything(site: Site) -> None:
    quarantined = site.release_id(QUARANTINED_TITLE)
    assert site.get(f"/govfeed/releases/{quarantined}", root=True).status_code == 200
    assert site.get("/govfeed/contract_awards", root=True).status_code == 200
    response = site.get("/govfeed.json?sql=select+count(*)+from+releases", root=True)
    assert response.status_code == 200
    assert 'href="/govfeed/releases"' in site.get("/", root=True).text
    assert 'href="/govfeed/releases"' not in site.get("/").text


def test_site_command_needs_an_existing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "missing.db"), "site"])
    assert result.exit_code == 1
    assert "no database there" in result.output
    assert "reader's site" in CliRunner().invoke(cli, ["site", "--help"]).output
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table notes (body text)")
    result = CliRunner().invoke(cli, ["--db", str(other), "site"])
    assert result.exit_code == 1 and "not a govfeed database" in result.output
    with sqlite3.connect(other) as conn:  # as a govfeed from before migration 5 left it
        conn.execute("create table govfeed_migrations (version integer, name text)")
        conn.execute("insert into govfeed_migrations values (4, 'published_release_versions')")
    result = CliRunner().invoke(cli, ["--db", str(other), "site"])
    assert result.exit_code == 1 and "database schema 4, the site needs" in result.output


def test_home_follows_new_mail_without_a_restart(tmp_path: Path) -> None:
    """The facet counts are cached per database state: a commit shows on the next request."""
    db = tmp_path / "govfeed.db"
    trusted = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
    with Store(db) as store:
        sources, _ = open_sources([DATA / "dod-release.eml"])
        pipeline.import_sources(store, sources, policy=trusted)
    ds = create_datasette(db)
    asyncio.run(ds.invoke_startup())
    before = asyncio.run(ds.client.get("/")).text
    assert "advisory" not in before
    with Store(db) as store:
        sources, _ = open_sources([DATA / "dod-advisory.eml"])
        pipeline.import_sources(store, sources, policy=trusted)
    after = asyncio.run(ds.client.get("/")).text
    assert '?type=advisory">advisory</a>' in after
    assert re.search(r'U.S. Department of Defense</a>\s*<span class="count">2</span>', after)
    for database in ds.databases.values():
        database.close()
