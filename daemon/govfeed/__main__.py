"""`python -m govfeed` runs the CLI."""

from __future__ import annotations

from govfeed.cli import main

main()
