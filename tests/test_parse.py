"""parse_message: decoded headers and bodies whatever the charset or MIME damage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from govfeed.errors import ParseError
from govfeed.models import RawMessage
from govfeed.parse import decode_bytes, parse_message


def parse(data: bytes):  # type: ignore[no-untyped-def]
    return parse_message(RawMessage(data=data, source="test"))


def mail(
    body: bytes, content_type: bytes = b"text/plain; charset=utf-8", extra: bytes = b""
) -> bytes:
    return (
        b"From: =?utf-8?q?Caf=C3=A9_News?= <News@Example.GOV>\r\n"
        b"To: reader@example.org\r\n"
        b"Subject: =?utf-8?b?SGVsbG8g4pyT?=\r\n"
        b"Message-ID: <abc.123@public.govdelivery.com>\r\n"
        b"Date: Sun, 28 Jul 2024 10:00:00 -0400\r\n"
        + extra
        + b"Content-Type: "
        + content_type
        + b"\r\n\r\n"
        + body
    )


def test_headers_are_decoded_and_addresses_split() -> None:
    msg = parse(mail(b"hello\r\n"))
    assert msg.subject == "Hello ✓"
    assert msg.from_ is not None
    assert (msg.from_.name, msg.from_.address) == ("Café News", "news@example.gov")
    assert [a.address for a in msg.to] == ["reader@example.org"]
    assert msg.message_id == "abc.123@public.govdelivery.com"
    assert msg.sent_at == datetime(2024, 7, 28, 14, 0, tzinfo=UTC)
    assert msg.header("subject") == "Hello ✓"
    assert msg.text is not None and msg.text.strip() == "hello"
    assert msg.html is None


def test_cp1252_declared_correctly() -> None:
    msg = parse(mail(b"Caf\xe9 \x93quoted\x94 \x97 dash", b"text/plain; charset=windows-1252"))
    assert msg.text == "Café “quoted” — dash"


def test_utf8_bytes_declared_as_latin1_are_repaired() -> None:
    body = "Café “quoted” — dash".encode()
    msg = parse(mail(body, b"text/plain; charset=iso-8859-1"))
    assert msg.text == "Café “quoted” — dash"


def test_cp1252_bytes_declared_as_utf8_fall_back_to_cp1252() -> None:
    msg = parse(mail(b"Caf\xe9 \x93quoted\x94", b"text/plain; charset=utf-8"))
    assert msg.text == "Café “quoted”"
    assert "CharsetDecodeDefect" in msg.defects


def test_unknown_charset_is_decoded_anyway_and_recorded() -> None:
    msg = parse(mail("naïve".encode(), b"text/plain; charset=x-unknown-42"))
    assert msg.text == "naïve"
    assert "CharsetDecodeDefect" in msg.defects


def test_html_only_and_quoted_printable() -> None:
    body = b"<p>Caf=C3=A9 =E2=80=94 ok</p>"
    msg = parse(
        mail(body, b"text/html; charset=utf-8", b"Content-Transfer-Encoding: quoted-printable\r\n")
    )
    assert msg.text is None
    assert msg.html == "<p>Café — ok</p>"


def test_eight_bit_junk_in_headers_is_readable_text() -> None:
    msg = parse(b"From: Caf\xe9 <a@b.gov>\r\nSubject: ok\r\n\r\nbody\r\n")
    assert msg.from_ is not None and msg.from_.name == "Café"
    assert msg.header("From") == "Café <a@b.gov>"


def test_attachments_are_listed() -> None:
    data = (
        b"From: a@b.gov\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--B\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n"
    )
    msg = parse(data)
    assert [(a.filename, a.content_type) for a in msg.attachments] == [("r.pdf", "application/pdf")]
    assert msg.text is not None and "see attached" in msg.text


def test_missing_message_id_is_none() -> None:
    msg = parse(b"From: a@b.gov\r\nSubject: s\r\n\r\nbody\r\n")
    assert msg.message_id is None


@pytest.mark.parametrize("data", [b"", b"\x00" * 64, b"\r\n\r\n", b"no headers here at all"])
def test_nothing_usable_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)


def test_decode_bytes_never_fails() -> None:
    assert decode_bytes(b"\x81\x8d\xff", "utf-8")  # undefined in cp1252 too: replaced, not raised
    assert decode_bytes("é".encode(), "no-such-charset") == "é"


@pytest.mark.parametrize(
    ("charset", "data"),
    [("undefined", b"caf\xc3\xa9"), ("punycode", b"a..b"), ("utf-8\x00", b"caf\xc3\xa9")],
)
def test_decode_bytes_survives_codecs_that_raise_other_errors(charset: str, data: bytes) -> None:
    # UnicodeError, not UnicodeDecodeError, from "undefined" and "punycode"; ValueError for
    # a NUL in the name. Both used to fail the whole message.
    assert decode_bytes(data, charset) == data.decode("utf-8")


@pytest.mark.parametrize("charset", [b"utf-7", b"unicode_escape"])
def test_codecs_that_make_lone_surrogates_give_storable_text(charset: bytes) -> None:
    # "+2AA-" in UTF-7 and "\ud800" in unicode_escape decode to U+D800, which SQLite's
    # UTF-8 cannot hold: the whole message used to fail with UnicodeEncodeError.
    qp = b"Content-Transfer-Encoding: quoted-printable\r\n"
    msg = parse(mail(b"a +2AA- \\ud800 b", b"text/plain; charset=" + charset, extra=qp))
    assert msg.text is not None and "\ufffd" in msg.text
    msg.text.encode("utf-8")


def test_an_encoded_word_that_decodes_to_a_lone_surrogate_is_replaced() -> None:
    data = mail(b"body").replace(b"=?utf-8?b?SGVsbG8g4pyT?=", b"=?unicode_escape?q?a\\ud800b?=")
    msg = parse(data)  # used to raise ParseError: "surrogates not allowed"
    assert msg.header("Subject") == "a\ufffdb"
    msg.subject.encode("utf-8")


def test_a_repeated_subject_reads_the_first() -> None:
    # mail-parser gives a list for a repeated header: this used to fail the message.
    msg = parse(mail(b"body", extra=b"Subject: a second subject\r\n"))
    assert msg.subject == "Hello \u2713"


def test_a_message_cut_before_a_nested_start_boundary() -> None:
    # A part without its start boundary makes mail-parser 4.8 look for it in the epilogue,
    # which a cut message does not have (None): this used to fail with AttributeError.
    data = mail(
        b"--outer\r\nContent-Type: text/plain\r\n\r\nreadable\r\n"
        b"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\ncut here",
        b'multipart/mixed; boundary="outer"',
    )
    msg = parse(data)
    assert msg.text == "readable"
    assert "StartBoundaryNotFoundDefect" in msg.defects


def test_a_lost_start_boundary_under_a_top_level_without_one_is_a_parse_error() -> None:
    data = mail(
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno boundary\r\n", b"message/rfc822"
    )
    with pytest.raises(ParseError, match="mail-parser could not read"):
        parse(data)


def test_huge_headers_are_read_in_linear_time() -> None:
    """The standard library decodes RFC 2047 words and MIME parameters in quadratic time:
    these two 2 MB headers took minutes before parse.py cut every header at 64 KB."""
    import time

    words = b"=?utf-8?q?caf=C3=A9?= " * 90_000
    params = b"a=1; " * 400_000
    data = mail(b"body", b"text/plain; " + params + b"charset=utf-8").replace(
        b"=?utf-8?b?SGVsbG8g4pyT?=", words
    )
    start = time.perf_counter()
    msg = parse(data)
    assert time.perf_counter() - start < 10  # ~0.3 s; the uncut headers took minutes
    assert msg.subject.startswith("cafécafé") and len(msg.subject) <= 64 * 1024
    assert msg.text == "body"


def test_trimmed_mail_parser_reads_like_the_stock_one() -> None:
    """parse.py skips work mail-parser does for properties govfeed never reads; the ones
    it does read must not change, on every fixture."""
    import email
    from pathlib import Path

    import mailparser

    from govfeed.parse import _MailParser

    data_dir = Path(__file__).parent / "data"
    for path in sorted(data_dir.glob("**/*.eml")):
        data = path.read_bytes()
        stock = mailparser.parse_from_bytes(data)
        ours = _MailParser(email.message_from_bytes(data))
        for name in ("subject", "from_", "to", "reply_to", "date", "text_plain", "text_html"):
            assert getattr(ours, name) == getattr(stock, name), (path.name, name)
        assert ours.defects_categories == stock.defects_categories, path.name
        assert len(ours.attachments) == len(stock.attachments), path.name


def test_messages_are_read_as_the_standard_library_reads_them() -> None:
    """parse.py feeds the parser chunk by chunk (a 24 MB message no longer costs 120 MB
    before parsing begins) and skips the boundary tests of lines that cannot be one; the
    message it builds must be the stdlib's, on every fixture, across a chunk edge that
    splits a CRLF or an 8-bit byte, and with nested boundaries."""
    import email
    from pathlib import Path

    from govfeed.parse import _FEED_CHARS, _POLICY, _message_from_bytes

    head = b"From: a@example.org\r\nSubject: edge\r\nContent-Type: text/plain\r\n\r\n"
    line = b"\xe9t\xe9 " * 19 + b"\r\n"
    edge = head + b"x" * (_FEED_CHARS - len(head) - 1) + b"\r\n" + line * 500
    # Nested boundaries, lines that start like one, and a delivery-status part (whose
    # header blocks the parser ends with a blank-line test, not a boundary).
    nested = (
        b"From: a@example.org\r\nContent-Type: multipart/report; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        b"--inner\r\nContent-Type: text/plain\r\n\r\n- a list\r\n--not a boundary\r\n"
        b"--inne\r\n--outerx\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>-</p>\r\n"
        b"--inner--\r\n--outer\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; b@example.org\r\n"
        b"Action: failed\r\n\r\n--outer--\r\nepilogue\r\n"
    )
    data_dir = Path(__file__).parent / "data"
    fixtures = (p.read_bytes() for p in sorted(data_dir.glob("**/*.eml")))
    for data in [edge, nested, *fixtures]:
        ours = _message_from_bytes(data)
        stock = email.message_from_bytes(data, policy=_POLICY)
        assert ours.as_string() == stock.as_string()
        assert [type(d) for d in ours.defects] == [type(d) for d in stock.defects]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\r\n" * 500_001, "over 500,000 lines: too many to analyse"),  # 1 MB: 30 MB parsed
        (b"x" * ((4 << 20) + 1), "a line of over 4,194,304 characters: too long to analyse"),
    ],
)
def test_mail_whose_lines_would_take_the_parser_far_past_its_size_is_refused(
    body: bytes, error: str
) -> None:
    """24 MB of empty lines cost the parser 900 MB (a string object per line), a 24 MB line
    120 MB: past these bounds the message is a ParseError (stored failed, raw kept)."""
    raw = RawMessage(data=b"From: a@example.org\r\nSubject: x\r\n\r\n" + body, source="t")
    with pytest.raises(ParseError, match=error):
        parse_message(raw)
