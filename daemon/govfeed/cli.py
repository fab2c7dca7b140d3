"""The `govfeed` command line: thin commands over `pipeline`, `store` and `status`.

Each command opens what it needs, calls one function, and turns a `GovfeedError` into a
one-line message and a non-zero exit code.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from govfeed import __version__, pipeline
from govfeed.errors import GovfeedError
from govfeed.logs import LEVELS, configure_logging
from govfeed.sources import open_sources
from govfeed.store import Store

DEFAULT_DB = Path("govfeed.db")


@dataclass(frozen=True)
class Context:
    config: Path | None
    db: Path | None

    def database_path(self) -> Path:
        """--db, else the config's [database] path, else ./govfeed.db."""
        if self.db is not None:
            return self.db
        config = self.config or _env_path("GOVFEED_CONFIG")
        if config is not None:
            from govfeed.config import load_settings

            return load_settings(config).database.path
        return DEFAULT_DB


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="govfeed")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML configuration file (default: $GOVFEED_CONFIG).",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQLite database (default: the config's [database] path, else ./govfeed.db).",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default=lambda: os.environ.get("GOVFEED_LOG_LEVEL", "info").lower(),
    show_default="info, or $GOVFEED_LOG_LEVEL",
    help="Lowest level of log event to print.",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None, db: Path | None, log_level: str) -> None:
    """govfeed: government mailing-list email to a searchable SQLite database.

    \b
    Example:
        govfeed --db releases.db import ~/Maildir/dod
        datasette releases.db
    """
    configure_logging(log_level)
    ctx.obj = Context(config=config, db=db)


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False))
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.pass_obj
def import_(obj: Context, paths: tuple[Path, ...], progress: bool | None) -> None:
    """Import .eml files, mbox files and Maildir folders.

    Every message is stored raw, de-duplicated, and extracted into a release when it is
    a bulletin. Prints one summary line; exits 1 if a path could not be read.

    \b
    Example:
        govfeed --db govfeed.db import examples/demo-maildir archive.mbox one.eml
    """
    sources, problems = open_sources(list(paths))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    total = sum(source.count for source in sources)
    show = sys.stderr.isatty() if progress is None else progress
    try:
        with Store(obj.database_path()) as store:
            if show and total:
                with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
                    summary = pipeline.import_sources(
                        store, sources, on_message=lambda: bar.update(1)
                    )
            else:
                summary = pipeline.import_sources(store, sources)
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err
    for message in summary.source_errors:
        click.echo(f"error: {message}", err=True)
    click.echo(summary.line())
    if problems or summary.source_errors:
        sys.exit(1)


@cli.command()
@click.pass_obj
def reparse(obj: Context) -> None:
    """Re-extract every release from the stored raw messages.

    Updates releases in place (their ids stay), rebuilds versions and message counts, and
    drops releases no message supports any more. Running it twice changes nothing.

    \b
    Example:
        govfeed --db govfeed.db reparse
    """
    try:
        with Store(obj.database_path()) as store:
            summary = pipeline.reparse(store)
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err
    click.echo(summary.line())


def main() -> None:
    cli(prog_name="govfeed")
