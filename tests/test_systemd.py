"""The systemd units: what the daemon relies on, `systemd-analyze` verify and security.

`systemd-analyze` works here without systemd as PID 1 (see ../shared/NOTES.md); verify
exits 1 when ExecStart's binary is missing, so it checks a copy whose ExecStart points at
an executable that exists. The last tests show that our dependencies run inside the
unit's MemoryDenyWriteExecute= and SystemCallFilter= sandbox.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
MAX_EXPOSURE = 1.5
# Each unit and the program its ExecStart names (replaced for verify).
PROGRAMS = {
    "govfeed.service": "/usr/local/bin/govfeed",
    "govfeed-site.service": "/usr/local/bin/govfeed",
}
ANALYZE_ENV = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Parse a unit file into {section: [(key, value), ...]}, joining `\\` continuations."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def values(path: Path, key: str, section: str = "Service") -> list[str]:
    return [v for k, v in read_unit(path)[section] if k == key]


def analyze() -> str:
    program = shutil.which("systemd-analyze")
    if program is None:
        pytest.skip("systemd-analyze is not installed")
    return program


def test_unit_has_what_the_daemon_contract_needs() -> None:
    """Type=notify with a watchdog, the IMAP credential, a dynamic user and state dir."""
    unit = UNITS / "govfeed.service"

    assert values(unit, "Type") == ["notify"]
    assert values(unit, "NotifyAccess") == ["main"]
    assert len(values(unit, "WatchdogSec")) == 1
    assert values(unit, "DynamicUser") == ["yes"]
    assert values(unit, "StateDirectory") == ["govfeed"]
    assert values(unit, "ConfigurationDirectory") == ["govfeed"]
    assert values(unit, "LoadCredential") == ["imap-password:/etc/govfeed/imap-password"]
    assert "GOVFEED_CONFIG=/etc/govfeed/govfeed.toml" in values(unit, "Environment")
    assert values(unit, "ExecStart") == ["/usr/local/bin/govfeed run"]
    assert values(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert values(unit, "Restart") == ["on-failure"]
    assert values(unit, "KillSignal") == ["SIGTERM"]
    assert values(unit, "WantedBy", section="Install") == ["multi-user.target"]


def test_units_keep_outbound_network_where_imap_needs_it() -> None:
    """govfeed must reach any IMAP server; only the site's unit is pinned to loopback."""
    govfeed = UNITS / "govfeed.service"
    datasette = UNITS / "govfeed-site.service"

    assert values(govfeed, "IPAddressDeny") == []
    assert values(govfeed, "PrivateNetwork") == []
    assert "AF_INET AF_INET6 AF_UNIX" in values(govfeed, "RestrictAddressFamilies")
    assert values(datasette, "IPAddressDeny") == ["any"]
    assert values(datasette, "IPAddressAllow") == ["localhost"]


def test_site_unit_runs_govfeed_site_on_the_configured_database() -> None:
    """The site reads the database the daemon's config names, on loopback, as a plain exec."""
    unit = UNITS / "govfeed-site.service"

    assert values(unit, "ExecStart") == ["/usr/local/bin/govfeed site --host 127.0.0.1 --port 8001"]
    assert "GOVFEED_CONFIG=/etc/govfeed/govfeed.toml" in values(unit, "Environment")
    assert values(unit, "Type") == ["exec"]
    assert values(unit, "DynamicUser") == ["yes"]
    assert values(unit, "ProtectSystem") == ["strict"]
    assert values(unit, "MemoryDenyWriteExecute") == ["yes"]
    assert values(unit, "After", section="Unit") == ["govfeed.service"]


def test_units_share_one_dynamic_user() -> None:
    """The same User= name gives both units the same UID, so Datasette can read the db."""
    users = {name: values(UNITS / name, "User") for name in PROGRAMS}

    assert users == {name: ["govfeed"] for name in PROGRAMS}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_unit_verifies_without_warnings(name: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` exits 0 and says nothing about our unit."""
    program = analyze()
    stand_in = shutil.which("true")
    assert stand_in is not None
    copy = tmp_path / name
    text = (UNITS / name).read_text()
    assert f"ExecStart={PROGRAMS[name]} " in text
    copy.write_text(text.replace(f"ExecStart={PROGRAMS[name]} ", f"ExecStart={stand_in} "))

    result = subprocess.run(
        [program, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        env=ANALYZE_ENV,
        check=False,
    )

    ours = [line for line in result.stderr.splitlines() if "govfeed" in line]
    assert (result.returncode, ours) == (0, [])


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_unit_exposure_is_ok(name: str) -> None:
    """`systemd-analyze security` rates the unit 1.5 or lower ("OK" or "SAFE")."""
    program = analyze()

    result = subprocess.run(
        [program, "security", "--offline=true", "--threshold=15", "--no-pager", str(UNITS / name)],
        capture_output=True,
        text=True,
        env=ANALYZE_ENV,
        check=False,
    )

    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE
    assert match.group(2) in {"OK", "SAFE"}


# --- The sandbox, reproduced without systemd -------------------------------------------

# Exercises what govfeed and Datasette do at run time: every compiled dependency, TLS
# setup, sockets (sd_notify datagram, TCP), threads (APScheduler), signals, SQLite WAL.
RUNTIME_CHECK = r"""
import asyncio, mmap, os, signal, socket, sqlite3, ssl, tempfile, threading
import apscheduler.schedulers.background, click, imapclient, mailparser, nh3, pydantic
import sqlite_utils, structlog
from selectolax.lexbor import LexborHTMLParser

try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    raise SystemExit("W+X memory was allowed: MemoryDenyWriteExecute is not in force")
except PermissionError:
    pass
assert nh3.clean("<p onclick=x>hi<script>1</script></p>") == "<p>hi</p>"
assert LexborHTMLParser("<a href=x>y</a>").css_first("a").attributes == {"href": "x"}
class M(pydantic.BaseModel):
    n: int
assert M(n="3").n == 3
assert mailparser.parse_from_bytes(b"Subject: =?utf-8?q?h=C3=A9?=\r\n\r\nx").subject == "h\xe9"
ssl.create_default_context()
d = tempfile.mkdtemp()
db = sqlite_utils.Database(os.path.join(d, "t.db"))
db.enable_wal()
db["t"].insert_all([{"title": "hello world"}])
db["t"].enable_fts(["title"], create_triggers=True)
assert [r["title"] for r in db["t"].search("hello")] == ["hello world"]
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
server.bind(os.path.join(d, "notify"))
client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
client.sendto(b"READY=1", os.path.join(d, "notify"))
assert server.recv(64) == b"READY=1"
listener = socket.create_server(("127.0.0.1", 0))
conn = socket.create_connection(listener.getsockname(), timeout=5)
listener.accept()[0].sendall(b"* OK\r\n")
assert conn.recv(16) == b"* OK\r\n"
hups = []
signal.signal(signal.SIGHUP, lambda *_: hups.append(1))
os.kill(os.getpid(), signal.SIGHUP)
assert hups == [1]
ran = threading.Event()
scheduler = apscheduler.schedulers.background.BackgroundScheduler()
scheduler.add_job(ran.set, "interval", seconds=0.1, max_instances=1, coalesce=True)
scheduler.start()
assert ran.wait(5)
scheduler.shutdown()
try:
    import dkim  # optional DKIM verification (dkimpy)
except ImportError:
    pass
try:
    from datasette.app import Datasette
except ImportError:  # the `site` extra is not installed
    pass
else:
    async def query():
        response = await Datasette(memory=True).client.get("/_memory.json?sql=select+1")
        assert response.status_code == 200
    asyncio.run(query())
    import govfeed.site.plugin, uvicorn  # what govfeed-site.service loads
print("sandboxed-ok")
"""

# Loads a seccomp filter equivalent to the unit's SystemCallFilter= lines (everything
# else fails with EPERM, as SystemCallErrorNumber=EPERM says), turns on the kernel's
# MDWE (what MemoryDenyWriteExecute= enforces), then execs the given command.
SANDBOX = r"""
import ctypes, json, os, sys
allowed = json.loads(sys.argv[1])
seccomp = ctypes.CDLL("libseccomp.so.2")
seccomp.seccomp_init.restype = ctypes.c_void_p
seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
ctx = seccomp.seccomp_init(0x00050000 | 1)  # SCMP_ACT_ERRNO(EPERM)
for name in allowed:
    number = seccomp.seccomp_syscall_resolve_name(name.encode())
    if number >= 0:
        seccomp.seccomp_rule_add(ctx, 0x7FFF0000, number, 0)  # SCMP_ACT_ALLOW
assert seccomp.seccomp_load(ctx) == 0
assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0  # PR_SET_MDWE, REFUSE_EXEC_GAIN
os.execv(sys.argv[2], sys.argv[2:])
"""


def syscall_group(program: str, group: str) -> set[str]:
    """The system calls in a `@group`, with nested groups expanded."""
    listing = subprocess.run(
        [program, "syscall-filter", "--no-pager", group],
        capture_output=True,
        text=True,
        env=ANALYZE_ENV,
        check=True,
    ).stdout
    names: set[str] = set()
    for raw in listing.splitlines()[1:]:
        line = raw.strip()
        if line.startswith("@"):
            names |= syscall_group(program, line)
        elif line and not line.startswith("#"):
            names.add(line)
    return names


def mdwe_supported() -> bool:
    """PR_GET_MDWE exists from Linux 6.3; older kernels answer EINVAL."""
    return bool(sys.platform == "linux" and ctypes.CDLL(None).prctl(66, 0, 0, 0, 0) >= 0)


def test_dependencies_run_under_the_unit_sandbox() -> None:
    """No dependency needs W+X memory or a system call the unit's filter refuses."""
    program = analyze()
    filters = values(UNITS / "govfeed.service", "SystemCallFilter")
    assert filters == ["@system-service", "~@privileged @resources"]
    assert values(UNITS / "govfeed.service", "SystemCallErrorNumber") == ["EPERM"]
    if not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    try:
        ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp is not installed")
    allowed = syscall_group(program, "@system-service") - (
        syscall_group(program, "@privileged") | syscall_group(program, "@resources")
    )

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SANDBOX,
            json.dumps(sorted(allowed)),
            sys.executable,
            "-c",
            RUNTIME_CHECK,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (result.returncode, result.stdout.strip()) == (0, "sandboxed-ok"), result.stderr
