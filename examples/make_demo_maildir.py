"""Write examples/demo-maildir/, the small mailbox the README demo imports.

Run from the repository root: `.venv/bin/python examples/make_demo_maildir.py`. Output is
deterministic: file names come from each message's date and a counter, not from the clock,
the host or the process id. See examples/README.md for what is real and what synthetic.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mailgen  # noqa: E402 - this folder, put on the path above

MAILDIR = HERE / "demo-maildir"
HOST = "govfeed-demo"
S = mailgen.STORIES

# (story or builder, Maildir subfolder): "cur" messages have been seen, "new" not yet.
DOD_DEMO: tuple[tuple[mailgen.DodSpec, str], ...] = (
    (S["contract"], "cur"),
    (S["rok-us"], "cur"),  # the real sample
    (replace(S["rok-us"], topic_code="USDOD_2", subscriber="subscriber+usdod2@example.org"), "cur"),
    (S["advisory"], "cur"),
    (S["transcript"], "cur"),
    (S["speech"], "cur"),
    (S["publication"], "cur"),
    (S["energy-challenge"], "cur"),
    (S["readout-cp1252"], "cur"),
    (S["housing"], "cur"),
    (S["war-release"], "cur"),
    (S["war-advisory"], "new"),
    (S["war-transcript"], "new"),
)


def demo_messages() -> list[tuple[str, bytes, datetime]]:
    """(subfolder, message, delivery time) for every demo message, oldest first."""
    out = [(box, mailgen.render_dod(spec), spec.mail_date) for spec, box in DOD_DEMO]
    health = datetime(2023, 1, 9, 10, 31, 4, tzinfo=mailgen.CST)
    confirm = datetime(2024, 7, 20, 11, 2, 51, tzinfo=mailgen.CDT)
    out.append(("cur", mailgen.govdelivery_bulletin(mail_date=health), health))
    out.append(("cur", mailgen.subscription_confirmation(mail_date=confirm), confirm))
    return sorted(out, key=lambda item: item[2])


def file_name(number: int, data: bytes, delivered: datetime, box: str) -> str:
    """A Maildir name: TIME.MusecPpidQn.HOST,S=SIZE plus ":2,S" (seen) in cur/."""
    stamp = delivered + timedelta(seconds=4)
    base = f"{int(stamp.timestamp())}.M{number * 1000 + 417}P4242Q{number}.{HOST},S={len(data)}"
    return f"{base}:2,S" if box == "cur" else base


def main() -> None:
    for box in ("cur", "new", "tmp"):
        (MAILDIR / box).mkdir(parents=True, exist_ok=True)
        for old in (MAILDIR / box).iterdir():
            if not old.name.startswith("."):
                old.unlink()
    (MAILDIR / "tmp" / ".gitkeep").touch()  # git keeps no empty folder; Maildir needs tmp/
    messages = demo_messages()
    for number, (box, data, delivered) in enumerate(messages, start=1):
        (MAILDIR / box / file_name(number, data, delivered, box)).write_bytes(data)
    print(f"wrote {len(messages)} messages to {MAILDIR}")


if __name__ == "__main__":
    main()
