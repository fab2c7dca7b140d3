"""The one place logging is configured: structlog events to stdout.

JSON lines when stdout is not a terminal (journald, docker logs), a console renderer
when it is, as structlog's docs advise. Level from `--log-level` or `GOVFEED_LOG_LEVEL`.
"""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Set up structlog (and quiet the stdlib loggers of our dependencies)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    if json is None:
        json = not sys.stdout.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks
            if json
            else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    # mail-parser logs every charset oddity, with header contents, through the stdlib at
    # WARNING/ERROR; we record defects on the message instead.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
