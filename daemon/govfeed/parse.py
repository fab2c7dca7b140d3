"""Parse raw message bytes into a `ParsedMessage` with mail-parser; pure, no I/O.

mail-parser does the MIME walk, RFC 2047 headers, addresses and dates. Two things it
leaves to us: body charsets that are declared wrongly (UTF-8 bytes labelled ISO-8859-1
come out as mojibake) or not decodable at all (it falls back to UTF-8 with U+FFFD where
CP1252 was meant), and 8-bit junk in raw header values.
"""

from __future__ import annotations

import contextlib
import email.feedparser
import email.header
import email.message
import email.policy
import re
from datetime import UTC, datetime
from email.errors import HeaderParseError
from typing import Any

import mailparser
from mailparser.exceptions import MailParserError

from govfeed.errors import ParseError
from govfeed.models import Address, Attachment, ParsedMessage, RawMessage

# Charsets that decode any byte sequence, so a wrong label never raises: UTF-8 text
# under these labels shows up as mojibake instead.
_SINGLE_BYTE_LABELS = frozenset(
    {
        "us-ascii",
        "ascii",
        "iso-8859-1",
        "latin-1",
        "latin1",
        "iso-8859-15",
        "windows-1252",
        "cp1252",
    }
)
_MOJIBAKE_MARKS = ("Ã", "â€", "Â")
_MAX_HEADER_CHARS = 64 * 1024  # a header longer than this is junk; keep its start
_ESCAPED_BYTE = re.compile(r"\\udc([89a-f][0-9a-f])")
# A surrogate that is no escaped byte (U+DC80-U+DCFF): what UTF-7 "+2AA-" or a
# unicode_escape "\\ud800" decodes to; SQLite (UTF-8) cannot store it.
_LONE_SURROGATE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


class _CappedHeaders(email.policy.Compat32):
    """compat32, with every header value (of every part) cut to _MAX_HEADER_CHARS as it is
    read: the standard library decodes RFC 2047 words and MIME parameters in quadratic
    time (a 1 MB Subject of encoded words took 7 s, a 1 MB Content-Type 21 s)."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        return name, value[:_MAX_HEADER_CHARS]

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        # Every header read (about 70 a message, most by mail-parser) tests the value for
        # surrogate-escaped bytes by encoding it to UTF-8; an ASCII value has none, and
        # str.isascii() knows that without looking.
        if isinstance(value, str) and value.isascii():
            return value
        return super().header_fetch_parse(name, value)


_POLICY = _CappedHeaders()


# The stdlib's feedparser compiles a regular expression for every multipart boundary it
# meets. Boundaries are unique per message, so `re`'s cache never hits, and compiling
# one (in pure Python) cost as much as a sixth of a whole bulletin's parse. A boundary
# line is that fixed text followed by the same tail every time: check the text with
# str.startswith and match the tail with one pattern compiled once. The match objects
# give the same `end` and `linesep` groups, the only ones feedparser reads.
_BOUNDARY_HEAD = "(?P<sep>"
_BOUNDARY_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_TAIL = re.compile(_BOUNDARY_TAIL[1:])
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _BoundaryMatcher:
    """What `re.compile(feedparser's boundary pattern)` gives, less its compile time."""

    __slots__ = ("separator",)

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _TAIL.match(line, len(self.separator))


class _FeedparserRe:
    """The `re` module as email.feedparser sees it: boundary patterns become matchers."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> Any:
        if (
            not flags
            and isinstance(pattern, str)
            and pattern.startswith(_BOUNDARY_HEAD)
            and pattern.endswith(_BOUNDARY_TAIL)
        ):
            escaped = pattern[len(_BOUNDARY_HEAD) : -len(_BOUNDARY_TAIL)]
            return _BoundaryMatcher(_UNESCAPE.sub(r"\1", escaped))
        return re.compile(pattern, flags)


class _LineEndAtEnd:
    r"""email.feedparser's `NLCRE_eol`, the pattern `(\r\n|\r|\n)\Z` that strips the line end
    before each boundary from the part above it: the same matches, searched for only where
    one can start. A plain `search` tries every position of the part (0.1 ms for a 13 KB
    HTML part, twice a message: a tenth of a bare parse), though a match ending at the
    string's end and at most two characters long starts in its last two."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(_NLCRE_EOL, name)

    @staticmethod
    def search(text: str) -> re.Match[str] | None:
        return _NLCRE_EOL.search(text, max(0, len(text) - 2))


_NLCRE_EOL: re.Pattern[str] = email.feedparser.NLCRE_eol  # type: ignore[attr-defined]
email.feedparser.re = _FeedparserRe()  # type: ignore[attr-defined]
email.feedparser.NLCRE_eol = _LineEndAtEnd()  # type: ignore[attr-defined]


class _MailParser(mailparser.MailParser):  # type: ignore[misc]
    """mail-parser without `mail`/`mail_partial`, the two summary dicts of every header it
    builds at the end of each parse (a sixth of its time); govfeed reads its properties.
    tests/test_parse.py checks the properties agree with the stock class on every fixture.
    """

    def _make_mail(self, complete: bool = True) -> dict[str, Any]:
        return {}

    def parse(self) -> Any:
        """When any part lacks its start boundary, mail-parser 4.8 looks for the lost part
        in the top-level epilogue and fails (AttributeError) when there is none: give it
        an empty one. A top level without a boundary still fails it (TypeError), caught in
        `parse_message`."""
        if self.message.epilogue is None:
            self.message.epilogue = ""
        return super().parse()


def parse_message(raw: RawMessage) -> ParsedMessage:
    """Decode `raw` into headers and text; raise ParseError when nothing usable is there."""
    if not raw.data.strip(b"\x00\r\n\t "):
        raise ParseError("empty message: no headers and no body")
    try:
        message = _message_from_bytes(raw.data)
        headers = tuple((name, _decode_header(value)) for name, value in message.items())
        # Trace headers are kept above; mail-parser would spend a third of its time
        # parsing Received lines we never use, and a sixth on Delivered-To (the receiving
        # mailbox, written by our own server), so it gets the message without them.
        del message["Received"]
        del message["Delivered-To"]
        mp = _MailParser(message)
    except (MailParserError, RecursionError, LookupError, ValueError, TypeError) as err:
        raise ParseError(f"mail-parser could not read the message: {err}") from err
    if not headers:
        raise ParseError("no mail headers found")
    defects = _defects(mp)
    text, html = _bodies(mp, message, charset_defect="CharsetDecodeDefect" in defects)
    return ParsedMessage(
        message_id=_message_id(message.get("Message-ID")),
        subject=_clean_header(_first(mp.subject)),
        from_=_first_address(mp.from_),
        to=_addresses(mp.to),
        reply_to=_addresses(mp.reply_to),
        sent_at=_utc(mp.date),
        headers=headers,
        text=text,
        html=html,
        attachments=_attachments(mp.attachments),
        defects=defects,
    )


# What email.parser.Parser reads at a time: the parser gets the same chunks as before.
_FEED_CHARS = 8192
# The parser keeps every line of a part as a string object (about 60 bytes besides its
# text) until the part ends, and the line it has not seen the end of in a StringIO (4
# bytes a character): 24 MB of empty lines cost 900 MB, a 24 MB line 120 MB. Mail past
# these bounds is not analysed (it is stored, failed, with the reason); a message of
# 25 MiB in base64 has about 345,000 lines of 78 characters.
MAX_LINES = 500_000
MAX_LINE_CHARS = 4 << 20


def _message_from_bytes(data: bytes) -> email.message.Message:
    """`email.message_from_bytes(data)` without its two whole copies of the message: the
    decoded text, and the StringIO it reads that from, which holds 4 bytes a character
    (a 24 MB message cost 120 MB before parsing began). ASCII with surrogateescape decodes
    byte by byte, so decoding chunk by chunk gives the same text. Raises ParseError past
    MAX_LINES or MAX_LINE_CHARS."""
    parser = email.feedparser.FeedParser(policy=_POLICY)
    parser._input = _BoundedLines()  # type: ignore[attr-defined] # before the first feed
    for start in range(0, len(data), _FEED_CHARS):
        parser.feed(data[start : start + _FEED_CHARS].decode("ascii", "surrogateescape"))
    return parser.close()


class _BoundedLines(email.feedparser.BufferedSubFile):  # type: ignore[name-defined,misc]
    """The feedparser's line buffer, unchanged but for a count of lines and of the length
    of the line still open, and a shortcut in `readline`."""

    def __init__(self) -> None:
        super().__init__()
        self._line_count = 0
        self._open_line = 0  # characters pushed since the last line end
        self._other_matchers = 0  # end-of-part tests that are no multipart boundary

    def push_eof_matcher(self, pred: Any) -> None:
        self._other_matchers += not isinstance(getattr(pred, "__self__", None), _BoundaryMatcher)
        super().push_eof_matcher(pred)

    def pop_eof_matcher(self) -> Any:
        pred = super().pop_eof_matcher()
        self._other_matchers -= not isinstance(getattr(pred, "__self__", None), _BoundaryMatcher)
        return pred

    def readline(self) -> Any:
        # Every line of a part is tested against each open multipart boundary, a Python
        # call apiece (a tenth of a parse). A boundary line starts with "--": while only
        # boundaries are watched for, a line that does not start with "-" is none of them.
        lines = self._lines
        if lines and not self._other_matchers and lines[0][:1] != "-":
            return lines.popleft()
        return super().readline()

    def __next__(self) -> Any:
        # The parser reads every line of a part through here: the shortcut of `readline`
        # inline, without a second call per line.
        lines = self._lines
        if lines and not self._other_matchers:
            line = lines[0]
            if line and line[0] != "-":
                return lines.popleft()
        line = super().readline()
        if line == "":
            raise StopIteration
        return line

    def push(self, data: str) -> None:
        end = max(data.rfind("\n"), data.rfind("\r"))
        self._open_line = len(data) - end - 1 if end >= 0 else self._open_line + len(data)
        if self._open_line > MAX_LINE_CHARS:
            raise ParseError(
                f"a line of over {MAX_LINE_CHARS:,} characters: too long to analyse"
                " (a mail line has at most 998)"
            )
        super().push(data)

    def pushlines(self, lines: list[str]) -> None:
        self._line_count += len(lines)
        if self._line_count > MAX_LINES:
            raise ParseError(f"over {MAX_LINES:,} lines: too many to analyse")
        super().pushlines(lines)


def _first(value: Any) -> str:
    """mail-parser gives a list when a header is repeated; the first one counts."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _defects(mp: Any) -> tuple[str, ...]:
    names = sorted(str(category) for category in mp.defects_categories)
    return tuple(names)


def _bodies(
    mp: Any, message: email.message.Message, *, charset_defect: bool
) -> tuple[str | None, str | None]:
    if charset_defect:
        plain, html = _decode_text_parts(message)
    else:
        plain = [_repair_mojibake(_unescape_surrogates(p), message) for p in mp.text_plain]
        html = [_repair_mojibake(_unescape_surrogates(p), message) for p in mp.text_html]
    return ("\n".join(plain) or None, "\n".join(html) or None)


def _decode_text_parts(message: email.message.Message) -> tuple[list[str], list[str]]:
    """Walk the text parts ourselves when mail-parser hit an undecodable charset."""
    plain: list[str] = []
    html: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        text = decode_bytes(payload, part.get_content_charset())
        (html if part.get_content_subtype() == "html" else plain).append(text)
    return plain, html


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode body bytes: the declared charset, else UTF-8, else CP1252, never failing."""
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            text = data.decode(charset)
        # ValueError: a NUL in the charset name; UnicodeError: "undefined", "punycode"...
        except (LookupError, ValueError):
            continue
        return _LONE_SURROGATE.sub("\ufffd", text)
    return data.decode("cp1252", errors="replace")


def _repair_mojibake(text: str, message: email.message.Message) -> str:
    """Undo UTF-8 bytes decoded under a single-byte label ("Ã©" back to "é")."""
    if not any(mark in text for mark in _MOJIBAKE_MARKS):
        return text
    for part in message.walk():
        label = (part.get_content_charset() or "").lower()
        if label not in _SINGLE_BYTE_LABELS:
            continue
        codec = "latin-1" if label in {"us-ascii", "ascii"} else label
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError, LookupError):
            return text
    return text


def _decode_header(value: Any) -> str:
    """A header value as clean text: RFC 2047 words decoded, 8-bit junk made readable."""
    if isinstance(value, email.header.Header):
        text = "".join(
            chunk if isinstance(chunk, str) else decode_bytes(chunk, _known(charset))
            for chunk, charset in email.header.decode_header(value)
        )
    else:
        text = str(value)
        if "=?" in text:
            with contextlib.suppress(HeaderParseError, LookupError, UnicodeError, ValueError):
                text = str(email.header.make_header(email.header.decode_header(text)))
    return _clean_header(text)


def _known(charset: str | None) -> str | None:
    return None if charset in (None, "unknown-8bit") else charset


def _clean_header(text: str) -> str:
    if "\\udc" in text:  # mail-parser writes undecodable header bytes as literal escapes
        text = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)
    text = _unescape_surrogates(text)
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    return text[:_MAX_HEADER_CHARS].strip()


def _unescape_surrogates(text: str) -> str:
    """Raw 8-bit bytes reach headers as surrogate escapes; read them as UTF-8 or CP1252."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _LONE_SURROGATE.sub("\ufffd", text)
        data = text.encode("utf-8", errors="surrogateescape")
        return decode_bytes(data, None)
    return text


def _message_id(value: Any) -> str | None:
    if value is None:
        return None
    text = _clean_header(str(value))
    text = text.strip().strip("<>").strip()
    return text or None


def _first_address(pairs: Any) -> Address | None:
    found = _addresses(pairs)
    return found[0] if found else None


def _addresses(pairs: Any) -> tuple[Address, ...]:
    result = []
    for pair in pairs or ():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            continue
        name, address = (_clean_header(str(item or "")) for item in pair)
        if address or name:
            result.append(Address(name=name, address=address.lower()))
    return tuple(result)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _attachments(items: Any) -> tuple[Attachment, ...]:
    result = []
    for item in items or ():
        payload = item.get("payload") or ""
        size = len(payload) * 3 // 4 if item.get("binary") else len(payload)
        result.append(
            Attachment(
                filename=str(item.get("filename") or ""),
                content_type=str(item.get("mail_content_type") or "application/octet-stream"),
                size=size,
            )
        )
    return tuple(result)
