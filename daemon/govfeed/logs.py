"""The one place logging is configured: structlog events, one per line.

JSON lines when the stream is not a terminal (journald, docker logs), a console renderer
when it is, as structlog's docs advise. Level from `--log-level` or `GOVFEED_LOG_LEVEL`.
The daemon (`govfeed run`) logs to stdout; one-shot commands log to stderr, because
their stdout carries their result (a summary line, `status --json`).
"""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")


class _Late:
    """sys.stdout or sys.stderr as it is when written to, not when logging was set up
    (test runners and daemons swap them)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return int(getattr(sys, self.name).write(text))

    def flush(self) -> None:
        getattr(sys, self.name).flush()

    def isatty(self) -> bool:
        return bool(getattr(sys, self.name).isatty())


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: str = "stderr"
) -> None:
    """Set up structlog to `stream` ("stdout" or "stderr"); quiet our dependencies' loggers."""
    out = _Late(stream)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    if json is None:
        json = not out.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        # repr() of every value: a folder name or error text from a server shows its
        # control characters as \x1b, never sends them to the terminal.
        else structlog.dev.ConsoleRenderer(repr_native_str=True)
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
        logger_factory=structlog.PrintLoggerFactory(out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # mail-parser logs every charset oddity, with header contents, through the stdlib at
    # WARNING/ERROR; we record defects on the message instead.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
