"""The attacks of issue E, mounted as real mail through `govfeed import` into a real database.

Each one is something a hostile sender can do without forging a signature: another
GovDelivery customer's genuine, DKIM-signed bulletin (public.govdelivery.com signs for every
account), or a personal note that passes its own domain's DMARC. None of them may
suppress, rewrite or impersonate a DoD release (tests/test_decide.py has the rules as a
table; this file proves them end to end). The fixtures are mailgen's (examples/mailgen.py),
received by Gmail as the demo's: config/demo.toml trusts mx.google.com.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from govfeed.cli import cli

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

import mailgen

DATA = Path(__file__).parent / "data"
DEMO = Path(__file__).parent.parent / "config" / "demo.toml"
DOD = "U.S. Department of Defense"
GENUINE = (DATA / "dod-release.eml").read_bytes()
DOD_MESSAGE_ID = b"20240728.123456781.654959028784@public.govdelivery.com"


def run(db: Path, *args: str, config: Path | None = DEMO) -> tuple[int, str, str]:
    options = ["--config", str(config)] if config else []
    result = CliRunner().invoke(cli, [*options, "--db", str(db), *args])
    return result.exit_code, result.stdout, result.stderr


def load(db: Path, tmp_path: Path, *mails: bytes, config: Path | None = DEMO) -> str:
    """Import `mails` in this order, one import each; return the last summary line."""
    out = ""
    for n, data in enumerate(mails):
        path = tmp_path / f"mail{n}.eml"
        path.write_bytes(data)
        code, out, err = run(db, "import", str(path), config=config)
        assert code == 0, err
    return out


def rows(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def published(db: Path) -> list[tuple[object, ...]]:
    return rows(db, "select title, agency from published_releases order by id")


def test_attack_1_a_note_under_a_bulletins_message_id_cannot_suppress_it(tmp_path: Path) -> None:
    """A personal note that passes its own domain's DMARC arrives first under the Message-ID
    the real bulletin will carry: the bulletin is still stored and published."""
    db = tmp_path / "g.db"
    note = mailgen.personal_message().replace(
        b"CAFTVqZAjGpgtpqSUoF8uvkNfeqyWJwZL@mail.gmail.com", DOD_MESSAGE_ID
    )
    assert DOD_MESSAGE_ID in note
    load(db, tmp_path, note, GENUINE)
    assert rows(db, "select status, sender, message_id_clash from messages order by id") == [
        ("ignored", "domain:example.net", None),
        ("stored", "account:USDOD", 1),
    ]
    assert published(db) == [(rows(db, "select title from releases")[0][0], DOD)]


def test_attack_2_another_accounts_unsigned_bulletin_id_cannot_rewrite_a_release(
    tmp_path: Path,
) -> None:
    """A county's genuine, authenticated bulletin, sent later, carries an extra unsigned
    X-Bulletin-Id equal to a published DoD release's: it makes a release of its own."""
    db = tmp_path / "g.db"
    load(db, tmp_path, GENUINE)
    [(dod_id, bulletin_id, before)] = rows(db, "select id, bulletin_id, title from releases")
    assert bulletin_id
    county = mailgen.advanced_bulletin(mail_date=datetime(2030, 1, 1, tzinfo=UTC))
    hostile = county.replace(b"Subject:", f"X-Bulletin-Id: {bulletin_id}\r\nSubject:".encode(), 1)
    out = load(db, tmp_path, hostile)
    assert "new releases 1" in out
    assert rows(db, "select title, agency, message_count from releases where id = ?", dod_id) == [
        (before, DOD, 1)
    ]
    [(agency, county_bulletin, sender)] = rows(
        db, "select agency, bulletin_id, sender from releases where id != ?", dod_id
    )
    assert sender == "account:EXCOUNTY" and agency.startswith("Example County")
    assert county_bulletin != bulletin_id  # the unsigned header was not believed


def test_an_unsigned_bulletin_id_is_ignored_also_from_the_same_account(tmp_path: Path) -> None:
    """DoD's own genuine mail with an X-Bulletin-Id its signature does not cover: the id
    comes from the signed body (its tracker links), never from that header."""
    db = tmp_path / "g.db"
    advisory = (DATA / "dod-advisory.eml").read_bytes()
    load(db, tmp_path, GENUINE)
    [(bulletin_id,)] = rows(db, "select bulletin_id from releases")
    hostile = advisory.replace(b"Subject:", f"X-Bulletin-Id: {bulletin_id}\r\nSubject:".encode(), 1)
    assert "new releases 1" in load(db, tmp_path, hostile)
    assert rows(db, "select count(distinct bulletin_id), count(*) from releases") == [(2, 2)]


def test_attack_3_another_account_cannot_publish_as_dod(tmp_path: Path) -> None:
    """A county's genuine bulletin whose tagline and From name say "U.S. Department of
    Defense": quarantined with the reason, invisible to readers."""
    db = tmp_path / "g.db"
    impostor = replace(mailgen.EXAMPLE_COUNTY, name=DOD)
    out = load(db, tmp_path, mailgen.advanced_bulletin(agency=impostor))
    assert "quarantined 1" in out
    [(status, reason, agency, written)] = rows(
        db, "select status, quarantine_reason, agency, agency_as_written from releases"
    )
    assert status == "quarantined"
    assert reason == f"claims {DOD}; sent by account EXCOUNTY"
    assert (agency, written) == (DOD, DOD)  # as the mail said; the view hides it
    assert published(db) == []


def test_the_departments_two_names_are_one_agency(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    load(db, tmp_path, GENUINE, (DATA / "dod-war-release.eml").read_bytes())
    assert rows(db, "select agency, agency_as_written from releases order by id") == [
        (DOD, DOD),
        (DOD, "U.S. Department of War"),
    ]
    assert rows(db, "select count(*) from published_releases where agency = ?", DOD) == [(2,)]


def test_attack_4_reparse_unpublishes_after_the_operator_tightens_trust(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    load(db, tmp_path, GENUINE, (DATA / "dod-advisory.eml").read_bytes())
    assert rows(db, "select status from releases") == [("published",), ("published",)]
    strict = tmp_path / "strict.toml"
    strict.write_text('[authentication]\ntrusted_authserv_ids = ["mx.example.net"]\n')
    code, out, err = run(db, "reparse", config=strict)
    assert code == 0, err
    assert out.splitlines()[-1] == (
        "changed: messages stored -> quarantined 2, releases published -> quarantined 2"
    )
    assert rows(db, "select status from releases") == [("quarantined",), ("quarantined",)]
    reasons = rows(db, "select quarantine_reason from releases")
    assert all("no Authentication-Results from mx.example.net" in str(r) for (r,) in reasons)
    # ... and publishes again once trust is restored; ids stay.
    code, out, _ = run(db, "reparse")
    assert out.splitlines()[-1] == (
        "changed: messages quarantined -> stored 2, releases quarantined -> published 2"
    )
    assert rows(db, "select id, status from releases") == [(1, "published"), (2, "published")]


def test_without_trusted_servers_every_command_says_so(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    mail = tmp_path / "m.eml"
    mail.write_bytes(GENUINE)
    for args in (["import", str(mail)], ["reparse"]):
        code, _, err = run(db, *args, config=None)
        assert code == 0
        [warning] = [line for line in err.splitlines() if line.startswith("warning:")]
        assert "no trusted_authserv_ids" in warning
        assert "government mail will be quarantined" in warning
        assert str(db) in warning
    code, _, err = run(db, "import", str(mail))  # the demo config trusts mx.google.com
    assert not [line for line in err.splitlines() if line.startswith("warning:")]
