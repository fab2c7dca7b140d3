"""The reader's site: Datasette 0.65 with govfeed's metadata, templates, CSS and plugin.

`create_datasette` builds the app (used by `govfeed site`, the tests and bench/site.py);
`serve` runs it with uvicorn. The database is always attached as `govfeed`, whatever the
file is called, and read-only: Datasette opens it with SQLite's `mode=ro`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import uvicorn
from datasette.app import Datasette
from datasette.database import Database
from datasette.plugins import pm

from govfeed.errors import GovfeedError
from govfeed.schema import SCHEMA_VERSION
from govfeed.site import plugin

HERE = Path(__file__).parent
METADATA = HERE / "metadata.json"
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SETTINGS = {
    # Facet suggestions cost 0.4 s a page at 17,000 rows (NOTES.md); the reader's pages
    # have their own facets.
    "suggest_facets": False,
    "allow_download": False,
    "sql_time_limit_ms": 3000,
}


class SiteError(GovfeedError):
    """The site cannot start (no database, a bad metadata file)."""


def _register_plugin() -> None:
    if not pm.is_registered(plugin):
        pm.register(plugin, name="govfeed.site")


def load_metadata(path: Path | None = None) -> dict[str, Any]:
    source = path or METADATA
    try:
        loaded = json.loads(source.read_text())
    except (OSError, ValueError) as err:
        raise SiteError(f"{source}: cannot read the site metadata: {err}") from err
    if not isinstance(loaded, dict):
        raise SiteError(f"{source}: the site metadata must be a JSON object")
    return loaded


def _check_schema(db_path: Path) -> None:
    """The site reads the views of the current schema; it never migrates (it is read-only)."""
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            row = conn.execute("select max(version) from govfeed_migrations").fetchone()
    except sqlite3.Error as err:
        raise SiteError(f"{db_path}: not a govfeed database ({err})") from err
    version = int(row[0] or 0)
    if version < SCHEMA_VERSION:
        raise SiteError(
            f"{db_path}: database schema {version}, the site needs {SCHEMA_VERSION}:"
            " run govfeed run, poll or import once to upgrade it"
        )


def create_datasette(
    db_path: Path, *, metadata: dict[str, Any] | None = None, root: bool = False
) -> Datasette:
    """Datasette serving `db_path` as database `govfeed`, with the reader's pages."""
    if not db_path.is_file():
        raise SiteError(f"{db_path}: no database there (run govfeed import or govfeed run first)")
    _check_schema(db_path)
    _register_plugin()
    datasette = Datasette(
        [],
        metadata=metadata if metadata is not None else load_metadata(),
        template_dir=str(TEMPLATES),
        static_mounts=[("site-static", str(STATIC))],
        settings=SETTINGS,
    )
    datasette.remove_database("_memory")  # Datasette adds it when given no files
    datasette.add_database(Database(datasette, path=str(db_path), is_mutable=True), name="govfeed")
    if not root:
        # Datasette makes a one-time sign-in token for `--root` in any case: drop it.
        datasette._root_token = None
    return datasette


def serve(db_path: Path, *, host: str, port: int, root: bool = False) -> None:
    """Run the site in the foreground until SIGINT/SIGTERM."""
    datasette = create_datasette(db_path, root=root)
    asyncio.run(datasette.invoke_startup())
    if root:
        # The same one-time sign-in link `datasette --root` prints.
        path = datasette.urls.path("-/auth-token")
        print(f"http://{host}:{port}{path}?token={datasette._root_token}", flush=True)
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")
