"""Extraction accuracy on the corpus of real public bulletins (tests/data/corpus/).

For every entry of tests/data/corpus/corpus.json the mail is parsed and extracted as the
pipeline does, and five fields are scored against what the entry says by hand:
- title: equal (whitespace aside);
- date: `release_date` equal;
- first: the body starts with the expected first sentence;
- last: the body ends with the expected last sentence;
- clean: no phrase of `absent` (footer, navigation, subscriber address, tracker) in any
  public column (title, body_text, body_html, links, url). Case-sensitive.
Sentences are compared after dropping `*` emphasis, collapsing whitespace and the space a
removed link leaves before punctuation. A mail that fails to extract scores 0 on all five.

Prints a per-fixture table and accuracy per field, next to the same corpus through a
baseline extractor (`--against REF`, default the code before issue H's body finding),
checked out with `git archive` into a temporary folder and run in a subprocess. Asserts
nothing.

    .venv/bin/python bench/accuracy.py
    .venv/bin/python bench/accuracy.py --against main
    .venv/bin/python bench/accuracy.py --against none     # this tree only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
FIELDS = ("title", "date", "first", "last", "clean")
BASELINE_REF = "4d7c510"  # main before template-independent body finding (issue H)


def normalize(text: str) -> str:
    text = " ".join(text.replace("*", "").split())
    return re.sub(r"\s+([.,;:!?])", r"\1", text)


def score(entry: dict[str, Any]) -> dict[str, Any]:
    """One corpus entry through parse and extract: {field: bool, "error": str | None}."""
    from govfeed.extract import extract_release
    from govfeed.models import RawMessage, Release
    from govfeed.parse import parse_message

    path = CORPUS / entry["file"]
    try:
        release = extract_release(parse_message(RawMessage(path.read_bytes(), str(path))))
    except Exception as err:  # noqa: BLE001 - a bench reports every failure, it never stops
        return {**dict.fromkeys(FIELDS, False), "error": f"{type(err).__name__}: {err}"}
    if not isinstance(release, Release):
        return {**dict.fromkeys(FIELDS, False), "error": f"ignored: {release.reason}"}
    body = normalize(release.body_text)
    links = " ".join(f"{link.url} {link.text}" for link in release.links)
    public = "\n".join(
        (release.title, release.body_text, release.body_html, links, release.url or "")
    )
    return {
        "title": normalize(release.title) == normalize(entry["title"]),
        "date": release.release_date == entry["release_date"],
        "first": bool(body) and body.startswith(normalize(entry["first_sentence"])),
        "last": bool(body) and body.endswith(normalize(entry["last_sentence"])),
        "clean": not [phrase for phrase in entry["absent"] if phrase in public],
        "error": None,
        "leaked": [phrase for phrase in entry["absent"] if phrase in public],
    }


def run_here() -> list[dict[str, Any]]:
    entries = json.loads((CORPUS / "corpus.json").read_text("utf-8"))
    return [{"file": entry["file"], **score(entry)} for entry in entries]


def run_baseline(ref: str) -> list[dict[str, Any]] | str:
    """The corpus through the extractor at git `ref`; a reason string when it cannot run."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "daemon/govfeed"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        return f"no baseline: git archive {ref} failed ({err})"
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "daemon")}
        done = subprocess.run(
            [sys.executable, __file__, "--json"], capture_output=True, text=True, env=env
        )
    if done.returncode != 0:
        return f"no baseline: {ref} did not run ({done.stderr.strip()[-300:]})"
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def report(here: list[dict[str, Any]], base: list[dict[str, Any]] | str, ref: str) -> None:
    entries = {e["file"]: e for e in json.loads((CORPUS / "corpus.json").read_text("utf-8"))}
    before = {} if isinstance(base, str) else {row["file"]: row for row in base}
    print("| fixture | account | template | " + " | ".join(FIELDS) + " | note | baseline |")
    print("|---|---|---|" + "---|" * len(FIELDS) + "---|---|")
    for row in here:
        entry = entries[row["file"]]
        marks = " | ".join("ok" if row[field] else "**no**" for field in FIELDS)
        note = row["error"] or (f"leaked: {', '.join(row['leaked'])}" if row["leaked"] else "")
        print(f"| {row['file']} | {entry['account']} | {entry['template']} | {marks} | {note} "
              f"| {_summary(before.get(row['file']))} |")  # fmt: skip
    print()
    columns = "this tree" if isinstance(base, str) else f"this tree | {ref} (baseline)"
    print(f"| field | {columns} |")
    print("|---|---|" + ("" if isinstance(base, str) else "---|"))
    for field in (*FIELDS, "all five"):
        line = f"| {field} | {_rate(here, field)} |"
        if not isinstance(base, str):
            line += f" {_rate(base, field)} |"
        print(line)
    if isinstance(base, str):
        print(f"\n{base}")
    else:
        for row in base:
            if row["error"]:
                print(f"- baseline {row['file']}: {row['error'][:160]}")


def _summary(row: dict[str, Any] | None) -> str:
    """A baseline row in a few words: which fields it missed and why."""
    if row is None:
        return ""
    if row["error"]:
        return "failed: " + row["error"].split(":", 1)[0]
    missed = [field for field in FIELDS if not row[field]]
    return "no " + ", ".join(missed) if missed else "all ok"


def _rate(rows: list[dict[str, Any]], field: str) -> str:
    if field == "all five":
        good = sum(1 for row in rows if all(row[f] for f in FIELDS))
    else:
        good = sum(1 for row in rows if row[field])
    return f"{good}/{len(rows)} ({100 * good / len(rows):.0f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=BASELINE_REF, help="git ref, or none")
    parser.add_argument("--json", action="store_true", help="this tree's rows as JSON")
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run_here()))
        return
    here = run_here()
    base = "no baseline asked for" if args.against == "none" else run_baseline(args.against)
    report(here, base, args.against)


if __name__ == "__main__":
    main()
