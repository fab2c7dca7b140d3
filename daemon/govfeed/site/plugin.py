"""The Datasette plugin: the reader's routes, the Atom feeds and the permission rules.

Registered by `govfeed.site.create_datasette` (not by an entry point), so a plain
`datasette` in the same environment stays untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from datasette import hookimpl
from datasette.app import Datasette
from datasette.utils.asgi import Request, Response

from govfeed.site import access, data, feeds, text, views

RELEASE_TYPES = frozenset(
    {"release", "advisory", "transcript", "speech", "contract", "publication", "story", "other"}
)


def _feed_info(datasette: Datasette, request: Request, key: str, title: str) -> feeds.FeedInfo:
    self_path = request.path + (f"?{request.query_string}" if request.query_string else "")
    return feeds.FeedInfo(
        feed_id=f"tag:govfeed,2024:feed:{key}",
        title=f"{views.SITE_TITLE}: {title}",
        self_url=str(datasette.absolute_url(request, self_path)),
        page_url=str(datasette.absolute_url(request, datasette.urls.path("/"))),
    )


def _page_of(datasette: Datasette, request: Request) -> Callable[[int], str]:
    def page(release_id: int) -> str:
        path = datasette.urls.path(f"/releases/{release_id}")
        return str(datasette.absolute_url(request, path))

    return page


def _atom(body: str) -> Response:
    return Response(body, content_type=feeds.CONTENT_TYPE)


async def _not_found(datasette: Datasette, request: Request) -> Response:
    return await views.render(datasette, request, "govfeed_404.html", {}, status=404)


async def releases_feed(datasette: Datasette, request: Request) -> Response:
    rows = await data.feed_releases(views.database(datasette), None, "")
    info = _feed_info(datasette, request, "releases", "latest releases")
    return _atom(feeds.releases_feed(info, rows, _page_of(datasette, request)))


async def agency_feed(datasette: Datasette, request: Request) -> Response:
    db = views.database(datasette)
    wanted = request.url_vars["slug"]
    names = [name for name in await data.distinct(db, "agency") if text.slug(name) == wanted]
    if not names:
        return await _not_found(datasette, request)
    rows = await data.feed_releases(db, "agency", names[0])
    info = _feed_info(datasette, request, f"agency:{wanted}", f"releases from {names[0]}")
    return _atom(feeds.releases_feed(info, rows, _page_of(datasette, request)))


async def type_feed(datasette: Datasette, request: Request) -> Response:
    kind = request.url_vars["kind"]
    if kind not in RELEASE_TYPES:
        return await _not_found(datasette, request)
    rows = await data.feed_releases(views.database(datasette), "release_type", kind)
    info = _feed_info(datasette, request, f"type:{kind}", f"{kind} releases")
    return _atom(feeds.releases_feed(info, rows, _page_of(datasette, request)))


async def awards_feed(datasette: Datasette, request: Request) -> Response:
    db = views.database(datasette)
    minimum = views.minimum_amount(request, views.AWARDS_FEED_DEFAULT)
    title = f"contract awards of {text.dollars(minimum)} or more"
    info = _feed_info(datasette, request, f"awards:{minimum}", title)
    rows = await data.feed_awards(db, minimum)
    return _atom(feeds.awards_feed(info, rows, _page_of(datasette, request)))


Handler = Callable[[Datasette, Request], Awaitable[Response]]


def _route(handler: Handler) -> Callable[..., Awaitable[Response]]:
    # Datasette passes arguments by name; a request for a missing database is a 503, not a 500.
    async def view(datasette: Datasette, request: Request) -> Response:
        if views.DATABASE not in datasette.databases:
            return Response.text("govfeed: no database is attached", status=503)
        return await handler(datasette, request)

    return view


@hookimpl
def register_routes(datasette: Datasette) -> list[tuple[str, Any]]:
    return [
        (r"^/$", _route(views.home)),
        (r"^/releases/(?P<id>[^/]+)$", _route(views.release_page)),
        (r"^/search$", _route(views.search_page)),
        (r"^/awards$", _route(views.awards_page)),
        (r"^/feeds/releases\.atom$", _route(releases_feed)),
        (r"^/feeds/agency/(?P<slug>[a-z0-9-]+)\.atom$", _route(agency_feed)),
        (r"^/feeds/type/(?P<kind>[a-z]+)\.atom$", _route(type_feed)),
        (r"^/feeds/awards\.atom$", _route(awards_feed)),
    ]


@hookimpl
def permission_allowed(
    datasette: Datasette, actor: dict[str, Any] | None, action: str, resource: Any
) -> bool | None:
    return access.allowed(datasette, actor, action, resource)
