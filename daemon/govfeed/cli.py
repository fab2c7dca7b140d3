"""The `govfeed` command line: thin commands over `pipeline`, `store` and `status`.

Each command opens what it needs, calls one function, and turns a `GovfeedError` into a
one-line message and a non-zero exit code.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from govfeed import __version__
from govfeed.errors import ConfigError, GovfeedError, SourceError
from govfeed.formats import printable
from govfeed.logs import LEVELS, configure_logging
from govfeed.memory import return_big_buffers
from govfeed.sources import Source, open_sources

# The config (pydantic), the store (sqlite-utils) and the pipeline are imported by the
# commands that use them: `import` and `reparse` start their parsing workers first, so
# that the workers load the mail readers while this process loads the rest (issue I).
if TYPE_CHECKING:
    from govfeed import status
    from govfeed.analysis import Analyzer
    from govfeed.config import MailboxSettings, Settings

BATCH_SIZE = 500  # messages per transaction of `import` (pipeline.BATCH_SIZE, tested)


@dataclass(frozen=True)
class Context:
    config: Path | None
    db: Path | None

    def settings(self) -> Settings:
        """The validated config (--config, else $GOVFEED_CONFIG, else defaults), --db applied."""
        from govfeed.config import load_settings

        return load_settings(self.config, db_override=self.db)

    def database_path(self) -> Path:
        """--db, else the config's [database] path, else ./govfeed.db."""
        return self.settings().database.path


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
        govfeed --config govfeed.toml import ~/Maildir/dod
        govfeed --config govfeed.toml status
    """
    configure_logging(log_level)
    ctx.obj = Context(config=config, db=db)


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False))
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 5000),
    default=BATCH_SIZE,
    show_default=True,
    help="Messages per transaction. An interrupted import keeps every batch committed"
    " before; the next run stores the rest.",
)
@click.pass_obj
def import_(obj: Context, paths: tuple[Path, ...], progress: bool | None, batch_size: int) -> None:
    """Import .eml files, mbox files and Maildir folders.

    Every message is stored raw, de-duplicated, and extracted into a release when it is
    a bulletin; the sender is judged by the config's [authentication] rules and agency
    registry (without trusted_authserv_ids no sender can be authenticated, so government
    mail is quarantined: a warning line says so). Prints one summary line; exits 1 if a
    path could not be read.

    \b
    Example:
        govfeed --config govfeed.toml import ~/Maildir/dod archive.mbox one.eml
    """
    sources, problems = open_sources(list(paths))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    show = sys.stderr.isatty() if progress is None else progress
    total = _message_count(sources) if show else 0  # reading an mbox through costs time
    analyzer = _import_analyzer(sources)
    from govfeed import pipeline
    from govfeed.store import Store

    try:
        settings = obj.settings()
        _say_trust(settings, files=True)
        policy = settings.authentication_for(None)
        with Store(settings.database.path, group=settings.database.group) as store:
            if show and total:
                with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
                    summary = pipeline.import_sources(
                        store,
                        sources,
                        policy=policy,
                        on_message=lambda: bar.update(1),
                        batch_size=batch_size,
                        analyzer=analyzer,
                    )
            else:
                summary = pipeline.import_sources(
                    store, sources, policy=policy, batch_size=batch_size, analyzer=analyzer
                )
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err
    finally:
        analyzer.close()  # import_sources closes it; not when it never ran
    for message in summary.source_errors:
        click.echo(f"error: {message}", err=True)
    click.echo(summary.line())
    if problems or summary.source_errors:
        sys.exit(1)


def _import_analyzer(sources: list[Source]) -> Analyzer:
    """The import's analyzer, its workers started now when a source has enough mail for
    them (as `Analyzer.stream` decides): they load the mail readers while this process
    loads the config, the store and the pipeline."""
    from govfeed.analysis import MIN_PARALLEL, Analyzer

    analyzer = Analyzer()
    for source in sources:
        try:
            if source.count_up_to(MIN_PARALLEL) >= MIN_PARALLEL:
                analyzer.start()
                break
        except SourceError:
            continue  # the import meets the same error and reports it
    return analyzer


def _message_count(sources: list[Source]) -> int:
    """How many messages the progress bar counts to; 0 (no bar) when a source cannot be
    read now: the import reports that source's error and goes on with the others."""
    try:
        return sum(source.count for source in sources)
    except SourceError:
        return 0


@cli.command()
@click.pass_obj
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a terminal)."
)
def reparse(obj: Context, progress: bool | None) -> None:
    """Re-judge and re-extract every stored message under the current config.

    Everything is decided again from the raw mail: extraction, the sender verdict, who
    sent it, its agency, published or quarantined, duplicates. Release ids stay; releases
    no message supports any more are dropped. Prints a summary and what changed (e.g.
    "releases published -> quarantined 2"). Running it twice changes nothing.

    \b
    Example:
        govfeed --config /etc/govfeed/govfeed.toml reparse
    """
    from govfeed.analysis import Analyzer

    analyzer = Analyzer()
    analyzer.start()  # the workers load the mail readers while the rest loads (see import)
    from govfeed import pipeline
    from govfeed.store import Store

    try:
        settings = obj.settings()
        _say_trust(settings, files=True)
        with Store(settings.database.path, group=settings.database.group) as store:
            total = store.conn.execute("select count(*) from messages").fetchone()[0]
            show = sys.stderr.isatty() if progress is None else progress
            if show and total:
                with click.progressbar(length=total, label="reparsing", file=sys.stderr) as bar:
                    summary = pipeline.reparse(
                        store, settings, on_message=lambda: bar.update(1), analyzer=analyzer
                    )
            else:
                summary = pipeline.reparse(store, settings, analyzer=analyzer)
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err
    finally:
        analyzer.close()  # reparse closes it; not when it never ran
    click.echo(summary.reparse_line())
    click.echo(summary.changes_line())


@cli.command(name="release")
@click.argument("release_id", type=int)
@click.pass_obj
def release_(obj: Context, release_id: int) -> None:
    """Publish a quarantined release after you have reviewed it.

    A release is quarantined when its mail claimed a government sender that could not be
    authenticated (see [authentication] in the config). `govfeed status` lists them.

    \b
    Example:
        govfeed --config /etc/govfeed/govfeed.toml release 42
    """
    from govfeed.store import Store

    try:
        with Store(obj.database_path()) as store, store.transaction():
            messages = store.release_quarantined(release_id)
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"release {release_id} published ({messages} message(s) released)")


@cli.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--max-age",
    type=click.FloatRange(min=1),
    help="Seconds without a successful poll before a folder is stale"
    " (default: 3 poll intervals of its mailbox).",
)
@click.pass_obj
def status_(obj: Context, as_json: bool, max_age: float | None) -> None:
    """Health of the database and of every configured mailbox folder.

    Reads the database only, so it works whether the daemon runs or not. Exit status:
    0 healthy, 1 degraded (a folder's last poll failed or none succeeded within the
    window; an agency with expected_every_hours silent past it; with [replication], the
    Litestream replica behind or unreadable), 2 the config or the database is unusable.

    \b
    Example:
        govfeed --config /etc/govfeed/govfeed.toml status --json
    """
    from govfeed import status

    try:
        settings = obj.settings()
        watches = [
            status.Watch(m.name, folder, max_age or status.STALE_INTERVALS * m.poll_interval)
            for m in settings.mailboxes
            for folder in m.folders
        ]
        warnings = settings.trust_warnings(files=not settings.mailboxes)
        report = status.collect_status(
            settings.database.path,
            watches,
            warnings=warnings,
            cadences=_cadences(settings),
            replica=_replica_check(settings),
        )
    except (GovfeedError, status.StatusError) as err:
        if as_json:
            click.echo(json.dumps({"healthy": False, "exit_code": 2, "error": str(err)}))
        else:
            click.echo(f"error: {err}", err=True)
        sys.exit(status.UNUSABLE)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(status.render_text(report))
    sys.exit(report.exit_code)


def _cadences(settings: Settings) -> list[status.Cadence]:
    from govfeed import status

    return [
        status.Cadence(agency.name, agency.expected_every_hours)
        for agency in settings.registry
        if agency.expected_every_hours is not None
    ]


def _replica_check(settings: Settings) -> status.ReplicaCheck | None:
    """Asks Litestream about the replica when `[replication]` is configured."""
    from govfeed import replication, status

    config = settings.replication
    if config is None:
        return None
    view = replication.look(config.litestream, config.litestream_config, settings.database.path)
    return status.ReplicaCheck(str(config.litestream_config), config.max_lag_seconds, view)


@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """Run the daemon in the foreground: poll every mailbox on its schedule, and at once
    when IMAP NOTIFY or IDLE announces new mail.

    Each mailbox holds at most max_connections connections (default 3), whatever the
    number of folders: one NOTIFY connection watches every folder where the server has
    NOTIFY, else IDLE watches the first folders and a sweep checks the others every
    sweep_interval seconds. A server's connection limit costs a connection for a while,
    never a login backoff.

    SIGTERM or SIGINT let the batch being stored commit, then exit 0; SIGHUP reloads the
    configuration (a bad one is logged and the old one kept); SIGUSR1 prints every
    thread's stack to stderr (for a daemon that seems stuck). Under systemd Type=notify it
    sends READY=1, WATCHDOG=1 and STOPPING=1. Exit status 2 if the config is unusable
    or configures no mailbox (for mail in files, use `import`).

    \b
    Example:
        govfeed --config /etc/govfeed/govfeed.toml run
    """
    root = click.get_current_context().find_root()
    configure_logging(root.params["log_level"], stream="stdout")  # a service's logs: stdout
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        settings = obj.settings()
        if not settings.mailboxes:
            raise ConfigError(
                f"{settings.source or 'no config file'}: no [[mailboxes]], so `run` has nothing"
                " to poll; add one (config/govfeed.example.toml shows how), or use"
                " `govfeed import` for mail in files"
            )
        _say_trust(settings, files=False)
        loaded = [settings]  # the daemon starts with these; SIGHUP reads the file again
        from govfeed import daemon  # the scheduler and IMAP: not for import, reparse, status

        code = daemon.Daemon(lambda: loaded.pop() if loaded else obj.settings()).run()
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err
    sys.exit(code)


@cli.command()
@click.pass_obj
def poll(obj: Context) -> None:
    """Poll every configured mailbox once, then exit.

    Prints one summary line per mailbox. Exit status: 0 every folder was polled, 1 a
    mailbox or folder failed (its error is also kept for `govfeed status`), 2 the config is
    unusable. SIGTERM or SIGINT stop it after the batch being stored is committed.

    \b
    Example:
        govfeed --config govfeed.toml poll
    """
    try:
        settings = obj.settings()
        if not settings.mailboxes:
            raise ConfigError(f"{settings.source or 'defaults'}: no [[mailboxes]] to poll")
        _say_trust(settings, files=False)
        from govfeed import daemon

        results = daemon.poll_once(settings)
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except GovfeedError as err:
        raise click.ClickException(printable(str(err))) from err
    for result in results:
        click.echo(printable(result.line()))
    sys.exit(0 if all(result.ok for result in results) else 1)


@cli.command(name="check-config")
@click.option("--connect", is_flag=True, help="Also log in to each mailbox and list its folders.")
@click.pass_obj
def check_config(obj: Context, connect: bool) -> None:
    """Validate the configuration and show what it sets up, secrets hidden.

    Prints the database and, per mailbox, the server, the folders and where the secret
    comes from (never the secret itself), and reads each password or token file. With
    --connect, logs in to each mailbox and lists its folders. Exit status: 0 fine, 1 a
    mailbox's password or token file is missing, unreadable or empty, or (--connect) a
    mailbox could not be reached or lacks a configured folder, 2 the configuration is
    invalid.

    \b
    Example:
        govfeed --config /etc/govfeed/govfeed.toml check-config --connect
    """
    try:
        settings = obj.settings()
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    click.echo(f"config    {settings.source or '(none: built-in defaults)'}")
    click.echo(f"database  {settings.database.path}")
    if not settings.mailboxes:
        click.echo("mailboxes none: `run` and `poll` have nothing to do")
    failed = False
    for m in settings.mailboxes:
        key, where = m.secret_source
        click.echo(
            f"mailbox   {m.name}: {m.username} at {m.host}:{m.port} ({m.security}),"
            f" folders {', '.join(m.folders)}; secret from {key} {where}"
        )
        if not _check_secret_file(m):
            failed = True
        elif connect:
            failed = not _check_mailbox(m) or failed
    sys.exit(1 if failed else 0)


def _check_secret_file(mailbox: MailboxSettings) -> bool:
    """A secret file must be readable now; an environment variable or a systemd credential
    exists only in the service's environment, so those are left to --connect."""
    if mailbox.password_file is None and mailbox.oauth2_token_file is None:
        return True
    from govfeed.config import read_secret

    try:
        read_secret(mailbox)
    except ConfigError as err:
        click.echo(f"          error: {err}")
        return False
    return True


def _check_mailbox(mailbox: MailboxSettings) -> bool:
    try:
        from govfeed import sync

        found = sync.check_mailbox(mailbox)
    except GovfeedError as err:
        click.echo(printable(f"          error: {err}"))
        return False
    click.echo(printable(f"          logged in; {len(found)} folders: {', '.join(found)}"))
    missing = [folder for folder in mailbox.folders if folder not in found]
    if missing:
        click.echo(f"          error: no such folder on the server: {', '.join(missing)}")
    return not missing


def _say_trust(settings: Settings, *, files: bool) -> None:
    """One line on stderr at start when the trust settings quarantine every bulletin."""
    database = settings.database.path.absolute()
    source = settings.source or "no config file: built-in defaults; pass --config FILE"
    for warning in settings.trust_warnings(files=files):
        click.echo(f"warning: {warning} (database {database}; {source})", err=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--root",
    is_flag=True,
    help="Print a one-time link that signs you in as the operator (every table, SQL).",
)
@click.pass_obj
def site(obj: Context, host: str, port: int, root: bool) -> None:
    """Serve the reader's site: latest releases, search, release pages, feeds.

    Datasette with govfeed's pages, read-only, on the configured database. Anonymous
    visitors see published releases only; the operator signs in with --root.

    \b
    Example:
        govfeed --config /etc/govfeed/govfeed.toml site --port 8001
    """
    # Imported here: Datasette and uvicorn are heavy, and no other command needs them.
    from govfeed import site as site_module

    try:
        site_module.serve(obj.database_path(), host=host, port=port, root=root)
    except GovfeedError as err:
        raise click.ClickException(str(err)) from err


def main() -> None:
    return_big_buffers()
    cli(prog_name="govfeed")
