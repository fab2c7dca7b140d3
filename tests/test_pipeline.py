"""The whole ingest pipeline on real files: import, de-duplication, versions, reparse.

Every test here goes through `govfeed import` (click's runner) or `pipeline` into a real
SQLite file, over the .eml fixtures in tests/data/ (see tests/data/README.md).
"""

from __future__ import annotations

import json
import mailbox
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfeed import pipeline
from govfeed.cli import cli
from govfeed.sources import open_sources
from govfeed.store import Store

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

import mailgen  # noqa: E402 - examples/ is not a package

GOOD = sorted(DATA.glob("*.eml"))
MALFORMED = sorted((DATA / "malformed").glob("*.eml"))
EXPECTED = json.loads((DATA / "expected.json").read_text())


# The fixtures were received by Gmail (their Authentication-Results say mx.google.com),
# as in the demo; tests/test_auth.py covers the other policies.
CONFIG = Path(__file__).parent.parent / "config" / "demo.toml"


def import_paths(db: Path, *paths: Path) -> tuple[int, str, str]:
    args = ["--config", str(CONFIG), "--db", str(db), "import", *map(str, paths)]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def reparse(db: Path) -> str:
    result = CliRunner().invoke(cli, ["--config", str(CONFIG), "--db", str(db), "reparse"])
    assert result.exit_code == 0, result.output
    return result.stdout


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Everything a re-import or reparse must leave as it was (times excluded)."""
    return {
        "releases": rows(
            db,
            "select id, title, release_type, release_date, agency, account_code, bulletin_id,"
            " url, body_text, body_html, links, message_count, version_count, status"
            " from releases order by id",
        ),
        "versions": rows(
            db, "select release_id, version, content_hash from release_versions order by id"
        ),
        "messages": rows(
            db,
            "select id, message_id, sha256, release_id, status, error, duplicate_of"
            " from messages order by id",
        ),
    }


def test_fixture_corpus_imports_with_the_expected_outcome(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    code, out, err = import_paths(db, *GOOD)
    assert code == 0
    assert "error:" not in err
    assert out.strip() == (
        f"read {len(GOOD)}, new releases 12, new versions 1, duplicates 1, ignored 2, failed 0"
    )
    statuses = dict(rows(db, "select status, count(*) from messages group by status"))
    assert statuses == {"stored": len(GOOD) - 2, "ignored": 2}
    # The same bulletin to a second topic is one release seen twice; the corrected
    # re-send is a second version of it, and the release shows the newer text.
    [(count, versions, body)] = rows(
        db,
        "select message_count, version_count, body_text from releases"
        " where bulletin_id = '20240728.123456781'",
    )
    assert (count, versions) == (3, 2)
    assert "continue seeking" in body
    assert "continue to seeking" not in body


def test_reimporting_the_same_corpus_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    import_paths(db, *GOOD)
    before = snapshot(db)
    code, out, _ = import_paths(db, *GOOD)
    assert code == 0
    assert out.strip() == (
        f"read {len(GOOD)}, new releases 0, new versions 0, duplicates {len(GOOD)},"
        " ignored 0, failed 0"
    )
    assert snapshot(db) == before


def test_same_message_id_with_other_bytes_is_a_duplicate_row(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    original = (DATA / "dod-advisory.eml").read_bytes()
    resent = tmp_path / "resent.eml"
    resent.write_bytes(b"X-Redelivered: yes\r\n" + original)  # a mailbox reset adds headers
    import_paths(db, DATA / "dod-advisory.eml", resent)
    [(status, duplicate_of, release_id)] = rows(
        db, "select status, duplicate_of, release_id from messages where id = 2"
    )
    assert (status, duplicate_of, release_id) == ("duplicate", 1, 1)
    assert rows(db, "select message_count from releases") == [(1,)]


def test_reparse_keeps_ids_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    import_paths(db, *GOOD, *MALFORMED)
    before = snapshot(db)
    for _ in range(2):
        reparse(db)
        assert snapshot(db) == before


def test_reparse_keeps_what_an_operator_released_after_review(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    untrusting = ["--db", str(db)]  # no config: no trusted server, government mail is held
    CliRunner().invoke(cli, [*untrusting, "import", str(DATA / "dod-release.eml")])
    assert rows(db, "select status from releases") == [("quarantined",)]
    assert CliRunner().invoke(cli, [*untrusting, "release", "1"]).exit_code == 0
    for _ in range(2):
        result = CliRunner().invoke(cli, [*untrusting, "reparse"])
        assert result.exit_code == 0, result.output
        assert "quarantined 0" in result.stdout
        assert rows(db, "select id, status from releases") == [(1, "published")]
        assert rows(db, "select status, error, released_at is not null from messages") == [
            ("stored", None, 1)
        ]


def test_reparse_applies_an_improved_extraction(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    import_paths(db, DATA / "dod-release.eml", DATA / "dod-advisory.eml")
    with sqlite3.connect(db) as conn:  # as an older, buggier extractor might have left it
        conn.execute("update releases set title = 'stale', body_text = '' where id = 1")
        conn.execute("update messages set status = 'failed', error = 'old bug', release_id = null")
        conn.execute("delete from release_keys where release_id = 2")
        conn.execute("delete from release_versions where release_id = 2")
        conn.execute("delete from releases where id = 2")
        conn.execute("update messages set release_id = 1 where id = 1")
    assert reparse(db).splitlines() == [
        "reparsed 2 messages: releases kept 1, new 1, dropped 0;"
        " new versions 0, duplicates 0, ignored 0, failed 0, quarantined 0",
        "changed: messages failed -> stored 2, releases none -> published 1",
    ]
    assert rows(
        db, "select id, title like 'Joint Press Release%', body_text != '' from releases"
    ) == [
        (1, 1, 1),
        (2, 0, 1),
    ]
    assert rows(db, "select id, status, error, release_id from messages") == [
        (1, "stored", None, 1),
        (2, "stored", None, 2),
    ]


def test_malformed_mail_is_all_stored_with_a_status(tmp_path: Path) -> None:
    # In a Maildir every file is a delivered message, however broken: all are stored.
    maildir = tmp_path / "md"
    (maildir / "new").mkdir(parents=True)
    (maildir / "cur").mkdir()
    names = [p.name for p in MALFORMED] + ["zz-big.eml"]
    for path in MALFORMED:
        shutil.copy(path, maildir / "new" / path.name)
    (maildir / "new" / "zz-big.eml").write_bytes(mailgen.big_message(20_000_000))
    db = tmp_path / "g.db"

    code, out, _ = import_paths(db, maildir)

    assert code == 0
    stored = rows(db, "select source, status, error from messages order by id")
    assert [Path(source).name for source, _, _ in stored] == sorted(names)
    for source, status, error in stored:
        assert status in {"stored", "failed", "ignored", "duplicate", "quarantined"}, source
        assert (status == "failed") == (
            error is not None and error.startswith(("parse", "extract"))
        ), source
    failed = [Path(s).name for s, status, _ in stored if status == "failed"]
    assert {"empty.eml", "nul-bytes.eml", "binary-junk.eml"} <= set(failed)
    assert f"failed {len(failed)}" in out
    [(size,)] = rows(db, "select max(size) from raw_messages")
    assert size >= 20_000_000  # raw kept whole


def test_bad_paths_are_named_and_exit_1_after_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    junk = DATA / "malformed" / "binary-junk.eml"
    code, out, err = import_paths(
        db, tmp_path / "missing.eml", picture, junk, DATA / "dod-release.eml"
    )
    assert code == 1
    assert f"error: {tmp_path / 'missing.eml'}: no such file or directory" in err
    assert f"error: {picture}: not a mail file" in err
    assert f"error: {junk}: not a mail file" in err
    assert out.strip().startswith("read 1, new releases 1")


def test_an_mbox_that_cannot_be_read_any_more_is_an_error_and_the_rest_is_imported(
    tmp_path: Path,
) -> None:
    """An mbox is counted only when the import reaches it (not when it is classified): one
    gone unreadable by then is that source's error, and the next source is imported."""
    box = mailbox.mbox(tmp_path / "all.mbox")
    box.add((DATA / "dod-release.eml").read_bytes())
    box.close()
    sources, problems = open_sources([tmp_path / "all.mbox", DATA / "dod-release.eml"])
    assert problems == []
    (tmp_path / "all.mbox").unlink()
    (tmp_path / "all.mbox").mkdir()  # unreadable as a file, even for root
    with Store(tmp_path / "g.db") as store:
        summary = pipeline.import_sources(store, sources, workers=1)
    assert len(summary.source_errors) == 1
    assert summary.source_errors[0].startswith(f"{tmp_path / 'all.mbox'}: cannot read as mbox")
    assert (summary.read, summary.new_releases) == (1, 1)


def test_maildir_and_mbox_of_the_same_mail_give_the_same_releases(tmp_path: Path) -> None:
    maildir = mailbox.Maildir(tmp_path / "md")
    box = mailbox.mbox(tmp_path / "all.mbox")
    for path in GOOD:
        maildir.add(path.read_bytes())
        box.add(path.read_bytes())
    box.close()
    import_paths(tmp_path / "a.db", tmp_path / "md")
    import_paths(tmp_path / "b.db", tmp_path / "all.mbox")
    titles = "select title, release_date, message_count from releases order by title"
    assert rows(tmp_path / "a.db", titles) == rows(tmp_path / "b.db", titles)
    assert len(rows(tmp_path / "a.db", titles)) == 12


@pytest.mark.slow
def test_worker_pool_and_in_process_give_the_same_database(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in [*GOOD, *MALFORMED] * 1:
        shutil.copy(path, corpus / path.name)
    for i in range(80):  # enough to go through the pool
        (corpus / f"gen-{i}.eml").write_bytes(
            mailgen.dod_release(
                title=f"Generated release {i}",
                article_id=4_000_000 + i,
                bulletin_id=f"20240901.{500_000 + i}",
                message_id=f"<gen.{i}@public.govdelivery.com>",
            )
        )
    results = {}
    for workers in (0, 2):
        db = tmp_path / f"w{workers}.db"
        sources, _ = open_sources([corpus])
        with Store(db) as store:
            summary = pipeline.import_sources(store, sources, workers=workers)
        results[workers] = (summary.as_dict(), snapshot(db))
    assert results[0] == results[2]
    assert results[2][0]["new_releases"] >= 80 + 12


def write_policy(tmp_path: Path, policy: str) -> Path:
    config = tmp_path / f"{policy}.toml"
    config.write_text(
        '[authentication]\ntrusted_authserv_ids = ["mx.google.com"]\n'
        f'unauthenticated = "{policy}"\n'
    )
    return config


def test_forged_government_mail_is_quarantined_then_released_after_review(
    tmp_path: Path,
) -> None:
    db = tmp_path / "g.db"
    forged = DATA / "auth" / "dod-release-forged.eml"
    code, out, _ = import_paths(db, forged)
    assert code == 0
    assert out.strip().endswith("quarantined 1")
    [(release_id, status)] = rows(db, "select id, status from releases")
    assert status == "quarantined"
    [(message_status, error, reason, auth)] = rows(
        db, "select status, error, quarantine_reason, auth from messages"
    )
    assert (message_status, error) == ("quarantined", None)
    assert "dmarc=fail" in reason
    assert rows(db, "select quarantine_reason from releases") == [(reason,)]
    assert not auth.startswith("pass")

    runner = CliRunner()
    result = runner.invoke(cli, ["--db", str(db), "release", str(release_id)])
    assert result.exit_code == 0, result.output
    assert rows(db, "select status from releases") == [("published",)]
    again = runner.invoke(cli, ["--db", str(db), "release", str(release_id)])
    assert again.exit_code == 1
    assert "is published, not quarantined" in again.output


def test_reject_policy_keeps_the_raw_mail_but_makes_no_release(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    config = write_policy(tmp_path, "reject")
    forged = DATA / "auth" / "dod-release-forged.eml"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "--db", str(db), "import", str(forged)]
    )
    assert result.exit_code == 0
    assert rows(db, "select count(*) from releases") == [(0,)]
    [(status, error)] = rows(db, "select status, error from messages")
    assert status == "failed"
    assert error.startswith("rejected: ")
    assert rows(db, "select count(*) from raw_messages") == [(1,)]


def test_unauthenticated_copy_never_changes_a_published_release(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    genuine = (DATA / "dod-release.eml").read_bytes()
    # The same bulletin, altered, without the receiving server's verdict.
    tampered = genuine.replace(b"Authentication-Results: mx.google.com", b"X-Old-Auth: mx").replace(
        b"Message-ID: <", b"Message-ID: <tampered."
    )
    copy = tmp_path / "copy.eml"
    copy.write_bytes(tampered.replace(b"Minister Shin", b"Minister Someone"))
    import_paths(db, DATA / "dod-release.eml")
    before = snapshot(db)["releases"]
    code, out, _ = import_paths(db, copy)
    assert code == 0
    assert "quarantined 1" in out
    after = snapshot(db)["releases"]
    assert after[:1] == before  # the published release is as it was
    assert [row[-1] for row in after] == ["published", "quarantined"]  # the copy: apart


def test_a_forged_copy_seen_first_never_becomes_the_real_release(tmp_path: Path) -> None:
    """A forger who mails a doctored copy first, dated in the future so that it would look
    like the newest text: it stays a quarantined release of its own (its sender is
    unverified, the real one is account USDOD), and the real release is published apart."""
    db = tmp_path / "g.db"
    genuine = (DATA / "dod-release.eml").read_bytes()
    forged = (
        genuine.replace(b"Authentication-Results: mx.google.com", b"X-Old-Auth: mx")
        .replace(b"Message-ID: <", b"Message-ID: <forged.")
        .replace(b"Date: Sun, 28 Jul 2024", b"Date: Sun, 28 Jul 2030")
        .replace(b"Minister Shin", b"Minister Someone")
    )
    copy = tmp_path / "forged.eml"
    copy.write_bytes(forged)
    assert "quarantined 1" in import_paths(db, copy)[1]
    assert rows(db, "select status from releases") == [("quarantined",)]
    code, out, _ = import_paths(db, DATA / "dod-release.eml")
    assert code == 0 and "new releases 1, new versions 0" in out
    releases = rows(
        db, "select status, sender, body_text like '%Minister Shin%' from releases order by id"
    )
    assert releases == [
        ("quarantined", "unverified:usdod@public.govdelivery.com", 0),
        ("published", "account:USDOD", 1),
    ]
    shown = rows(db, "select body_text from published_release_versions")
    assert len(shown) == 1 and "Minister Shin" in str(shown[0][0])


@pytest.mark.parametrize("policy", ["quarantine", "reject"])
def test_a_forged_copy_under_the_real_message_id_cannot_hold_the_real_one_back(
    tmp_path: Path, policy: str
) -> None:
    """The forger mails first, under the Message-ID the real bulletin will carry (GovDelivery's
    are predictable): the real mail must still be stored and published, not be taken for a
    duplicate of the forgery."""
    db = tmp_path / "g.db"
    config = write_policy(tmp_path, policy)
    genuine = (DATA / "dod-release.eml").read_bytes()
    forged = genuine.replace(b"Authentication-Results: mx.google.com", b"X-Old-Auth: mx").replace(
        b"Minister Shin", b"Minister Someone"
    )
    copy = tmp_path / "forged.eml"
    copy.write_bytes(forged)
    runner = CliRunner()
    for path in (copy, DATA / "dod-release.eml"):
        args = ["--config", str(config), "--db", str(db), "import", str(path)]
        assert runner.invoke(cli, args).exit_code == 0
    statuses = rows(db, "select status, message_id_clash from messages order by id")
    assert statuses == [
        ("quarantined" if policy == "quarantine" else "failed", None),
        ("stored", 1),
    ]
    [(body,)] = rows(db, "select body_text from releases where status = 'published'")
    assert "Minister Shin" in str(body) and "Someone" not in str(body)
    # A third copy under that Message-ID, authenticated or not, adds nothing.
    again = tmp_path / "again.eml"
    again.write_bytes(genuine.replace(b"Subject:", b"X-Topic: other\r\nSubject:"))
    args = ["--config", str(config), "--db", str(db), "import", str(again)]
    assert runner.invoke(cli, args).exit_code == 0
    assert rows(db, "select status, duplicate_of from messages order by id")[-1] == ("duplicate", 2)
    [(body,)] = rows(db, "select body_text from releases where status = 'published'")
    assert "Minister Shin" in str(body)


def test_reparse_judges_each_mailbox_by_its_own_policy(tmp_path: Path) -> None:
    """Messages of mailboxes with different trust settings are re-judged in runs, each by
    its mailbox's policy, in the order they were stored."""
    db = tmp_path / "g.db"
    import_paths(db, DATA / "dod-release.eml", DATA / "dod-advisory.eml", DATA / "dod-speech.eml")
    with sqlite3.connect(db) as conn:
        conn.execute("update messages set mailbox = 'strict' where id = 2")
    config = tmp_path / "two.toml"
    config.write_text(
        '[authentication]\ntrusted_authserv_ids = ["mx.google.com"]\n'
        '[[mailboxes]]\nname = "strict"\nhost = "imap.example.org"\n'
        'username = "u"\npassword_env = "X"\ntrusted_authserv_ids = ["mx.example.net"]\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db), "reparse"])
    assert result.exit_code == 0, result.output
    assert rows(db, "select id, mailbox, status from messages order by id") == [
        (1, "import", "stored"),
        (2, "strict", "quarantined"),
        (3, "import", "stored"),
    ]
    assert rows(db, "select id, status from releases order by id") == [
        (1, "published"),
        (2, "quarantined"),
        (3, "published"),
    ]
