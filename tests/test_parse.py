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
