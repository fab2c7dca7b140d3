"""Frozen records passed between the stages (fetch, parse, extract, store).

No imapclient or mail-parser object ever leaves the stage that made it; these are what
travels instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RawMessage:
    """The bytes of one message and where they came from; nothing parsed yet."""

    data: bytes
    source: str  # human-readable origin: a file path, "mbox:PATH#N", "imap:NAME/FOLDER"
    mailbox: str = "import"  # the configured mailbox name, or "import" for files
    folder: str | None = None
    uid: int | None = None
    uidvalidity: int | None = None
    received_at: datetime | None = None  # when the mailbox got it (IMAP INTERNALDATE), UTC
    stored_pk: int | None = None  # reparse: the stored message these bytes are
    # Over max_message_bytes: `data` is its header only; the size the server gave.
    server_size: int | None = None


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    address: str  # lower-cased


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # bytes after transfer decoding, where known


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A decoded message: headers as text, text and HTML bodies as str."""

    message_id: str | None  # without the angle brackets
    subject: str
    from_: Address | None
    to: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    sent_at: datetime | None  # the Date header, in UTC
    headers: tuple[tuple[str, str], ...]  # (name, decoded value) in the order they appear
    text: str | None  # the text/plain parts, joined
    html: str | None  # the text/html parts, joined
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every value of header `name`, top to bottom."""
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == wanted)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """The messages-table columns read from one message's headers (and its verdict)."""

    message_id: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    to_address: str | None = None
    subscriber: str | None = None
    list_unsubscribe: str | None = None
    subject: str | None = None
    sent_at: str | None = None
    auth: str | None = None  # auth.Verdict.summary()
    defects: str | None = None  # JSON list
    attachments: str | None = None  # JSON list


@dataclass(frozen=True, slots=True)
class Link:
    url: str  # tracker unwrapped
    text: str


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent the bulletin and to whom, as the mail says."""

    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    list_unsubscribe: str | None = None
    subscriber: str | None = None  # the address the tagline or To names


RELEASE_TYPES = (
    "release",
    "advisory",
    "transcript",
    "speech",
    "contract",
    "publication",
    "story",
    "other",
)


@dataclass(frozen=True, slots=True)
class ContractAward:
    """One award paragraph of a DoD contracts announcement (`contract_awards` row)."""

    branch: str | None  # the section heading as a name: "Army", "Navy", "Defense Logistics Agency"
    contractor: str
    contractor_location: str | None  # "City, State"
    amount_usd: int | None  # the award's face value: the first amount in the paragraph
    contract_number: str | None  # the award's own number, or the contract a modification modifies
    is_modification: bool
    contract_type: str | None  # "firm-fixed-price", ...
    work_location: str | None
    completion_date: str | None  # YYYY-MM-DD when stated
    contracting_activity: str | None
    small_business: bool  # the paragraph's `*` marker
    paragraph: str


@dataclass(frozen=True, slots=True)
class Release:
    """One release or bulletin as the agency published it."""

    title: str
    release_date: str  # YYYY-MM-DD: the date the release states, else the mail's date
    release_date_source: str  # "body" or "mail"
    release_type: str  # one of RELEASE_TYPES
    agency: str | None
    account_code: str | None
    bulletin_id: str | None
    url: str | None
    body_text: str
    body_html: str
    profile: str  # "dod" or "govdelivery"
    links: tuple[Link, ...] = ()
    sender: Sender = field(default_factory=Sender)
    awards: tuple[ContractAward, ...] = ()  # release_type "contract": one per award paragraph


@dataclass(frozen=True, slots=True)
class Ignored:
    """The message is mail but no bulletin (a confirmation, a personal note)."""

    reason: str
