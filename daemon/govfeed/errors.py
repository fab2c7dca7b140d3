"""The exceptions govfeed raises; the CLI turns each into a one-line message."""

from __future__ import annotations


class GovfeedError(Exception):
    """Base class: an error a user can act on, shown without a traceback."""


class ConfigError(GovfeedError):
    """The configuration file or a setting in it is unusable."""


class SourceError(GovfeedError):
    """A path given to `govfeed import` cannot be read as mail."""


class ParseError(GovfeedError):
    """A message's bytes could not be decoded into headers and parts."""


class ExtractError(GovfeedError):
    """A bulletin was recognised but a release could not be extracted from it."""


class StoreError(GovfeedError):
    """The database cannot be opened, migrated or written."""


class ImapError(GovfeedError):
    """An IMAP server refused, failed or timed out."""


class ImapAuthError(ImapError):
    """The IMAP server rejected the credentials."""


class ImapLimitError(ImapError):
    """The IMAP server refused a connection for a limit (too many connections), not for the
    credentials: retried within a minute, with one connection less."""


class ImapRuleViolation(ImapError):
    """The server broke an IMAP rule the cursor relies on (UIDNEXT went back, a UID
    appeared at or below the cursor or above UIDNEXT): the folder is read again from
    its first UID, which de-duplication makes harmless."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule
