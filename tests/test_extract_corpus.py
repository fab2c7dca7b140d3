"""The corpus of real public bulletins (tests/data/corpus/), field by field: title, date,
first and last sentence of the body, and no footer, navigation or subscriber trace in any
public column. `make accuracy` prints the same as figures."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from govfeed.extract import extract_release
from govfeed.models import RawMessage, Release
from govfeed.parse import parse_message

CORPUS = Path(__file__).parent / "data" / "corpus"
ENTRIES: list[dict[str, Any]] = json.loads((CORPUS / "corpus.json").read_text("utf-8"))


def normalize(text: str) -> str:
    """Whitespace collapsed, `*` emphasis and the space a removed link leaves dropped."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.replace("*", "").split()))


@pytest.fixture(scope="module", params=ENTRIES, ids=[e["file"] for e in ENTRIES])
def case(request: pytest.FixtureRequest) -> tuple[dict[str, Any], Release]:
    entry: dict[str, Any] = request.param
    path = CORPUS / entry["file"]
    release = extract_release(parse_message(RawMessage(path.read_bytes(), str(path))))
    assert isinstance(release, Release), release
    return entry, release


def test_title_and_date(case: tuple[dict[str, Any], Release]) -> None:
    entry, release = case
    assert (release.title, release.release_date) == (entry["title"], entry["release_date"])


def test_first_and_last_sentence(case: tuple[dict[str, Any], Release]) -> None:
    entry, release = case
    body = normalize(release.body_text)
    assert body.startswith(normalize(entry["first_sentence"])), body[:200]
    assert body.endswith(normalize(entry["last_sentence"])), body[-200:]


def test_nothing_of_the_template_or_the_subscriber(case: tuple[dict[str, Any], Release]) -> None:
    entry, release = case
    links = " ".join(f"{link.url} {link.text}" for link in release.links)
    public = "\n".join((release.title, release.body_text, release.body_html, links,
                        release.url or ""))  # fmt: skip
    assert [phrase for phrase in entry["absent"] if phrase in public] == []


def test_corpus_covers_five_real_accounts_and_both_templates() -> None:
    real = {e["account"] for e in ENTRIES if e["synthetic"] != "all of it"}
    assert len(real) >= 5
    templates = {e["template"].split(",")[0] for e in ENTRIES}
    assert {"standard", "advanced", "text only"} <= templates


def test_corpus_files_are_what_the_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, raw, _ in module.entries():
        if raw is not None:
            assert (CORPUS / name).read_bytes() == raw, name
    manifest = [{"file": name, **entry} for name, _, entry in module.entries()]
    assert manifest == ENTRIES
