"""The reader's site's test database, built through the real pipeline.

test_datasette.build_database's mail (DoD releases, a corrected re-send, a hostile
bulletin, a quarantined forgery, a failed mail) plus the DoD contracts announcement.
Before schema 5 the `contract_awards` table and its published view are made here with the
columns schema.md fixes; while no award parser fills them (issue H), two awards of the
fixture announcement are added as it would read them; a quarantined announcement's award
is added in any case, to show it stays out.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from govfeed import pipeline
from govfeed.config import AuthenticationSettings
from govfeed.sources import open_sources
from govfeed.store import Store
from tests.test_datasette import DATA, QUARANTINED_TITLE, build_database

QUARANTINED_CONTRACTOR = "Quokka Holdings Ltd."
AWARD_COLUMNS = (
    "id integer primary key, release_id integer, position integer, branch text,"
    " contractor text, contractor_location text, amount_usd integer, contract_number text,"
    " is_modification integer, contract_type text, work_location text, completion_date text,"
    " contracting_activity text, small_business integer, paragraph text"
)
# schema.md: every contract_awards column plus the release's date, month, title, agency.
AWARDS_VIEW = """
create view if not exists published_contract_awards as
select a.*, p.release_date, p.release_month, p.title, p.agency
from contract_awards a join published_releases p on p.id = a.release_id
"""
# Two awards of the fixture announcement, as issue H's parser would read them.
FIXTURE_AWARDS = (
    ("Army", "Example Aerospace Corp.", "Huntsville, Alabama", 48_215_007, "W31P4Q-23-C-0042", 1),
    ("Navy", "Harbor Marine Systems Inc.*", "Norfolk, Virginia", 12_400_000, "N00024-24-C-4101", 0),
)


def build_site_database(path: Path) -> None:
    build_database(path)
    trusted = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
    with Store(path) as store:
        sources, problems = open_sources([DATA / "dod-contract.eml"])
        assert not problems
        pipeline.import_sources(store, sources, policy=trusted)
    with sqlite3.connect(path) as conn:
        has_table = conn.execute(
            "select 1 from sqlite_master where name = 'contract_awards'"
        ).fetchone()
        if not has_table:
            conn.execute(f"create table contract_awards ({AWARD_COLUMNS})")
            conn.execute(AWARDS_VIEW)
        (contract_id,) = conn.execute(
            "select id from releases where release_type = 'contract'"
        ).fetchone()
        parsed = conn.execute(
            "select count(*) from contract_awards where release_id = ?", (contract_id,)
        ).fetchone()[0]
        if not parsed:  # no award parser yet (issue H): two rows as it would read them
            for position, award in enumerate(FIXTURE_AWARDS, start=1):
                branch, contractor, location, amount, number, modification = award
                conn.execute(
                    "insert into contract_awards (release_id, position, branch, contractor,"
                    " contractor_location, amount_usd, contract_number, is_modification,"
                    " small_business, paragraph) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        contract_id,
                        position,
                        branch,
                        contractor,
                        location,
                        amount,
                        number,
                        modification,
                        int(contractor.endswith("*")),
                        f"{contractor}, {location}, was awarded ${amount:,} ({number}).",
                    ),
                )
        (quarantined_id,) = conn.execute(
            "select id from releases where title = ?", (QUARANTINED_TITLE,)
        ).fetchone()
        conn.execute(
            "insert into contract_awards (release_id, position, branch, contractor, amount_usd,"
            " contract_number, is_modification, small_business, paragraph)"
            " values (?, 1, 'Navy', ?, 999999999, 'N0000-26-C-0001', 0, 0, ?)",
            (quarantined_id, QUARANTINED_CONTRACTOR, f"{QUARANTINED_CONTRACTOR} got a fortune."),
        )
