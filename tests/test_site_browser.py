"""The reader's site in a real browser: `govfeed site` on a free port, Debian's chromium
driven by Playwright. Checks DOM and layout, not pixels; saves the README's screenshots
to docs/screenshots/.

Needs /usr/bin/chromium (`scripts/bootstrap dev` installs it as root); skips otherwise.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from govfeed import pipeline
from govfeed.config import AuthenticationSettings
from govfeed.sources import open_sources
from govfeed.store import Store
from tests.site_db import build_site_database
from tests.test_datasette import BODY_WORD

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
DEMO_MAIL = ROOT / "examples" / "demo-maildir"
ARGS = [
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is not installed (scripts/bootstrap dev installs it)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(db: Path) -> Iterator[str]:
    """`govfeed site` as an operator starts it, in its own process, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "govfeed", "--db", str(db), "site", "--port", str(port)]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            pytest.fail("govfeed site did not answer")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("browser") / "govfeed.db"
    build_site_database(db)
    return db


@pytest.fixture(scope="module")
def base_url(database: Path) -> Iterator[str]:
    with serving(database) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with its console errors, script errors and every request's host recorded."""

    def __init__(self, browser: Any, width: int, height: int) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("request", lambda r: self.requests.append((r.url, r.resource_type)))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        # A release's own remote image cannot load here (no internet): not a page error.
        source = message.location.get("url", "")
        if (source, "image") in self.requests and "Failed to load resource" in message.text:
            return
        self.errors.append(f"{message.text} ({source})")

    def outside(self, host: str) -> list[tuple[str, str]]:
        return [(u, kind) for u, kind in self.requests if urlsplit(u).netloc != host]


def test_home_links_the_newest_release(browser: Any, base_url: str, database: Path) -> None:
    with sqlite3.connect(database) as conn:
        newest_id, newest_title = conn.execute(
            "select id, title from releases where status = 'published'"
            " order by release_date desc, id desc limit 1"
        ).fetchone()
    watched = Watched(browser, 1280, 900)
    page = watched.page
    page.goto(base_url + "/")
    first = page.locator("ol.releases li h2 a").first
    assert first.inner_text() == newest_title
    first.click()
    page.wait_for_url(f"{base_url}/releases/{newest_id}")
    assert page.locator("h1").inner_text() == newest_title
    assert watched.errors == []
    outside = watched.outside(urlsplit(base_url).netloc)
    assert all(kind == "image" for _, kind in outside), outside  # the release's own images
    page.close()


def test_search_highlights_the_words_found(browser: Any, base_url: str) -> None:
    watched = Watched(browser, 1280, 900)
    page = watched.page
    page.goto(base_url + "/")
    page.fill("#q", BODY_WORD)
    page.press("#q", "Enter")
    page.wait_for_url("**/search?q=*")
    marks = page.locator("ol.results mark")
    assert marks.count() >= 1
    assert {marks.nth(i).inner_text().lower() for i in range(marks.count())} == {BODY_WORD}
    assert page.input_value("#search-q") == BODY_WORD
    page.goto(base_url + "/search?q=nothingmatchesthis")
    assert "No results" in page.locator("main").inner_text()
    assert watched.errors == []
    page.close()


def release_with_image_free_body(base_url: str) -> str:
    html = httpx.get(f"{base_url}/search?q={BODY_WORD}").text
    return html.split('<h2><a href="')[1].split('"')[0]


def test_release_page_reading_width_and_type_size(browser: Any, base_url: str) -> None:
    watched = Watched(browser, 1280, 900)
    page = watched.page
    page.goto(base_url + release_with_image_free_body(base_url))
    box = page.locator("#body").bounding_box()
    assert box is not None and 480 <= box["width"] <= 800
    size = page.eval_on_selector("#body p", "p => parseFloat(getComputedStyle(p).fontSize)")
    assert size >= 16
    # ~65-75 characters a line: the column width over the paragraph's own average
    # character width (its text set on one unwrapped line).
    per_line = page.eval_on_selector(
        "#body p",
        r"""p => { const s = document.createElement('span');
                 s.style.whiteSpace = 'nowrap'; s.style.position = 'absolute';
                 const text = p.textContent.replace(/\s+/g, ' ').trim();
                 s.textContent = text; p.appendChild(s);
                 const w = s.getBoundingClientRect().width / text.length;
                 s.remove(); return p.getBoundingClientRect().width / w; }""",
    )
    assert 60 <= per_line <= 80, per_line
    assert watched.errors == []
    assert watched.outside(urlsplit(base_url).netloc) == []
    page.close()


def test_pages_fit_a_phone_without_sideways_scrolling(browser: Any, base_url: str) -> None:
    watched = Watched(browser, 375, 812)
    page = watched.page
    release = release_with_image_free_body(base_url)
    contract = httpx.get(base_url + "/?type=contract").text.split('<h2><a href="')[1].split('"')[0]
    for path in ("/", release, contract, f"/search?q={BODY_WORD}", "/awards"):
        page.goto(base_url + path)
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], (path, widths)
        size = page.eval_on_selector("body", "b => parseFloat(getComputedStyle(b).fontSize)")
        assert size >= 16, path
    assert watched.errors == []
    page.close()


def test_only_the_release_s_own_images_leave_the_host(browser: Any, base_url: str) -> None:
    """A release whose body has a remote image: that image is the one outside request."""
    watched = Watched(browser, 1280, 900)
    html = httpx.get(base_url + "/search?q=zanzibar").text
    hostile = html.split('<h2><a href="')[1].split('"')[0]
    body = httpx.get(base_url + hostile).text
    watched.page.goto(base_url + hostile)
    outside = watched.outside(urlsplit(base_url).netloc)
    assert all(kind == "image" for _, kind in outside), outside
    assert all(url in body for url, _ in outside)
    assert not [e for e in watched.errors if "alert" in e]
    watched.page.close()


def test_screenshots_of_the_demo(browser: Any, tmp_path: Path) -> None:
    """The README's pictures: `make demo`'s mail (examples/demo-maildir), as it imports it."""
    db = tmp_path / "govfeed.db"
    with Store(db) as store:
        sources, problems = open_sources([DEMO_MAIL])
        assert not problems
        trusted = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
        pipeline.import_sources(store, sources, policy=trusted)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with serving(db) as url:
        desktop = Watched(browser, 1280, 900)
        desktop.page.goto(url + "/")
        desktop.page.screenshot(path=str(SCREENSHOTS / "home.png"))
        desktop.page.goto(url + "/search?q=munitions")
        assert desktop.page.locator("ol.results mark").count() >= 1
        desktop.page.screenshot(path=str(SCREENSHOTS / "search.png"))
        desktop.page.goto(url + "/search?q=ministerial")
        desktop.page.locator("ol.results h2 a").first.click()
        desktop.page.wait_for_url(url + "/releases/*")
        release = desktop.page.url
        desktop.page.screenshot(path=str(SCREENSHOTS / "release-desktop.png"))
        phone = Watched(browser, 375, 812)
        phone.page.goto(release)
        phone.page.screenshot(path=str(SCREENSHOTS / "release-phone.png"))
        assert desktop.errors == [] and phone.errors == []
        desktop.page.close()
        phone.page.close()
