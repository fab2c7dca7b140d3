"""The reader's pages: home, release, search, contract awards, feeds, each one route.

Handlers read through `data` (published views only), shape rows for the templates with
`text`, and render `govfeed_*.html`. Unknown and held-back releases are the same 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from datasette.app import Datasette
from datasette.database import Database
from datasette.utils.asgi import Request, Response

from govfeed.site import data, text

DATABASE = "govfeed"
SITE_TITLE = "govfeed"
AWARDS_FEED_DEFAULT = 10_000_000


def database(datasette: Datasette) -> Database:
    return datasette.get_database(DATABASE)


def _page_number(request: Request) -> int:
    raw = request.args.get("page") or "1"
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


def _filters(request: Request, names: dict[str, str]) -> dict[str, str]:
    return {key: value for key in names if (value := (request.args.get(key) or "").strip())}


def _query(**params: str | int) -> str:
    """A query string of the non-empty params ('' when none)."""
    kept = {k: v for k, v in params.items() if v not in ("", None, 0)}
    return "?" + urlencode(kept) if kept else ""


async def render(
    datasette: Datasette,
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    feeds_here = [("All releases", datasette.urls.path("/feeds/releases.atom"))]
    feeds_here += context.pop("feeds", [])
    context = {
        "site_title": SITE_TITLE,
        "feeds": feeds_here,
        "is_operator": await datasette.permission_allowed(
            request.actor, "execute-sql", DATABASE, default=False
        ),
        "query_string": _query,
        **context,
    }
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status)


async def home(datasette: Datasette, request: Request) -> Response:
    db = database(datasette)
    filters = _filters(request, data.RELEASE_FILTERS)
    page = _page_number(request)
    listing = await data.latest_releases(db, filters, page)
    for row in listing.rows:
        row["summary"] = text.summary(row.pop("summary"))
    feeds_here = []
    if filters.get("agency"):
        agency = filters["agency"]
        path = f"/feeds/agency/{text.slug(agency)}.atom"
        feeds_here.append((f"Releases from {agency}", datasette.urls.path(path)))
    if filters.get("type"):
        kind = filters["type"]
        feeds_here.append(
            (f"{kind.title()} releases", datasette.urls.path(f"/feeds/type/{kind}.atom"))
        )
    return await render(
        datasette,
        request,
        "govfeed_home.html",
        {
            "listing": listing,
            "filters": filters,
            "page": page,
            "pages": max(1, -(-listing.total // data.PAGE_SIZE)),
            "feeds": feeds_here,
        },
    )


async def release_page(datasette: Datasette, request: Request) -> Response:
    db = database(datasette)
    raw_id = request.url_vars["id"]
    row = await data.release(db, int(raw_id)) if raw_id.isdigit() else None
    if row is None:
        return await render(datasette, request, "govfeed_404.html", {}, status=404)
    release_id = int(row["id"])
    versions = await data.versions(db, release_id)
    awards: list[dict[str, Any]] = []
    if row["release_type"] == "contract":
        awards = await data.awards_of(db, release_id)
    agency = row["agency"] or ""
    return await render(
        datasette,
        request,
        "govfeed_release.html",
        {
            "release": row,
            "changes": text.changes(versions),
            "versions": versions,
            "arrivals": await data.arrivals(db, release_id),
            "awards": awards,
            "dollars": text.dollars,
            "agency_slug": text.slug(agency),
            "feeds": [
                (
                    f"Releases from {agency}",
                    datasette.urls.path(f"/feeds/agency/{text.slug(agency)}.atom"),
                )
            ]
            if agency
            else [],
        },
    )


async def search_page(datasette: Datasette, request: Request) -> Response:
    query = (request.args.get("q") or "").strip()[:200]
    page = _page_number(request)
    rows, total = await data.search(database(datasette), query, page) if query else ([], 0)
    for row in rows:
        row["title"] = text.marked(row["title"])
        row["excerpt"] = text.marked(row["excerpt"])
    return await render(
        datasette,
        request,
        "govfeed_search.html",
        {
            "q": query,
            "count_cap": data.SEARCH_COUNT_CAP,
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // data.PAGE_SIZE)),
        },
    )


def minimum_amount(request: Request, default: int) -> int:
    raw = (request.args.get("min") or "").replace(",", "").replace("$", "").strip()
    return min(int(raw), 10**15) if raw.isdigit() else default


async def awards_page(datasette: Datasette, request: Request) -> Response:
    db = database(datasette)
    filters = _filters(request, data.AWARD_FILTERS)
    minimum = minimum_amount(request, 0)
    page = _page_number(request)
    listing = await data.awards(db, filters, minimum, page)
    feed_minimum = minimum or AWARDS_FEED_DEFAULT
    return await render(
        datasette,
        request,
        "govfeed_awards.html",
        {
            "listing": listing,
            "filters": filters,
            "minimum": minimum,
            "page": page,
            "pages": max(1, -(-listing.total // data.PAGE_SIZE)),
            "dollars": text.dollars,
            "awards_feed": datasette.urls.path(f"/feeds/awards.atom?min={feed_minimum}"),
            "feeds": [
                (
                    f"Contract awards of {text.dollars(feed_minimum)} or more",
                    datasette.urls.path(f"/feeds/awards.atom?min={feed_minimum}"),
                )
            ],
        },
    )
