"""Who may read what: the public surface is published releases only.

Deny by default: an anonymous reader (or any actor that is not an operator) may read the
published views and the public canned queries, nothing else: not `releases`,
`release_versions`, `releases_fts`, `messages`, `raw_messages`, `mailbox_state`, the raw
`contract_awards`, a table a later migration adds, arbitrary SQL or the database file.
Operators are actors whose id the metadata lists under `plugins.govfeed.operators`
(default: `root`, the actor `govfeed site --root` signs in).
"""

from __future__ import annotations

from typing import Any

from datasette.app import Datasette

PUBLIC_TABLES = frozenset(
    {"published_releases", "published_release_versions", "published_contract_awards"}
)
PUBLIC_QUERIES = frozenset(
    {
        "latest_releases",
        "releases_by_type",
        "search",
        "largest_awards_this_month",
        "awards_to_a_contractor",
    }
)
# Actions only an operator may take, whatever the resource.
OPERATOR_ACTIONS = frozenset(
    {"execute-sql", "view-database-download", "insert-row", "delete-row", "update-row"}
)


def is_operator(datasette: Datasette, actor: dict[str, Any] | None) -> bool:
    if not actor or not actor.get("id"):
        return False
    config = datasette.plugin_config("govfeed") or {}
    return str(actor["id"]) in set(config.get("operators", ["root"]))


def allowed(
    datasette: Datasette, actor: dict[str, Any] | None, action: str, resource: Any
) -> bool | None:
    """False to deny; None leaves the decision to Datasette's defaults and the metadata."""
    if is_operator(datasette, actor):
        return True if action in {"view-table", "view-query", "execute-sql"} else None
    if action in OPERATOR_ACTIONS:
        return False
    if action == "view-table":
        return None if resource[1] in PUBLIC_TABLES else False
    if action == "view-query":
        return None if resource[1] in PUBLIC_QUERIES else False
    if action == "view-database":
        return None if resource == "govfeed" else False
    return None
