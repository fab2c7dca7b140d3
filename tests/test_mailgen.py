"""The fixture corpus: it parses, decodes to what was meant, and is what the scripts write."""

from __future__ import annotations

import email
import html
import importlib.util
import json
import mailbox
import re
import sys
from email import policy
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text("utf-8"))
GOOD = sorted(EXPECTED)
RELEASES = sorted(name for name, e in EXPECTED.items() if e["kind"] == "release")
DOD = sorted(name for name, e in EXPECTED.items() if e.get("profile") == "dod")
TRACKER_HOSTS = ("lnks.gd", "links-1.govdelivery.com", "links.govdelivery.com")


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(name: str) -> EmailMessage:
    message = email.message_from_bytes((DATA / name).read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body((subtype,))
    return None if part is None else str(part.get_content())


def hrefs(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'(?:href|src)="([^"]+)"', page, re.I)]


@pytest.mark.parametrize("name", GOOD)
def test_good_fixture_parses_without_defects(name: str) -> None:
    message = parse(name)
    defects = [(p.get_content_type(), p.defects) for p in message.walk() if p.defects]
    defects += [(key, value.defects) for key, value in message.items() if value.defects]
    assert defects == []


@pytest.mark.parametrize("name", RELEASES)
def test_text_part_decodes_to_the_intended_body(name: str) -> None:
    """Quoted-printable round trip: every body paragraph comes back, in order."""
    expected = EXPECTED[name]
    message = parse(name)
    part = message.get_body(("plain",)) or message.get_body(("html",))
    assert part is not None
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    # The wrong-charset fixture declares iso-8859-1 over UTF-8 bytes: decode what was meant.
    text = raw.decode("utf-8" if "wrong-charset" in name else part.get_content_charset("ascii"))
    text = " ".join(re.sub(r" \[ \S+ \]", "", html.unescape(re.sub(r"<[^>]+>", "", text))).split())
    position = 0
    for paragraph in expected["body_text"].split("\n\n"):
        position = text.index(paragraph, position)


@pytest.mark.parametrize("name", DOD)
def test_dod_view_online_tracker_decodes_to_the_article(name: str) -> None:
    page = body(parse(name), "html")
    assert page is not None
    view_online = re.search(r'<a href="([^"]+)"[^>]*>View Online</a>', page)
    assert view_online is not None
    claims = mailgen.jwt_payload(html.unescape(view_online[1]))
    expected = EXPECTED[name]
    assert (claims["url"], claims["bulletin_id"]) == (expected["url"], expected["bulletin_id"])


def test_dod_release_jwt_payload_is_the_defense_gov_article() -> None:
    page = body(parse("dod-release.eml"), "html") or ""
    home, view_online = [h for h in hrefs(page) if h.startswith("https://lnks.gd/l/")][:2]
    assert view_online.split("/l/")[1].split(".")[0] == "eyJhbGciOiJIUzI1NiJ9"
    assert mailgen.jwt_payload(home)["url"] == "https://www.defense.gov/"
    assert mailgen.jwt_payload(view_online) == {
        "bulletin_link_id": 101,
        "uri": "bp2:click",
        "bulletin_id": "20240728.123456781",
        "url": "https://www.defense.gov/News/Releases/Release/Article/3852401/"
        "joint-press-release-for-the-rok-us-defense-ministerial-meeting/",
    }


@pytest.mark.parametrize("name", RELEASES)
def test_every_tracker_unwraps_offline(name: str) -> None:
    message = parse(name)
    links = hrefs(body(message, "html") or "")
    links += re.findall(r"\[ (\S+) \]", body(message, "plain") or "")
    assert links
    for link in links:
        if "type=open" in link:
            continue  # the open pixel has no destination
        assert not mailgen.decode_tracker(link).startswith(
            tuple(f"https://{h}/" for h in TRACKER_HOSTS)
        )


def test_double_wrapped_link_unwraps_twice() -> None:
    page = body(parse("dod-advisory.eml"), "html") or ""
    wrapped = [h for h in hrefs(page) if "CL0/https:%2F%2Flnks.gd" in h]
    assert [mailgen.decode_tracker(h) for h in wrapped] == [
        "https://www.defense.gov/News/Advisories/"
    ]


def test_topic2_is_the_same_bulletin_sent_again() -> None:
    first, second = parse("dod-release.eml"), parse("dod-release-topic2.eml")
    assert first["Message-ID"] != second["Message-ID"]
    assert first["To"] != second["To"]
    assert body(first, "plain") != body(second, "plain")  # trackers differ per recipient
    assert (
        EXPECTED["dod-release-topic2.eml"]["body_text"] == EXPECTED["dod-release.eml"]["body_text"]
    )


def test_cp1252_fixture_is_declared_and_decodes() -> None:
    message = parse("dod-release-cp1252.eml")
    assert {p.get_content_charset() for p in message.walk() if not p.is_multipart()} == {
        "windows-1252"
    }
    assert "“We need to move faster" in (body(message, "plain") or "")
    assert message["Subject"] == EXPECTED["dod-release-cp1252.eml"]["title"]


def test_wrong_charset_fixture_holds_utf8_declared_latin1() -> None:
    part = parse("dod-release-wrong-charset.eml").get_body(("plain",))
    assert part is not None
    assert part.get_content_charset() == "iso-8859-1"
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    assert "joint communiqué" in raw.decode("utf-8")


def test_html_only_and_text_only_have_one_part() -> None:
    assert parse("dod-html-only.eml").get_content_type() == "text/html"
    assert parse("govdelivery-text-only.eml").get_content_type() == "text/plain"


def test_standard_bulletin_keeps_the_real_template() -> None:
    page = body(parse("govdelivery-standard.eml"), "html") or ""
    for marker in ('id="yahoo"', 'id="preheader-right"', 'id="main-headline"', 'id="tagline"',
                   'id="sub-headline-body"', 'id="bottom-body"', 'id="mail_footer"'):  # fmt: skip
        assert marker in page
    view = re.search(r'<a href="([^"]+)"[^>]*><span[^>]*>View in browser', page)
    assert view is not None
    assert (
        mailgen.decode_tracker(html.unescape(view[1]))
        == EXPECTED["govdelivery-standard.eml"]["url"]
    )


def test_big_message_is_at_least_20_mb_and_parses() -> None:
    raw = mailgen.big_message(20_000_000)
    assert len(raw) >= 20_000_000
    message = email.message_from_bytes(raw)
    assert [p.get_content_type() for p in message.walk()][-1] == "application/pdf"


def test_deeply_nested_is_50_levels() -> None:
    message = parse("malformed/deeply-nested.eml")
    assert sum(p.is_multipart() for p in message.walk()) == 50


def test_pad_to_reaches_the_size_without_overshooting_much() -> None:
    raw = mailgen.dod_release(pad_to=40_000)
    assert 40_000 <= len(raw) < 42_000


def test_generation_is_deterministic() -> None:
    assert mailgen.dod_release() == mailgen.dod_release()
    assert mailgen.big_message(100_000) == mailgen.big_message(100_000)


def test_fixture_files_are_what_make_fixtures_writes() -> None:
    script = load_script(DATA / "make_fixtures.py")
    for name, spec in script.DOD_FIXTURES.items():
        assert (DATA / name).read_bytes() == mailgen.render_dod(spec), name
    for name, build in script.GENERAL_FIXTURES.items():
        assert (DATA / name).read_bytes() == build(), name
    for name, data in script.malformed_fixtures().items():
        assert (DATA / "malformed" / name).read_bytes() == data, name


def test_demo_maildir_is_what_the_script_writes() -> None:
    script = load_script(ROOT / "examples" / "make_demo_maildir.py")
    folder = ROOT / "examples" / "demo-maildir"
    wanted = {
        f"{box}/{script.file_name(n, data, when, box)}": data
        for n, (box, data, when) in enumerate(script.demo_messages(), start=1)
    }
    found = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in folder.glob("*/[!.]*")}
    assert found == wanted
    assert len(mailbox.Maildir(folder, create=False)) == len(wanted)
