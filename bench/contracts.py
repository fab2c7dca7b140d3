"""Per-field accuracy of `parse_awards` on the real DoD contract fixtures.

Reads tests/data/contracts/*.txt with the rows each .json says a reader should get, and
prints, per field, how many rows the parser gets exactly right. Two sets are reported
apart: `holdout-*` (expectations written by hand before the parser first ran on them;
the first runs scored 121/121, 86/88 and 44/44 fields, see tests/data/README.md) and the rest
(checked by hand, but the parser was tuned on them). For comparison, the
same run scores a naive reading (contractor = text before the first comma, amount = the
first "$", number = the last contract number, modification = the word appears) on the
same rows. Prints figures; asserts nothing.

    .venv/bin/python bench/contracts.py
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from govfeed.extract.contract_text import branch_name, is_heading
from govfeed.extract.contracts import PIID, parse_awards
from govfeed.models import ContractAward

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "contracts"
FIELDS = (
    "branch", "contractor", "contractor_location", "amount_usd", "contract_number",
    "is_modification", "contract_type", "work_location", "completion_date",
    "contracting_activity", "small_business",
)  # fmt: skip
Row = dict[str, Any]


def parser_rows(text: str) -> list[Row]:
    return [_row(award) for award in parse_awards(text)]


def _row(award: ContractAward) -> Row:
    return {field: getattr(award, field) for field in FIELDS}


def naive_rows(text: str) -> list[Row]:
    """One row per paragraph with "awarded" in it, read the simple way."""
    rows: list[Row] = []
    branch = None
    for block in (b.strip() for b in text.split("\n\n") if b.strip()):
        if is_heading(block):
            branch = branch_name(block)
            continue
        if "awarded" not in block or block.upper().startswith("CORRECTION"):
            continue
        amount = re.search(r"\$([\d,]+)", block)
        numbers = PIID.findall(block)
        rows.append(
            {
                "branch": branch,
                "contractor": block.split(",")[0].rstrip("*"),
                "amount_usd": int(amount.group(1).replace(",", "")) if amount else None,
                "contract_number": numbers[-1] if numbers else None,
                "is_modification": "modification" in block,
                "small_business": ",*" in block.split("awarded")[0],
            }
        )
    return rows


def score(files: list[Path], read: Callable[[str], list[Row]]) -> tuple[dict[str, int], int, int]:
    """(right rows per field, expected rows, rows the reader gave)."""
    right = dict.fromkeys(FIELDS, 0)
    expected_total = given_total = 0
    for path in files:
        expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["awards"]
        given = read(path.read_text(encoding="utf-8"))
        expected_total += len(expected)
        given_total += len(given)
        unmatched = list(given)
        for want in expected:
            match = next((g for g in unmatched if g["contractor"] == want["contractor"]), None)
            if match is None:
                continue
            unmatched.remove(match)
            for field in FIELDS:
                right[field] += field in match and match[field] == want[field]
    return right, expected_total, given_total


def report(title: str, files: list[Path]) -> None:
    ours, expected, given = score(files, parser_rows)
    naive, _, naive_given = score(files, naive_rows)
    print(f"\n### {title}: {len(files)} fixture(s), {expected} expected rows")
    print(f"rows given: parse_awards {given}, naive {naive_given}\n")
    print("| field | parse_awards | naive |")
    print("|---|---|---|")
    for field in FIELDS:
        naive_cell = f"{naive[field]}/{expected}" if field in naive_rows_fields() else "–"
        print(
            f"| {field} | {ours[field]}/{expected} ({ours[field] / expected:.0%}) | {naive_cell} |"
        )
    total, cells = sum(ours.values()), expected * len(FIELDS)
    print(f"| all fields | {total}/{cells} ({total / cells:.1%}) | |")


def naive_rows_fields() -> set[str]:
    return {"branch", "contractor", "amount_usd", "contract_number", "is_modification",
            "small_business"}  # fmt: skip


def main() -> None:
    files = sorted(DATA.glob("*.txt"))
    holdout = [path for path in files if path.stem.startswith("holdout")]
    tuned = [path for path in files if path not in holdout]
    print("## Contract awards: per-field accuracy (exact match per row)")
    report("held out (expectations written before the parser saw them)", holdout)
    report("tuned on (expectations checked by hand)", tuned)
    texts = [path.read_text(encoding="utf-8") for path in files] * 50
    start = time.perf_counter()
    awards = sum(len(parse_awards(text)) for text in texts)
    elapsed = time.perf_counter() - start
    print(f"\nspeed: {awards} awards from {len(texts)} bodies in {elapsed:.2f} s "
          f"({awards / elapsed:,.0f} awards/s)")  # fmt: skip


if __name__ == "__main__":
    main()
