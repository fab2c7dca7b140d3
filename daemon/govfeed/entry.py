"""The `govfeed` console script; it imports the CLI only when it runs.

The parsing workers are started with multiprocessing's spawn method, which runs the main
script again in each worker (as `__mp_main__`, without its `if __name__ == "__main__"`
part). A script that imports `govfeed.cli` at its top therefore loaded the whole daemon
(click, pydantic, sqlite-utils, imapclient, APScheduler) into every worker.
"""

from __future__ import annotations


def main() -> None:
    from govfeed.cli import main as cli_main

    cli_main()
