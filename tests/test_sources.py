"""open_sources: .eml files, mbox files, Maildirs and folders of .eml; clear errors."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from govfeed.sources import open_sources

MAIL = b"From: a@b.gov\r\nSubject: one\r\nMessage-ID: <1@b>\r\n\r\nbody\r\n"


def test_eml_mbox_maildir_and_folder(tmp_path: Path) -> None:
    eml = tmp_path / "one.eml"
    eml.write_bytes(MAIL)
    box = mailbox.mbox(tmp_path / "two.mbox")
    box.add(MAIL)
    box.add(MAIL.replace(b"one", b"two"))
    box.close()
    maildir = mailbox.Maildir(tmp_path / "md")
    maildir.add(MAIL)
    folder = tmp_path / "folder" / "sub"
    folder.mkdir(parents=True)
    (folder / "x.eml").write_bytes(MAIL)

    sources, problems = open_sources(
        [eml, tmp_path / "two.mbox", tmp_path / "md", tmp_path / "folder"]
    )

    assert problems == []
    assert [(s.kind, s.count) for s in sources] == [
        ("eml", 1),
        ("mbox", 2),
        ("maildir", 1),
        ("folder", 1),
    ]
    messages = [raw for source in sources for raw in source.fetch()]
    assert len(messages) == 5
    assert messages[2].data.replace(b"\n", b"\r\n").rstrip().endswith(b"body")
    assert b"Subject: two" in messages[2].data
    assert messages[2].source.endswith("two.mbox#2")


def test_missing_and_non_mail_paths_are_named_errors(tmp_path: Path) -> None:
    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()

    sources, problems = open_sources([tmp_path / "nope.eml", picture, empty_dir])

    assert sources == []
    messages = [str(p) for p in problems]
    assert messages[0] == f"{tmp_path / 'nope.eml'}: no such file or directory"
    assert messages[1].startswith(f"{picture}: not a mail file")
    assert messages[2].startswith(f"{empty_dir}: neither a Maildir")


@pytest.mark.parametrize(
    "content",
    [
        b"From x\nA: 1\n\nbody\n\nFrom y\nB: 2\n\nFrom z\n\nFrom w\nC: 3\n\nno trailing newline",
        b"From x\nA: 1\n\nline\nFrom  y\n>From q\n\n\nFrom z\nZ: 1\n\n\n",
        b"From only\n",
        b"From a\nS: big\n\n" + (b"x" * 999 + b"\n") * 3000 + b"\nFrom b\nS: 2\n\nend\n",
    ],
)
def test_mbox_split_gives_the_same_bytes_as_the_stdlib(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(content)
    box = mailbox.mbox(path)
    expected = [box.get_bytes(key) for key in box.iterkeys()]
    box.close()

    sources, _ = open_sources([path])

    assert sources[0].count == len(expected)
    assert [raw.data for raw in sources[0].fetch()] == expected
    assert sources[0].count_up_to(1) == 1
    assert sources[0].count_up_to(len(expected) + 5) == len(expected)


def test_an_mbox_is_counted_when_asked_and_up_to_a_limit(tmp_path: Path) -> None:
    """Not when it is classified: reading a 240 MB mbox through cost 0.4 s before the
    first message was parsed, and only a progress bar needs the whole count; the pipeline
    asks whether there are enough messages for the worker pool."""
    path = tmp_path / "box.mbox"
    path.write_bytes(b"From a\nS: 1\n\none\n\nFrom b\nS: 2\n\ntwo\n")
    (source,), _ = open_sources([path])
    with path.open("ab") as more:  # grows after it was classified: counting starts now
        more.write(b"\nFrom c\nS: 3\n\nthree\n")
    assert source.count_up_to(2) == 2
    assert source.count == 3
